"""Preparation without O(n) Python work or extra n-row copies (issue #16, "Preparation"): the
shortcuts keep the results of the general paths (aliased columns, a Categorical's levels, the
random-effects table) and the memory of a prepared and fitted model stays bounded."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

import mixedbridge
from mixedbridge import spec as specmod
from mixedbridge.design import drop_aliased
from mixedbridge.engines import NativeEngine
from mixedbridge.fit_tables import random_effects_table
from mixedbridge.formula import parse_formula
from mixedbridge.frame import model_frame
from mixedbridge.inference.options import settings as inference_settings
from mixedbridge.problem import Problem
from mixedbridge.table import Table


def _problem(df: pd.DataFrame, formula: str, hint: set[str] | None = None) -> Problem:
    spec = specmod.validate({"analysis": "lmm", "data": {"records": [{}]}, "formula": formula})
    desc = parse_formula(spec["formula"])
    return Problem.build("lmm", desc, model_frame(df, desc, spec, hint), spec["options"])


def _slope_data(n: int, groups: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), -(-n // groups))[:n]
    b = rng.standard_normal((groups, 2)) * [1.0, 0.5]
    x = rng.standard_normal(n)
    y = 1.0 + 0.5 * x + b[g, 0] + b[g, 1] * x + rng.standard_normal(n)
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical.from_codes(g, [f"g{i}" for i in range(groups)])})


def test_full_rank_design_is_kept_as_it_is():
    X = np.column_stack([np.ones(50), np.arange(50.0), np.arange(50.0) ** 2])
    kept, keep = drop_aliased(X, ["a", "b", "c"])
    assert keep == [0, 1, 2] and kept is X


@pytest.mark.parametrize("scale", [1.0, 1e-9])
def test_aliased_and_nearly_aliased_columns_are_dropped_as_before(scale):
    # column 2 = column 0 + column 1 (+ a perturbation of relative size 1e-9: still aliased at
    # R's tolerance 1e-7); column 3 independent
    rng = np.random.default_rng(3)
    a, b, c = rng.standard_normal((3, 40))
    X = np.column_stack([a, b, a + b + scale * 1e-9 * c, c])
    kept, keep = drop_aliased(X, ["a", "b", "ab", "c"])
    assert keep == [0, 1, 3]
    np.testing.assert_array_equal(kept, X[:, [0, 1, 3]])


def test_categorical_keeps_its_order_and_drops_unused_levels():
    cat = pd.Categorical(["a", "b", None, "a", "d"], categories=["d", "c", "b", "a"])
    df = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0, 5.0], "x": [0.1, 0.4, 0.2, 0.3, 0.9], "g": cat})
    pr = _problem(df, "y ~ x + (1 | g)")
    levels, codes = pr.frame.grouping(("g",))
    assert levels == ["d", "b", "a"]           # the Categorical's order, "c" unused
    assert codes.tolist() == [2, 1, 2, 0]      # the row with no level removed listwise
    assert pr.frame.n_missing == 1


def test_integer_groups_are_levels_in_numeric_order_as_r_factor():
    g = np.array([10, -3, 2, 10, 2, 100], dtype=np.int32)
    df = pd.DataFrame({"y": np.arange(6.0), "x": [0.1, 0.4, 0.2, 0.3, 0.9, 0.5], "g": g})
    levels, codes = _problem(df, "y ~ x + (1 | g)").frame.grouping(("g",))
    assert levels == ["-3", "2", "10", "100"]   # R: levels(factor(c(10L, -3L, 2L, 10L, 2L, 100L)))
    assert codes.tolist() == [2, 0, 1, 2, 1, 3]


def test_random_term_with_the_fixed_columns_shares_their_rows():
    pr = _problem(_slope_data(2000, 40), "y ~ x + (1 + x | g)")
    (term,) = pr.reterms
    assert term.X is pr.fixed.X and not pr.fixed.X.flags.writeable
    np.testing.assert_array_equal(pr.fixed.X[:, 1], pr.frame.data["x"].to_numpy())


def test_random_effects_table_has_the_cells_add_row_makes():
    fit = NativeEngine().fit(_problem(_slope_data(2000, 40), "y ~ x + (1 + x | g)"))
    table = random_effects_table(fit)
    expected = Table("random_effects", "", table.columns)
    for block in fit.ranef:
        for j, term in enumerate(block.terms):
            for i, level in enumerate(block.levels):
                expected.add_row(group=block.group, level=level, term=term, estimate=block.modes[i, j],
                                 **{"std.error": block.condsd[i, j]})
    assert table.rows == expected.rows and len(table.rows) == 80


def test_prepare_fit_and_inference_allocate_under_three_times_the_input():
    """200,000 rows of y ~ x + (1 + x | g): all allocations at the peak of preparing, fitting
    and asymptotic inference stay under 3× the input columns (issue #16; 8.8× before the copies
    were removed, 4.3× before the fit computed its per-row arrays on first read and the model
    let go of the basis's rows after the cross-products). What is left at the peak: X with its
    intercept, the int64 codes and [X̃ ỹ] while the cross-products are formed."""
    df = _slope_data(200_000, 2_000)
    inputs = df["y"].to_numpy().nbytes + df["x"].to_numpy().nbytes + df["g"].cat.codes.to_numpy().nbytes
    spec = {"analysis": "lmm", "data": {"records": [{}]}, "formula": "y ~ x + (1 + x | g)",
            "options": {"df_method": "asymptotic"}}
    settings = inference_settings("lmm", specmod.validate(spec)["options"])
    engine = NativeEngine()
    small = _problem(df.iloc[:500], "y ~ x + (1 + x | g)", {"g"})
    engine.infer(small, engine.fit(small), settings, None)  # imports outside the count
    tracemalloc.start()
    try:
        problem = _problem(df, "y ~ x + (1 + x | g)", {"g"})
        fit = engine.fit(problem)
        engine.infer(problem, fit, settings, None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3.0 * inputs, f"peak {peak / inputs:.2f}× the input columns"


def test_rows_of_a_fit_are_computed_on_first_read_as_at_the_fit():
    """Fitted values and residuals of a model that let go of its basis's rows: computed when
    first read, from the estimates at θ̂ (not where inference left θ), equal to y − Xβ̂ − Zb̂."""
    problem = _problem(_slope_data(60_000, 300), "y ~ x + (1 + x | g)", {"g"})
    fit = NativeEngine().fit(problem)
    model = fit.backend.model
    assert model.basis.Xy is None and fit.__dict__["_residuals"] is None
    model.objective(fit.theta * 1.5)  # inference moves θ
    b = np.concatenate([block.modes for block in fit.ranef])
    (term,) = problem.reterms
    expected = problem.y - problem.fixed.X @ fit.beta - np.einsum("na,na->n", term.X, b[term.codes])
    np.testing.assert_allclose(fit.residuals, expected, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(fit.fitted, problem.y - fit.residuals)
    np.testing.assert_array_equal(fit.pearson_residuals, fit.residuals / fit.sigma)
    assert fit.residuals is fit.residuals


def test_whole_run_on_a_categorical_frame_matches_text_groups():
    df = _slope_data(3000, 60)
    spec = {"analysis": "lmm", "formula": "y ~ x + (1 + x | g)", "options": {"df_method": "asymptotic"}}
    a = mixedbridge.run(spec, data=df)
    b = mixedbridge.run(spec, data=df.assign(g=df["g"].astype(str)))
    # text groups take their levels in sorted order (g0, g1, g10, ...), so the optimizer's path
    # differs in the last digits only
    for ra, rb in zip(a.table("parameters").rows, b.table("parameters").rows):
        assert ra["term"] == rb["term"] and ra["estimate"] == pytest.approx(rb["estimate"], rel=1e-6)
    ranef_b = {(r["level"], r["term"]): r["estimate"] for r in b.table("random_effects").rows}
    ranef_a = {(r["level"], r["term"]): r["estimate"] for r in a.table("random_effects").rows}
    assert ranef_a.keys() == ranef_b.keys()
    assert all(ranef_a[k] == pytest.approx(ranef_b[k], rel=1e-5, abs=1e-8) for k in ranef_a)


@pytest.mark.parametrize("values", [
    np.random.default_rng(3).integers(-5, 3000, 20_000),  # a narrow range: the table
    np.random.default_rng(4).integers(0, 2**40, 500),  # a wide one: the sort
    np.array([7, 7, 7]), np.array([], dtype=np.int64), np.array([1, 0, 1], dtype=np.uint8),
    np.array([-2**62, 0, 2**62]),
])
def test_unique_integers_is_numpys_unique(values):
    from mixedbridge.frame import unique_integers

    got, codes = unique_integers(values)
    want, want_codes = np.unique(values, return_inverse=True)
    assert got.dtype == want.dtype and np.array_equal(got, want)
    assert np.array_equal(codes, want_codes.reshape(-1))
