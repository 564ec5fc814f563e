"""The model API for GLMMs (mixedbridge.glmer): every number is the spec path's number (an
``analysis: glmm`` spec), rows are matched to the input's index, and predictions, residuals and
simulations follow lme4's definitions for a ``glmerMod``.

Agreement with R (predict, residual types, simulate moments, r2, icc) is in
tests/test_model_api_glmm_r.py.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import special

import mixedbridge
from mixedbridge.datasets import load
from mixedbridge.errors import DataError, MixedBridgeError, ModelError

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
GROUSE = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)"


def cbpp_spec(**options) -> dict:
    return {"analysis": "glmm", "formula": CBPP, "data": {"dataset": "cbpp"},
            "options": {"family": "binomial", **options}}


@pytest.fixture(scope="module")
def cbpp() -> mixedbridge.Model:
    return mixedbridge.glmer(CBPP, "cbpp")


@pytest.fixture(scope="module")
def grouse() -> mixedbridge.Model:
    return mixedbridge.glmer(GROUSE, "grouseticks", family="poisson")


def assert_frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True)


# --- the fit is the spec path's ---------------------------------------------------------------
def test_fixef_vcov_varcorr_ranef_coef_equal_the_spec_tables(cbpp):
    res = mixedbridge.run(cbpp_spec())
    params = res.table("parameters").to_pandas()
    fixed = params[params.effect == "fixed"].set_index("term")
    assert (cbpp.fixef == fixed["estimate"]).all()
    assert np.array_equal(np.sqrt(np.diag(cbpp.vcov)), fixed["std.error"].to_numpy())
    assert_frames_equal(cbpp.table("parameters"), params)
    assert_frames_equal(cbpp.table("fit"), res.table("fit").to_pandas())
    ran = res.table("random_effects").to_pandas()
    assert np.array_equal(cbpp.ranef["herd"]["(Intercept)"].to_numpy(), ran["estimate"].to_numpy())
    assert np.allclose(cbpp.coef["herd"]["(Intercept)"], fixed.loc["(Intercept)", "estimate"] + ran["estimate"],
                       rtol=0, atol=1e-12)
    sd = params[params.effect == "ran_pars"]["estimate"].to_numpy()
    assert np.array_equal(cbpp.varcorr["sdcor"].to_numpy(), sd)
    assert list(cbpp.varcorr["grp"]) == ["herd"]  # no Residual row: the binomial has no scale
    assert (cbpp.family, cbpp.link, cbpp.sigma, cbpp.is_glmm, cbpp.is_mixed) == ("binomial", "logit", 1.0, True, True)


def test_anova_confint_emmeans_equal_the_spec_path(cbpp):
    spec = cbpp_spec(anova={"type": "III", "method": "lrt"}, confint={"method": "wald"},
                     emmeans={"specs": ["period"], "contrasts": "pairwise", "type": "response"})
    res = mixedbridge.run(spec)
    assert_frames_equal(cbpp.anova().reset_index(), res.table("anova").to_pandas())
    assert_frames_equal(cbpp.confint(method="Wald").reset_index(), res.table("confint").to_pandas())
    means, contrasts = cbpp.emmeans("period", contrasts="pairwise", type="response")
    assert_frames_equal(means, res.table("emmeans").to_pandas())
    assert_frames_equal(contrasts, res.table("contrasts").to_pandas())
    assert "prob" in means.columns and "odds.ratio" in contrasts.columns


@pytest.mark.slow
def test_profile_intervals_equal_the_spec_path(cbpp):
    res = mixedbridge.run(cbpp_spec(confint={"method": "profile"}))
    assert_frames_equal(cbpp.confint(method="profile").reset_index(), res.table("confint").to_pandas())


def test_model_comparison_equals_the_spec_compare(cbpp):
    spec = cbpp_spec()
    spec["compare"] = [{"formula": "cbind(incidence, size - incidence) ~ (1 | herd)", "name": "null"}]
    res = mixedbridge.run(spec)
    null = cbpp.update(". ~ . - period")
    assert null.formula == "cbind(incidence, size - incidence) ~ (1 | herd)"
    table = mixedbridge.anova(cbpp, null, names=["model", "null"])
    assert_frames_equal(table.reset_index(), res.table("model_comparison").to_pandas())
    assert table["Chisq"].dropna().iloc[0] == pytest.approx(2 * (cbpp.loglik - null.loglik), rel=1e-12)


# --- rows: fitted, residuals, predict -----------------------------------------------------------
def test_fitted_residuals_and_predictions_hang_together(cbpp):
    """fitted = μ̂ = g⁻¹(η̂) = predict(type="response"); response residuals y − μ̂; working
    residuals (y − μ̂)/(dμ/dη); Σ deviance residuals² = lme4's deviance(); the Pearson ones from
    the binomial variance with the trials as weights."""
    df = cbpp.data
    y, n = df["incidence"] / df["size"], df["size"]
    eta = cbpp.predict()
    mu = special.expit(eta)
    assert np.allclose(cbpp.fitted(), mu, rtol=1e-13)
    assert np.array_equal(cbpp.predict(type="response"), cbpp.fitted())
    assert np.allclose(cbpp.residuals("response"), y - mu, rtol=0, atol=1e-13)
    assert np.allclose(cbpp.residuals("working"), (y - mu) / (mu * (1 - mu)), rtol=1e-10)
    assert np.allclose(cbpp.residuals("pearson"), (y - mu) * np.sqrt(n / (mu * (1 - mu))), rtol=1e-10)
    assert np.array_equal(cbpp.residuals(), cbpp.residuals("deviance"))
    assert (cbpp.residuals() ** 2).sum() == pytest.approx(cbpp.fit.optinfo["residual_deviance"], rel=1e-12)
    assert np.allclose(cbpp.predict(re_form="~0"), cbpp.problem.fixed.X @ cbpp.fixef.to_numpy(), rtol=1e-13)


def test_rows_are_matched_to_the_input_index():
    df, _ = load("cbpp")
    df = df.set_axis(pd.RangeIndex(100, 100 + len(df)))
    df.loc[102, "incidence"] = np.nan
    m = mixedbridge.glmer(CBPP, df)
    assert m.nobs == len(df) - 1
    for series in (m.fitted(), m.residuals("pearson"), m.predict(type="response"), m.simulate(2, seed=1)["sim_1"]):
        assert series.index.equals(df.index) and np.isnan(series[102]) and series.drop(102).notna().all()


def test_predict_newdata_as_the_fitted_rows_gives_the_fitted_values(grouse):
    nd = grouse.data[["YEAR", "cHEIGHT", "BROOD", "LOCATION"]]  # no response column
    assert np.allclose(grouse.predict(nd, type="response"), grouse.fitted(), rtol=1e-12)
    assert np.allclose(grouse.predict(nd, re_form="~0"), grouse.predict(re_form="~0"), rtol=1e-12)


def test_predict_new_levels_and_refusals(cbpp):
    nd = pd.DataFrame({"period": ["1", "2"], "herd": ["1", "new"]})
    with pytest.raises(ModelError, match="'new'.*allow_new_levels"):
        cbpp.predict(nd)
    pred = cbpp.predict(nd, allow_new_levels=True, type="response")
    assert pred.iloc[1] == pytest.approx(special.expit(cbpp.fixef["(Intercept)"] + cbpp.fixef["period2"]), rel=1e-13)
    with pytest.raises(ModelError, match="type 'probability'"):
        cbpp.predict(type="probability")


def test_a_factor_response_predicts_without_its_column():
    df, _ = load("cbpp")
    rows = df.loc[df.index.repeat(df["size"])].reset_index(drop=True).astype({"period": str, "herd": str})
    rows["sick"] = pd.Categorical(np.where(rows.groupby(["herd", "period"]).cumcount()
                                           < rows["incidence"].to_numpy(), "yes", "no"), categories=["no", "yes"])
    m = mixedbridge.glmer("sick ~ period + (1 | herd)", rows)
    aggregated = mixedbridge.glmer(CBPP, "cbpp")
    assert np.allclose(m.fixef, aggregated.fixef, rtol=1e-4)
    nd = pd.DataFrame({"period": ["1", "3"], "herd": ["2", "2"]})
    assert np.allclose(m.predict(nd), aggregated.predict(nd), rtol=1e-4)


# --- simulate, refit, update ------------------------------------------------------------------
def test_simulate_draws_from_the_family(cbpp, grouse):
    sims = cbpp.simulate(400, seed=5)
    size = cbpp.data["size"].to_numpy()[:, None]
    successes = sims.to_numpy() * size
    assert np.allclose(successes, np.round(successes)) and sims.to_numpy().min() >= 0 and sims.to_numpy().max() <= 1
    counts = grouse.simulate(3, seed=2).to_numpy()
    assert np.array_equal(counts, np.round(counts)) and counts.min() >= 0
    assert cbpp.simulate(2, seed=9).equals(cbpp.simulate(2, seed=9))
    gamma = mixedbridge.glmer("size ~ period + (1 | herd)", "cbpp", family="Gamma", link="log")
    with pytest.raises(ModelError, match="Gamma family.*binomial and poisson"):
        gamma.simulate(1)


def test_simulate_has_the_models_moments(grouse):
    """Poisson-lognormal moments per row: E[y] = exp(η₀ + v/2), Var[y] = E[y] + E[y]²(e^v − 1),
    v the summed random-effects variances (4000 draws)."""
    sims = grouse.simulate(4000, seed=3).to_numpy()
    v = grouse.varcorr["vcov"].sum()
    mean = np.exp(grouse.predict(re_form="~0").to_numpy() + v / 2)
    var = mean + mean ** 2 * np.expm1(v)
    assert np.all(np.abs(sims.mean(axis=1) - mean) < 5 * np.sqrt(var / 4000))
    assert sims.var(axis=1).mean() == pytest.approx(var.mean(), rel=0.1)


def test_refit_with_the_same_and_simulated_responses(cbpp):
    y = cbpp.data["incidence"] / cbpp.data["size"]
    again = cbpp.refit(y)
    assert np.allclose(again.fixef, cbpp.fixef, rtol=1e-6) and again.loglik == pytest.approx(cbpp.loglik, rel=1e-9)
    sim = cbpp.refit(cbpp.simulate(1, seed=4)["sim_1"])
    assert sim.is_glmm and not np.allclose(sim.fixef, cbpp.fixef)
    with pytest.raises(DataError, match="outside"):
        cbpp.refit(y * 3)


def test_update_changes_link_formula_and_engine_arguments(cbpp):
    probit = cbpp.update(link="probit")
    assert probit.link == "probit" and probit.to_spec()["options"]["link"] == "probit"
    assert probit.fixef.index.equals(cbpp.fixef.index)
    agq = cbpp.update(nAGQ=9)
    assert agq.fit.optinfo["nAGQ"] == 9 and agq.loglik != cbpp.loglik
    with pytest.raises(ModelError, match="REML"):
        cbpp.update(REML=False)


# --- effect sizes -----------------------------------------------------------------------------
def test_r2_and_icc_follow_nakagawa_for_the_logit_link(cbpp):
    vf = float(np.var(cbpp.predict(re_form="~0"), ddof=1))
    vr, vd = cbpp.varcorr.vcov[0], np.pi ** 2 / 3
    r2, icc = cbpp.r2(), cbpp.icc()
    assert r2["marginal"] == pytest.approx(vf / (vf + vr + vd), rel=1e-12)
    assert r2["conditional"] == pytest.approx((vf + vr) / (vf + vr + vd), rel=1e-12)
    assert icc["adjusted"] == pytest.approx(vr / (vr + vd), rel=1e-12)


def test_r2_of_an_unsupported_family_is_a_clear_error():
    gamma = mixedbridge.glmer("size ~ period + (1 | herd)", "cbpp", family="Gamma", link="log")
    with pytest.raises(ModelError, match="Gamma model with the log link.*binomial.*Poisson"):
        gamma.r2()
    with pytest.raises(ModelError, match="Gamma"):
        gamma.icc()


# --- documents ----------------------------------------------------------------------------------
def test_to_spec_reproduces_the_model(cbpp):
    df, _ = load("cbpp")
    m = mixedbridge.glmer(CBPP, df, nAGQ=5)
    spec = json.loads(json.dumps(m.to_spec()))
    assert spec["analysis"] == "glmm" and spec["options"]["family"] == "binomial" and spec["options"]["nAGQ"] == 5
    assert_frames_equal(mixedbridge.run(spec).table("parameters").to_pandas(), m.table("parameters"))
    assert cbpp.to_spec()["data"] == {"dataset": "cbpp"}


def test_summary_repr_and_html(cbpp, grouse):
    text = repr(cbpp)
    assert len(text) < 200 and "binomial, logit link" in text and "56 obs" in text
    summary = str(cbpp.summary())
    for part in ("Generalized linear mixed model fit by maximum likelihood (Laplace Approximation)",
                 " Family: binomial  ( logit )", "df.resid", "Scaled residuals:", "z value", "Pr(>|z|)",
                 "Number of obs: 56, groups:  herd, 15"):
        assert part in summary
    assert "Residual" not in summary.split("Random effects:")[1].split("Number of obs")[0]
    assert f"{cbpp.aic:.1f}" in summary and "-92.0" in summary
    assert "Adaptive Gauss-Hermite Quadrature, nAGQ = 9" in str(cbpp.update(nAGQ=9).summary())
    assert " Family: poisson  ( log )" in str(grouse.summary())
    html = cbpp._repr_html_()
    assert html.count("<table>") == 2 and "period2" in html


def test_bad_arguments_are_clear_errors(cbpp):
    with pytest.raises(MixedBridgeError, match="poisson family does not take the link 'logit'"):
        mixedbridge.glmer("incidence ~ period + (1 | herd)", "cbpp", family="poisson", link="logit")
    with pytest.raises(MixedBridgeError, match="/options/link"):
        mixedbridge.glmer(CBPP, "cbpp", link="identity")
    with pytest.raises(MixedBridgeError, match="lrt"):
        cbpp.anova(method="satterthwaite")
    with pytest.raises(ModelError, match="residual"):
        cbpp.residuals("partial")
