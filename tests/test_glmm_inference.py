"""GLMM inference beyond Wald on native fits: afex's per-term likelihood-ratio tests, lme4's
profile and Wald intervals, model comparison, and the parametric bootstrap (repeatable, not
R's numbers), on cbpp (binomial with trials) and grouseticks (Poisson, two grouping factors).

Reference values: ``tests/data/glmm/inference_reference.json``, made by
``tests/data/glmm/inference_reference.R`` (afex ``mixed(..., method = "LRT", family = ...)``,
``confint(glmer_fit, method = "profile" | "Wald")``, ``anova(m0, m1)``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mixedbridge import spec as specmod
from mixedbridge.analysis import prepare
from mixedbridge.inference.options import settings
from mixedbridge.inference.run import infer_native

glmm_api = pytest.importorskip("mixedbridge.glmm.api", reason="the native GLMM estimator (glmm-core)")

REF = json.loads((Path(__file__).parent / "data" / "glmm" / "inference_reference.json").read_text())
MODELS = {
    "cbpp": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial"),
    "grouse": ("TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)", "poisson"),
}
DATASET = {"cbpp": "cbpp", "grouse": "grouseticks"}
_FITS: dict = {}


def _fit(case: str, formula: str | None = None):
    formula = formula or MODELS[case][0]
    key = (case, formula)
    if key not in _FITS:
        spec = specmod.validate({"analysis": "glmm", "formula": formula, "data": {"dataset": DATASET[case]},
                                 "options": {"family": MODELS[case][1], "contrasts": "sum"}})
        pr = prepare(spec)
        fit = glmm_api.fit_glmm(pr.fixed.X, pr.fixed.names, pr.y, pr.reterms, family=MODELS[case][1],
                                weights=pr.frame.weights, offset=pr.frame.offset, nagq=1)
        _FITS[key] = (pr, fit)
    return _FITS[key]


@pytest.mark.parametrize("case", list(MODELS))
def test_term_lrts_match_afex(case):
    pr, fit = _fit(case)
    s = settings("glmm", {"family": MODELS[case][1], "anova": {"method": "lrt", "intercept": True}})
    rows = infer_native(pr, fit, s).anova
    ref = REF[case]["lrt"]
    assert [r["term"] for r in rows] == ref["term"]
    assert [r["Df"] for r in rows] == ref["df"]
    assert [r["npar"] for r in rows] == ref["npar"]
    # each reduced model's log-likelihood is glmer's or higher (the native optimizer finds
    # glmer's optimum or a better one: on grouseticks 0.004 higher), and close to it
    ll_full = REF[case]["loglik"]
    assert fit.loglik >= ll_full - 1e-6 * abs(ll_full)
    ll_red_r = ll_full - 0.5 * np.asarray(ref["chisq"])
    ll_red = np.array([r["logLik"] for r in rows])
    assert np.all(ll_red >= ll_red_r - 1e-6 * np.abs(ll_red_r))
    np.testing.assert_allclose(ll_red, ll_red_r, rtol=1e-5)
    np.testing.assert_allclose([r["Chisq"] for r in rows], ref["chisq"], rtol=1e-3, atol=2e-2)
    np.testing.assert_allclose([r["p.value"] for r in rows], ref["p"], rtol=2e-2)


@pytest.mark.parametrize("case", list(MODELS))
def test_wald_intervals_are_z_intervals_named_as_lme4(case):
    pr, fit = _fit(case)
    s = settings("glmm", {"family": MODELS[case][1], "confint": {"method": "wald", "level": 0.9}})
    rows = infer_native(pr, fit, s).confint
    ref = REF[case]["wald"]
    assert [r["parameter"] for r in rows] == ref["names"]
    k = sum(n.startswith(".sig") for n in ref["names"])
    assert all(r["lower"] is None and r["upper"] is None for r in rows[:k])
    z = 1.6448536269514722  # qnorm(0.95)
    np.testing.assert_allclose([r["lower"] for r in rows[k:]], fit.beta - z * fit.se, rtol=1e-12)
    np.testing.assert_allclose([r["upper"] for r in rows[k:]], fit.beta + z * fit.se, rtol=1e-12)


@pytest.mark.parametrize("case", list(MODELS))
def test_wald_intervals_match_lme4(case):
    pr, fit = _fit(case)
    s = settings("glmm", {"family": MODELS[case][1], "confint": {"method": "wald"}})
    rows = infer_native(pr, fit, s).confint
    ref = REF[case]["wald"]
    k = sum(n.startswith(".sig") for n in ref["names"])
    np.testing.assert_allclose([r["lower"] for r in rows[k:]], ref["lower"][k:], rtol=2e-3, atol=1e-4)
    np.testing.assert_allclose([r["upper"] for r in rows[k:]], ref["upper"][k:], rtol=2e-3, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(MODELS))
def test_profile_intervals_match_lme4(case):
    pr, fit = _fit(case)
    s = settings("glmm", {"family": MODELS[case][1], "confint": {"method": "profile"}})
    rows = infer_native(pr, fit, s).confint
    ref = REF[case]["profile"]
    assert [r["parameter"] for r in rows] == ref["names"]
    # lme4 interpolates a spline through profile points; the limits agree to ~1e-3
    np.testing.assert_allclose([r["lower"] for r in rows], ref["lower"], rtol=3e-3, atol=2e-3)
    np.testing.assert_allclose([r["upper"] for r in rows], ref["upper"], rtol=3e-3, atol=2e-3)


def test_model_comparison_matches_lme4_anova():
    from mixedbridge.engines import get_engine

    pr1, f1 = _fit("grouse")
    pr0, f0 = _fit("grouse", "TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)")
    rows = get_engine("native").compare([("m0", "small", pr0, f0), ("m1", "big", pr1, f1)])
    ref = REF["grouse_compare"]
    assert [r["npar"] for r in rows] == ref["npar"]
    ll = np.array([r["logLik"] for r in rows])
    assert np.all(ll >= np.asarray(ref["loglik"]) - 1e-6 * np.abs(ref["loglik"]))  # glmer's or higher
    np.testing.assert_allclose(ll, ref["loglik"], rtol=1e-5)
    assert rows[1]["Chisq"] == pytest.approx(ref["chisq"][1], rel=1e-3)
    assert rows[1]["Df"] == 1


def test_bootstrap_p_values_are_repeatable_and_plausible():
    from mixedbridge.inference.glmm_tests import term_tests

    _, fit = _fit("cbpp")
    a = term_tests(fit, {"period": [1, 2, 3]}, nsim=19, seed=7)
    b = term_tests(fit, {"period": [1, 2, 3]}, nsim=19, seed=7)
    assert a[0]["p.value.pb"] == b[0]["p.value.pb"]
    # χ² = 25.6 on 3 df: no simulated statistic under the null comes near it
    assert a[0]["p.value.pb"] == pytest.approx(1 / 20)


def test_simulated_responses_follow_the_family():
    from mixedbridge.glmm.family import make_family
    from mixedbridge.inference.glmm_tests import draw

    rng = np.random.default_rng(1)
    mu = np.full(20000, 0.3)
    y = draw(make_family("binomial"), mu, np.full(20000, 10.0), 1.0, rng)
    assert np.all(np.isclose(y * 10, np.rint(y * 10))) and abs(y.mean() - 0.3) < 0.01
    y = draw(make_family("poisson"), np.full(20000, 4.0), np.ones(20000), 1.0, rng)
    assert abs(y.mean() - 4) < 0.05 and abs(y.var() - 4) < 0.2
    y = draw(make_family("Gamma", "log"), np.full(20000, 2.0), np.ones(20000), 0.5, rng)
    assert abs(y.mean() - 2) < 0.03 and abs(y.var() - 4 * 0.25) < 0.05


def test_profile_refused_for_a_family_with_a_scale():
    from mixedbridge.errors import ModelError
    from mixedbridge.fit import Fit
    from mixedbridge.inference.glmm_profile import confint

    fit = Fit(analysis="glmm", engine="native", coef_names=["(Intercept)"], beta=np.zeros(1), vcov=np.eye(1),
              sigma=1.0, nobs=10, loglik=0.0, aic=0.0, bic=0.0, deviance=0.0, df_residual=8.0, family="Gamma",
              link="log")
    with pytest.raises(ModelError) as e:
        confint(fit, 0.95)
    assert e.value.path == "/options/confint/method"
