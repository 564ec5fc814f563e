"""The large-crossed-model path of the native LMM: moment starting values, the fill-in block
assembled from A_rr's non-zeros, the reuse of a large factor's storage, BOBYQA's result without a
re-evaluation and the relative threshold of the Newton finish. Every check compares the fast path
with the plain one (same numbers) or with lme4's route (same optimum); the agreement with R
itself is in test_lmm_lme4.py and the cross-check suite."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixedbridge import datasets
from mixedbridge.design import fixed_design, random_designs
from mixedbridge.formula import parse_formula
from mixedbridge.frame import model_frame
from mixedbridge.lmm import LinearMixedModel, blocks, start
from mixedbridge.lmm.optimize import newton_finish

INSTEVAL = "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)"


def _model(df: pd.DataFrame, formula: str, factors: set[str]) -> LinearMixedModel:
    desc = parse_formula(formula)
    frame = model_frame(df, desc, {}, factors)
    fd = fixed_design(desc, frame)
    return LinearMixedModel(fd.X, fd.names, frame.response(desc), random_designs(desc, frame))


def _insteval(rows: int) -> LinearMixedModel:
    df, factors = datasets.load("InstEval")
    return _model(df.iloc[:rows], INSTEVAL, factors)


def _crossed(n: int = 6000, levels: int = 300, seed: int = 5) -> LinearMixedModel:
    """y = 1 + 0.5x + a + b + e with sd(a) = 1, sd(b) = 0.5, sd(e) = 1, levels paired at random."""
    rng = np.random.default_rng(seed)
    ia, ib = rng.integers(0, levels, n), rng.integers(0, levels, n)
    x = rng.standard_normal(n)
    y = 1 + 0.5 * x + rng.standard_normal(levels)[ia] + 0.5 * rng.standard_normal(levels)[ib] + rng.standard_normal(n)
    df = pd.DataFrame({"y": y, "x": x, "a": [f"a{i}" for i in ia], "b": [f"b{i}" for i in ib]})
    return _model(df, "y ~ x + (1 | a) + (1 | b)", {"a", "b"})


def _upper(S: np.ndarray) -> np.ndarray:
    return np.triu(S)


def test_sparse_assembly_equals_scaled_dense_copy(monkeypatch):
    fast = _insteval(3000)
    assert fast.A.arr_pattern() is not None
    monkeypatch.setattr(blocks, "SPARSE_ARR_FRACTION", 0.0)
    plain = _insteval(3000)
    assert plain.A.arr_pattern() is None
    theta = np.array([0.4, 0.7, 0.2])
    W = blocks._first_block(fast.A.A00, fast.structure.blocks[0].template(theta))[1]
    rest_T = [b.template(theta) for b in fast.structure.blocks[1:]]
    # equal up to rounding: the dense copy scales by c² and then by (dᵢ/c)(dⱼ/c), the sparse
    # assembly by dᵢdⱼ at once
    np.testing.assert_allclose(_upper(blocks._rest_schur(fast.A, W, rest_T)),
                               _upper(blocks._rest_schur(plain.A, W, rest_T)), rtol=1e-14, atol=1e-14)
    assert fast.objective(theta) == pytest.approx(plain.objective(theta), rel=1e-14)


def test_rest_crossproduct_and_its_pattern_match_dense_z():
    df, factors = datasets.load("fhch2010")
    model = _model(df.iloc[:600], "log_rt ~ stimulus + (1 + stimulus | item) + (1 + stimulus | id)", factors)
    A = model.A
    cols = []
    for blk in A.rest:
        Z = np.zeros((model.n, blk.q))
        for a in range(blk.p):
            Z[np.arange(model.n), blk.codes * blk.p + a] = blk.X[:, a]
        cols.append(Z)
    Zr = np.hstack(cols)
    np.testing.assert_allclose(A.Arr, Zr.T @ Zr, rtol=1e-13, atol=1e-12)
    q = A.q_rest
    assert A.arr_upper is not None
    possible = np.zeros(q * q, dtype=bool)
    possible[A.arr_upper] = True
    assert not np.any(np.triu(A.Arr).ravel()[~possible])
    assert np.all(A.arr_upper // q <= A.arr_upper % q)


def test_reused_storage_gives_the_same_numbers_and_retires_the_old_factor(monkeypatch):
    plain = _insteval(3000)
    monkeypatch.setattr(blocks, "REUSE_STORAGE_FILL", 0)
    reuse = _insteval(3000)
    first = reuse.set_theta(np.array([0.5, 0.5, 0.5]))
    assert first.Lrr is not None
    for theta in ([0.3, 0.6, 0.1], [0.9, 0.2, 0.4], [0.3, 0.6, 0.1]):
        th = np.array(theta)
        assert reuse.objective(th) == plain.objective(th)
        np.testing.assert_array_equal(reuse.beta, plain.beta)
    assert first.Lrr is None and not first.ok
    with pytest.raises(np.linalg.LinAlgError):
        first.rest_factor()


def test_moment_start_is_near_the_optimum_and_reaches_lme4_routes_optimum(monkeypatch):
    lme4_route = _crossed().fit()
    assert lme4_route.optsum.theta0.tolist() == [1.0, 1.0]
    monkeypatch.setattr(start, "MOMENT_START_FILL", 0)
    model = _crossed()
    theta0, steps = start.moment_start(model.A, model.structure)
    np.testing.assert_allclose(theta0, lme4_route.optsum.theta, rtol=0.25)
    assert np.all(steps == start.INITIAL_STEP)
    model.fit()
    np.testing.assert_array_equal(model.optsum.theta0, theta0)
    f_ref = lme4_route.optsum.fmin
    assert model.optsum.fmin <= f_ref + 1e-10 * abs(f_ref)
    np.testing.assert_allclose(model.optsum.theta, lme4_route.optsum.theta, rtol=1e-4)
    assert model.optsum.feval < lme4_route.optsum.feval


def test_moment_start_only_for_a_large_fill_in():
    small = _crossed(n=2000, levels=40)
    assert not start.wants_moment_start(small.A)
    assert small.fit().optsum.theta0.tolist() == [1.0, 1.0]


def test_moment_start_without_residual_degrees_of_freedom_keeps_lme4s():
    model = _crossed(n=400, levels=30)
    model.A.n = model.A.p
    theta0, _ = start.moment_start(model.A, model.structure)
    assert theta0.tolist() == [1.0, 1.0]


def test_reported_minimum_is_the_criterion_of_the_factor_at_theta_hat():
    """fmin is the REML criterion of the blocked factor the estimates come from; the objective
    at θ̂ (on this 80-effect model the dense path's, compiled or not) agrees to rounding."""
    model = _crossed(n=2000, levels=40).fit()
    assert model.optsum.fmin == model.reml_crit()
    assert model.objective(model.optsum.theta) == pytest.approx(model.optsum.fmin, rel=1e-14)


def test_newton_finish_needs_a_gain_above_the_relative_tolerance():
    theta, lower = np.array([1.0, 1.0]), np.zeros(2)
    H = np.eye(2) * 100.0
    g = np.array([2e-3, 0.0])  # predicted gain g'H⁻¹g/2 = 2e-8: above ftol_abs = 1e-8

    def quadratic(offset: float):
        return lambda x: offset + g @ (x - theta) + 0.5 * (x - theta) @ H @ (x - theta)

    small, large = quadratic(10.0), quadratic(1e6)
    step = newton_finish(small, theta, small(theta), g, H, lower)
    assert step is not None and step[1] < 10.0
    assert newton_finish(large, theta, large(theta), g, H, lower) is None  # below 1e-12·1e6


def test_upper_plan_writes_the_same_numbers_as_two_scatters():
    """The fill-in written once per position (A_rr's scaled value less the scaled Gram value)
    equals the scatter of A_rr's values followed by the subtraction of the Gram values, bit for
    bit; a model whose A_rr has a non-zero outside the map's positions has no plan."""
    m = _insteval(3000)
    assert m.A.upper_plan() is not None
    theta = np.array([0.4, 0.7, 0.2])
    W = blocks._first_block(m.A.A00, m.structure.blocks[0].template(theta))[1]
    d = blocks.diagonal_scale(m.A, [b.template(theta) for b in m.structure.blocks[1:]])
    planned = blocks._sparse_upper(m.A, W, d, m.A.arr_pattern(), m.A.gram)
    m.A._upper_plan = None  # the two-scatter route
    plain = blocks._sparse_upper(m.A, W, d, m.A.arr_pattern(), m.A.gram)
    assert np.array_equal(planned, plain)
    pattern, gram = m.A.arr_pattern(), m.A.gram
    elsewhere = np.setdiff1d(np.arange(m.A.q_rest ** 2), gram.upper)[0]
    outside = blocks.ArrPattern(np.sort(np.append(pattern.flat, elsewhere)), pattern.rows, pattern.cols,
                                pattern.values)
    assert blocks._upper_plan(gram, outside, m.A.rest, m.A.offsets) is None


def test_grouped_objectives_equal_one_evaluation_each(monkeypatch):
    """The derivative check's batch with S_r's leading rows factored once per group of points
    (those differing in the last rest block's element alone) gives each point's objective up to
    rounding, and the check's gradient as the point-by-point route gives it."""
    from mixedbridge.lmm import model as model_module
    from mixedbridge.lmm.checks import _deriv12_points, deriv12

    monkeypatch.setattr(model_module, "GROUPED_FILL", 0)
    m = _insteval(3000)
    assert blocks.trailing_split(m.A) is not None
    theta = np.array([0.35, 0.55, 0.15])
    points = _deriv12_points(theta, theta + 1e-4, theta - 1e-4)
    one_by_one = np.array([m.objective(t) for t in points])
    np.testing.assert_allclose(m.objectives(points), one_by_one, rtol=1e-13)
    f = m.objective(theta)
    g_plain, _, _ = deriv12(m.objective, theta, f, m.structure.lower)
    g_grouped, _, _ = deriv12(m.objective, theta, f, m.structure.lower, many=m.objectives)
    np.testing.assert_allclose(g_grouped, g_plain, rtol=1e-6, atol=1e-8)


def test_grouped_objectives_fail_a_group_whose_leading_rows_fail(monkeypatch):
    from mixedbridge.lmm import model as model_module

    monkeypatch.setattr(model_module, "GROUPED_FILL", 0)
    m = _insteval(3000)
    theta = np.array([0.35, 0.55, 0.15])
    points = np.array([theta, theta + [0, 0, 1e-4], theta + [1e-4, 0, 0]])
    real = blocks._chol_lower
    calls = []

    def first_fails(S, clean=False):
        calls.append(S.shape)
        L, ok = real(S, clean)
        return L, ok and len(calls) > 1

    monkeypatch.setattr(blocks, "_chol_lower", first_fails)
    got = m.objectives(points)
    assert np.isinf(got[:2]).all() and np.isfinite(got[2])  # the first group fails, the other not


def test_criterion_parts_needs_a_small_last_block():
    m = _crossed(n=2000, levels=100)
    assert blocks.trailing_split(m.A) is None  # one rest block: nothing to split off
    with pytest.raises(ValueError, match="last rest block"):
        blocks.criterion_parts(m.A, m.structure, np.array([1.0, 1.0]))
