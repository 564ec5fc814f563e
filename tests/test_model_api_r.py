"""The model API against R: lme4's predict.merMod (conditional, population, new data with a new
level), residuals, simulate.merMod's moments, performance::r2_nakagawa and performance::icc.

Stored values: ``tests/data/model_api.json``, written by ``Rscript tests/data/model_api.R``
(lme4 1.1-31, lmerTest, performance 0.10.2, R 4.2). The ``r``-marked test asks R again.
Tolerances (issue #17, as agreement.py): predictions and fixed effects 1e-6 relative (both are
Xβ̂ + Zb̃ of fits equal to 1e-6), r² and ICC (ratios of variance components) 1e-4 relative;
simulation moments within 5 Monte Carlo standard errors of R's own 4000 draws.
"""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

import mixedbridge

from .conftest import ROOT
from .test_model_api import CHAPTER, SLEEP, chapter_data

REFERENCE = json.loads((ROOT / "tests" / "data" / "model_api.json").read_text())


def models() -> dict[str, mixedbridge.Model]:
    return {"sleepstudy": mixedbridge.lmer(SLEEP, "sleepstudy"), "tenthirty": mixedbridge.lmer(CHAPTER, chapter_data())}


@pytest.fixture(scope="module")
def fitted() -> dict[str, mixedbridge.Model]:
    return models()


@pytest.mark.parametrize("name", ["sleepstudy", "tenthirty"])
def test_predictions_equal_lme4s(fitted, name):
    m, ref = fitted[name], REFERENCE[name]
    assert np.allclose(m.fixef.to_numpy(), list(ref["fixef"].values()), rtol=1e-6)
    assert np.allclose(m.fitted().dropna(), ref["fitted"], rtol=1e-6)
    assert np.allclose(m.predict().dropna(), ref["predict_conditional"], rtol=1e-6)
    assert np.allclose(m.predict(re_form="~0").dropna(), ref["predict_population"], rtol=1e-6)
    newdata = pd.DataFrame(ref["newdata"])
    assert np.allclose(m.predict(newdata, allow_new_levels=True), ref["predict_new_conditional"], rtol=1e-6)
    assert np.allclose(m.predict(newdata, re_form="~0"), ref["predict_new_population"], rtol=1e-6)


@pytest.mark.parametrize("name", ["sleepstudy", "tenthirty"])
def test_residuals_equal_lme4s(fitted, name):
    m, ref = fitted[name], REFERENCE[name]
    assert np.allclose(m.residuals(type="pearson").dropna(), ref["residuals_pearson"], rtol=1e-5, atol=1e-6)
    assert np.allclose(m.residuals(scaled=True).dropna(), ref["residuals_scaled"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sleepstudy", "tenthirty"])
def test_r2_and_icc_equal_performance(fitted, name):
    m, ref = fitted[name], REFERENCE[name]
    r2, icc = m.r2(), m.icc()
    assert r2["marginal"] == pytest.approx(ref["r2_marginal"], rel=1e-4)
    assert r2["conditional"] == pytest.approx(ref["r2_conditional"], rel=1e-4)
    assert icc["adjusted"] == pytest.approx(ref["icc_adjusted"], rel=1e-4)
    assert icc["unadjusted"] == pytest.approx(ref["icc_unadjusted"], rel=1e-4)


@pytest.mark.parametrize("name", ["sleepstudy", "tenthirty"])
def test_simulate_moments_equal_lme4s(fitted, name):
    """Per-row means and the average per-row variance of 4000 draws each, ours and lme4's; the
    covariance of the first two rows of the first group."""
    m, ref = fitted[name], REFERENCE[name]["simulate"]
    n = ref["nsim"]
    sims = m.simulate(n, seed=11).dropna()
    var = sims.var(axis=1).to_numpy()
    se_mean = np.sqrt(2 * var / n)
    assert np.all(np.abs(sims.mean(axis=1).to_numpy() - ref["row_mean"]) < 5 * se_mean)
    se_var = np.sqrt(2 * 2 * np.mean(var) ** 2 / (n - 1) / len(var))  # rows are correlated: a loose bound
    assert abs(np.mean(var) - np.mean(ref["row_var"])) < 5 * max(se_var, 0.01 * np.mean(var))
    group = m.problem.reterms[0]
    first = np.flatnonzero(group.codes == 0)[:2]
    cov = np.cov(sims.iloc[first[0]], sims.iloc[first[1]])[0, 1]
    se_cov = np.sqrt(2 * (var[first[0]] * var[first[1]] + cov ** 2) / n)
    assert abs(cov - ref["cov_same_group"]) < 5 * se_cov


R_CHECK = """
suppressMessages({library(lme4); library(performance); library(jsonlite)})
ss <- read.csv(file.path("module", "datasets", "sleepstudy.csv")); ss$Subject <- factor(ss$Subject)
m <- lmer(Reaction ~ Days + (Days | Subject), ss)
nd <- data.frame(Days = c(2.5, 7), Subject = c("330", "elsewhere"))
cat(toJSON(list(new = predict(m, nd, allow.new.levels = TRUE), pop = predict(m, nd, re.form = NA),
                r2 = unclass(r2_nakagawa(m)), icc = unclass(icc(m))), digits = NA, auto_unbox = TRUE))
"""


@pytest.mark.r
def test_r_agrees_now_for_both_engines():
    """R asked again (Rscript) for sleepstudy; the model API's answer from the native and the
    lme4 engine's fit."""
    try:
        out = subprocess.run(["Rscript", "-e", R_CHECK], capture_output=True, text=True, cwd=ROOT, timeout=120)
    except FileNotFoundError:
        pytest.skip("Rscript is not installed")
    if out.returncode != 0 and "performance" in out.stderr:
        pytest.skip("R package performance is not installed")
    assert out.returncode == 0, out.stderr
    ref = json.loads(out.stdout)
    nd = pd.DataFrame({"Days": [2.5, 7.0], "Subject": ["330", "elsewhere"]})
    for engine in ("native", "lme4"):
        m = mixedbridge.lmer(SLEEP, "sleepstudy", engine=engine)
        assert np.allclose(m.predict(nd, allow_new_levels=True), ref["new"], rtol=1e-6)
        assert np.allclose(m.predict(nd, re_form="~0"), ref["pop"], rtol=1e-6)
        r2, icc = m.r2(), m.icc()
        assert r2["marginal"] == pytest.approx(ref["r2"]["R2_marginal"], rel=1e-4)
        assert r2["conditional"] == pytest.approx(ref["r2"]["R2_conditional"], rel=1e-4)
        assert icc["adjusted"] == pytest.approx(ref["icc"]["ICC_adjusted"], rel=1e-4)
        assert icc["unadjusted"] == pytest.approx(ref["icc"]["ICC_unadjusted"], rel=1e-4)
