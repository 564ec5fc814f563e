"""JASP option documents: manifest, defaults, both option shapes, random-effects pruning,
uncorrelated slopes, notes for unknown options, and errors in JASP's shape naming the option."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pandas as pd
import pytest

from mixedbridge import jasp
from mixedbridge.jasp.elements import effect_label, term_label
from mixedbridge.jasp.model import INTERACTION

from .jasp_cases import CASES, contrast_table, load, re_row, terms, var, varlist, vars_

ROOT = Path(__file__).resolve().parents[1]
BASE = {
    "dependent": var("contNormal"), "fixedVariables": vars_(["facGender", "contcor1"], ["nominal", "scale"]),
    "randomVariables": vars_(["facFive"], ["nominal"]),
    "fixedEffects": terms(("facGender",), ("contcor1",)),
    "randomEffects": [re_row("facFive", [(("Intercept",), True), (("facGender",), False), (("contcor1",), False)])],
}


@pytest.fixture(scope="module")
def debug():
    return load("debug")


def with_(**changes):
    o = copy.deepcopy(BASE)
    o.update(changes)
    return o


def err(doc):
    assert doc["status"] == "error", json.dumps(doc)[:400]
    assert set(doc["error"]) >= {"type", "errorMessage", "option", "path"}
    return doc["error"]


# ------------------------------------------------------------------ manifest, schema
def test_manifest_lists_both_analyses_with_schema_and_defaults():
    m = jasp.manifest()
    names = {a["name"]: a for a in m["analyses"]}
    assert set(names) == {"lmm", "lm", "glmm"}
    lmm = names["lmm"]
    assert lmm["title"] == "Linear Mixed Models" and lmm["func"] == "MixedModelsLMM"
    assert len(lmm["defaults"]) == 63
    assert lmm["defaults"]["factorContrast"] == "sum" and lmm["defaults"]["type"] == "3"
    assert lmm["defaults"]["testMethod"] == "satterthwaite" and lmm["defaults"]["bootstrapSamples"] == 500
    assert "randomEffects" not in names["lm"]["defaults"]
    jsonschema.Draft202012Validator.check_schema(lmm["options"])
    json.dumps(m)


def test_schema_file_is_the_one_served():
    on_disk = json.loads((ROOT / "schemas" / "jasp-lmm-options.schema.json").read_text())
    assert jasp.options_schema() == on_disk


def test_real_jasp_document_validates_and_normalizes():
    doc = json.loads((ROOT / "tests" / "data" / "jasp" / "cases.json").read_text())
    assert doc  # reference cases exist
    for case in CASES:
        opts, _ = jasp.normalize(case["options"])
        assert isinstance(opts["dependent"], str) and all(isinstance(t, list) for t in opts["fixedEffects"])


def test_glmm_document_from_jasp_is_accepted_with_a_note():
    ex = ROOT / "tests" / "data" / "jasp" / "glmm-options-example.json"
    opts, notes = jasp.normalize(json.loads(ex.read_text()))
    assert opts["fixedEffects"][-1] == ["Chronotype", "TimeOfDay"]
    assert opts["randomEffects"][0]["group"] == "Subject"
    assert any("family" in n and "link" in n for n in notes)


def test_defaults_fill_missing(debug):
    opts, notes = jasp.normalize({"dependent": "contNormal"})
    assert opts["factorContrast"] == "sum" and opts["marginalMeansCiLevel"] == 0.95 and notes == []


# ------------------------------------------------------------- shapes and labels
def test_plain_and_object_shapes_give_the_same_results(debug):
    plain = {"dependent": "contNormal", "fixedVariables": ["facGender", "contcor1"], "randomVariables": ["facFive"],
             "fixedEffects": [{"components": "facGender"}, {"components": ["contcor1"]}],
             "randomEffects": [{"value": "facFive", "correlations": True,
                                "randomComponents": [{"value": "Intercept", "randomSlopes": True}]}],
             "fixedEffectEstimate": True}
    a = jasp.run_jasp(plain, data=debug)
    b = jasp.run_jasp(with_(fixedEffectEstimate=True), data=debug)
    assert a["status"] == b["status"] == "complete"
    assert a["FEsummary"]["data"] == b["FEsummary"]["data"]
    assert [r["term"] for r in a["FEsummary"]["data"]] == ["Intercept", "facGender (1)", "contcor1"]


def test_term_labels():
    assert term_label("(Intercept)", ["a"]) == "Intercept"
    assert term_label("facGender1:contcor1", ["facGender", "contcor1"]) == f"facGender (1){INTERACTION}contcor1"
    assert term_label("Variable2m:Variable7", ["Variable2", "Variable7"]) == f"Variable2 (m){INTERACTION}Variable7"
    assert effect_label("task:stimulus") == "task\u2009\u273b\u2009stimulus"


def test_unknown_options_are_reported_not_ignored(debug):
    doc = jasp.run_jasp(with_(someFutureOption=True, **{"dependent.types": ["scale"], ".meta": {}}), data=debug)
    texts = [f["text"] for f in doc["ANOVAsummary"]["footnotes"]]
    assert any("someFutureOption" in t for t in texts)
    assert not any(".meta" in t or "dependent.types" in t for t in texts)
    assert "someFutureOption" in " ".join(doc[".mixedbridge"]["notes"])


def test_plot_request_is_an_image_element(debug):
    doc = jasp.run_jasp(with_(plotHorizontalAxis=varlist(["facGender"]), plotCiType="between"), data=debug)
    assert doc["plots"]["status"] == "complete" and doc["plots"]["data"]
    assert any("'between'" in n for n in doc[".mixedbridge"]["notes"])


def test_plot_that_cannot_be_drawn_is_an_element_with_an_error(debug):
    doc = jasp.run_jasp(with_(plotHorizontalAxis=varlist(["contNormal"])), data=debug)
    assert doc["plots"]["status"] == "error" and doc["plots"]["error"]["errorMessage"]


def test_not_ready_gives_empty_anova_with_footnote(debug):
    doc = jasp.run_jasp({"dependent": "contNormal", "fixedVariables": ["facGender"],
                         "fixedEffects": [{"components": ["facGender"]}]}, data=debug)
    assert doc["status"] == "complete" and doc["ANOVAsummary"]["data"] == []
    assert "grouping factor" in doc["ANOVAsummary"]["footnotes"][0]["text"]


# ----------------------------------------------------------- the model JASP builds
def test_between_group_slope_is_removed_with_a_note():
    f = load("fhch2010")
    o = {"dependent": "log_rt", "fixedVariables": ["task", "stimulus"], "randomVariables": ["id"],
         "fixedEffects": [{"components": ["task"]}, {"components": ["stimulus"]}, {"components": ["task", "stimulus"]}],
         "randomEffects": [re_row("id", [(("Intercept",), True), (("task",), True), (("stimulus",), True),
                                         (("task", "stimulus"), True)])]}
    spec, notes = jasp.translate(o, f)
    assert spec["formula"] == "`log_rt`~1+`task`*`stimulus`+(1+`stimulus`|`id`)"
    assert any("'task'" in n and "does not vary" in n for n in notes)
    assert len(spec["data"]["records"]) == len(f)


def test_implied_lower_order_slope_is_added_with_a_note():
    f = load("fhch2010")
    o = {"dependent": "log_rt", "fixedVariables": ["frequency", "stimulus"], "randomVariables": ["id"],
         "fixedEffects": [{"components": ["frequency"]}, {"components": ["stimulus"]},
                          {"components": ["frequency", "stimulus"]}],
         "randomEffects": [re_row("id", [(("Intercept",), True), (("frequency",), False), (("stimulus",), True),
                                         (("frequency", "stimulus"), True)])]}
    spec, notes = jasp.translate(o, f)
    assert "(1+`frequency`*`stimulus`|`id`)" in spec["formula"]
    assert any("'frequency'" in n and "added" in n for n in notes)


def test_sparse_categorical_slope_is_removed(debug):
    # facExperim × facGender cells within facFive levels hold several rows, but unicode-level
    # factor debString has (almost) one row per level: its slope is not estimable
    d = debug.copy()
    d["g"] = (d.index // 2).astype(str)
    d["h"] = ["a", "b"] * 50
    o = with_(fixedVariables=vars_(["h"], ["nominal"]), randomVariables=vars_(["g"], ["nominal"]),
              fixedEffects=terms(("h",)), randomEffects=[re_row("g", [(("Intercept",), True), (("h",), True)])])
    spec, notes = jasp.translate(o, d)
    assert spec["formula"].endswith("(1|`g`)")
    assert any("at most one observation" in n for n in notes)


def test_uncorrelated_numeric_slope_uses_double_bar(debug):
    o = with_(randomEffects=[re_row("facFive", [(("Intercept",), True), (("contcor1",), True)], correlations=False)])
    spec, _ = jasp.translate(o, debug)
    assert spec["formula"].endswith("(1+`contcor1`||`facFive`)")


def test_uncorrelated_factor_slope_is_not_expanded(debug):
    """As JASP writes it (lme4's ``||``); no expanded columns in the records."""
    o = with_(randomEffects=[re_row("facFive", [(("Intercept",), True), (("facGender",), True)], correlations=False)])
    spec, _ = jasp.translate(o, debug)
    assert spec["formula"].endswith("(1+`facGender`||`facFive`)")
    rec = pd.DataFrame(spec["data"]["records"])
    assert not any(c.startswith(".mbRE") for c in rec.columns)


def test_missing_rows_are_removed_and_counted(debug):
    o = with_(dependent=var("debMiss30"))
    doc = jasp.run_jasp(o, data=debug)
    assert any("30 observations were removed" in f["text"] for f in doc["ANOVAsummary"]["footnotes"])


def test_type_and_method_footnotes(debug):
    doc = jasp.run_jasp(with_(type="2", testMethod="kenwardRoger"), data=debug)
    texts = [f["text"] for f in doc["ANOVAsummary"]["footnotes"]]
    assert "Type II Sum of Squares" in texts
    assert "Model terms tested with Kenward-Roger method." in texts


def test_translated_spec_runs_on_its_own(debug):
    import mixedbridge

    spec, _ = jasp.translate(with_(), debug)
    res = mixedbridge.run(spec)
    assert res.table("fit").rows[0]["nobs"] == 100


# ------------------------------------------------------------------------ errors
@pytest.mark.parametrize("changes, option, words", [
    ({"fixedEffects": terms(("facGender",), ("facExperim",))}, "fixedEffects", "not in fixedVariables"),
    ({"randomEffects": [re_row("facFive", [(("Intercept",), True), (("facExperim",), True)])]}, "randomEffects",
     "not a fixed-effects term"),
    ({"includeIntercept": "yes"}, "includeIntercept", "expected boolean"),
    ({"testMethod": "bayes"}, "testMethod", "not allowed"),
    ({"type": "three"}, "type", "not allowed"),
    ({"bootstrapSamples": 0}, "bootstrapSamples", "out of range"),
    ({"marginalMeansCiLevel": 1.5}, "marginalMeansCiLevel", "out of range"),
    ({"fixedEffects": [{"parts": ["facGender"]}]}, "fixedEffects", "expected shape"),
    ({"dependent": var("nope")}, "dependent", "not a column"),
    ({"dependent": var("facExperim")}, "dependent", "scale"),
    ({"fixedVariables": vars_(["facGender", "contcor1"], ["scale", "scale"])}, "fixedVariables", "declared 'scale'"),
    ({"randomEffects": [re_row("facExperim", [(("Intercept",), True)])]}, "randomEffects", "not in randomVariables"),
    ({"randomEffects": [re_row("facFive", [(("Intercept",), False)])]}, "randomEffects", "at least one random effect"),
    ({"marginalMeansTerms": varlist(["facExperim"])}, "marginalMeansTerms", "not a variable of the fixed effects"),
    ({"marginalMeansTerms": varlist(["facGender"]), "marginalMeansContrast": True,
      "contrasts": contrast_table({"facGender": ["f", "m"]}, {"Contrast 1": ["1", "__import__('os')"]})},
     "contrasts", "not a number"),
    ({"trendsTrendVariable": varlist(["facGender"]), "trendsVariables": varlist(["contcor1"])},
     "trendsTrendVariable", "scale variable"),
])
def test_malformed_documents_name_the_option(debug, changes, option, words):
    e = err(jasp.run_jasp(with_(**changes), data=debug))
    assert e["option"] == option, e
    assert words in e["errorMessage"], e["errorMessage"]
    assert e["type"] == "validationError"


def test_not_an_object():
    e = err(jasp.run_jasp(["dependent"], dataset="sleepstudy"))
    assert "JSON object" in e["errorMessage"]


def test_translate_raises_with_the_option(debug):
    with pytest.raises(jasp.JaspOptionError) as info:
        jasp.translate(with_(fixedEffects=terms(("facGender", "facExperim"))), debug)
    assert info.value.option == "fixedEffects" and info.value.path == "/fixedEffects/0"


def test_contrast_weights_follow_the_grid_rows_not_labels(debug):
    """Issue #14: JASP hands the weights to emmeans::contrast, which applies the k-th weight to
    the k-th row of the grid, whatever labels the table shows. Before: matched by label."""
    o = with_(marginalMeansTerms=varlist(["facGender"]), marginalMeansContrast=True)
    a = jasp.run_jasp({**o, "contrasts": contrast_table({"facGender": ["f", "m"]}, {"C": ["1", "-1"]})}, data=debug)
    b = jasp.run_jasp({**o, "contrasts": contrast_table({"facGender": ["m", "f"]}, {"C": ["1", "-1"]})}, data=debug)
    c = jasp.run_jasp({**o, "contrasts": contrast_table({"facGender": ["m", "f"]}, {"C": ["-1", "1"]})}, data=debug)
    assert a["contrastsMeans"]["data"] == b["contrastsMeans"]["data"]
    assert c["contrastsMeans"]["data"][0]["estimate"] == pytest.approx(-a["contrastsMeans"]["data"][0]["estimate"])


def test_linear_model_document(debug):
    o = {k: v for k, v in BASE.items() if k not in ("randomVariables", "randomEffects")}
    doc = jasp.run_jasp({**o, "fixedEffectEstimate": True, "modelSummary": True}, data=debug, analysis="lm")
    assert doc["status"] == "complete" and doc["title"] == "Linear Model"
    fe = doc["FEsummary"]["data"]
    assert fe[0]["df"] == 97
    assert "r2" in doc["fitSummary"]["collection"]["fitSummary_modelSummary"]["data"][0]


def test_plot_style_options_that_are_not_applied_are_reported(debug):
    doc = jasp.run_jasp(with_(plotHorizontalAxis=varlist(["facGender"]), plotTheme="apa", plotEstimatesTable=True),
                        data=debug)
    note = next(n for n in doc[".mixedbridge"]["notes"] if "not applied" in n)
    assert "plotTheme" in note and "plotEstimatesTable" not in note  # applied: the EstimatesTable
    assert doc["EstimatesTable"]["status"] == "complete"
