"""JASP's Generalized Linear Mixed Models analysis (``MixedModelsGLMM``) against JASP's R code
path (afex ``mixed(..., family = ...)`` + emmeans as jaspMixedModels calls them) to jaspTools'
precision (about 4 significant digits): Bernoulli (a two-level factor response, probit link),
aggregated binomial (successes of trials), Poisson (JASP's own example document) and Gamma.

Reference values: ``tests/data/jasp_glmm/reference.json``, made by
``tests/data/jasp_glmm/make_reference.py`` (it writes ``cases.json`` from :data:`CASES` and runs
``reference.R``). Each (case, table) pair is its own test, on the native engine, and through R
(the lme4 engine) where marked ``r``.
"""
from __future__ import annotations

import copy
import json
import math
from fractions import Fraction
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

from mixedbridge.jasp import run_jasp

from .jasp_cases import SHOW, contrast_table, load, re_row, terms, var, varlist, vars_
from .test_jasp_reference import close, col, element

HERE = Path(__file__).resolve().parent / "data" / "jasp_glmm"
EXAMPLE = json.loads((Path(__file__).resolve().parent / "data" / "jasp" / "glmm-options-example.json").read_text())


def _larks() -> dict:
    opts = copy.deepcopy(EXAMPLE)
    opts.update(SHOW, vovkSellke=True, marginalMeansComparison=True, marginalMeansComparisonWith=2.5,
                trendsTrendVariable={"optionKey": "variable", "types": ["scale"], "value": [{"variable": ["Sleep"]}]},
                trendsVariables=varlist(["Chronotype"]), trendsContrast=True, trendsPAdjustment="none",
                trendsContrasts=contrast_table({"Chronotype": ["Evening", "Intermediate", "Morning"]},
                                               {"Contrast 1": ["1", "-1", "0"], "Contrast 2": ["1/2", "1/2", "-1"]}))
    return opts


def _as_list(x) -> list:
    """A reference column (R writes a length-one vector as a scalar)."""
    return x if isinstance(x, list) else [x]


def _grid(contrasts: list[dict]) -> dict:
    return {c["name"]: c["values"] for c in contrasts if not c["isContrast"]}


def _weights(contrasts: list[dict]) -> dict:
    out = {}
    for c in contrasts:
        if c["isContrast"]:
            out[c["name"]] = [float(Fraction(str(v))) for v in c["values"]]
    return out


CBPP_CONTRASTS = contrast_table({"period": ["1", "2", "3", "4"]},
                                {"Contrast 1": ["1", "-1", "0", "0"], "Contrast 2": ["1/2", "1/2", "-1", "0"]})
CONTRA_CONTRASTS = contrast_table({"urban": ["N", "Y"]}, {"Contrast 1": ["-1", "1"]})

CASES: list[dict] = [
    {
        "id": "poisson_larks_owls",
        "data": "larks_owls",
        "about": "JASP's own GLMM example (Poisson, log link, sum coding, LRT), EMMs on the response scale with "
                 "seven contrasts of the regridded means (given in the GUI's level order), trends of Sleep",
        "options": _larks(),
        "r": {"formula": "MWCount ~ 1 + Sleep + Chronotype*TimeOfDay + (1 | Subject)", "family": "poisson",
              "r_family": "poisson", "link": "log", "dependent": "MWCount", "contrasts": "sum",
              "fixed_factors": ["Chronotype", "TimeOfDay"], "random": ["Subject"],
              "vars": ["MWCount", "Chronotype", "TimeOfDay", "Sleep", "Subject"],
              "emmeans": {"specs": ["Chronotype", "TimeOfDay"], "response": True, "null": 2.5, "adjust": "none",
                          "grid": _grid(EXAMPLE["contrasts"]), "contrasts": _weights(EXAMPLE["contrasts"])},
              "trends": {"specs": ["Chronotype"], "var": "Sleep", "adjust": "none",
                         "contrasts": {"Contrast 1": [1, -1, 0], "Contrast 2": [0.5, 0.5, -1]}}},
    },
    {
        "id": "binomial_aggregated_cbpp",
        "data": "cbpp",
        "about": "aggregated binomial (incidence of size trials), logit, treatment coding, intercept tested",
        "options": {
            "family": "binomial", "link": "logit", "dependent": var("incidence"),
            "dependentAggregation": var("size"), "fixedVariables": vars_(["period"], ["nominal"]),
            "randomVariables": vars_(["herd"], ["nominal"]), "fixedEffects": terms(("period",)),
            "randomEffects": [re_row("herd", [(("Intercept",), True), (("period",), False)])],
            "factorContrast": "treatment", "interceptTest": True, **SHOW, "vovkSellke": True,
            "marginalMeansTerms": varlist(["period"]), "marginalMeansComparison": True,
            "marginalMeansComparisonWith": -2, "marginalMeansContrast": True, "marginalMeansPAdjustment": "holm",
            "contrasts": CBPP_CONTRASTS,
        },
        "r": {"formula": "incidence ~ 1 + period + (1 | herd)", "family": "binomial", "r_family": "binomial",
              "link": "logit", "dependent": "incidence", "trials": "size", "contrasts": "treatment",
              "test_intercept": True, "fixed_factors": ["period"], "random": ["herd"],
              "vars": ["incidence", "period", "herd", "size"],
              "emmeans": {"specs": ["period"], "response": True, "null": -2, "adjust": "holm",
                          "grid": _grid(CBPP_CONTRASTS), "contrasts": _weights(CBPP_CONTRASTS)}},
    },
    {
        "id": "bernoulli_probit_contraception",
        "data": "Contraception",
        "about": "Bernoulli: a two-level factor response (N/Y, Y coded success), probit link, covariate × factor, "
                 "EMMs of urban on the response scale with a contrast of probabilities, trends of age",
        "options": {
            "family": "bernoulli", "link": "probit", "dependent": var("use", "nominal"),
            "fixedVariables": vars_(["urban", "age"], ["nominal", "scale"]),
            "randomVariables": vars_(["district"], ["nominal"]),
            "fixedEffects": terms(("urban",), ("age",), ("urban", "age")),
            "randomEffects": [re_row("district", [(("Intercept",), True), (("urban",), False), (("age",), False),
                                                  (("urban", "age"), False)])],
            **SHOW, "marginalMeansTerms": varlist(["urban"]), "marginalMeansContrast": True,
            "marginalMeansPAdjustment": "none", "contrasts": CONTRA_CONTRASTS,
            "trendsTrendVariable": {"optionKey": "variable", "types": ["scale"], "value": [{"variable": ["age"]}]},
            "trendsVariables": varlist(["urban"]), "trendsContrast": True, "trendsPAdjustment": "none",
            "trendsContrasts": contrast_table({"urban": ["N", "Y"]}, {"Contrast 1": ["1", "-1"]}),
        },
        "r": {"formula": "use ~ 1 + urban*age + (1 | district)", "family": "bernoulli", "r_family": "binomial",
              "link": "probit", "dependent": "use", "contrasts": "sum", "fixed_factors": ["urban"],
              "random": ["district"], "vars": ["use", "urban", "age", "district"],
              "emmeans": {"specs": ["urban"], "response": True, "adjust": "none", "grid": _grid(CONTRA_CONTRASTS),
                          "contrasts": _weights(CONTRA_CONTRASTS)},
              "trends": {"specs": ["urban"], "var": "age", "adjust": "none", "contrasts": {"Contrast 1": [1, -1]}}},
    },
    {
        "id": "gamma_log_sleepstudy",
        "data": "sleepstudy",
        "about": "Gamma with a log link (a family with a scale), intercept tested, EMMs of a covariate at "
                 "mean ± 1 SD on the response scale, tested against a link-scale value",
        "options": {
            "family": "gamma", "link": "log", "dependent": var("Reaction"),
            "fixedVariables": vars_(["Days"], ["scale"]), "randomVariables": vars_(["Subject"], ["nominal"]),
            "fixedEffects": terms(("Days",)),
            "randomEffects": [re_row("Subject", [(("Intercept",), True), (("Days",), False)])],
            "interceptTest": True, **SHOW, "marginalMeansTerms": varlist(["Days"]),
            "marginalMeansComparison": True, "marginalMeansComparisonWith": 5.5,
        },
        "r": {"formula": "Reaction ~ 1 + Days + (1 | Subject)", "family": "gamma", "r_family": "Gamma",
              "link": "log", "dependent": "Reaction", "contrasts": "sum", "test_intercept": True,
              "fixed_factors": [], "random": ["Subject"], "vars": ["Reaction", "Days", "Subject"],
              "emmeans": {"specs": ["Days"], "response": True, "null": 5.5, "sd": {"Days": 1}}},
    },
]
BY_ID = {c["id"]: c for c in CASES}
REF_FILE = HERE / "reference.json"
REF = json.loads(REF_FILE.read_text()) if REF_FILE.exists() else {}


def load_case_data(name: str) -> pd.DataFrame:
    local = HERE / f"{name}.csv"
    return pd.read_csv(local) if local.exists() else load(name)


@cache
def _doc(case_id: str, engine: str) -> str:
    case = BY_ID[case_id]
    doc = run_jasp(case["options"], data=load_case_data(case["data"]), analysis="MixedModelsGLMM", engine=engine)
    return json.dumps(doc, ensure_ascii=False)


def doc_for(case_id: str, engine: str) -> dict:
    doc = json.loads(_doc(case_id, engine))
    assert doc["status"] == "complete", doc.get("error")
    return doc


# --------------------------------------------------------------------- comparisons
def check_anova(doc: dict, ref: dict) -> None:
    t = element(doc, "ANOVAsummary")
    labels = ["Intercept" if e == "(Intercept)" else e.replace(":", "\u2009\u273b\u2009")
              for e in ref["anova"]["effect"]]
    assert [r["effect"] for r in t["data"]] == labels
    assert col(t, "df") == ref["anova"]["df"]
    close(col(t, "stat"), ref["anova"]["stat"], "ChiSq")
    close(col(t, "pval"), ref["anova"]["p"], "p", scale=1.0)


def check_fit(doc: dict, ref: dict) -> None:
    t = element(doc, "fitSummary")["collection"]["fitSummary_modelSummary"]
    row = t["data"][0]
    for ours, theirs in (("loglik", "loglik"), ("aic", "aic"), ("bic", "bic"), ("deviance", "deviance")):
        close(row[ours], ref["fit"][theirs], ours)
    assert row["df"] == ref["fit"]["df"]


def check_fixed(doc: dict, ref: dict) -> None:
    t = element(doc, "FEsummary")
    for ours, theirs in (("estimate", "estimate"), ("se", "se"), ("stat", "stat")):
        close(col(t, ours), ref["fixed"][theirs], ours)
    close(col(t, "pval"), ref["fixed"]["p"], "p", scale=1.0)


def check_variances(doc: dict, ref: dict) -> None:
    c = element(doc, "REsummary")["collection"]
    for i, vc in enumerate(ref["varcorr"], start=1):
        close(col(c[f"REsummary_VE{i}"], "std"), vc["sd"], f"sd of {vc['name']}")
    res = [v for k, v in c.items() if "RES" in k][0]
    close(col(res, "std"), [ref["sigma"]], "sigma")


def check_emmeans(doc: dict, ref: dict) -> None:
    t = element(doc, "EMMsummary")
    e = ref["emmeans"]
    for ours, theirs in (("estimate", "estimate"), ("se", "se"), ("lowerCI", "lower"), ("upperCI", "upper")):
        close(col(t, ours), e[theirs], ours)
    if "stat" in e:
        close(col(t, "stat"), e["stat"], "z")
        close(col(t, "pval"), e["p"], "p", scale=1.0)


def check_contrasts(doc: dict, ref: dict, key: str = "contrastsMeans", which: str = "contrasts") -> None:
    t = element(doc, key)
    c = ref[which]
    for ours, theirs in (("estimate", "estimate"), ("se", "se"), ("stat", "stat")):
        close(col(t, ours), c[theirs], ours)
    close(col(t, "pval"), c["p"], "p", scale=1.0)
    z = 1.959963984540054
    close(col(t, "lowerCI"), [a - z * b for a, b in zip(_as_list(c["estimate"]), _as_list(c["se"]))], "lowerCI")
    assert all(d == "∞" for d in col(t, "df"))


def check_trends(doc: dict, ref: dict) -> None:
    t = element(doc, "trendsSummary")
    for ours, theirs in (("slope", "estimate"), ("se", "se"), ("lowerCI", "lower"), ("upperCI", "upper")):
        close(col(t, ours), ref["trends"][theirs], ours)
    check_contrasts(doc, ref, "contrastsTrends", "trend_contrasts")


CHECKS = {"anova": check_anova, "fit": check_fit, "fixed": check_fixed, "variances": check_variances,
          "emmeans": check_emmeans, "contrasts": check_contrasts, "trends": check_trends}


#: Native tables that differ from JASP's in the 4th significant digit because glmer, run as
#: afex runs it, stops PIRLS at its default tolerance (tolPwrss = 1e-7), short of the conditional
#: modes: its Laplace deviance is too high (cbpp by 5.7e-4, the Gamma model by 1.8e-4) and its
#: optimum moves. glmer with tolPwrss = 1e-11 reaches the native optimum
#: (tests/test_glmm_pirls_tolerance.py); the lme4 engine's tables match JASP's. Strict, so that
#: each reports when the two agree.
NATIVE_SE_GAP = ("glmer (as afex runs it) stops PIRLS at tolPwrss = 1e-7, short of the optimum the native fit "
                 "reaches (= glmer with tolPwrss = 1e-11); estimates, SEs and p-values differ in the 4th digit")
KNOWN_NATIVE = {("binomial_aggregated_cbpp", t) for t in ("fixed", "emmeans", "contrasts")} | {
    ("gamma_log_sleepstudy", "fixed"), ("gamma_log_sleepstudy", "emmeans")}


def _pairs(known: set | None = None) -> list:
    out = []
    for c in CASES:
        r = c["r"]
        for name in CHECKS:
            if name == "contrasts" and not r.get("emmeans", {}).get("contrasts"):
                continue
            if name in ("emmeans", "trends") and name not in r:
                continue
            gap = (c["id"], name) in (known or set())
            marks = [pytest.mark.xfail(strict=True, reason=NATIVE_SE_GAP)] if gap else []
            out.append(pytest.param(c["id"], name, id=f"{c['id']}-{name}", marks=marks))
    return out


@pytest.mark.parametrize("case_id, table", _pairs(KNOWN_NATIVE))
def test_native_matches_jasp_r_code(case_id, table):
    CHECKS[table](doc_for(case_id, "native"), REF[case_id])


@pytest.mark.r
@pytest.mark.parametrize("case_id, table", _pairs())
def test_lme4_engine_matches_jasp_r_code(case_id, table):
    CHECKS[table](doc_for(case_id, "lme4"), REF[case_id])


def test_reference_records_the_r_versions():
    assert set(REF) >= {c["id"] for c in CASES} and "afex" in REF["_versions"]


def test_scale_footnotes():
    doc = doc_for("poisson_larks_owls", "native")
    assert any("response scale" in f["text"] for f in doc["EMMsummary"]["footnotes"])
    assert any("not on the response scale" in f["text"] for f in doc["trendsSummary"]["footnotes"])
    notes = [f["text"] for f in doc["ANOVAsummary"]["footnotes"]]
    assert "Generalized linear mixed model with poisson family and log link function." in notes
    bern = doc_for("bernoulli_probit_contraception", "native")
    assert "'Y' level coded as success." in [f["text"] for f in bern["ANOVAsummary"]["footnotes"]]
    assert math.isfinite(bern["fitSummary"]["collection"]["fitSummary_modelSummary"]["data"][0]["deviance"])
