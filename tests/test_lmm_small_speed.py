"""The small-model shortcuts of the native LMM give the numbers of the routes they replace:
LAPACK's triangular solve called directly (``scipy.linalg.solve_triangular``'s call), β̃ solved
once per factor, condVar's fill term from A_r0 in one dense piece, and the model frame's columns
read once (``ColumnCache``). The agreement with lme4 itself is checked by ``test_lmm_lme4.py`` and
``test_crosscheck.py``; these tests pin the equivalences."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla

from mixedbridge import datasets
from mixedbridge.design import fixed_design, random_designs
from mixedbridge.formula import parse_formula
from mixedbridge.frame import ColumnCache, model_frame
from mixedbridge.lmm import LinearMixedModel
from mixedbridge.lmm import model as model_module
from mixedbridge.lmm.model import triangular_solve

from .listeners import Listener
from .lmm_models import dataset_model as _model


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_triangular_solve_is_scipys_call(lower, layout):
    """The same numbers, bit for bit, as scipy's solve_triangular for every memory layout."""
    rng = np.random.default_rng(11)
    n = 5
    full = rng.standard_normal((n + 2, n + 2)) + 4 * np.eye(n + 2)
    a = {"C": np.ascontiguousarray(full[:n, :n]), "F": np.asfortranarray(full[:n, :n]),
         "strided": full[:n, :n].T}[layout]
    tri = np.tril(a) if lower else np.triu(a)
    for b in (rng.standard_normal(n), rng.standard_normal((n, 3))):
        np.testing.assert_array_equal(triangular_solve(tri, b, lower=lower),
                                      sla.solve_triangular(tri, b, lower=lower))
    with pytest.raises(np.linalg.LinAlgError):
        triangular_solve(np.zeros((2, 2)), np.ones(2), lower=True)


def test_beta_tilde_follows_theta():
    """β̃ is solved once per factor: a new θ gives the new β̃, and a caller's copy cannot
    change the cached one."""
    model = _model("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    first = model.beta_tilde
    first[:] = 0.0
    again = model.beta_tilde
    assert np.all(again != 0.0)
    model.set_theta(np.array([0.5, 0.1, 0.3]))
    moved = model.beta_tilde
    Lxx = model.L.Lxx
    p = model.p
    np.testing.assert_array_equal(moved, sla.solve_triangular(Lxx[:p, :p].T, Lxx[p, :p], lower=False))
    assert not np.array_equal(moved, again)


def test_condvar_one_piece_equals_chunks(monkeypatch):
    """condVar's fill term from A_r0 in one dense piece equals the column-chunked route."""
    model = _model("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)")
    model.set_theta(np.array([1.5, 3.2]))
    whole = model.condvar_blocks()
    chunked = model_module._gram_quadratic_chunked
    monkeypatch.setattr(model_module, "_gram_quadratic_chunked",
                        lambda A, X, chunk_entries=4_000_000: chunked(A, X, chunk_entries=A.q_rest * A.p0 * 5))
    for a, b in zip(whole, model.condvar_blocks()):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_column_cache_reads_each_column_once():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    cache = ColumnCache(df)
    assert cache["a"] is cache["a"]
    assert cache.of(df) is cache
    other = df.assign(a=[3.0, 4.0])
    assert cache.of(other) is not cache and cache.of(other)["a"].tolist() == [3.0, 4.0]


SMALL = [("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
         ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
         ("Pastes", "strength ~ 1 + (1 | batch/cask)")]


@pytest.mark.parametrize("ds, formula", SMALL)
def test_fit_objective_and_batch_are_the_objective_bit_for_bit(ds, formula):
    """The optimizer's direct dense objective gives the numbers of ``objective`` exactly (REML
    and ML), at the start, in the interior and on a boundary; the derivative check's batch
    (numpy's batched Cholesky, not scipy's LAPACK call) agrees to rounding and gives the same
    numbers again from its kept work array."""
    for reml in (True, False):
        model = _model(ds, formula)
        model.reml = reml
        rng = np.random.default_rng(3)
        start = model.structure.theta0
        thetas = np.vstack([start, start * rng.uniform(0.2, 3.0, (6, start.size)), 0.0 * start])
        one = np.array([model.objective(t) for t in thetas])
        fast = model._fit_objective()
        assert fast is not model.objective
        np.testing.assert_array_equal([fast(t) for t in thetas], one)
        batch = model.objectives(thetas)
        np.testing.assert_allclose(batch, one, rtol=1e-12)
        np.testing.assert_array_equal(model.objectives(thetas), batch)  # the kept work array again
        np.testing.assert_array_equal(model.objectives(thetas[:3]), batch[:3])  # another batch size


@pytest.mark.parametrize("ds, formula", SMALL + [("sleepstudy", "Reaction ~ Days + (Days || Subject)")])
def test_dense_cells_hold_every_non_zero_of_M(ds, formula):
    """The cells the dense path writes (block 0's level blocks, every row below) hold every
    non-zero of the lower triangle of ΛᵀAΛ + I formed by products."""
    from mixedbridge.lmm.dense import _lower_cells

    model = _model(ds, formula)
    dense = model.dense
    assert dense is not None and dense._quadratic is not None
    size = dense.full.shape[0]
    rows, cols = _lower_cells(size, dense.q0, dense.p0)
    written = np.zeros((size, size), dtype=bool)
    written[rows, cols] = True
    theta = model.structure.theta0 + 0.3
    lam = np.eye(size)
    lam[dense.rows, dense.cols] = theta[dense.index]
    M = lam.T @ dense.full @ lam + np.diag(np.r_[np.ones(dense.q), np.zeros(size - dense.q)])
    assert not np.any(np.tril(M)[~written])
    coef = dense._quadratic[2]
    assert not np.any(coef[:, ~written.ravel()])


def test_deriv12_points_in_lme4_order():
    """deriv12's points, formed by one indexed assignment, are lme4's: per j up then down, then
    for each i < j the corners (up, up), (up, down), (down, up), (down, down)."""
    from mixedbridge.lmm.checks import _deriv12_points

    for nx in (1, 2, 3, 5):
        x = np.arange(1.0, nx + 1.0)
        up, down = x + 0.5, x - 0.25
        expected = []
        for j in range(nx):
            for src in (up, down):
                z = x.copy()
                z[j] = src[j]
                expected.append(z)
            for i in range(j):
                for si, sj in ((up, up), (up, down), (down, up), (down, down)):
                    z = x.copy()
                    z[i], z[j] = si[i], sj[j]
                    expected.append(z)
        np.testing.assert_array_equal(_deriv12_points(x, up, down), np.array(expected))


def test_newton_finish_reads_the_check_eigenvalues():
    """Given the check's eigenvalues of the same (symmetric) Hessian, the Newton finish decides
    and steps as when it computes them itself; an asymmetric H is symmetrised and its own
    eigenvalues used."""
    from mixedbridge.lmm.optimize import newton_finish

    H = np.array([[4.0, 1.0], [1.0, 3.0]])
    g = np.array([0.3, -0.2])

    def fun(z):
        return float(g @ z + 0.5 * z @ H @ z)

    x = np.zeros(2)
    lower = np.full(2, -np.inf)
    mine = newton_finish(fun, x, fun(x), g, H, lower)
    given = newton_finish(fun, x, fun(x), g, H, lower, eigenvalues=np.linalg.eigvalsh(H)[::-1])
    assert mine is not None and given is not None
    np.testing.assert_array_equal(mine[0], given[0])
    assert newton_finish(fun, x, fun(x), g, H, lower, eigenvalues=np.array([1.0, -1.0])) is None
    skew = H + np.array([[0.0, 1e-3], [0.0, 0.0]])
    assert newton_finish(fun, x, fun(x), g, skew, lower, eigenvalues=np.array([1.0, -1.0])) is not None


@pytest.mark.parametrize("ds, formula, crit, feval, deriv", [
    (*SMALL[0], 1743.628271959952, 43, 18),
    (*SMALL[1], 330.860588999606, 45, 8),
    (*SMALL[2], 246.990745853487, 34, 8),
])
def test_small_fits_keep_their_route(ds, formula, crit, feval, deriv):
    """The small-model shortcuts leave the optimizer's route as it was: the same evaluations
    (BOBYQA's and the derivative check's) and lme4's REML criterion.

    R (lme4 1.1-31): ``REMLcrit(lmer(Reaction ~ Days + (Days | Subject), sleepstudy))``,
    ``REMLcrit(lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin))``,
    ``REMLcrit(lmer(strength ~ 1 + (1 | batch/cask), Pastes))`` (lme4's own counts, with its
    NLopt build, are 43, 41 and 36)."""
    model = _model(ds, formula).fit()
    assert model.optsum.fmin == pytest.approx(crit, rel=1e-10)
    assert model.optsum.feval == feval and model.check.nfeval == deriv
    assert model.optsum.fmin <= crit * (1 + 1e-12)


def _factor_before(dense, theta: np.ndarray) -> tuple[float, float, float]:
    """:meth:`DenseSystem.factor`'s numbers by its former steps (keyword LAPACK call, the sums
    unpacked from the array, numpy scalars converted)."""
    first, second, coef = dense._quadratic
    v = np.ones(len(dense._v))
    v[:-1] = theta
    M = ((v[first] * v[second]) @ coef).reshape(dense.full.shape)
    U, info = sla.lapack.dpotrf(M.T, lower=0, clean=0, overwrite_a=1)
    assert info == 0
    d = U.diagonal()
    ld, lx, _ = np.add.reduceat(np.log(d), dense._segments)
    return 2.0 * float(ld), 2.0 * float(lx), float(d[-1]) ** 2


@pytest.mark.parametrize("ds, formula", SMALL)
def test_dense_profiled_and_factor_are_the_former_steps_bit_for_bit(ds, formula, lapack_route):
    """On the numpy and LAPACK route, the optimizer's one-function criterion
    (``DenseSystem.profiled``, its work arrays reused from one θ to the next, in any order) and
    ``factor`` give the numbers of the former steps exactly, with and without weights, REML and ML."""
    df, factors = datasets.load(ds)
    desc = parse_formula(formula)
    frame = model_frame(df, desc, {}, factors)
    fd = fixed_design(desc, frame)
    w = 1.0 + np.arange(len(df)) % 3
    rng = np.random.default_rng(5)
    for weights in (None, w):
        for reml in (True, False):
            model = LinearMixedModel(fd.X, fd.names, frame.response(desc), random_designs(desc, frame), weights,
                                     reml=reml)
            start = model.structure.theta0
            thetas = np.vstack([start, start * rng.uniform(0.0, 4.0, (8, start.size)), 0.0 * start])
            fast = model.dense.profiled(model.dof, model.A.sum_log_w, model.basis.ldR2 if reml else None)
            assert fast is not None
            for t in np.vstack([thetas, thetas[::-1]]):
                before = _factor_before(model.dense, t)
                assert tuple(model.dense.factor(t))[:3] == before
                assert fast(t) == model._criterion(model.dense.factor(t), reml)
                d = model.dof
                expected = before[0] - model.A.sum_log_w + d * (1.0 + model_module._LOG2PI + np.log(before[2] / d))
                if reml:
                    expected += before[1] + model.basis.ldR2
                assert fast(t) == float(expected)


def test_dense_profiled_needs_degrees_of_freedom():
    model = _model(*SMALL[0])
    assert model.dense.profiled(0, 0.0, None) is None


def test_counted_objective_counts_ticks_and_keeps_the_best():
    """The optimizer's wrapper counts evaluations into the run's record, ticks a listener (and
    skips the tick when none listens), maps non-finite values to 1e300 and keeps the best θ."""
    from mixedbridge import progress
    from mixedbridge.lmm.optimize import _counted, _Evaluations

    values = iter([3.0, np.inf, 1.0, 2.0])

    listener = Listener()
    record = _Evaluations()
    with progress.listening(listener):
        call = _counted(lambda x: next(values), record)
        x = np.zeros(2)
        out = []
        for i in range(4):
            x[:] = i
            out.append(call(x, np.empty(0)))
    assert out == [3.0, 1e300, 1.0, 2.0]
    assert record.feval == 4 and record.best_f == 1.0 and record.best_x.tolist() == [2.0, 2.0]
    assert listener.seen == [(k, None, "fit") for k in (1, 2, 3, 4)]
    assert progress.ticker("fit") is None


@pytest.mark.parametrize("ds, formula", SMALL)
def test_minimize_counts_the_evaluations_nlopt_made(ds, formula, monkeypatch):
    """``feval`` is the number of calls NLopt made, over both runs (BOBYQA and the polish)."""
    nlopt = pytest.importorskip("nlopt")
    from mixedbridge.lmm import optimize

    made = []
    original = nlopt.opt.set_min_objective

    def set_min_objective(self, f):
        def seen(x, grad):
            made.append(1)
            return f(x, grad)
        return original(self, seen)

    monkeypatch.setattr(nlopt.opt, "set_min_objective", set_min_objective)
    model = _model(ds, formula)
    s = model.structure
    summary = optimize.minimize_theta(model._fit_objective(), s.theta0, s.lower, do_polish=True)
    assert summary.restarted == ["polish"] and summary.feval == len(made) > 0
