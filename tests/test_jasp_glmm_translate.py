"""``jasp.translate`` of a GLMM option document (``MixedModelsGLMM``): the spec it returns runs on
its own (``mixedbridge.run``) and gives the JASP analysis's own fixed effects, for each of the
JASP GLMM cases (Poisson, aggregated binomial, Bernoulli factor, Gamma)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import mixedbridge
from mixedbridge import jasp

from .test_jasp_glmm import CASES, load_case_data


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_translated_glmm_spec_runs_on_its_own(case):
    data = load_case_data(case["data"])
    spec, notes = jasp.translate(case["options"], data, analysis="MixedModelsGLMM")
    spec = json.loads(json.dumps(spec))  # a JSON document, as a host would send it
    assert spec["analysis"] == "glmm" and spec["options"]["family"] == case["r"]["r_family"]
    assert spec["options"]["link"] == case["r"]["link"]
    if "trials" in case["r"]:
        assert spec["options"]["weights"] == case["r"]["trials"]
    res = mixedbridge.run(spec)
    params = res.table("parameters").to_pandas()
    ours = params[params.effect == "fixed"]["estimate"].to_numpy()
    doc = jasp.run_jasp(case["options"], data=data, analysis="MixedModelsGLMM")
    theirs = [r["estimate"] for r in doc["FEsummary"]["data"]]
    assert np.allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_translate_names_a_glmm_option_at_fault():
    case = CASES[1]
    options = {**case["options"], "link": "identity"}
    with pytest.raises(jasp.JaspOptionError, match="link"):
        jasp.translate(options, load_case_data(case["data"]), analysis="MixedModelsGLMM")
    options = {k: v for k, v in case["options"].items() if k != "dependentAggregation"}
    with pytest.raises(jasp.JaspOptionError, match="Number of trials"):
        jasp.translate(options, load_case_data(case["data"]), analysis="glmm")


def test_an_lmm_document_still_translates_by_jasps_name():
    case = CASES[3]
    options = {k: v for k, v in case["options"].items() if k not in ("family", "link")}
    spec, _ = jasp.translate(options, load_case_data(case["data"]), analysis="MixedModelsLMM")
    assert spec["analysis"] == "lmm"


def test_the_manifest_lists_the_glmm_analysis_with_its_options():
    import jsonschema

    from mixedbridge.jasp.glmm import FAMILIES, LINKS

    entry = next(a for a in jasp.manifest()["analyses"] if a["name"] == "glmm")
    assert entry["func"] == "MixedModelsGLMM" and entry["title"] == "Generalized Linear Mixed Models"
    schema = entry["options"]
    jsonschema.Draft202012Validator.check_schema(schema)
    props = schema["properties"]
    assert props["family"]["enum"] == list(FAMILIES) and props["family"]["x-rFamily"]["gamma"] == "Gamma"
    assert set(props["link"]["enum"]) == {lk for ls in LINKS.values() for lk in ls}
    assert props["testMethod"]["enum"] == ["likelihoodRatioTest", "parametricBootstrap"]
    assert "marginalMeansDf" not in props and "dependentAggregation" in props
    assert entry["defaults"]["family"] == "bernoulli" and entry["defaults"]["testMethod"] == "likelihoodRatioTest"
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors(CASES[0]["options"]))  # JASP's own GLMM example document
    wrong = {**CASES[0]["options"], "link": "logit"}  # a Poisson model with a binomial link
    assert [e.message for e in validator.iter_errors(wrong)] == ["'logit' is not one of ['log', 'identity', 'sqrt']"]
    jasp_doc = jasp.run_jasp(CASES[0]["options"], data=load_case_data(CASES[0]["data"]),
                             analysis=entry["func"])
    assert jasp_doc["status"] == "complete"
