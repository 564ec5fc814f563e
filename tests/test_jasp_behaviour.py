"""JASP behaviours of issue #14 that are not numbers: analysis names, a GLMM document run as a
GLMM (never as an LMM), the df
emmeans computes beyond its row limits, and where the notes go. The numbers of the same items
are compared with JASP's R code path in ``tests/test_jasp_reference.py``."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from mixedbridge.jasp import run_jasp
from mixedbridge.jasp.means import df_method
from mixedbridge.jasp.options import MEANS, TRENDS, normalize
from mixedbridge.jasp.request import run_request

from .conftest import EXAMPLES
from .jasp_cases import DATA, SHOW, contrast_table, load, re_row, terms, var, varlist, vars_

JASP_EXAMPLE = EXAMPLES / "jasp" / "fhch2010-lmm.json"
GLMM_DATA = DATA / "jasp_glmm"
GLMM_REQUEST = {"jasp": "MixedModelsGLMM", "data": {"path": "larks_owls.csv"},
                "options": json.loads((DATA / "jasp" / "glmm-options-example.json").read_text())}
GLMM_RECORDS = pd.read_csv(GLMM_DATA / "larks_owls.csv").to_dict("records")

SMALL = {
    "dependent": var("contNormal"), "fixedVariables": vars_(["facGender"], ["nominal"]),
    "randomVariables": vars_(["facFive"], ["nominal"]), "fixedEffects": terms(("facGender",)),
    "randomEffects": [re_row("facFive", [(("Intercept",), True)])],
}


@pytest.fixture(scope="module")
def debug():
    return load("debug")


# ------------------------------------------------------------------- analysis names
def test_jasp_analysis_names_run_as_ours(debug):
    ours = run_jasp(SMALL, data=debug, analysis="lmm")
    theirs = run_jasp(SMALL, data=debug, analysis="MixedModelsLMM")
    assert theirs["status"] == "complete" and theirs["ANOVAsummary"] == ours["ANOVAsummary"]
    lm = run_jasp({k: SMALL[k] for k in ("dependent", "fixedVariables", "fixedEffects")}, data=debug,
                  analysis="MixedModelsLM")
    assert lm["status"] == "complete" and lm["title"] == "Linear Model"


@pytest.mark.parametrize("name", ["MixedModelsGLMM", "glmm"])
def test_glmm_document_is_never_fitted_as_an_lmm(debug, name):
    # a GLMM document runs as a GLMM (tests/test_jasp_glmm.py); here its default family, the
    # Bernoulli, refuses a continuous response instead of fitting it as a linear mixed model
    doc = run_jasp(SMALL, data=debug, analysis=name)
    assert doc["status"] == "error" and doc["error"]["type"] == "validationError"
    assert "two levels" in doc["error"]["errorMessage"] and doc["title"] == "Generalized Linear Mixed Models"
    assert "ANOVAsummary" not in doc


def test_request_takes_jasp_names_and_runs_the_glmm():
    request = json.loads(JASP_EXAMPLE.read_text())
    doc = run_request({**request, "jasp": "MixedModelsLMM"}, JASP_EXAMPLE.parent)
    assert doc["status"] == "complete", doc.get("error")
    glmm = run_request(GLMM_REQUEST, GLMM_DATA)
    assert glmm["status"] == "complete", glmm.get("error")
    assert glmm["title"] == "Generalized Linear Mixed Models" and glmm[".mixedbridge"]["analysis"] == "glmm"
    unknown = run_request({**request, "jasp": "MixedModelsFoo"}, JASP_EXAMPLE.parent)
    message = unknown["error"]["errorMessage"]
    assert "'MixedModelsLMM'" in message and "'MixedModelsGLMM'" in message


@pytest.mark.subprocess
def test_serve_answers_jasp_analysis_names():
    request = json.loads(JASP_EXAMPLE.read_text())
    lines = [json.dumps({**request, "jasp": "MixedModelsLMM", "id": "a"}),
             json.dumps({**GLMM_REQUEST, "data": {"records": GLMM_RECORDS}, "id": "b"})]
    out = subprocess.run([sys.executable, "-m", "mixedbridge.cli", "serve"], input="\n".join(lines) + "\n",
                         capture_output=True, text=True, timeout=300)
    answers = {a["id"]: a for a in map(json.loads, out.stdout.splitlines())}
    assert answers["a"]["status"] == "complete"
    assert answers["b"]["status"] == "complete" and answers["b"]["title"] == "Generalized Linear Mixed Models"


# ------------------------------------------------------------ values JASP accepts
def test_values_jasp_r_code_accepts():
    opts, _ = normalize({"trendsDf": "Kenward-Roger", "marginalMeansDf": "kenward-roger", "bootstrapSamples": 20})
    assert df_method(opts, TRENDS, 100) == "kenward-roger" and df_method(opts, MEANS, 100) == "kenward-roger"
    assert opts["bootstrapSamples"] == 20


# ------------------------------------------------------------- emmeans's row limits
@pytest.mark.parametrize("chosen, estimated, nobs, expected", [
    ("satterthwaite", False, 3000, "satterthwaite"),
    ("satterthwaite", False, 3001, "asymptotic"),
    ("satterthwaite", True, 3001, "kenward-roger"),   # lmerTest.limit stays; pbkrtest.limit lifted
    ("kenwardRoger", False, 3001, "asymptotic"),
    ("kenwardRoger", True, 3001, "kenward-roger"),
    ("asymptotic", True, 3001, "asymptotic"),
])
def test_df_beyond_emmeans_limits(chosen, estimated, nobs, expected):
    for kind in (MEANS, TRENDS):
        opts, _ = normalize({kind.option("Df"): chosen, kind.option("DfEstimated"): estimated})
        assert df_method(opts, kind, nobs) == expected


def test_df_fallback_is_a_warning_of_the_means_table():
    data = load("fhch2010")
    doc = run_jasp({"dependent": var("log_rt"), "fixedVariables": vars_(["task"], ["nominal"]),
                    "randomVariables": vars_(["id"], ["nominal"]), "fixedEffects": terms(("task",)),
                    "randomEffects": [re_row("id", [(("Intercept",), True)])],
                    "marginalMeansTerms": varlist(["task"]), "marginalMeansDf": "satterthwaite"}, data=data)
    notes = [f for f in doc["EMMsummary"]["footnotes"] if f["symbol"] == "Warning:"]
    assert len(notes) == 1 and "asymptotic" in notes[0]["text"]
    assert not any("asymptotic" in f["text"] for f in doc["ANOVAsummary"]["footnotes"])


# ------------------------------------------------- a contrast grid that does not fit
def test_misfit_contrasts_fail_only_their_table(debug):
    """JASP's .mmContrasts: emmeans::contrast fails ("Nonconforming number of contrast
    coefficients") and only the contrasts table carries the error; the means still come back."""
    doc = run_jasp({**SMALL, "marginalMeansTerms": varlist(["facGender"]), "marginalMeansContrast": True,
                    "contrasts": contrast_table({"facGender": ["f", "m"]}, {"Contrast 1": ["1", "-1", "0"]})},
                   data=debug)
    assert doc["status"] == "complete"
    table = doc["contrastsMeans"]
    assert table["status"] == "error" and table["data"] == []
    assert table["error"]["type"] == "badData"
    assert "Nonconforming number of contrast coefficients" in table["error"]["errorMessage"]
    assert doc["EMMsummary"]["status"] == "complete" and len(doc["EMMsummary"]["data"]) == 2


# --------------------------------------------------------- messages and NaN as JASP
def test_warnings_name_slopes_as_r_does(debug):
    """A singular uncorrelated factor slope: the warning names R's column (facExperim1), never
    the internal expanded column (.mbRE1_1)."""
    doc = run_jasp({"dependent": var("contcor1"), "fixedVariables": vars_(["facExperim"], ["nominal"]),
                    "randomVariables": vars_(["facFive"], ["nominal"]), "fixedEffects": terms(("facExperim",)),
                    "randomEffects": [re_row("facFive", [(("Intercept",), True), (("facExperim",), True)],
                                             correlations=False)]}, data=debug)
    warnings = doc[".mixedbridge"]["warnings"]
    notes = [f["text"] for f in doc["ANOVAsummary"]["footnotes"] if f["symbol"] == "Warning:"]
    assert warnings and notes and any("(facExperim1)" in w for w in warnings)
    assert ".mbRE" not in json.dumps({k: v for k, v in doc.items() if k != ".mixedbridge"}) + "".join(warnings)


def test_nan_is_written_as_jasp_writes_it():
    """A correlated slope whose intercept variance is zero: lme4 (afex::mixed, as JASP calls
    it) gives SDs 0 and 0.6125654 and the correlation NaN, which jaspResults writes "NaN"."""
    data = pd.read_csv(DATA / "jasp" / "singular_slope.csv")
    doc = run_jasp({"dependent": var("y"), "fixedVariables": vars_(["x"], ["scale"]),
                    "randomVariables": vars_(["g"], ["nominal"]), "fixedEffects": terms(("x",)),
                    "randomEffects": [re_row("g", [(("Intercept",), True), (("x",), True)])], **SHOW}, data=data)
    re_ = doc["REsummary"]["collection"]
    assert [round(r["std"], 4) for r in re_["REsummary_VE1"]["data"]] == [0.0, round(0.6125654, 4)]
    assert re_["REsummary_CE1"]["data"][1]["v1"] == "NaN"


# ------------------------------------------- estimated means of ML fits, and the plot
LRT_MEANS = {
    "dependent": var("contNormal"), "fixedVariables": vars_(["facGender", "facExperim"], ["nominal", "nominal"]),
    "randomVariables": vars_(["facFive"], ["nominal"]), "fixedEffects": terms(("facGender",), ("facExperim",)),
    "randomEffects": [re_row("facFive", [(("Intercept",), True), (("facExperim",), True)])],
    "marginalMeansTerms": varlist(["facExperim"]), "marginalMeansDf": "kenwardRoger",
    "plotHorizontalAxis": varlist(["facExperim"]), "plotBackgroundData": ["facFive"],
}
#: afex::mixed(contNormal ~ facGender + facExperim + (1 + facExperim | facFive), method = "LRT")
#: on debug.csv, then emmeans(m, "facExperim", lmer.df = "kenward-roger"), as JASP calls them:
#: β of the ML fit, pbkrtest's vcovAdj of its REML refit, df Lb_ddf(L, vcov(ML fit), adjusted).
R_LRT_MEANS = """
suppressMessages({library(afex); library(emmeans)})
d <- read.csv(commandArgs(TRUE)[1])
for (v in c("facGender", "facExperim", "facFive")) d[[v]] <- factor(d[[v]])
m <- suppressMessages(suppressWarnings(mixed(contNormal ~ facGender + facExperim + (1 + facExperim | facFive), d,
                                             method = commandArgs(TRUE)[2], args_test = list(nsim = 10),
                                             progress = FALSE)))
write.csv(as.data.frame(emmeans(m, "facExperim", lmer.df = "kenward-roger")), stdout(), row.names = FALSE)
"""


@pytest.mark.r
@pytest.mark.slow
@pytest.mark.parametrize("method, afex", [("likelihoodRatioTest", "LRT"), ("parametricBootstrap", "PB")])
def test_ml_fits_get_kenward_roger_means_and_plot_as_jasp(debug, tmp_path, method, afex):
    """LRT and bootstrap analyses fit by ML; JASP's means table and plot (afex_plot through
    emmeans) still get Kenward-Roger df: pbkrtest refits by REML. Compared with that R path."""
    import io

    script = tmp_path / "means.R"
    script.write_text(R_LRT_MEANS)
    out = subprocess.run(["Rscript", str(script), str(DATA / "debug.csv"), afex], capture_output=True, text=True,
                         timeout=300, check=True)
    ref = pd.read_csv(io.StringIO(out.stdout))
    doc = run_jasp({**LRT_MEANS, "testMethod": method, "bootstrapSamples": 10}, data=debug)
    assert doc["status"] == "complete", doc.get("error")
    assert doc["plots"]["status"] == "complete", doc["plots"].get("error")
    rows = doc["EMMsummary"]["data"]
    for row, (_, r) in zip(rows, ref.iterrows()):
        assert row["facExperim"] == r["facExperim"]
        for ours, theirs in (("estimate", "emmean"), ("se", "SE"), ("df", "df"), ("lowerCI", "lower.CL"),
                             ("upperCI", "upper.CL")):
            assert row[ours] == pytest.approx(r[theirs], rel=5e-4, abs=5e-5), (ours, row[ours], r[theirs])


def test_boxjitter_plot_is_drawn(debug):
    doc = run_jasp({**LRT_MEANS, "plotBackgroundElement": "boxjitter"}, data=debug)
    assert doc["plots"]["status"] == "complete", doc["plots"].get("error")
    assert any("boxjitter" in n for n in doc[".mixedbridge"]["notes"])


# -------------------------------------------------------------- the Estimates table
ESTIMATES = {
    "dependent": var("contNormal"), "fixedVariables": vars_(["facGender", "facExperim"], ["nominal", "nominal"]),
    "randomVariables": vars_(["facFive"], ["nominal"]),
    "fixedEffects": terms(("facGender",), ("facExperim",), ("facGender", "facExperim")),
    "randomEffects": [re_row("facFive", [(("Intercept",), True), (("facExperim",), True)])],
    "plotHorizontalAxis": varlist(["facExperim"]), "plotSeparateLines": varlist(["facGender"]),
    "plotBackgroundData": ["facFive"], "plotEstimatesTable": True,
}
#: JASP's .mmPlot: afex_plot(model, ..., return = "data")$means of the afex::mixed fit.
R_PLOT_MEANS = """
suppressMessages(library(afex))
d <- read.csv(commandArgs(TRUE)[1])
for (v in c("facGender", "facExperim", "facFive")) d[[v]] <- factor(d[[v]])
m <- suppressMessages(suppressWarnings(mixed(contNormal ~ facGender * facExperim + (1 + facExperim | facFive), d,
                                             method = "S", progress = FALSE)))
p <- suppressMessages(afex_plot(m, x = "facExperim", trace = "facGender", id = "facFive", error = "model",
                                error_level = 0.95, return = "data")$means)
write.csv(p[, c(attr(p, "pri.vars"), "y", "lower", "upper")], stdout(), row.names = FALSE)
"""


@pytest.mark.r
def test_estimates_table_as_afex_plot_returns_it(debug, tmp_path):
    import io

    script = tmp_path / "plot_means.R"
    script.write_text(R_PLOT_MEANS)
    out = subprocess.run(["Rscript", str(script), str(DATA / "debug.csv")], capture_output=True, text=True,
                         timeout=300, check=True)
    ref = pd.read_csv(io.StringIO(out.stdout))
    doc = run_jasp(ESTIMATES, data=debug)
    table = doc["EstimatesTable"]
    assert table["status"] == "complete" and table["title"] == "Estimated Means and Confidence Intervals"
    assert [f["name"] for f in table["schema"]["fields"]] == ["facExperim", "facGender", "mean", "lowerCI", "upperCI"]
    assert [m["name"] for m in doc[".meta"]].index("EstimatesTable") < [m["name"] for m in doc[".meta"]].index("plots")
    assert len(table["data"]) == len(ref)
    for row, (_, r) in zip(table["data"], ref.iterrows()):
        assert (row["facExperim"], row["facGender"]) == (r["facExperim"], r["facGender"])
        for ours, theirs in (("mean", "y"), ("lowerCI", "lower"), ("upperCI", "upper")):
            assert row[ours] == pytest.approx(r[theirs], rel=5e-4, abs=5e-5), (ours, row[ours], r[theirs])


def test_estimates_table_without_intervals_and_off(debug):
    doc = run_jasp({**ESTIMATES, "plotCiType": "none"}, data=debug)
    table = doc["EstimatesTable"]
    assert table["title"] == "Estimated Means" and not table["schema"]["fields"][-1]["name"].endswith("CI")
    assert "EstimatesTable" not in run_jasp({**ESTIMATES, "plotEstimatesTable": False}, data=debug)
