"""The fit's glue around the optimizer decides as the numpy code it replaced: the Newton finish's
Python reductions and direct LAPACK gufuncs, the early exits of lme4's ``restart_edge`` and
``check.boundary`` when nothing is on or near a bound, NLopt's default upper bounds, and
``blas_threads`` as a class. The replaced code is copied here as the reference."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mixedbridge.lmm import optimize
from mixedbridge.lmm.optimize import BOUNDARY_TOL, OptSummary, newton_finish
from mixedbridge.lmm.threads import _blas_libraries, blas_threads


def _newton_finish_numpy(fun, theta, fmin, gradient, hessian, lower, ftol_abs=1e-8, ftol_rel=1e-12,
                         eigenvalues=None):
    """newton_finish as it was, with numpy's reductions and ``numpy.linalg``."""
    if gradient is None or hessian is None or not np.all(np.isfinite(hessian)) or not np.all(np.isfinite(gradient)):
        return None
    H = np.asarray(hessian, dtype=float)
    if not np.array_equal(H, H.T):
        H = (H + H.T) / 2
        eigenvalues = None
    if np.min(np.linalg.eigvalsh(H) if eigenvalues is None else eigenvalues) <= 0:
        return None
    step = -np.linalg.solve(H, np.asarray(gradient, dtype=float))
    if not -float(gradient @ step) / 2 > max(ftol_abs, ftol_rel * abs(fmin)):
        return None
    new = np.maximum(theta + step, lower)
    f_new = float(fun(new))
    return (new, f_new) if f_new < fmin else None


def _cases():
    rng = np.random.default_rng(5)
    for k in (1, 2, 3, 4):
        for scale in (1e-9, 1e-5, 1e-2, 1.0):
            A = rng.standard_normal((k, k))
            H = A @ A.T + 0.1 * np.eye(k)
            g = scale * rng.standard_normal(k)
            yield H, g, None
            yield H, g, np.linalg.eigvalsh(H)
            yield H + np.triu(1e-4 * np.ones((k, k)), 1), g, np.linalg.eigvalsh(H)  # asymmetric
            yield -H, g, None                                                    # not positive definite
    H = np.eye(2)
    yield H, np.array([0.1, np.nan]), None
    yield np.array([[1.0, np.inf], [np.inf, 1.0]]), np.array([0.1, 0.1]), None
    yield H, np.array([0.1, 0.1]), np.array([np.nan, -1.0])  # numpy's min is NaN: not "≤ 0"
    yield H, np.array([0.1, 0.1]), np.array([-1.0, np.nan])
    yield H, np.array([0.1, 0.1]), np.array([0.0, 1.0])
    yield H, None, None


@pytest.mark.parametrize("case", list(_cases()))
def test_newton_finish_is_the_numpy_route(case):
    """The same decision and, when a step is taken, the same θ and objective, bit for bit."""
    H, g, ev = case
    target = np.linspace(0.1, 0.4, H.shape[0])

    def fun(z):
        d = z - target
        return float(d @ d + 10.0)

    theta = np.full(H.shape[0], 0.3)
    lower = np.where(np.arange(H.shape[0]) % 2 == 0, 0.0, -np.inf)
    for fmin in (fun(theta), 1e6, 10.0 + 1e-12):
        got = newton_finish(fun, theta, fmin, g, H, lower, eigenvalues=ev)
        want = _newton_finish_numpy(fun, theta, fmin, g, H, lower, eigenvalues=ev)
        assert (got is None) == (want is None)
        if got is not None:
            np.testing.assert_array_equal(got[0], want[0])
            assert got[1] == want[1]


def test_some_newton_cases_step():
    """The cases above include steps taken, not only refusals."""
    target = np.array([0.1, 0.2])

    def fun(z):
        d = z - target
        return float(d @ d + 10.0)

    theta = np.full(2, 0.3)
    H, g = 2.0 * np.eye(2), 2.0 * (theta - target)
    got = newton_finish(fun, theta, fun(theta), g, H, np.zeros(2))
    assert got is not None
    np.testing.assert_array_equal(got[0], _newton_finish_numpy(fun, theta, fun(theta), g, H, np.zeros(2))[0])


def _restart_edge_numpy(x, lower):
    return np.flatnonzero(x == lower)


def _check_boundary_numpy(x, lower):
    with np.errstate(invalid="ignore"):
        diff = x - lower
        return np.flatnonzero((diff > 0) & (diff < BOUNDARY_TOL))


@pytest.mark.parametrize("x", [
    [0.5, 0.1, 0.2], [0.0, 0.1, 0.2], [0.5, 0.0, 1e-6], [5e-6, -0.3, 0.2], [1e-5, 0.0, 0.2],
    [np.nan, 0.1, 0.2], [0.5, -np.inf, 0.2], [9.999e-6, 1.0, 0.0],
])
def test_boundary_rules_try_the_coordinates_the_numpy_rule_finds(x):
    """lme4's ``restart_edge`` and ``check.boundary``, decided on Python floats, try exactly the
    coordinates the numpy rule finds on, or near, their bound (one evaluation each; the
    boundary check one more at its result) and return θ untouched (no evaluation) when it finds
    none."""
    x = np.array(x)
    lower = np.array([0.0, -np.inf, 0.0])
    summary = OptSummary("LN_BOBYQA", x.copy(), lower, 1e-8, 1e-8, 100)
    calls = []

    def fun(z):
        calls.append(z.copy())
        return 1.0

    optimize._restart_edge(fun, x, 1.0, summary)
    on_bound = _restart_edge_numpy(x, lower)
    assert len(calls) == on_bound.size  # θ_i + 1e-5 on a -inf bound is θ itself: counted, not located
    assert [int(np.flatnonzero(c != x)[0]) for c in calls if np.any(c != x)] == [
        i for i in on_bound.tolist() if np.isfinite(lower[i])]
    calls.clear()
    optimize._check_boundary(fun, x, 1.0, summary)
    edge = _check_boundary_numpy(x, lower)
    assert len(calls) == (len(edge) + 1 if edge.size else 0)
    assert [int(np.flatnonzero(c != x)[0]) for c in calls[:-1]] == edge.tolist()


def test_nlopt_upper_bounds_default_to_infinity():
    """The optimizer no longer sets θ's upper bounds: NLopt's default is +inf already."""
    nlopt = pytest.importorskip("nlopt")
    opt = nlopt.opt(nlopt.LN_BOBYQA, 3)
    assert all(math.isinf(u) and u > 0 for u in opt.get_upper_bounds())


def test_blas_threads_sets_and_restores_each_library():
    """Within the block each BLAS library runs at most n threads; after it, each has its own
    setting again (None: nothing changed); the limit can be entered again."""
    libraries = _blas_libraries()
    if not libraries:
        pytest.skip("no BLAS library seen by threadpoolctl")
    before = [lib.get_num_threads() for lib in libraries]
    limit = blas_threads(1)
    for _ in range(2):
        with limit:
            assert [lib.get_num_threads() for lib in libraries] == [1] * len(libraries)
        assert [lib.get_num_threads() for lib in libraries] == before
    with blas_threads(None):
        assert [lib.get_num_threads() for lib in libraries] == before
    with pytest.raises(RuntimeError), blas_threads(1):
        raise RuntimeError
    assert [lib.get_num_threads() for lib in libraries] == before


@pytest.mark.parametrize("lower", [
    [0.0, -np.inf, 0.0], [0.0, 1.5, -2.0], [np.nan, 0.0, -np.inf], [np.inf, 0.0, 0.0], [0, 1, 2],
])
def test_nlopt_lower_is_numpys_where(lower):
    """NLopt's lower bounds: the same values as ``np.where(np.isfinite(l), l, -inf)``."""
    lower = np.array(lower)
    want = np.where(np.isfinite(lower), lower, -np.inf)
    got = optimize._nlopt_lower(lower)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == want.dtype
