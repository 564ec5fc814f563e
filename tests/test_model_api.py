"""The model API (mixedbridge.lmer / lm / anova): every number is the spec path's number, rows are
matched to the input's index, and predictions and simulations follow lme4's definitions.

Agreement with R (predict, simulate moments, r2, icc) is in tests/test_model_api_r.py.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedbridge
from mixedbridge.datasets import load
from mixedbridge.errors import DataError, MixedBridgeError, ModelError

SLEEP = "Reaction ~ Days + (Days | Subject)"
CHAPTER = "load ~ time * group + (1 | participant)"


def chapter_data() -> pd.DataFrame:
    """The chapter's Table 12.2 rows (leg press, pre and post; 3 loads missing), time as an ordered
    Categorical pre < post (alphabetical order would make post the reference)."""
    df, _ = load("tenthirty")
    df = df[(df.exercise == "legpress") & df.time.isin(["pre", "post"])].copy()
    df["time"] = pd.Categorical(df["time"], categories=["pre", "post"])
    return df


def chapter_spec() -> dict:
    return {"analysis": "lmm", "formula": CHAPTER, "data": {"dataset": "tenthirty"},
            "filter": [{"column": "exercise", "in": ["legpress"]}, {"column": "time", "in": ["pre", "post"]}],
            "levels": {"time": ["pre", "post"]}}


@pytest.fixture(scope="module")
def sleep() -> mixedbridge.Model:
    return mixedbridge.lmer(SLEEP, "sleepstudy")


@pytest.fixture(scope="module")
def chapter() -> mixedbridge.Model:
    return mixedbridge.lmer(CHAPTER, chapter_data())


def assert_frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True)


# --- run(spec, data=df) and Categorical levels ------------------------------------------------
def test_run_with_a_dataframe_needs_no_data_key():
    df, _ = load("sleepstudy")
    res = mixedbridge.run({"analysis": "lmm", "formula": SLEEP}, data=df)
    assert res.table("parameters").rows[0]["estimate"] == pytest.approx(251.405105, abs=1e-5)


def test_a_spec_without_data_and_without_a_dataframe_is_an_error():
    with pytest.raises(MixedBridgeError, match="data"):
        mixedbridge.run({"analysis": "lmm", "formula": SLEEP})


def test_categorical_order_is_the_level_order():
    via_levels = mixedbridge.run(chapter_spec())
    via_categorical = mixedbridge.run({"analysis": "lmm", "formula": CHAPTER}, data=chapter_data())
    assert_frames_equal(via_levels.table("parameters").to_pandas(), via_categorical.table("parameters").to_pandas())
    assert "timepost" in via_categorical.fit.coef_names
    df = chapter_data()
    df["time"] = df["time"].cat.reorder_categories(["post", "pre"])
    assert "timepre" in mixedbridge.run({"analysis": "lmm", "formula": CHAPTER}, data=df).fit.coef_names


def test_unused_categories_are_not_levels():
    df = chapter_data()
    df["group"] = pd.Categorical(df["group"], categories=["RM30", "RM10", "RM5"])
    m = mixedbridge.lmer(CHAPTER, df)
    assert "groupRM10" in m.fixef.index and not any("RM5" in n for n in m.fixef.index)


def test_py_typed_is_shipped():
    from importlib import resources

    assert resources.files("mixedbridge").joinpath("py.typed").is_file()


# --- every number is the spec path's -----------------------------------------------------------
def test_fixef_vcov_varcorr_ranef_coef_equal_the_spec_tables(chapter):
    res = mixedbridge.run(chapter_spec())
    params = res.table("parameters").to_pandas()
    fixed = params[params.effect == "fixed"].set_index("term")
    assert (chapter.fixef == fixed["estimate"]).all()
    assert np.array_equal(np.sqrt(np.diag(chapter.vcov)), fixed["std.error"].to_numpy())
    assert_frames_equal(chapter.table("parameters"), params)
    assert_frames_equal(chapter.table("fit"), res.table("fit").to_pandas())
    ran = res.table("random_effects").to_pandas()
    assert np.array_equal(chapter.ranef["participant"]["(Intercept)"].to_numpy(), ran["estimate"].to_numpy())
    coef = chapter.coef["participant"]
    assert np.allclose(coef["(Intercept)"], fixed.loc["(Intercept)", "estimate"] + ran["estimate"].to_numpy(),
                       rtol=0, atol=1e-10)
    sd = params[params.effect == "ran_pars"]["estimate"].to_numpy()
    assert np.array_equal(chapter.varcorr["sdcor"].to_numpy(), sd)


def test_anova_confint_emmeans_equal_the_spec_path(chapter):
    spec = chapter_spec()
    spec["options"] = {"anova": {"type": "III", "method": "kenward-roger"}, "confint": {"method": "wald"},
                       "emmeans": {"specs": ["time", "group"], "contrasts": "pairwise"}}
    res = mixedbridge.run(spec)
    assert_frames_equal(chapter.anova(type=3, ddf="Kenward-Roger").reset_index(), res.table("anova").to_pandas())
    assert_frames_equal(chapter.confint().reset_index(), res.table("confint").to_pandas())
    means, contrasts = chapter.emmeans(["time", "group"], contrasts="pairwise")
    assert_frames_equal(means, res.table("emmeans").to_pandas())
    assert_frames_equal(contrasts, res.table("contrasts").to_pandas())


def test_model_comparison_equals_the_spec_compare(chapter):
    spec = chapter_spec()
    spec["compare"] = [{"formula": "load ~ time + group + (1 | participant)", "name": "additive"}]
    res = mixedbridge.run(spec)
    additive = chapter.update(". ~ . - time:group")
    assert additive.formula == "load ~ time + group + (1 | participant)"
    table = mixedbridge.anova(chapter, additive, names=["model", "additive"])
    assert_frames_equal(table.reset_index(), res.table("model_comparison").to_pandas())


def test_lm_against_the_chapter_table(tenthirty_lm):
    m = mixedbridge.lm("load ~ time * group", chapter_data())
    res = mixedbridge.run(tenthirty_lm)
    assert_frames_equal(m.table("parameters"), res.table("parameters").to_pandas())
    assert m.r2() == {"r2": res.fit.r_squared, "r2_adjusted": res.fit.adj_r_squared}
    assert isinstance(m.coef, pd.Series) and m.predict(re_form="~0").equals(m.predict())
    with pytest.raises(ModelError, match="random effects"):
        m.icc()
    assert "Residual standard error" in str(m.summary())


# --- rows on the input's index ----------------------------------------------------------------
def test_fitted_and_residuals_are_series_on_the_input_index(chapter):
    data = chapter.data
    fitted, resid = chapter.fitted(), chapter.residuals()
    assert fitted.index.equals(data.index) and resid.index.equals(data.index)
    missing = data["load"].isna()
    assert missing.sum() == 3 and fitted[missing].isna().all() and resid[missing].isna().all()
    assert np.allclose((fitted + resid)[~missing], data.loc[~missing, "load"], rtol=0, atol=1e-9)
    assert np.allclose(chapter.residuals(scaled=True).dropna(), resid.dropna() / chapter.sigma)


def test_predict_on_the_fitted_rows(sleep):
    assert np.allclose(sleep.predict(), sleep.fitted(), rtol=0, atol=1e-9)
    population = sleep.predict(re_form="~0")
    days = sleep.data["Days"].to_numpy()
    assert np.allclose(population, sleep.fixef["(Intercept)"] + sleep.fixef["Days"] * days, rtol=0, atol=1e-9)


def test_predict_newdata_as_the_fitted_rows_gives_the_fitted_values(sleep):
    newdata = sleep.data.iloc[::7][["Days", "Subject"]]
    assert np.allclose(sleep.predict(newdata), sleep.fitted().iloc[::7], rtol=0, atol=1e-9)
    assert sleep.predict(newdata).index.equals(newdata.index)


def test_predict_new_levels(sleep):
    newdata = pd.DataFrame({"Days": [1.0, 4.0], "Subject": [308, 1001]}, index=["a", "b"])
    with pytest.raises(ModelError, match="'1001'.*Subject.*allow_new_levels"):
        sleep.predict(newdata)
    got = sleep.predict(newdata, allow_new_levels=True)
    assert got["b"] == pytest.approx(sleep.fixef["(Intercept)"] + 4 * sleep.fixef["Days"], abs=1e-9)
    re = sleep.ranef["Subject"].loc["308"]
    assert got["a"] == pytest.approx(sleep.fixef.sum() + re["(Intercept)"] + re["Days"], abs=1e-9)
    assert sleep.predict(newdata[["Days"]], re_form="~0")["b"] == got["b"]


def test_predict_refuses_what_it_cannot_do(sleep, chapter):
    with pytest.raises(DataError, match="Subject.*re_form"):
        sleep.predict(pd.DataFrame({"Days": [1.0]}))
    with pytest.raises(ModelError, match="'group'.*'RM5'.*'RM10', 'RM30'"):
        chapter.predict(pd.DataFrame({"time": ["pre"], "group": ["RM5"], "participant": [1]}))
    with pytest.raises(ModelError, match="re_form"):
        sleep.predict(re_form="~(1|Subject)")
    scaled = mixedbridge.lmer("Reaction ~ scale(Days) + (1 | Subject)", "sleepstudy")
    with pytest.raises(ModelError, match="scale"):
        scaled.predict(pd.DataFrame({"Days": [1.0], "Subject": ["308"]}))


def test_predict_with_missing_predictors_gives_nan(chapter):
    newdata = pd.DataFrame({"time": ["pre", None], "group": ["RM10", "RM30"], "participant": [1, 2]})
    got = chapter.predict(newdata)
    assert np.isfinite(got[0]) and np.isnan(got[1])


# --- simulate, refit, update ------------------------------------------------------------------
def test_simulate_has_lme4s_moments(sleep):
    """Mean Xβ, variance diag(ZΣZ') + σ², covariance within a subject x'Σx (theory), 4000 draws."""
    sims = sleep.simulate(4000, seed=7)
    assert list(sims.columns[:2]) == ["sim_1", "sim_2"] and sims.index.equals(sleep.data.index)
    vc = sleep.varcorr
    v0, v1 = vc.vcov[0], vc.vcov[1]
    c01, s2 = vc.vcov[2], sleep.sigma ** 2
    days = sleep.data["Days"].to_numpy()
    var = v0 + 2 * c01 * days + v1 * days ** 2 + s2
    mean = sleep.predict(re_form="~0").to_numpy()
    se = np.sqrt(var / 4000)
    assert np.all(np.abs(sims.mean(axis=1) - mean) < 5 * se)
    assert sims.var(axis=1).mean() == pytest.approx(var.mean(), rel=0.03)
    cov_01 = np.cov(sims.iloc[0], sims.iloc[1])[0, 1]  # Subject 308, Days 0 and 1
    assert cov_01 == pytest.approx(v0 + c01, abs=5 * np.sqrt((var[0] * var[1] + (v0 + c01) ** 2) / 4000))
    assert sleep.simulate(2, seed=3).equals(sleep.simulate(2, seed=3))


def test_refit_with_the_same_response_gives_the_same_fit(chapter):
    again = chapter.refit(chapter.data["load"])
    assert np.allclose(again.fixef, chapter.fixef, rtol=1e-7)
    doubled = chapter.refit(2 * chapter.data["load"].dropna())
    assert np.allclose(doubled.fixef, 2 * chapter.fixef, rtol=1e-5)
    with pytest.raises(DataError, match="51 rows"):
        chapter.refit([1.0, 2.0])


def test_update_changes_reml_and_formula(sleep):
    ml = sleep.update(REML=False)
    assert not ml.fit.reml and ml.fixef.index.equals(sleep.fixef.index)
    spec = ml.to_spec()
    assert spec["options"]["reml"] is False
    quadratic = sleep.update(". ~ . + I(Days^2)")
    assert "I(Days^2)" in quadratic.fixef.index


# --- effect sizes (formulas; R's values in test_model_api_r.py) -------------------------------
def test_r2_and_icc_follow_nakagawa(chapter):
    vf = float(np.var(chapter.predict(re_form="~0").dropna(), ddof=1))
    vr, ve = chapter.varcorr.vcov[0], chapter.sigma ** 2
    r2, icc = chapter.r2(), chapter.icc()
    assert r2["marginal"] == pytest.approx(vf / (vf + vr + ve), rel=1e-12)
    assert r2["conditional"] == pytest.approx((vf + vr) / (vf + vr + ve), rel=1e-12)
    assert icc["adjusted"] == pytest.approx(vr / (vr + ve), rel=1e-12)
    assert icc["unadjusted"] == pytest.approx(vr / (vf + vr + ve), rel=1e-12)


# --- documents and pictures -------------------------------------------------------------------
def test_to_spec_reproduces_the_model(chapter, sleep):
    import json

    spec = json.loads(json.dumps(chapter.to_spec()))
    assert spec["levels"] == {"time": ["pre", "post"]}
    assert_frames_equal(mixedbridge.run(spec).table("parameters").to_pandas(), chapter.table("parameters"))
    assert sleep.to_spec()["data"] == {"dataset": "sleepstudy"}


def test_repr_summary_and_html(sleep):
    text = repr(sleep)
    assert len(text) < 200 and "Reaction ~ Days" in text and "180 obs" in text
    summary = str(sleep.summary())
    for part in ("REML criterion at convergence: 1743.6", "Random effects:", "Fixed effects:", "Satterthwaite",
                 "Number of obs: 180, groups:  Subject, 18"):
        assert part in summary
    html = sleep._repr_html_()
    assert html.count("<table>") == 2 and "(Intercept)" in html


def test_plot_returns_a_figure(sleep):
    from matplotlib.figure import Figure

    fig = sleep.plot("caterpillar")
    assert isinstance(fig, Figure)
    with pytest.raises(ModelError, match="plot 'nope'"):
        sleep.plot("nope")


def test_bad_arguments_are_clear_errors(sleep):
    with pytest.raises(DataError, match="DataFrame"):
        mixedbridge.lmer(SLEEP, [1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(DataError, match="index"):
        mixedbridge.lmer(SLEEP, pd.concat([load("sleepstudy")[0]] * 2))
    with pytest.raises(MixedBridgeError, match="family"):
        mixedbridge.glmer("incidence ~ period + (1 | herd)", "cbpp", family="binomal")
    with pytest.raises(ModelError, match="ddf"):
        sleep.anova(ddf="magic")
    with pytest.raises(ModelError, match="same rows"):
        mixedbridge.anova(sleep, mixedbridge.lmer(SLEEP, load("sleepstudy")[0].iloc[:90]))


def test_model_api_names_are_not_shadowed_by_submodules():
    """Importing a submodule sets it as an attribute of the package: no submodule may carry a name
    of the public API (the native least-squares fit lives in ``ols``, not ``lm``)."""
    from pathlib import Path

    package = Path(mixedbridge.__file__).parent
    for name in mixedbridge.__all__:
        assert not (package / f"{name}.py").exists() and not (package / name).is_dir(), name
    mixedbridge.lm("Reaction ~ Days", "sleepstudy")
    assert callable(mixedbridge.lm) and callable(mixedbridge.lmer) and callable(mixedbridge.anova)
