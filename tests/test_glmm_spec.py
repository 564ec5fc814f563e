"""The glmm's spec: family, link and nAGQ options, and the binomial response in every form R
takes, prepared for the estimator as glmer receives it (no R needed here; the R engine's fits of
the same forms are compared with plain glmer in tests/test_glmm_r_engine.py)."""
from __future__ import annotations

import numpy as np
import pytest

from mixedbridge import spec as specmod
from mixedbridge.analysis import prepare
from mixedbridge.errors import DataError, FormulaError, SpecError
from mixedbridge.families import FAMILIES
from mixedbridge.formula import parse_formula
from mixedbridge.inference.options import settings
from mixedbridge.options import default, enum

ROWS = [{"s": float(i % 4), "f": float(3 - i % 4), "n": 3.0, "x": float(i % 5), "g": f"g{i % 3}",
         "yes": "no" if i % 3 else "yes", "k": float(i % 7)} for i in range(24)]


def glmm(formula: str, rows=None, levels=None, **options):
    spec = specmod.validate({"analysis": "glmm", "formula": formula, "data": {"records": rows or ROWS},
                             "levels": levels or {}, "options": {"family": "binomial", **options}})
    return prepare(spec)


def test_the_schema_declares_the_glmm_options():
    assert "glmm" in enum("spec", "/analysis")
    assert set(enum("spec", "/options/family")) == set(FAMILIES)
    assert {lk for f in FAMILIES.values() for lk in f.links} == set(enum("spec", "/options/link"))
    assert default("spec", "/options/nAGQ") == 1


@pytest.mark.parametrize("family,link", [("binomial", "logit"), ("poisson", "log"), ("Gamma", "inverse"),
                                         ("inverse.gaussian", "1/mu^2"), ("negative.binomial", "log")])
def test_the_link_defaults_to_the_canonical_one(family, link):
    spec = specmod.validate({"analysis": "glmm", "formula": "y ~ 1 + (1 | g)", "data": {"dataset": "cbpp"},
                             "options": {"family": family}})
    assert spec["options"]["link"] == link


def test_a_given_link_is_kept():
    spec = specmod.validate({"analysis": "glmm", "formula": "y ~ 1 + (1 | g)", "data": {"dataset": "cbpp"},
                             "options": {"family": "binomial", "link": "probit"}})
    assert spec["options"]["link"] == "probit"


def test_counts_response_is_the_proportion_with_the_trials_as_weights():
    pr = glmm("cbind(s, n - s) ~ x + (1 | g)")
    s = np.array([r["s"] for r in ROWS])
    np.testing.assert_array_equal(pr.y, s / 3.0)
    np.testing.assert_array_equal(pr.frame.weights, np.full(len(ROWS), 3.0))
    assert (pr.family, pr.link, pr.nagq) == ("binomial", "logit", 1)


def test_counts_response_with_an_expression_for_the_failures():
    """cbind(s, f) and cbind(s, (s + f) - s): the same response, evaluated from the syntax tree."""
    a, b = glmm("cbind(s, f) ~ x + (1 | g)"), glmm("cbind(s, (s + f) - s) ~ x + (1 | g)")
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.frame.weights, b.frame.weights)


def test_counts_times_prior_weights_as_r_does():
    rows = [{**r, "w": 2.0} for r in ROWS]
    pr = glmm("cbind(s, f) ~ x + (1 | g)", rows=rows, weights="w")
    np.testing.assert_array_equal(pr.frame.weights, np.full(len(ROWS), 6.0))


def test_zero_trials_give_a_zero_proportion_and_weight():
    rows = [{**r, "s": 0.0, "f": 0.0} if i == 0 else r for i, r in enumerate(ROWS)]
    pr = glmm("cbind(s, f) ~ x + (1 | g)", rows=rows)
    assert (pr.y[0], pr.frame.weights[0]) == (0.0, 0.0)


def test_proportions_with_weights_equal_the_counts_form():
    rows = [{**r, "p": r["s"] / 3.0} for r in ROWS]
    a = glmm("p ~ x + (1 | g)", rows=rows, weights="n")
    b = glmm("cbind(s, n - s) ~ x + (1 | g)")
    np.testing.assert_allclose(a.y, b.y, rtol=1e-15)
    np.testing.assert_array_equal(a.frame.weights, b.frame.weights)
    assert a.frame.warnings == []


def test_factor_response_first_level_is_failure():
    pr = glmm("yes ~ x + (1 | g)")
    expected = np.array([r["yes"] != "no" for r in ROWS], dtype=float)  # levels no, yes: 'no' fails
    np.testing.assert_array_equal(pr.y, expected)
    assert pr.frame.weights is None


def test_levels_set_which_level_is_failure():
    pr = glmm("yes ~ x + (1 | g)", levels={"yes": ["yes", "no"]})
    np.testing.assert_array_equal(pr.y, np.array([r["yes"] == "no" for r in ROWS], dtype=float))


def test_zero_one_numbers():
    rows = [{**r, "b": float(r["s"] > 1)} for r in ROWS]
    pr = glmm("b ~ x + (1 | g)", rows=rows)
    np.testing.assert_array_equal(pr.y, [float(r["s"] > 1) for r in ROWS])
    assert pr.frame.warnings == []


def test_missing_counts_drop_the_row():
    rows = [{**r, "s": None} if i == 2 else r for i, r in enumerate(ROWS)]
    pr = glmm("cbind(s, f) ~ x + (1 | g)", rows=rows)
    assert pr.frame.nobs == len(ROWS) - 1
    assert pr.frame.n_missing == 1


def test_non_integer_counts_warn_as_r_does():
    """Poisson: R's dpois warns about non-integer x; the fit goes on, with a warning that says so."""
    rows = [{**r, "k": r["k"] + 0.5 * (i == 3)} for i, r in enumerate(ROWS)]
    pr = glmm("k ~ x + (1 | g)", rows=rows, family="poisson")
    assert len(pr.frame.warnings) == 1
    assert "non-integer" in pr.frame.warnings[0] and "'k'" in pr.frame.warnings[0]
    assert "R warns" in pr.frame.warnings[0]


def test_non_integer_successes_warn():
    rows = [{**r, "p": 0.5} for r in ROWS]
    pr = glmm("p ~ x + (1 | g)", rows=rows, weights="n")
    assert any("non-integer #successes" in w for w in pr.frame.warnings)


def test_errors_check_only_the_rows_used():
    """A negative count in a row removed for a missing predictor is no error (R checks the model
    frame after listwise deletion)."""
    rows = [{**r, "k": -1.0, "x": None} if i == 0 else r for i, r in enumerate(ROWS)]
    pr = glmm("k ~ x + (1 | g)", rows=rows, family="poisson")
    assert pr.frame.nobs == len(ROWS) - 1


def test_gamma_takes_positive_values_only():
    rows = [{**r, "k": r["k"] + 1.0} for r in ROWS]
    assert glmm("k ~ x + (1 | g)", rows=rows, family="Gamma", link="log").frame.warnings == []
    with pytest.raises(DataError, match="positive values only"):
        glmm("k ~ x + (1 | g)", family="inverse.gaussian")


def test_nagq_above_one_needs_one_scalar_term():
    assert glmm("cbind(s, f) ~ x + (1 | g)", nAGQ=25).nagq == 25
    assert glmm("cbind(s, f) ~ x + (0 + x | g)", nAGQ=3).nagq == 3  # one column: lme4 takes it
    with pytest.raises(SpecError, match="single scalar"):
        glmm("cbind(s, f) ~ x + (1 | g) + (1 | yes)", nAGQ=2)
    assert glmm("cbind(s, f) ~ x + (1 | g) + (1 | yes)", nAGQ=0).nagq == 0


def test_cbind_only_as_the_whole_response():
    assert parse_formula("cbind(a, b - a) ~ x + (1 | g)").response.is_counts
    for bad in ("log(cbind(a, b)) ~ x", "y ~ cbind(a, b)", "cbind(a) ~ x", "cbind(a, b, c) ~ x",
                "cbind(a, failures = b) ~ x"):
        with pytest.raises(FormulaError):
            parse_formula(bad)


def test_glmm_inference_settings_are_wald_tests():
    s = settings("glmm", {"family": "binomial"})
    assert (s.df_method, s.anova_method, s.confint_method, s.reml) == ("asymptotic", None, None, False)
    assert settings("glmm", {"family": "poisson", "confint": True}).confint_method == "wald"
    for bad in ({"df_method": "kenward-roger"}, {"df_method": "satterthwaite"},
                {"anova": {"method": "satterthwaite"}}, {"anova": {"method": "kenward-roger"}}):
        with pytest.raises(SpecError):
            settings("glmm", {"family": "poisson", **bad})


def test_a_glmm_is_never_fitted_by_reml():
    assert glmm("cbind(s, f) ~ x + (1 | g)", reml=True).reml is False


@pytest.mark.r
def test_a_data_warning_reaches_the_results(with_r):
    """Non-integer Poisson counts: the fit goes on, and the results warn as R does."""
    import mixedbridge

    rows = [{**r, "k": r["k"] + 0.5 * (i == 3)} for i, r in enumerate(ROWS)]
    res = mixedbridge.run({"analysis": "glmm", "formula": "k ~ x + (1 | g)", "data": {"records": rows},
                           "engine": "lme4", "options": {"family": "poisson"}})
    assert any("non-integer" in w and "R warns" in w for w in res.warnings)
    assert res.table("fit").rows[0]["family"] == "poisson"
    assert sum("lme4: non-integer x" in w for w in res.warnings) == 1  # R's repeated warning, said once


def test_the_manifest_lists_the_glmm_analysis():
    from mixedbridge.cli import spec_manifest

    m = spec_manifest()
    assert "glmm" in m["analyses"]
    fams = m["glmm"]["families"]
    assert fams["binomial"]["canonical_link"] == "logit" and "probit" in fams["binomial"]["links"]
    assert fams["Gamma"]["scale"] and not fams["poisson"]["scale"]
    assert m["glmm"]["nAGQ"] == {"default": 1, "maximum": 25}
