"""JASP GLMM documents beyond the numbers: JASP's checks of the response per family (clear errors
naming the option), the not-ready table, the links and tests a GLMM takes, the parametric
bootstrap's columns, and the Bernoulli coding of a two-level response."""
from __future__ import annotations

import pandas as pd
import pytest

from mixedbridge.jasp import run_jasp

from .test_jasp_glmm import BY_ID, load_case_data

CBPP = BY_ID["binomial_aggregated_cbpp"]["options"]
BERNOULLI = BY_ID["bernoulli_probit_contraception"]["options"]


def _run(options: dict, data: pd.DataFrame | None = None) -> dict:
    return run_jasp(options, data=load_case_data("cbpp") if data is None else data, analysis="MixedModelsGLMM")


def _error(doc: dict) -> dict:
    assert doc["status"] == "error", "expected an error document"
    return doc["error"]


@pytest.mark.parametrize("change, option, words", [
    ({"testMethod": "satterthwaite"}, "testMethod", "likelihoodRatioTest"),
    ({"link": "identity"}, "link", "'logit', 'probit'"),
    ({"family": "negativeBinomial"}, "family", "JASP's GLMM families"),
    ({"family": "gaussian", "link": "identity"}, "link", "Linear Mixed Models"),
])
def test_options_a_glmm_does_not_take_are_refused(change, option, words):
    err = _error(_run({**CBPP, **change}))
    assert err["option"] == option and words in err["errorMessage"]


def test_without_trials_the_aggregated_binomial_is_not_ready():
    doc = _run({**CBPP, "dependentAggregation": ""})
    assert doc["status"] == "complete" and doc["ANOVAsummary"]["data"] == []
    assert "Number of trials" in doc["ANOVAsummary"]["footnotes"][0]["text"]


def test_response_checks_per_family():
    df = load_case_data("cbpp")
    df.loc[3, "incidence"] = 99
    err = _error(_run(CBPP, df))
    assert err["option"] == "dependent" and "not larger than the number of trials" in err["errorMessage"]
    df = load_case_data("cbpp").astype({"size": float, "incidence": float})
    df.loc[0, "size"] = 2.5
    assert _error(_run(CBPP, df))["option"] == "dependentAggregation"
    df = load_case_data("cbpp").astype({"incidence": float})
    pois = {**CBPP, "family": "poisson", "link": "log", "dependentAggregation": ""}
    df.loc[0, "incidence"] = 1.5
    assert "non-negative integer" in _error(_run(pois, df))["errorMessage"]
    gamma = {**pois, "family": "gamma"}
    assert "positive" in _error(_run(gamma))["errorMessage"]  # incidence has zeros
    three = load_case_data("Contraception").assign(use=lambda d: d["livch"])
    err = _error(run_jasp(BERNOULLI, data=three, analysis="MixedModelsGLMM"))
    assert "two levels" in err["errorMessage"]


def test_intercept_only_aggregated_binomial_is_refused_as_jasp_does():
    err = _error(_run({**CBPP, "fixedEffects": {"optionKey": "components", "types": [], "value": []},
                       "marginalMeansTerms": [], "marginalMeansContrast": False}))
    assert err["option"] == "fixedEffects" and "intercept only" in err["errorMessage"]


def test_bernoulli_codes_the_second_level_as_success():
    data = load_case_data("Contraception")
    doc = run_jasp(BERNOULLI, data=data, analysis="MixedModelsGLMM")
    flipped = run_jasp(BERNOULLI, data=data.assign(use=data["use"].map({"N": "Y", "Y": "N"})),
                       analysis="MixedModelsGLMM")
    a, b = doc["FEsummary"]["data"], flipped["FEsummary"]["data"]
    assert a[0]["estimate"] == pytest.approx(-b[0]["estimate"], rel=1e-4)  # probit: symmetric
    assert "'Y' level coded as success." in [f["text"] for f in doc["ANOVAsummary"]["footnotes"]]


def test_parametric_bootstrap_adds_bootstrap_p_values():
    doc = _run({**CBPP, "testMethod": "parametricBootstrap", "bootstrapSamples": 4, "setSeed": True, "seed": 3,
                "marginalMeansTerms": [], "marginalMeansContrast": False})
    t = doc["ANOVAsummary"]
    assert [f["name"] for f in t["schema"]["fields"]][:5] == ["effect", "df", "stat", "pval", "pvalBoot"]
    assert all(0 < r["pvalBoot"] <= 1 for r in t["data"])
    again = _run({**CBPP, "testMethod": "parametricBootstrap", "bootstrapSamples": 4, "setSeed": True, "seed": 3,
                  "marginalMeansTerms": [], "marginalMeansContrast": False})
    assert again["ANOVAsummary"]["data"] == t["data"]
