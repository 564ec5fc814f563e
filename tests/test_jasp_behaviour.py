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
    """A singular uncorrelated factor slope: the warning names R's columns (lme4 splits ``||``
    into (1 | facFive) and (0 + facExperim | facFive): facExperimcontrol, ...), never an
    internal name."""
    doc = run_jasp({"dependent": var("contcor1"), "fixedVariables": vars_(["facExperim"], ["nominal"]),
                    "randomVariables": vars_(["facFive"], ["nominal"]), "fixedEffects": terms(("facExperim",)),
                    "randomEffects": [re_row("facFive", [(("Intercept",), True), (("facExperim",), True)],
                                             correlations=False)]}, data=debug)
    warnings = doc[".mixedbridge"]["warnings"]
    notes = [f["text"] for f in doc["ANOVAsummary"]["footnotes"] if f["symbol"] == "Warning:"]
    assert warnings and notes and all("facFive" in w for w in warnings)
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
    """Issue #14: JASP's ``boxjitter`` (ggpol's geom_boxjitter) is a box plot with the points
    jittered beside it. Before: drawn as a plain box plot, with a note saying so. Now: a half
    box and every observation as a point, no note."""
    doc = run_jasp({**LRT_MEANS, "plotBackgroundElement": "boxjitter"}, data=debug)
    assert doc["plots"]["status"] == "complete", doc["plots"].get("error")
    assert not any("boxjitter" in n for n in doc[".mixedbridge"]["notes"])


def test_boxjitter_background_has_boxes_and_every_point(debug):
    from mixedbridge import analysis
    from mixedbridge.engines import get_engine
    from mixedbridge.plots import describe, figures
    from mixedbridge.spec import validate

    spec = validate({"analysis": "lmm", "formula": "contNormal ~ facExperim + (1 | facFive)",
                     "data": {"records": debug[["contNormal", "facExperim", "facFive"]].to_dict("records")}})
    problem = analysis.prepare(spec)
    fit = get_engine("native").fit(problem)
    drawn = figures(problem, fit, {"type": "emmeans", "horizontal": "facExperim", "background": "boxjitter",
                                   "df": "asymptotic"})
    d = describe(drawn[0].figure)
    background = d["axes"][0]["roles"]["background"]
    # two boxes (one per level) and two point clouds holding every observation
    assert background["artists"] == 4
    assert background["points"] >= fit.nobs


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


# ------------------------------------------------- column types and legacy option names
@pytest.mark.parametrize("values, expected", [
    ([0, 1, 1, 0], "nominal"), ([1, 2, 3, 4, 5, 1], "ordinal"), (list(range(10)), "ordinal"),
    (list(range(11)), "scale"), ([0.5, 1.0, 2.0], "scale"), (["a", "b"], "nominal"), ([1, 2, None, 3], "ordinal"),
])
def test_columns_without_types_get_jasps_import_type(values, expected):
    """JASP's importer ("threshold for scale", 10): whole numbers with at most 10 distinct
    values are ordinal (nominal with 2), other numbers scale, text nominal (issue #14)."""
    from mixedbridge.jasp.model import imported_type

    assert imported_type(pd.Series(values)) == expected


def test_column_types_beside_the_data_are_checked(debug):
    opts = {"dependent": "contNormal", "fixedVariables": ["contBinom"], "randomVariables": ["facFive"],
            "fixedEffects": [{"components": ["contBinom"]}]}
    bad = run_jasp(opts, data=debug, column_types={"contBinom": "interval"})
    assert bad["status"] == "error" and bad["error"]["option"] == "columnTypes"
    assert bad["error"]["path"] == "/columnTypes/contBinom" and "'scale'" in bad["error"]["errorMessage"]
    as_scale = run_jasp({**opts, "fixedEffectEstimate": True}, data=debug, column_types={"contBinom": "scale"})
    as_nominal = run_jasp({**opts, "fixedEffectEstimate": True}, data=debug)
    assert [r["term"] for r in as_scale["FEsummary"]["data"]] == ["Intercept", "contBinom"]
    assert [r["term"] for r in as_nominal["FEsummary"]["data"]] == ["Intercept", "contBinom (1)"]


def test_request_carries_column_types(debug):
    records = debug[["contNormal", "contBinom", "facFive"]].to_dict("records")
    opts = {"dependent": "contNormal", "fixedVariables": ["contBinom"], "randomVariables": ["facFive"],
            "fixedEffects": [{"components": ["contBinom"]}], "fixedEffectEstimate": True}
    doc = run_request({"jasp": "MixedModelsLMM", "options": opts, "data": {"records": records},
                       "columnTypes": {"contBinom": "scale"}})
    assert doc["status"] == "complete", doc.get("error")
    assert [r["term"] for r in doc["FEsummary"]["data"]] == ["Intercept", "contBinom"]


def test_legacy_values_are_converted_as_upgrades_qml_does():
    from mixedbridge.jasp.options import upgrade

    new, notes = upgrade({"method": "LRT", "plotsGeom": "geom_violin", "plotsTheme": "jtools::theme_apa",
                          "trendsDf": "kenward-roger", "Contrasts": [], "bootstrap_samples": 200})
    assert new == {"testMethod": "likelihoodRatioTest", "plotBackgroundElement": "violin", "plotTheme": "apa",
                   "trendsDf": "kenwardRoger", "contrasts": [], "bootstrapSamples": 200}
    assert notes and "method → testMethod" in notes[0]
    assert upgrade({"plotsTheme": "theme_bw"})[0] == {"plotTheme": "whiteBackground"}
    assert upgrade({"plotsTheme": "JASP", "testMethod": "satterthwaite"})[0]["plotTheme"] == "jasp"
    # today's name wins over a legacy one; nothing to upgrade, no note
    kept, notes = upgrade({"method": "KR", "testMethod": "satterthwaite"})
    assert kept["testMethod"] == "satterthwaite"
    assert upgrade({"testMethod": "kenwardRoger"}) == ({"testMethod": "kenwardRoger"}, [])


# ------------------------------------------------------------- covariates in the grid
SD_ZERO = {
    "dependent": var("contGamma"), "fixedVariables": vars_(["facExperim", "contcor1"], ["nominal", "scale"]),
    "randomVariables": vars_(["facFive"], ["nominal"]), "fixedEffects": terms(("facExperim",), ("contcor1",)),
    "randomEffects": [re_row("facFive", [(("Intercept",), True)])],
    "marginalMeansTerms": varlist(["contcor1"]), "marginalMeansSd": 0,
}
#: emmeans on the afex fit with JASP's at for marginalMeansSd = 0 (three equal values)
R_SD_ZERO = """
suppressMessages({library(afex); library(emmeans)})
d <- read.csv(commandArgs(TRUE)[1])
for (v in c("facExperim", "facFive")) d[[v]] <- factor(d[[v]])
contrasts(d$facExperim) <- "contr.sum"
m <- suppressMessages(mixed(contGamma ~ facExperim + contcor1 + (1 | facFive), d, check_contrasts = FALSE,
                            progress = FALSE))
at <- list(contcor1 = mean(d$contcor1) + c(-1, 0, 1) * 0 * sd(d$contcor1))
r <- try(emmeans(m, "contcor1", at = at), silent = TRUE)
cat(if (inherits(r, "try-error")) conditionMessage(attr(r, "condition")) else "ok")
"""


@pytest.mark.r
def test_sd_zero_stops_as_emmeans_does_in_jasp(debug):
    """Issue #14: marginalMeansSd 0 gives JASP's at three equal values; emmeans refuses the grid
    and JASP's analysis stops (.mmMarginalMeans has no try). Before: one row at the mean."""
    from .conftest import require_r

    require_r()
    out = subprocess.run(["Rscript", "-e", R_SD_ZERO, str(DATA / "debug.csv")], capture_output=True, text=True,
                         timeout=120)
    assert "Irregular reference grid" in out.stdout
    doc = run_jasp(SD_ZERO, data=debug)
    assert doc["status"] == "error" and doc["error"]["option"] == "marginalMeansSd"
    assert "Irregular reference grid" in doc["error"]["errorMessage"]
    assert run_jasp({**SD_ZERO, "marginalMeansSd": 0.5}, data=debug)["status"] == "complete"


R_TRENDS_SD_ZERO = """
suppressMessages({library(afex); library(emmeans)})
d <- read.csv(commandArgs(TRUE)[1]); d$facFive <- factor(d$facFive)
m <- suppressMessages(mixed(contGamma ~ contcor1 * contcor2 + (1 | facFive), d, check_contrasts = FALSE,
                            progress = FALSE))
at <- list(contcor1 = mean(d$contcor1) + c(-1, 0, 1) * 0 * sd(d$contcor1))
r <- try(emtrends(m, specs = "contcor1", var = "contcor2", at = at), silent = TRUE)
cat(if (inherits(r, "try-error")) conditionMessage(attr(r, "condition")) else "ok")
"""


@pytest.mark.r
def test_trends_sd_zero_fails_only_the_trends_table(debug):
    """trendsSd 0 with a covariate among trendsVariables: emtrends refuses the grid and JASP's
    .mmTrends (in try) fails only the trends table."""
    from .conftest import require_r

    require_r()
    out = subprocess.run(["Rscript", "-e", R_TRENDS_SD_ZERO, str(DATA / "debug.csv")], capture_output=True,
                         text=True, timeout=120)
    assert "Irregular reference grid" in out.stdout
    opts = {"dependent": var("contGamma"), "fixedVariables": vars_(["contcor1", "contcor2"], ["scale", "scale"]),
            "randomVariables": vars_(["facFive"], ["nominal"]),
            "fixedEffects": terms(("contcor1",), ("contcor2",), ("contcor1", "contcor2")),
            "randomEffects": [re_row("facFive", [(("Intercept",), True)])],
            "trendsTrendVariable": varlist(["contcor2"]), "trendsVariables": varlist(["contcor1"]), "trendsSd": 0}
    doc = run_jasp(opts, data=debug)
    assert doc["status"] == "complete" and doc["ANOVAsummary"]["status"] == "complete"
    assert doc["trendsSummary"]["status"] == "error"
    assert "Irregular reference grid" in doc["trendsSummary"]["error"]["errorMessage"]
    assert run_jasp({**opts, "trendsSd": 1}, data=debug)["trendsSummary"]["status"] == "complete"
