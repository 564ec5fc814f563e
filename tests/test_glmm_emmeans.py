"""GLMM marginal means and contrasts on the link and response scales (emmeans ``type =
"response"``, ``regrid``), against emmeans 1.8 on glmer fits.

The reference values (``tests/data/glmm/emmeans_reference.json``) come from
``tests/data/glmm/emmeans_reference.R`` (its R calls are in it): each case stores glmer's β̂ and
vcov, which are given to the native emmeans here, so these tests check the emmeans arithmetic
(back-transformation, delta method, ratios, regrid) independently of the GLMM estimator.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixedbridge import spec as specmod
from mixedbridge.analysis import prepare
from mixedbridge.emmeans import emmeans_tables
from mixedbridge.errors import SpecError
from mixedbridge.fit import Fit

DATA = Path(__file__).parent / "data" / "glmm"
DATASETS = Path(__file__).parent.parent / "module" / "datasets"
REF = json.loads((DATA / "emmeans_reference.json").read_text())

CASES = {
    "cbpp_logit": ("cbpp.csv", "incidence ~ period + (1 | herd)", "period", "binomial", "logit",
                   {"herd": "string", "period": "string"}),
    "cbpp_probit": ("cbpp.csv", "incidence ~ period + (1 | herd)", "period", "binomial", "probit",
                    {"herd": "string", "period": "string"}),
    "grouse_log": ("grouseticks.csv", "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)", "YEAR",
                   "poisson", "log", {"BROOD": "string", "LOCATION": "string", "YEAR": "string",
                                      "INDEX": "string"}),
}


def _problem_and_fit(case: str):
    """The model's design (prepared as an lmm, relabelled glmm) and a Fit carrying glmer's β̂, V."""
    file, formula, _, family, link, dtypes = CASES[case]
    df = pd.read_csv(DATASETS / file, dtype=dtypes)
    spec = specmod.validate({"analysis": "lmm", "formula": formula, "data": {"records": [{}]}})
    problem = dataclasses.replace(prepare(spec, data=df), analysis="glmm")
    ref = REF[case]
    beta = np.asarray(ref["beta"], dtype=float)
    fit = Fit(analysis="glmm", engine="native", coef_names=list(problem.fixed.names), beta=beta,
              vcov=np.asarray(ref["vcov"], dtype=float), sigma=1.0, nobs=len(df), loglik=np.nan,
              aic=np.nan, bic=np.nan, deviance=np.nan, df_residual=np.nan, family=family, link=link)
    return problem, fit


def _check(table, ref: dict, est: str, stat: bool = True) -> None:
    df = table.to_pandas()
    assert est in df.columns, (est, list(df.columns))
    np.testing.assert_allclose(df[est].astype(float), ref[est], rtol=1e-6)
    np.testing.assert_allclose(df["SE"].astype(float), ref["SE"], rtol=1e-6)
    np.testing.assert_allclose(df["lower.CL"].astype(float), ref["asymp.LCL"], rtol=1e-6)
    np.testing.assert_allclose(df["upper.CL"].astype(float), ref["asymp.UCL"], rtol=1e-6)
    dfs = df["df"].astype(float)
    assert np.all(np.isinf(dfs) | np.isnan(dfs))  # Inf (a table cell holds no Inf: empty)
    if stat:
        np.testing.assert_allclose(df["z.ratio"].astype(float), ref["z.ratio"], rtol=1e-6)
        np.testing.assert_allclose(df["p.value"].astype(float), ref["p.value"], rtol=1e-6, atol=1e-300)


def _tables(case: str, **request):
    problem, fit = _problem_and_fit(case)
    spec_var = CASES[case][2]
    tables, notes = emmeans_tables(problem, fit, {"specs": spec_var, **request})
    return {t.name: t for t in tables}, notes


@pytest.mark.parametrize("case", list(CASES))
def test_link_scale_means_and_pairs(case):
    t, _ = _tables(case, contrasts="pairwise", adjust="holm", null=0)
    _check(t["emmeans"], REF[case]["link"], "emmean")
    _check(t["contrasts"], REF[case]["link_pairs"], "estimate")


@pytest.mark.parametrize("case", list(CASES))
def test_response_scale_means_back_transformed(case):
    t, notes = _tables(case, type="response", null=0.1)
    ref = REF[case]["response"]
    est = "prob" if CASES[case][3] == "binomial" else "rate"
    _check(t["emmeans"], ref, est)
    assert f"Intervals are back-transformed from the {CASES[case][4]} scale" in notes


@pytest.mark.parametrize("case, name", [("cbpp_logit", "odds.ratio"), ("grouse_log", "ratio")])
def test_response_scale_contrasts_are_ratios(case, name):
    t, _ = _tables(case, type="response", contrasts="pairwise", adjust="holm")
    ref = REF[case]["response_pairs"]
    _check(t["contrasts"], ref, name)
    link_t, _ = _tables(case, contrasts="pairwise", adjust="holm")
    link_labels = list(link_t["contrasts"].to_pandas()["contrast"])
    assert list(t["contrasts"].to_pandas()["contrast"]) == [c.replace(" - ", " / ") for c in link_labels]


def test_probit_contrasts_stay_on_the_link_scale():
    t, notes = _tables("cbpp_probit", type="response", contrasts="pairwise", adjust="holm")
    _check(t["contrasts"], REF["cbpp_probit"]["response_pairs"], "estimate")
    assert "Note: contrasts are still on the probit scale" in notes


@pytest.mark.parametrize("case", list(CASES))
def test_regrid_means_and_contrasts(case):
    t, _ = _tables(case, regrid=True, null=0.1, contrasts="pairwise", adjust="holm")
    est = "prob" if CASES[case][3] == "binomial" else "rate"
    _check(t["emmeans"], REF[case]["regrid"], est)
    _check(t["contrasts"], REF[case]["regrid_pairs"], "estimate")
    k = len(REF[case]["regrid"]["SE"])
    weights = [[1, -1] + [0] * (k - 2), [0.5, 0.5, -1] + [0] * (k - 3)]
    t, _ = _tables(case, regrid=True, adjust="none",
                   contrasts=[{"name": f"c{i + 1}", "weights": w} for i, w in enumerate(weights)])
    _check(t["contrasts"], REF[case]["regrid_custom"], "estimate")


def test_scale_options_are_refused_where_they_do_not_apply():
    problem, fit = _problem_and_fit("grouse_log")
    with pytest.raises(SpecError) as e:
        emmeans_tables(problem, fit, {"specs": "YEAR", "trend": "cHEIGHT", "type": "response"})
    assert e.value.path == "/emmeans/type"
    lmm = dataclasses.replace(problem, analysis="lmm")
    with pytest.raises(SpecError) as e:
        emmeans_tables(lmm, fit, {"specs": "YEAR", "regrid": True})
    assert e.value.path == "/emmeans/regrid" and "link" in e.value.message


def test_trends_are_on_the_link_scale_with_z_tests():
    problem, fit = _problem_and_fit("grouse_log")
    tables, _ = emmeans_tables(problem, fit, {"specs": "YEAR", "trend": "cHEIGHT"})
    df = tables[0].to_pandas()
    # the model is additive: each year's slope is the cHEIGHT coefficient
    j = fit.coef_names.index("cHEIGHT")
    np.testing.assert_allclose(df["cHEIGHT.trend"].astype(float), fit.beta[j], rtol=1e-10)
    np.testing.assert_allclose(df["SE"].astype(float), np.sqrt(fit.vcov[j, j]), rtol=1e-10)
    assert "z.ratio" in df.columns


def test_identity_link_leaves_the_link_scale_as_it_is():
    # emmeans: with an identity link type = "response" keeps the emmean column and its numbers
    problem, fit = _problem_and_fit("grouse_log")
    ident = dataclasses.replace(fit, link="identity")
    link, _ = emmeans_tables(problem, ident, {"specs": "YEAR", "contrasts": "pairwise"})
    resp, _ = emmeans_tables(problem, ident, {"specs": "YEAR", "contrasts": "pairwise", "type": "response"})
    assert [t.to_dict() for t in resp] == [t.to_dict() for t in link]
    assert "emmean" in resp[0].to_pandas().columns
