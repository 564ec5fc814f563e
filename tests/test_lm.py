"""Ordinary regression reproduces the chapter's Table 12.1 and R's ``lm`` to 1e-8."""
from __future__ import annotations

import numpy as np
import pytest

import mixedbridge

# Reference values made by R 4.2.2:
#   d <- read.csv("module/datasets/tenthirty.csv")
#   d <- subset(d, exercise == "legpress" & time %in% c("pre", "post"))
#   d$time <- factor(d$time, levels = c("pre", "post"))
#   fm <- lm(load ~ time * group, data = d); s <- summary(fm)
#   coef(s); s$sigma; logLik(fm); AIC(fm); BIC(fm); deviance(fm); s$r.squared; s$adj.r.squared
#   (printed with sprintf("%.15g"))
R_COEF = {
    "(Intercept)": (273.928571428571, 20.0399819916366, 13.669102673989, 5.42773971330264e-18),
    "timepost": (75.3983516483516, 28.8806878674716, 2.61068406661023, 0.0120872685137459),
    "groupRM30": (7.6098901098901, 28.8806878674716, 0.263494074130455, 0.793321601463705),
    "timepost:groupRM30": (-40.5731768231768, 42.162966874259, -0.96229416075431, 0.340826833752128),
}
R_FIT = {"sigma": 74.9827466498238, "logLik": -290.463235565126, "AIC": 590.926471130251,
         "BIC": 600.585599293873, "deviance": 264253.377872128, "r.squared": 0.15265279362216,
         "adj.r.squared": 0.0985668017257026, "nobs": 51, "df.residual": 47}


def test_table_12_1_matches_the_chapter(tenthirty_lm):
    params = mixedbridge.run(tenthirty_lm).table("parameters").to_pandas().set_index("term")
    assert params["estimate"].round(2).tolist() == [273.93, 75.40, 7.61, -40.57]
    assert params["std.error"].round(2).tolist() == [20.04, 28.88, 28.88, 42.16]


def test_lm_matches_r_to_1e8(tenthirty_lm):
    res = mixedbridge.run(tenthirty_lm)
    params = res.table("parameters").to_pandas().set_index("term")
    assert list(params.index) == list(R_COEF)
    for term, (est, se, t, p) in R_COEF.items():
        row = params.loc[term]
        got = [row["estimate"], row["std.error"], row["statistic"], row["p.value"]]
        np.testing.assert_allclose(got, [est, se, t, p], rtol=1e-8)
    fit = res.table("fit").rows[0]
    for key, value in R_FIT.items():
        assert fit[key] == pytest.approx(value, rel=1e-8), key


def test_missing_rows_are_reported(tenthirty_lm):
    res = mixedbridge.run(tenthirty_lm)
    assert any("3 rows with missing values" in n for n in res.notes)


def test_sum_contrasts_name_coefficients_as_r(tenthirty_lm):
    spec = {**tenthirty_lm, "options": {"contrasts": "sum"}}
    params = mixedbridge.run(spec).table("parameters").to_pandas()
    assert params["term"].tolist() == ["(Intercept)", "time1", "group1", "time1:group1"]
    # With sum coding the intercept is the mean of the four cell means.
    assert params["estimate"][0] == pytest.approx(273.928571428571 + 75.3983516483516 / 2
                                                  + 7.6098901098901 / 2 - 40.5731768231768 / 4, rel=1e-10)


def test_aliased_column_is_dropped_and_noted():
    records = [{"y": float(i % 5) + 0.1 * i, "x": float(i), "z": 2.0 * i} for i in range(12)]
    res = mixedbridge.run({"analysis": "lm", "formula": "y ~ x + z", "data": {"records": records}})
    assert res.table("parameters").to_pandas()["term"].tolist() == ["(Intercept)", "x"]
    assert any("z" in n and "linear combinations" in n for n in res.notes)


def test_dataframe_argument_overrides_spec_data(tenthirty_lm):
    import pandas as pd

    df = pd.DataFrame({"y": [1.0, 2.0, 2.9, 4.2], "x": [0.0, 1.0, 2.0, 3.0]})
    res = mixedbridge.run({"analysis": "lm", "formula": "y ~ x", "data": {"dataset": "sleepstudy"}}, data=df)
    assert res.table("fit").rows[0]["nobs"] == 4


def test_perfect_fit_is_warned_as_r_does():
    # R: summary(lm(y ~ x, data.frame(x = 1:3, y = c(2, 4, 6)))) warns "essentially perfect fit"
    records = [{"x": 1, "y": 2}, {"x": 2, "y": 4}, {"x": 3, "y": 6}]
    res = mixedbridge.run({"analysis": "lm", "formula": "y ~ x", "data": {"records": records}})
    assert any("perfect fit" in w for w in res.warnings)
