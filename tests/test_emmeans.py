"""EMMs, contrasts and trends without R: adjustment arithmetic against recorded R values, the
chapter's interaction contrast, request checks and the schema fragment."""
from __future__ import annotations

import jsonschema
import numpy as np
import pytest

from mixedbridge import analysis
from mixedbridge import spec as specmod
from mixedbridge.emmeans import adjust as adj
from mixedbridge.emmeans import emmeans_tables, schema
from mixedbridge.engines import get_engine
from mixedbridge.errors import SpecError

from .conftest import TENTHIRTY_LEGPRESS

NA = np.nan


# R 4.2: p <- c(0.012, 0.02, 0.025, NA, 0.031, 0.2); p.adjust(p, m, n = 6)
# and    p <- c(0.01, 0.02, NA, 0.04, 0.2, 0.003); p.adjust(p, m, n = 6)
@pytest.mark.parametrize("p, method, expected", [
    ([0.012, 0.02, 0.025, NA, 0.031, 0.2], "holm", [0.072, 0.1, 0.1, NA, 0.1, 0.4]),
    ([0.012, 0.02, 0.025, NA, 0.031, 0.2], "hommel", [0.051666666666666666, 0.062, 0.075, NA, 0.093, 0.4]),
    ([0.012, 0.02, 0.025, NA, 0.031, 0.2], "hochberg", [0.072, 0.093, 0.093, NA, 0.093, 0.4]),
    ([0.01, 0.02, NA, 0.04, 0.2, 0.003], "bonferroni", [0.06, 0.12, NA, 0.24, 1, 0.018]),
    ([0.01, 0.02, NA, 0.04, 0.2, 0.003], "BH", [0.03, 0.04, NA, 0.06, 0.24, 0.018]),
    ([0.01, 0.02, NA, 0.04, 0.2, 0.003], "BY", [0.0735, 0.098, NA, 0.147, 0.588, 0.0441]),
])
def test_p_adjust_matches_r(p, method, expected):
    got = adj.p_adjust(np.array(p), method, n=6)
    np.testing.assert_allclose(got, expected, rtol=1e-12, equal_nan=True)


def test_hommel_with_two_is_hochberg():
    # R: p.adjust(c(0.03, 0.01), "hommel") -> 0.03 0.02
    np.testing.assert_allclose(adj.p_adjust(np.array([0.03, 0.01]), "hommel"), [0.03, 0.02])


def test_tukey_and_scheffe_quantiles_match_r():
    # R: qtukey(0.95, 6, 17.5)/sqrt(2); ptukey(sqrt(2)*2.9, 6, 17.5, lower.tail=FALSE);
    #    sqrt(3*qf(0.9, 3, 40)); pf(2.5^2/3, 3, 40, lower.tail=FALSE)
    fam = adj.AdjustFamily(6, 15, adj.PAIRS, [np.arange(1)])
    cv, _, _ = adj.critical_values(0.95, np.array([17.5]), "tukey", fam)
    assert cv[0] == pytest.approx(3.1880550497713749, rel=1e-6)
    p, _, _ = adj.adjusted_p(np.array([2.9]), np.array([17.5]), "tukey", fam)
    assert p[0] == pytest.approx(0.086801249217809962, rel=1e-5)
    fam.scheffe_rank = [3]
    cv, _, _ = adj.critical_values(0.9, np.array([40.0]), "scheffe", fam)
    assert cv[0] == pytest.approx(2.5842358109759709, rel=1e-8)
    p, _, _ = adj.adjusted_p(np.array([2.5]), np.array([40.0]), "scheffe", fam)
    assert p[0] == pytest.approx(0.11768638700962475, rel=1e-8)


def test_intervals_under_holm_are_bonferroni_and_tukey_needs_pairs():
    fam = adj.AdjustFamily(4, 6, adj.PAIRS, [np.arange(6)])
    df = np.full(6, 20.0)
    holm, method, msgs = adj.critical_values(0.95, df, "holm", fam)
    bonf, _, _ = adj.critical_values(0.95, df, "bonferroni", fam)
    assert method == "bonferroni" and np.allclose(holm, bonf)
    assert "Conf-level adjustment: bonferroni method for 6 estimates" in msgs
    custom = adj.AdjustFamily(4, 2, adj.CONTRAST, [np.arange(2)])
    _, method, msgs = adj.adjusted_p(np.array([1.0, 2.0]), np.full(2, 20.0), "tukey", custom)
    assert method == "sidak" and any("sidak" in m for m in msgs)
    single = adj.AdjustFamily(2, 1, adj.PAIRS, [np.arange(1)])
    _, method, _ = adj.adjusted_p(np.array([2.0]), np.array([20.0]), "holm", single)
    assert method == "none"


@pytest.fixture(scope="module")
def tenthirty():
    spec = specmod.validate({"analysis": "lmm", "formula": "load ~ time * group + (1 | participant)",
                             **TENTHIRTY_LEGPRESS})
    problem = analysis.prepare(spec)
    return problem, get_engine("native").fit(problem)


def test_interaction_contrast_is_the_interaction_coefficient(tenthirty):
    problem, fit = tenthirty
    tables, notes = emmeans_tables(problem, fit, {
        "specs": ["time", "group"], "df": "asymptotic",
        "contrasts": [{"name": "change in RM30 minus change in RM10", "weights": [1, -1, -1, 1]}]})
    emm, con = tables
    assert [c.name for c in emm.columns] == ["time", "group", "emmean", "SE", "df", "lower.CL", "upper.CL"]
    assert [(r["time"], r["group"]) for r in emm.rows] == [("pre", "RM10"), ("post", "RM10"),
                                                          ("pre", "RM30"), ("post", "RM30")]
    j = fit.coef_names.index("timepost:groupRM30")
    row = con.rows[0]
    assert row["contrast"] == "change in RM30 minus change in RM10"
    assert row["estimate"] == pytest.approx(fit.beta[j], rel=1e-10)
    assert row["SE"] == pytest.approx(fit.se[j], rel=1e-10)
    assert round(row["estimate"], 2) == -39.43
    assert "Degrees-of-freedom method: asymptotic" in notes


def test_pairwise_labels_notes_and_averaging(tenthirty):
    problem, fit = tenthirty
    tables, notes = emmeans_tables(problem, fit, {"specs": "time", "contrasts": "pairwise", "df": "asymptotic"})
    assert tables[1].rows[0]["contrast"] == "pre - post"
    assert "Results are averaged over the levels of: group" in notes
    tables, _ = emmeans_tables(problem, fit, {"specs": [], "df": "asymptotic", "null": 300})
    assert tables[0].rows[0]["1"] == "overall"
    assert "p.value" in [c.name for c in tables[0].columns]


@pytest.mark.parametrize("block, path, words", [
    ({"specs": ["time", "group"], "contrasts": [{"name": "a", "weights": [1, -1]}]},
     "/emmeans/contrasts/0/weights", ["2 weight", "4 marginal means", "1. pre RM10", "4. post RM30"]),
    ({"specs": ["exercise"]}, "/emmeans/specs/0", ["not in the model", "'time'"]),
    ({"specs": ["nonsense"]}, "/emmeans/specs/0", ["not a variable of the model"]),
    ({"specs": ["group"], "trend": "time"}, "/emmeans/trend", ["is a factor"]),
    ({"specs": ["group"], "by": ["group"]}, "/emmeans/by", ["both in specs and in by"]),
    ({"specs": ["group"], "at": {"group": ["RM99"]}}, "/emmeans/at/group/0", ["not a level", "'RM10'"]),
    ({"specs": ["group"], "adjust": "tukeyy"}, "/emmeans/adjust", ["'tukeyy' is not allowed", "'holm'", "'sidak'"]),
    ({"specs": ["group"], "level": 95}, "/emmeans/level", ["95", "maximum of 1"]),
    ({"specs": ["group"], "level": float("nan")}, "/emmeans/level", ["expected number", "NaN"]),
    ({"specs": ["group"], "df": "wald"}, "/emmeans/df", ["'wald' is not allowed", "'kenward-roger'"]),
    ({"specs": ["group"], "colour": "red"}, "/emmeans", ["'colour' was unexpected"]),
    ({"specs": ["group"], "contrasts": [{"weights": []}]}, "/emmeans/contrasts/0/weights", ["non-empty"]),
    ({"specs": ["group"], "contrasts": [{"name": "a", "weights": [1, -1]}, {"name": "a", "weights": [-1, 1]}]},
     "/emmeans/contrasts/1/name", ["two contrasts are named 'a'"]),
])
def test_bad_requests_name_the_path(tenthirty, block, path, words):
    problem, fit = tenthirty
    with pytest.raises(SpecError) as err:
        emmeans_tables(problem, fit, block)
    assert err.value.path == path
    for w in words:
        assert w in err.value.message


def test_weights_per_by_group(tenthirty):
    problem, fit = tenthirty
    with pytest.raises(SpecError) as err:
        emmeans_tables(problem, fit, {"specs": ["time"], "by": ["group"], "df": "asymptotic",
                                      "contrasts": [{"name": "x", "weights": [1, 0, 0, -1]}]})
    assert "within each group of group" in err.value.message
    tables, _ = emmeans_tables(problem, fit, {"specs": ["time"], "by": ["group"], "df": "asymptotic",
                                              "contrasts": [{"name": "post - pre", "weights": [-1, 1]}]})
    assert [r["group"] for r in tables[1].rows] == ["RM10", "RM30"]
    assert tables[1].rows[0]["estimate"] == pytest.approx(fit.beta[1])


def test_trend_on_transformed_column_is_refused():
    spec = specmod.validate({"analysis": "lm", "data": {"dataset": "sleepstudy"},
                             "formula": "Reaction ~ Days + I(Days^2)"})
    problem = analysis.prepare(spec)
    fit = get_engine("native").fit(problem)
    with pytest.raises(SpecError) as err:
        emmeans_tables(problem, fit, {"trend": "Days"})
    assert err.value.path == "/emmeans/trend" and "I(Days^2)" in err.value.message


def test_trend_of_linear_model_is_its_slope():
    spec = specmod.validate({"analysis": "lm", "data": {"dataset": "sleepstudy"}, "formula": "Reaction ~ Days"})
    problem = analysis.prepare(spec)
    fit = get_engine("native").fit(problem)
    tables, _ = emmeans_tables(problem, fit, {"trend": "Days"})
    assert tables[0].name == "trends"
    assert tables[0].rows[0]["Days.trend"] == pytest.approx(fit.beta[1], rel=1e-8)
    assert tables[0].rows[0]["df"] == fit.df_residual


def test_schema_fragment_accepts_the_documented_blocks():
    validator = jsonschema.Draft202012Validator(schema())
    validator.validate({"specs": ["time", "group"], "by": [], "at": {"Days": [0, 9]}, "sd_steps": 1,
                        "level": 0.95, "df": "kenward-roger", "null": 0,
                        "contrasts": [{"name": "a", "weights": [1, -1, -1, 1]}], "adjust": "holm",
                        "trend": "Days"})
    validator.validate({"specs": "time", "contrasts": "pairwise", "adjust": "tukey"})
    assert not validator.is_valid({"specs": ["time"], "adjust": "tukeyy"})
    assert not validator.is_valid({"contrasts": [{"weights": []}]})
