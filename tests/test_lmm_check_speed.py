"""The derivative check's shortcuts give the numbers of the routes they replace, bit for bit:
numpy's LAPACK gufuncs called directly (``np.linalg``'s calls), deriv12's differences on Python
floats (numpy's scalars before), the messages read from Python floats (numpy reductions before)
and the batched factorisations with kept work arrays (fresh arrays and ``np.linalg.cholesky``
before). The references below are the replaced code."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from mixedbridge.lmm import LinearMixedModel, checks, gufuncs
from mixedbridge.lmm.dense import DenseSystem

from .lmm_models import dataset_model as _model

SMALL = [("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
         ("sleepstudy", "Reaction ~ Days + (Days || Subject)"),
         ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
         ("Pastes", "strength ~ 1 + (1 | batch/cask)"),
         ("Dyestuff", "Yield ~ 1 + (1 | Batch)")]



# -- the replaced code ---------------------------------------------------------------------------
def _ref_deriv12(fun, x, fx, lower, delta=checks.DELTA, many=None):
    nx = len(x)
    xadd = x + delta
    xsub = x - delta
    active = np.isfinite(lower) & (xsub < lower)
    ldelta = np.where(active, x - lower, delta)
    xsub = np.where(active, lower, xsub)
    g = np.empty(nx)
    H = np.empty((nx, nx))
    rows, cols, down = checks._deriv12_moves(nx)
    points = np.tile(np.asarray(x, dtype=float), (2 * nx**2, 1))
    points[rows, cols] = np.where(down, xsub[cols], xadd[cols])
    values = iter([float(v) for v in (many(points) if many is not None else [fun(z) for z in points])])
    for j in range(nx):
        fadd, fsub = next(values), next(values)
        ud, ld = delta, ldelta[j]
        H[j, j] = fadd / ud**2 - 2 * fx / (ud * ld) + fsub / ld**2
        g[j] = (fadd - fsub) / (ud + ld)
        for i in range(j):
            udi, ldi = delta, ldelta[i]
            pp, pm, mp, mm = next(values), next(values), next(values), next(values)
            H[i, j] = H[j, i] = (pp / (udi + ud) ** 2 - pm / (udi + ld) ** 2
                                 - mp / (ldi + ud) ** 2 + mm / (ldi + ld) ** 2)
    return g, H, len(points)


def _ref_hessian_messages(H, chol_ok, tol=checks.HESS_TOL):
    try:
        ev = np.linalg.eigvalsh(H)
    except np.linalg.LinAlgError:
        return None, ["Problem with Hessian check (infinite or missing values?)"]
    ev = ev[::-1]
    if np.sum(ev < -tol):
        return ev, [f"Model failed to converge: degenerate Hessian with {int(np.sum(ev < -tol))} "
                    "negative eigenvalues"]
    if np.sum(np.abs(ev) < tol) or not chol_ok:
        return ev, ["Hessian is numerically singular: parameters are not uniquely determined"]
    msgs = []
    if ev.max() * tol > 1:
        msgs.append("Model is nearly unidentifiable: very large eigenvalue - Rescale variables?")
    if ev.min() / ev.max() < tol:
        msgs.append("Model is nearly unidentifiable: large eigenvalue ratio - Rescale variables?")
    return ev, msgs


def _ref_check(fun, theta, fmin, lower, many=None):
    sing = [int(i) for i in np.flatnonzero(lower == 0) if theta[i] < checks.SINGULAR_TOL]
    out = checks.ConvergenceCheck(bool(sing), sing)
    if sing:
        out.messages.append("boundary (singular) fit: see help('isSingular')")
        return out
    g, H, count = _ref_deriv12(fun, theta, fmin, lower, many=many)
    out.gradient, out.hessian, out.nfeval = g, H, count
    if not np.all(np.isfinite(g)):
        out.grad_ok = False
        out.messages.append("Gradient contains NAs")
        return out
    try:
        chol = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        chol = None
    scg = None
    if chol is not None:
        try:
            scg = np.linalg.solve(chol.T, g)
        except np.linalg.LinAlgError:
            scg = None
    if scg is None or np.any(np.isnan(scg)):
        out.grad_ok = False
        out.messages.append("unable to evaluate scaled gradient")
    else:
        out.max_grad = float(np.max(np.minimum(np.abs(scg), np.abs(g))))
        if out.max_grad > checks.GRAD_TOL:
            out.grad_ok = False
            comp = int(np.argmax(np.minimum(np.abs(scg), np.abs(g)))) + 1
            out.messages.append(f"Model failed to converge with max|grad| = {out.max_grad:.6g} "
                                f"(tol = {checks.GRAD_TOL:g}, component {comp})")
    ev, msgs = _ref_hessian_messages(H, chol is not None)
    out.hess_eigen = ev
    if msgs:
        out.hess_ok = False
        out.messages += msgs
    return out


def _ref_factor_many(dense: DenseSystem, thetas):
    assert dense._quadratic is not None and dense._cells is not None
    first, second, _ = dense._quadratic
    cells, coef = dense._cells
    size = dense.full.shape[0]
    V = np.ones((len(thetas), len(dense._v)))
    V[:, :-1] = thetas
    Ms = np.zeros((len(thetas), dense.full.size))
    Ms[:, cells] = (V[:, first] * V[:, second]) @ coef
    try:
        L = np.linalg.cholesky(Ms.reshape(len(thetas), size, size))
    except np.linalg.LinAlgError:
        return None
    d = np.diagonal(L, axis1=1, axis2=2)
    sums = np.add.reduceat(np.log(d), dense._segments, axis=1)
    pwrss = np.array([float(r) ** 2 for r in d[:, -1]])
    return 2.0 * sums[:, 0], 2.0 * sums[:, 1], pwrss


def _ref_objectives(model: LinearMixedModel, factors):
    with np.errstate(divide="ignore"):
        val = model._profiled(factors[0], factors[1], factors[2], model.dof, model.reml)
    return np.where((factors[2] > 0) & np.isfinite(factors[0]), val, math.inf)


def _same(a, b) -> bool:
    """Equal bit for bit (arrays of the same shape and dtype; NaN where NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _same_check(new: checks.ConvergenceCheck, old: checks.ConvergenceCheck) -> None:
    for name, value in vars(old).items():
        got = getattr(new, name)
        if value is None or got is None:
            assert got is None and value is None, name
        elif isinstance(value, np.ndarray):
            assert _same(got, value), name
        elif isinstance(value, float):
            assert isinstance(got, float) and _same(got, value), name
        else:
            assert got == value, name


# -- the pins --------------------------------------------------------------------------------
def _matrices() -> list[np.ndarray]:
    """Positive definite, indefinite, singular, non-finite and badly scaled 3×3 matrices."""
    rng = np.random.default_rng(7)
    out = []
    for _ in range(20):
        a = rng.standard_normal((3, 3))
        out += [a @ a.T + 0.1 * np.eye(3), a + a.T]
    spd = out[0]
    out += [np.zeros((3, 3)), np.diag([1.0, 1e-9, 2.0]), np.diag([1e7, 1.0, 2.0]), np.diag([1.0, 1e-7, 2.0]),
            np.diag([4.0, -1e-7, 2.0]), np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 1.0]]),
            np.where(np.eye(3) == 1, np.nan, spd), np.where(np.eye(3) == 1, spd, np.inf),
            np.full((3, 3), np.nan), np.diag([np.inf, 1.0, 2.0]), np.diag([1e300, 1e-300, 1.0])]
    return out


def _outcome(f, *args):
    """f's value or the kind of exception it raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return f(*args)
        except Exception as err:  # noqa: BLE001 - the kind of exception is the outcome
            return type(err)


def test_gufuncs_are_numpy_linalg_calls():
    """cholesky, solve, eigvalsh and eigh give np.linalg's numbers bit for bit and raise
    LinAlgError in the same cases, stacked matrices included."""
    rng = np.random.default_rng(3)
    b = rng.standard_normal(3)
    mats = _matrices()
    for a in mats + [m.T for m in mats]:
        for new, old, args in ((gufuncs.cholesky, np.linalg.cholesky, (a,)),
                               (gufuncs.solve, np.linalg.solve, (a, b)),
                               (gufuncs.eigvalsh, np.linalg.eigvalsh, (a,)),
                               (gufuncs.eigh, np.linalg.eigh, (a,))):
            got, want = _outcome(new, *args), _outcome(old, *args)
            if isinstance(want, type):
                assert got is want
            elif isinstance(want, tuple):  # eigh's eigenvalues and eigenvectors
                assert len(got) == 2 and all(_same(x, y) for x, y in zip(got, want))
            else:
                assert _same(got, want)
    stacked = np.stack([m for m in mats if np.all(np.isfinite(m))][:8])
    for batch in (stacked, np.stack([mats[0], mats[2], mats[4]])):
        got, want = _outcome(gufuncs.cholesky, batch), _outcome(np.linalg.cholesky, batch)
        assert got is want if isinstance(want, type) else _same(got, want)


def test_hessian_messages_are_the_numpy_reductions():
    """The eigenvalues and messages from Python floats are those of numpy's reductions, NaN and
    infinite Hessians included."""
    for H in _matrices():
        for chol_ok in (True, False):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ev, msgs = checks._hessian_messages(H, chol_ok)
                ref_ev, ref_msgs = _ref_hessian_messages(H, chol_ok)
            assert msgs == ref_msgs
            assert (ev is None and ref_ev is None) or _same(ev, ref_ev)


@pytest.mark.parametrize("nx", [1, 2, 3, 4])
def test_deriv12_on_python_floats_is_the_numpy_scalar_route(nx):
    """Gradient and Hessian bit for bit as with numpy's scalars: inside the bounds, with steps
    shortened at a bound, on a bound (zero step: inf and nan as before) and below it."""
    rng = np.random.default_rng(nx)
    lower = np.where(np.arange(nx) % 2 == 0, 0.0, -np.inf)

    def fun(z):
        return float(np.sum(np.log1p(z**2)) + 1.0 / (1.0 + np.sum(z)) + z @ z * 13.7)

    for x in (rng.uniform(0.5, 2.0, nx), rng.uniform(0.0, 2e-4, nx), np.zeros(nx), -rng.uniform(0, 1e-3, nx)):
        fx = fun(x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = checks.deriv12(fun, x, fx, lower)
            want = _ref_deriv12(fun, x, fx, lower)
            batched = checks.deriv12(fun, x, fx, lower, many=lambda pts: np.array([fun(z) for z in pts]))
        assert got[2] == want[2] == batched[2] == 2 * nx**2
        for a, b, c in zip(got[:2], want[:2], batched[:2]):
            assert _same(a, b) and _same(c, b)


@pytest.mark.parametrize("ds, formula", SMALL)
def test_check_and_batch_are_the_replaced_code(ds, formula, lapack_route):
    """On the numpy and LAPACK route, the batched factorisations (kept work arrays, several batch
    sizes, repeated) give the numbers of fresh arrays and np.linalg.cholesky; objectives those of
    the np.where formula; the whole check (REML and ML, at θ̂ and away from it, where it fails)
    that of the replaced code."""
    model = _model(ds, formula)
    dense = model.dense
    assert dense is not None
    rng = np.random.default_rng(1)
    for reml in (True, False):
        model.reml = reml
        model.fit()
        theta = model.optsum.theta
        points = checks._deriv12_points(theta, theta + checks.DELTA, theta - checks.DELTA)
        for thetas in (points, points[:3], points, theta * rng.uniform(0.3, 3.0, (5, theta.size))):
            want = _ref_factor_many(dense, thetas)
            got = dense.factor_many(thetas)
            assert got is not None and want is not None
            assert all(_same(a, b) for a, b in zip(got, want))
            assert _same(model.objectives(thetas), _ref_objectives(model, want))
        lower = model.structure.lower
        for at in (theta, theta + rng.normal(0.0, 0.3, theta.size), np.abs(theta) * 1.7 + 1e-3):
            f = model.objective(at)
            _same_check(checks.check_convergence(model.objective, at, f, lower, True, model.objectives),
                        _ref_check(model.objective, at, f, lower, model.objectives))


def test_gufuncs_use_the_direct_route_on_this_numpy_and_fall_back_without_it(monkeypatch):
    """The numpy this runs on has the private gufuncs (else the speed is lost unseen); without
    them the public functions give the same numbers and errors."""
    assert gufuncs.DIRECT
    monkeypatch.setattr(gufuncs, "DIRECT", False)
    a = np.array([[4.0, 1.0], [1.0, 3.0]])
    assert _same(gufuncs.cholesky(a), np.linalg.cholesky(a))
    assert _same(gufuncs.solve(a, np.ones(2)), np.linalg.solve(a, np.ones(2)))
    assert _same(gufuncs.eigvalsh(a), np.linalg.eigvalsh(a))
    assert all(_same(x, y) for x, y in zip(gufuncs.eigh(a), np.linalg.eigh(a)))
    assert _outcome(gufuncs.cholesky, -a) is np.linalg.LinAlgError
