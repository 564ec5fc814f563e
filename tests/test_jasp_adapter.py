"""The JASP adapter's seams: the model description is built, not parsed from text; rows are
prepared by the package's model frame; tables and notes are read from the analysis object; each
JASP option value is declared once."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

import mixedbridge
from mixedbridge import jasp
from mixedbridge.formula import parse_formula
from mixedbridge.jasp.model import build
from mixedbridge.jasp.options import (
    CI_TYPES,
    DF_METHODS,
    P_ADJUSTMENTS,
    SS_TYPES,
    TEST_METHODS,
    normalize,
)

from .jasp_cases import CASES, contrast_table, load, re_row, terms, var, varlist, vars_

ROOT = Path(__file__).resolve().parents[1]
BASE = {
    "dependent": var("contNormal"), "fixedVariables": vars_(["facGender", "contcor1"], ["nominal", "scale"]),
    "randomVariables": vars_(["facFive"], ["nominal"]),
    "fixedEffects": terms(("facGender",), ("contcor1",), ("facGender", "contcor1")),
    "randomEffects": [re_row("facFive", [(("Intercept",), True), (("facGender",), True), (("contcor1",), False)],
                             correlations=False)],
}


@pytest.fixture(scope="module")
def debug():
    return load("debug")


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_the_built_description_is_the_one_its_formula_text_parses_to(case):
    opts, _ = normalize(case["options"])
    model = build(opts, load(case["data"]), case.get("analysis", "lmm"))
    assert parse_formula(model.formula) == model.desc


def test_uncorrelated_factor_slopes_are_written_as_jasp_writes_them(debug):
    """Issue #14: JASP's .mmModelFormula writes ``(1+facGender||facFive)`` and afex::mixed (no
    expand_re) hands it to lme4, which splits it into (1 | facFive) + (0 + facGender | facFive).
    Before: the factor was expanded into numeric columns (.mbRE1_1), as afex's expand_re does."""
    opts, _ = normalize(BASE)
    model = build(opts, debug)
    assert model.formula.endswith("+(1+`facGender`||`facFive`)")
    assert parse_formula(model.formula) == model.desc
    assert not any(c.startswith(".mbRE") for c in model.frame.data)


def test_an_analysis_runs_without_the_formula_parser(debug, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("formula text was parsed")

    monkeypatch.setattr("mixedbridge.formula._Parser.formula", refuse)
    doc = jasp.run_jasp({**BASE, "fixedEffectEstimate": True, "marginalMeansTerms": varlist(["facGender"])},
                        data=debug)
    assert doc["status"] == "complete", doc.get("error")
    assert doc["FEsummary"]["status"] == doc["EMMsummary"]["status"] == "complete"


def test_rows_read_together_and_removed_rows_come_from_the_frame(debug):
    """An unused fixed variable's missing values remove rows too (JASP reads its variables
    together); the count comes from the frame, and its note does not leak into JASP's notes."""
    o = {**BASE, "fixedVariables": vars_(["facGender", "contcor1", "debMiss30"], ["nominal", "scale", "scale"])}
    opts, _ = normalize(o)
    model = build(opts, debug)
    assert model.n_missing == 30 and model.frame.nobs == 70 and "debMiss30" not in model.frame.data
    assert model.frame.notes and model.frame.notes == model.read.notes
    doc = jasp.run_jasp(o, data=debug)
    texts = [f["text"] for f in doc["ANOVAsummary"]["footnotes"]]
    assert "30 observations were removed due to missing values." in texts
    assert not set(model.frame.notes) & set(texts + doc[".mixedbridge"]["notes"])
    spec, _ = jasp.translate(o, debug)
    assert len(spec["data"]["records"]) == 70 and "debMiss30" in spec["data"]["records"][0]


def test_means_and_trends_tables_are_read_from_their_requests(debug):
    """Both requests have contrasts; the results name the second ``contrasts_2``, the adapter
    reads each request's own tables."""
    o = {**BASE, "marginalMeansTerms": varlist(["facGender"]), "marginalMeansContrast": True,
         "contrasts": contrast_table({"facGender": ["f", "m"]}, {"M": ["1", "-1"]}),
         "trendsTrendVariable": varlist(["contcor1"]), "trendsVariables": varlist(["facGender"]),
         "trendsContrast": True, "trendsContrasts": contrast_table({"facGender": ["f", "m"]}, {"T": ["1", "-1"]})}
    doc = jasp.run_jasp(o, data=debug)
    spec, _ = jasp.translate(o, debug)
    res = mixedbridge.run(spec)
    assert [r["estimate"] for r in doc["contrastsMeans"]["data"]] == [
        r["estimate"] for r in res.table("contrasts").rows]
    assert [r["estimate"] for r in doc["contrastsTrends"]["data"]] == [
        r["estimate"] for r in res.table("contrasts_2").rows]
    assert [r["slope"] for r in doc["trendsSummary"]["data"]] == [
        r["contcor1.trend"] for r in res.table("trends").rows]


@pytest.mark.parametrize("changes, option", [
    ({"dependent": ""}, "dependent"),
    ({"randomVariables": []}, "randomVariables"),
    ({"fixedEffects": [], "includeIntercept": False}, "fixedEffects"),
])
def test_translate_names_the_option_an_analysis_that_is_not_ready_needs(debug, changes, option):
    with pytest.raises(jasp.JaspOptionError) as info:
        jasp.translate({**copy.deepcopy(BASE), **changes}, debug)
    assert info.value.option == option


def test_each_option_value_is_declared_once_beside_the_schema():
    schema = json.loads((ROOT / "schemas" / "jasp-lmm-options.schema.json").read_text())
    props, defs = schema["properties"], schema["$defs"]
    assert list(TEST_METHODS) == props["testMethod"]["enum"]
    assert set(SS_TYPES) == {str(t) for t in props["type"]["enum"]}
    assert set(DF_METHODS) == set(defs["dfmethod"]["enum"])
    assert set(P_ADJUSTMENTS) == set(defs["padjust"]["enum"])
    assert set(CI_TYPES) == set(props["plotCiType"]["enum"])
    assert [m for m, t in TEST_METHODS.items() if t.reml] == ["satterthwaite", "kenwardRoger"]
