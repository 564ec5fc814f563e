"""JASP option documents used by the JASP tests, with what R needs to compute the same model
(afex::mixed / lm, emmeans). ``tests/data/jasp/make_reference.py`` turns them into reference
values; ``tests/test_jasp_reference.py`` compares our JASP tables with them."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parent / "data"


def load(name: str) -> pd.DataFrame:
    if name == "debug":
        return pd.read_csv(DATA / "debug.csv")
    from mixedbridge import datasets

    if name == "sleepstudy_half":
        # sleepstudy with a factor: half = "early" (Days < 5) or "late" (as reference.R builds it)
        d = datasets.load("sleepstudy")[0].copy()
        d["half"] = ["early" if x < 5 else "late" for x in d["Days"]]
        return d
    return datasets.load(name)[0]


# ---------------------------------------------------------------- JASP shapes
def var(name: str, t: str = "scale") -> dict:
    return {"types": [t], "value": name}


def vars_(names: list[str], types: list[str]) -> dict:
    return {"types": types, "value": names}


def terms(*ts: tuple[str, ...]) -> dict:
    return {"optionKey": "components", "types": [], "value": [{"components": list(t)} for t in ts]}


def varlist(names: list[str]) -> dict:
    return {"optionKey": "variable", "types": [], "value": [{"variable": [n]} for n in names]}


def re_row(group: str, components: list[tuple[tuple[str, ...], bool]], correlations: bool = True) -> dict:
    return {"value": {"types": ["nominal"], "value": [group]}, "correlations": correlations,
            "randomComponents": {"optionKey": "value", "types": [],
                                 "value": [{"value": list(c), "randomSlopes": on} for c, on in components]}}


def contrast_table(grid: dict[str, list[str]], contrasts: dict[str, list]) -> list[dict]:
    n = len(next(iter(contrasts.values())))
    levels = [str(i + 1) for i in range(n)]
    cols = [{"isContrast": False, "levels": levels, "name": k, "values": v} for k, v in grid.items()]
    cols += [{"isContrast": True, "levels": levels, "name": k, "values": v} for k, v in contrasts.items()]
    return cols


SHOW = {"modelSummary": True, "fixedEffectEstimate": True, "varianceCorrelationEstimate": True,
        "randomEffectEstimate": True}

CASES: list[dict] = [
    {
        "id": "fhch_satterthwaite_sum_emm_contrasts",
        "data": "fhch2010",
        "about": "Satterthwaite, type III, sum coding; a between-subject slope pruned; EMMs with custom contrasts",
        "options": {
            "dependent": var("log_rt"), "fixedVariables": vars_(["task", "stimulus"], ["nominal", "nominal"]),
            "randomVariables": vars_(["id"], ["nominal"]),
            "fixedEffects": terms(("task",), ("stimulus",), ("task", "stimulus")),
            "randomEffects": [re_row("id", [(("Intercept",), True), (("task",), True), (("stimulus",), True),
                                            (("task", "stimulus"), True)])],
            **SHOW, "vovkSellke": True,
            "marginalMeansTerms": varlist(["task", "stimulus"]), "marginalMeansContrast": True,
            "marginalMeansPAdjustment": "none",
            "contrasts": contrast_table({"task": ["lexdec", "naming", "lexdec", "naming"],
                                         "stimulus": ["nonword", "nonword", "word", "word"]},
                                        {"Contrast 1": ["1", "-1", "0", "0"],
                                         "Contrast 2": ["1/2", "1/2", "-1/2", "-1/2"],
                                         "Contrast 3": [0, 0, 0, 0]}),
        },
        "r": {"formula": "log_rt ~ task*stimulus + (1 + stimulus | id)", "method": "S", "type": 3,
              "emmeans": {"specs": ["task", "stimulus"], "lmer_df": "asymptotic", "adjust": "none",
                          "contrasts": {"Contrast 1": [1, -1, 0, 0], "Contrast 2": [0.5, 0.5, -0.5, -0.5]}}},
    },
    {
        "id": "debug_kenwardroger_sum",
        "data": "debug",
        "about": "Kenward-Roger, type III, sum coding, plain-string option shapes (jaspTools style)",
        "options": {
            "dependent": "contNormal", "fixedVariables": ["facGender", "facExperim"], "randomVariables": ["facFive"],
            "fixedEffects": [{"components": ["facGender"]}, {"components": ["facExperim"]},
                             {"components": ["facGender", "facExperim"]}],
            "randomEffects": [{"value": "facFive", "correlations": True,
                               "randomComponents": [{"value": "Intercept", "randomSlopes": True},
                                                    {"value": "facGender", "randomSlopes": False},
                                                    {"value": "facExperim", "randomSlopes": False},
                                                    {"value": ["facGender", "facExperim"], "randomSlopes": False}]}],
            "testMethod": "kenwardRoger", **SHOW,
            "marginalMeansTerms": ["facGender"], "marginalMeansDf": "kenwardRoger",
            "marginalMeansComparison": True, "marginalMeansComparisonWith": 0.1,
        },
        "r": {"formula": "contNormal ~ facGender*facExperim + (1 | facFive)", "method": "KR", "type": 3,
              "factors": ["facFive"],
              "emmeans": {"specs": ["facGender"], "lmer_df": "kenward-roger", "null": 0.1}},
    },
    {
        "id": "debug_satterthwaite_type2_treatment",
        "data": "debug",
        "about": "Satterthwaite, type II, treatment coding, covariate × factor",
        "options": {
            "dependent": var("contGamma"), "fixedVariables": vars_(["facGender", "contcor1"], ["nominal", "scale"]),
            "randomVariables": vars_(["facFive"], ["nominal"]),
            "fixedEffects": terms(("facGender",), ("contcor1",), ("facGender", "contcor1")),
            "randomEffects": [re_row("facFive", [(("Intercept",), True), (("facGender",), False),
                                                 (("contcor1",), False), (("facGender", "contcor1"), False)])],
            "type": "2", "factorContrast": "treatment", **SHOW,
        },
        "r": {"formula": "contGamma ~ facGender*contcor1 + (1 | facFive)", "method": "S", "type": 2,
              "contrasts": "treatment", "factors": ["facFive"]},
    },
    {
        "id": "debug_lrt_intercept",
        "data": "debug",
        "about": "Likelihood ratio tests (ML), type III, intercept tested",
        "options": {
            "dependent": var("contNormal"), "fixedVariables": vars_(["facExperim", "contcor2"], ["nominal", "scale"]),
            "randomVariables": vars_(["facFive"], ["nominal"]),
            "fixedEffects": terms(("facExperim",), ("contcor2",)),
            "randomEffects": [re_row("facFive", [(("Intercept",), True), (("facExperim",), False),
                                                 (("contcor2",), False)])],
            "testMethod": "likelihoodRatioTest", "interceptTest": True, **SHOW, "vovkSellke": True,
        },
        "r": {"formula": "contNormal ~ facExperim + contcor2 + (1 | facFive)", "method": "LRT", "type": 3,
              "test_intercept": True, "factors": ["facFive"]},
    },
    {
        "id": "debug_parametric_bootstrap",
        "data": "debug",
        "about": "Parametric bootstrap (ML), seed set; chi-square and its p compared, bootstrap p checked loosely",
        "options": {
            "dependent": var("contGamma"), "fixedVariables": vars_(["facGender"], ["nominal"]),
            "randomVariables": vars_(["facFive"], ["nominal"]),
            "fixedEffects": terms(("facGender",)),
            "randomEffects": [re_row("facFive", [(("Intercept",), True), (("facGender",), False)])],
            "testMethod": "parametricBootstrap", "bootstrapSamples": 100, "setSeed": True, "seed": 1,
            "modelSummary": True, "fixedEffectEstimate": True,
        },
        "r": {"formula": "contGamma ~ facGender + (1 | facFive)", "method": "PB", "type": 3, "nsim": 100,
              "factors": ["facFive"]},
    },
    {
        "id": "fhch_uncorrelated_factor_slopes",
        "data": "fhch2010",
        "about": "correlations: false with factor slopes, as JASP fits it (issue #14): afex::mixed without "
                 "expand_re, so lme4 splits || into (1 | id) + (0 + stimulus | id) + (0 + frequency | id). With the "
                 "random intercept the dummy columns make the variances not identifiable (a ridge: lme4 warns), so "
                 "only what is identifiable is compared: the REML criterion, fixed effects and F tests",
        "options": {
            "dependent": var("log_rt"), "fixedVariables": vars_(["stimulus", "frequency"], ["nominal", "nominal"]),
            "randomVariables": vars_(["id"], ["nominal"]),
            "fixedEffects": terms(("stimulus",), ("frequency",)),
            "randomEffects": [re_row("id", [(("Intercept",), True), (("stimulus",), True), (("frequency",), True)],
                                     correlations=False)],
            "modelSummary": True, "fixedEffectEstimate": True,
        },
        "r": {"formula": "log_rt ~ stimulus + frequency + (1 + stimulus + frequency || id)", "method": "S", "type": 3},
    },
    {
        "id": "sleepstudy_uncorrelated_factor_slope",
        "data": "sleepstudy_half",
        "about": "correlations: false with a factor and a covariate slope, no random intercept (issue #14): "
                 "(0 + Days + half || Subject) is (0 + Days | Subject) + (0 + half | Subject) in lme4, the two "
                 "columns of half correlated; every table compared",
        "options": {
            "dependent": var("Reaction"), "fixedVariables": vars_(["Days", "half"], ["scale", "nominal"]),
            "randomVariables": vars_(["Subject"], ["nominal"]),
            "fixedEffects": terms(("Days",), ("half",)),
            "randomEffects": [re_row("Subject", [(("Intercept",), False), (("Days",), True), (("half",), True)],
                                     correlations=False)],
            **SHOW,
        },
        "r": {"formula": "Reaction ~ Days + half + (0 + Days + half || Subject)", "method": "S", "type": 3,
              "factors": ["Subject"]},
    },
    {
        "id": "fhch_two_grouping_factors_treatment",
        "data": "fhch2010",
        "about": "crossed grouping factors id and item, item slope for task kept (task varies within item)",
        "options": {
            "dependent": var("log_rt"), "fixedVariables": vars_(["task", "stimulus"], ["nominal", "nominal"]),
            "randomVariables": vars_(["id", "item"], ["nominal", "nominal"]),
            "fixedEffects": terms(("task",), ("stimulus",)),
            "randomEffects": [re_row("id", [(("Intercept",), True), (("task",), False), (("stimulus",), False)]),
                              re_row("item", [(("Intercept",), True), (("task",), True), (("stimulus",), False)])],
            "factorContrast": "treatment", **SHOW,
        },
        "r": {"formula": "log_rt ~ task + stimulus + (1 | id) + (1 + task | item)", "method": "S", "type": 3,
              "contrasts": "treatment"},
    },
    {
        "id": "debug_missing_trends",
        "data": "debug",
        "about": "30 rows with a missing covariate removed; trends of the covariate by factor with custom contrasts",
        "options": {
            "dependent": var("contNormal"), "fixedVariables": vars_(["facGender", "debMiss30"], ["nominal", "scale"]),
            "randomVariables": vars_(["facFive"], ["nominal"]),
            "fixedEffects": terms(("facGender",), ("debMiss30",), ("facGender", "debMiss30")),
            "randomEffects": [re_row("facFive", [(("Intercept",), True)])],
            **SHOW,
            "trendsTrendVariable": varlist(["debMiss30"]), "trendsVariables": varlist(["facGender"]),
            "trendsContrast": True, "trendsDf": "satterthwaite",
            "trendsContrasts": contrast_table({"facGender": ["f", "m"]}, {"Contrast 1": ["1", "-1"]}),
        },
        "r": {"formula": "contNormal ~ facGender*debMiss30 + (1 | facFive)", "method": "S", "type": 3,
              "factors": ["facFive"],
              "trends": {"specs": ["facGender"], "var": "debMiss30", "lmer_df": "satterthwaite",
                         "contrasts": {"Contrast 1": [1, -1]}, "adjust": "holm"}},
    },
    {
        "id": "debug_emm_covariate_sd",
        "data": "debug",
        "about": "EMMs over a factor and a covariate at mean ± 1 SD, Satterthwaite df, test against 0",
        "options": {
            "dependent": var("contGamma"), "fixedVariables": vars_(["facExperim", "contcor1"], ["nominal", "scale"]),
            "randomVariables": vars_(["facFive"], ["nominal"]),
            "fixedEffects": terms(("facExperim",), ("contcor1",)),
            "randomEffects": [re_row("facFive", [(("Intercept",), True)])],
            "marginalMeansTerms": varlist(["facExperim", "contcor1"]), "marginalMeansDf": "satterthwaite",
            "marginalMeansComparison": True, "marginalMeansCiLevel": 0.9,
        },
        "r": {"formula": "contGamma ~ facExperim + contcor1 + (1 | facFive)", "method": "S", "type": 3,
              "factors": ["facFive"],
              "emmeans": {"specs": ["facExperim", "contcor1"], "lmer_df": "satterthwaite", "null": 0, "level": 0.9,
                          "sd": {"contcor1": 1}}},
    },
    {
        "id": "debug_lm_type3_sum",
        "data": "debug",
        "analysis": "lm",
        "about": "linear model: type III F tests (car::Anova), sum coding, EMMs",
        "options": {
            "dependent": var("contNormal"),
            "fixedVariables": vars_(["facGender", "facExperim"], ["nominal", "nominal"]),
            "fixedEffects": terms(("facGender",), ("facExperim",), ("facGender", "facExperim")),
            "modelSummary": True, "fixedEffectEstimate": True,
            "marginalMeansTerms": varlist(["facExperim"]),
        },
        "r": {"formula": "contNormal ~ facGender*facExperim", "method": "lm", "type": 3,
              "emmeans": {"specs": ["facExperim"]}},
    },
    {
        "id": "debug_lrt_type2_intercept",
        "data": "debug",
        "about": "Likelihood ratio tests, type II, intercept test asked: afex shows no Intercept row (issue #14)",
        "options": {
            "dependent": var("contNormal"), "fixedVariables": vars_(["facExperim", "contcor2"], ["nominal", "scale"]),
            "randomVariables": vars_(["facFive"], ["nominal"]),
            "fixedEffects": terms(("facExperim",), ("contcor2",)),
            "randomEffects": [re_row("facFive", [(("Intercept",), True)])],
            "testMethod": "likelihoodRatioTest", "interceptTest": True, "type": "2",
        },
        "r": {"formula": "contNormal ~ facExperim + contcor2 + (1 | facFive)", "method": "LRT", "type": 2,
              "test_intercept": True, "factors": ["facFive"]},
    },
    {
        "id": "debug_pb_50_samples",
        "data": "debug",
        "about": "Parametric bootstrap with 50 samples (below the form's 100; JASP's R code takes it) (issue #14)",
        "options": {
            "dependent": var("contGamma"), "fixedVariables": vars_(["facGender"], ["nominal"]),
            "randomVariables": vars_(["facFive"], ["nominal"]),
            "fixedEffects": terms(("facGender",)),
            "randomEffects": [re_row("facFive", [(("Intercept",), True)])],
            "testMethod": "parametricBootstrap", "bootstrapSamples": 50, "setSeed": True, "seed": 1,
        },
        "r": {"formula": "contGamma ~ facGender + (1 | facFive)", "method": "PB", "type": 3, "nsim": 50,
              "factors": ["facFive"]},
    },
    {
        "id": "debug_trends_kenward_roger_text",
        "data": "debug",
        "about": "trendsDf written 'Kenward-Roger' (emmeans reads it as kenward-roger) (issue #14)",
        "options": {
            "dependent": var("contNormal"), "fixedVariables": vars_(["facGender", "contcor1"], ["nominal", "scale"]),
            "randomVariables": vars_(["facFive"], ["nominal"]),
            "fixedEffects": terms(("facGender",), ("contcor1",), ("facGender", "contcor1")),
            "randomEffects": [re_row("facFive", [(("Intercept",), True)])],
            "trendsTrendVariable": varlist(["contcor1"]), "trendsVariables": varlist(["facGender"]),
            "trendsDf": "Kenward-Roger",
        },
        "r": {"formula": "contNormal ~ facGender*contcor1 + (1 | facFive)", "method": "S", "type": 3,
              "factors": ["facFive"],
              "trends": {"specs": ["facGender"], "var": "contcor1", "lmer_df": "kenward-roger"}},
    },
    {
        "id": "fhch_emm_df_limit",
        "data": "fhch2010",
        "about": "Satterthwaite EMM df asked on 12,960 rows without marginalMeansDfEstimated: emmeans's limits "
                 "as JASP leaves them give asymptotic df (issue #14)",
        "options": {
            "dependent": var("log_rt"), "fixedVariables": vars_(["task"], ["nominal"]),
            "randomVariables": vars_(["id"], ["nominal"]),
            "fixedEffects": terms(("task",)),
            "randomEffects": [re_row("id", [(("Intercept",), True)])],
            "marginalMeansTerms": varlist(["task"]), "marginalMeansDf": "satterthwaite",
        },
        "r": {"formula": "log_rt ~ task + (1 | id)", "method": "S", "type": 3,
              "emmeans": {"specs": ["task"], "lmer_df": "satterthwaite", "limits": [3000, 3000]}},
    },
    {
        "id": "debug_mvt_means",
        "data": "debug",
        "about": "custom contrasts of EMMs with the mvt adjustment, asymptotic df (issue #14; mvtnorm's randomized "
                 "QMC: p compared to 2e-3 absolute)",
        "options": {
            "dependent": var("contNormal"),
            "fixedVariables": vars_(["facGender", "facExperim"], ["nominal", "nominal"]),
            "randomVariables": vars_(["facFive"], ["nominal"]),
            "fixedEffects": terms(("facGender",), ("facExperim",), ("facGender", "facExperim")),
            "randomEffects": [re_row("facFive", [(("Intercept",), True)])],
            "marginalMeansTerms": varlist(["facGender", "facExperim"]), "marginalMeansContrast": True,
            "marginalMeansPAdjustment": "mvt",
            "contrasts": contrast_table({"facGender": ["f", "m", "f", "m"],
                                         "facExperim": ["control", "control", "experimental", "experimental"]},
                                        {"Contrast 1": ["1", "-1", "0", "0"], "Contrast 2": ["0", "0", "1", "-1"],
                                         "Contrast 3": ["1/2", "1/2", "-1/2", "-1/2"]}),
        },
        "r": {"formula": "contNormal ~ facGender*facExperim + (1 | facFive)", "method": "S", "type": 3,
              "factors": ["facFive"], "p_atol": 2e-3,
              "emmeans": {"specs": ["facGender", "facExperim"], "lmer_df": "asymptotic", "adjust": "mvt",
                          "contrasts": {"Contrast 1": [1, -1, 0, 0], "Contrast 2": [0, 0, 1, -1],
                                        "Contrast 3": [0.5, 0.5, -0.5, -0.5]}}},
    },
    {
        "id": "debug_mvt_trends_satterthwaite",
        "data": "debug",
        "about": "contrasts of trends with the mvt adjustment and Satterthwaite df (mvtnorm's integer df) (issue #14)",
        "options": {
            "dependent": var("contNormal"),
            "fixedVariables": vars_(["facGender", "facExperim", "contcor1"], ["nominal", "nominal", "scale"]),
            "randomVariables": vars_(["facFive"], ["nominal"]),
            "fixedEffects": terms(("facGender",), ("facExperim",), ("contcor1",), ("facGender", "contcor1"),
                                  ("facExperim", "contcor1")),
            "randomEffects": [re_row("facFive", [(("Intercept",), True)])],
            "trendsTrendVariable": varlist(["contcor1"]), "trendsVariables": varlist(["facGender", "facExperim"]),
            "trendsContrast": True, "trendsDf": "satterthwaite", "trendsPAdjustment": "mvt",
            "trendsContrasts": contrast_table({"facGender": ["f", "m", "f", "m"],
                                               "facExperim": ["control", "control", "experimental", "experimental"]},
                                              {"Contrast 1": ["1", "-1", "0", "0"], "Contrast 2": ["1", "0", "-1", "0"],
                                               "Contrast 3": ["0", "1", "0", "-1"]}),
        },
        "r": {"formula": "contNormal ~ facGender*contcor1 + facExperim*contcor1 + (1 | facFive)", "method": "S",
              "type": 3, "factors": ["facFive"], "p_atol": 2e-3,
              "trends": {"specs": ["facGender", "facExperim"], "var": "contcor1", "lmer_df": "satterthwaite",
                         "adjust": "mvt", "contrasts": {"Contrast 1": [1, -1, 0, 0], "Contrast 2": [1, 0, -1, 0],
                                                        "Contrast 3": [0, 1, 0, -1]}}},
    },
    {
        "id": "debug_emm_binary_covariate_sd",
        "data": "debug",
        "about": "a scale variable with two values in the EMM grid: JASP puts it at mean ± 1.5 SD (emmeans's at), "
                 "not at its two values (issue #14)",
        "options": {
            "dependent": var("contNormal"), "fixedVariables": vars_(["facExperim", "contBinom"], ["nominal", "scale"]),
            "randomVariables": vars_(["facFive"], ["nominal"]),
            "fixedEffects": terms(("facExperim",), ("contBinom",), ("facExperim", "contBinom")),
            "randomEffects": [re_row("facFive", [(("Intercept",), True)])],
            "marginalMeansTerms": varlist(["facExperim", "contBinom"]), "marginalMeansSd": 1.5,
            "marginalMeansComparison": True,
        },
        "r": {"formula": "contNormal ~ facExperim*contBinom + (1 | facFive)", "method": "S", "type": 3,
              "factors": ["facFive"],
              "emmeans": {"specs": ["facExperim", "contBinom"], "lmer_df": "asymptotic", "null": 0,
                          "sd": {"contBinom": 1.5}}},
    },
    {
        "id": "debug_contrast_by_position",
        "data": "debug",
        "about": "custom contrast weights apply to the grid rows by position, as emmeans::contrast takes them from "
                 "JASP, even when the table's grid columns list the levels in another order (issue #14)",
        "options": {
            "dependent": var("contNormal"),
            "fixedVariables": vars_(["facGender", "facExperim"], ["nominal", "nominal"]),
            "randomVariables": vars_(["facFive"], ["nominal"]),
            "fixedEffects": terms(("facGender",), ("facExperim",), ("facGender", "facExperim")),
            "randomEffects": [re_row("facFive", [(("Intercept",), True)])],
            "marginalMeansTerms": varlist(["facGender", "facExperim"]), "marginalMeansContrast": True,
            "marginalMeansPAdjustment": "none",
            "contrasts": contrast_table({"facGender": ["m", "f", "m", "f"],
                                         "facExperim": ["experimental", "experimental", "control", "control"]},
                                        {"Contrast 1": ["1", "-1", "0", "0"], "Contrast 2": ["1", "0", "0", "0"]}),
        },
        "r": {"formula": "contNormal ~ facGender*facExperim + (1 | facFive)", "method": "S", "type": 3,
              "factors": ["facFive"],
              "emmeans": {"specs": ["facGender", "facExperim"], "lmer_df": "asymptotic", "adjust": "none",
                          "contrasts": {"Contrast 1": [1, -1, 0, 0], "Contrast 2": [1, 0, 0, 0]}}},
    },
    {
        "id": "debug_no_types_number_coded_factor",
        "data": "debug",
        "about": "jaspTools-style document without column types: contBinom (whole numbers, two values) is nominal by "
                 "JASP's import rule, so a factor (issue #14)",
        "options": {
            "dependent": "contNormal", "fixedVariables": ["facGender", "contBinom"], "randomVariables": ["facFive"],
            "fixedEffects": [{"components": ["facGender"]}, {"components": ["contBinom"]}],
            "randomEffects": [{"value": "facFive", "correlations": True,
                               "randomComponents": [{"value": "Intercept", "randomSlopes": True},
                                                    {"value": "facGender", "randomSlopes": False},
                                                    {"value": "contBinom", "randomSlopes": False}]}],
            "fixedEffectEstimate": True, "marginalMeansTerms": ["contBinom"],
        },
        "r": {"formula": "contNormal ~ facGender + contBinom + (1 | facFive)", "method": "S", "type": 3,
              "factors": ["facFive"], "fixed_factors": ["facGender", "contBinom"],
              "emmeans": {"specs": ["contBinom"], "lmer_df": "asymptotic"}},
    },
    {
        "id": "debug_column_types_beside_the_data",
        "data": "debug",
        "column_types": {"contBinom": "scale", "facFive": "nominal", "facExperim": "nominal", "contNormal": "scale"},
        "about": "the same document with JASP's column-type map beside the data: contBinom declared scale is a "
                 "covariate (issue #14)",
        "options": {
            "dependent": "contNormal", "fixedVariables": ["facExperim", "contBinom"], "randomVariables": ["facFive"],
            "fixedEffects": [{"components": ["facExperim"]}, {"components": ["contBinom"]}],
            "randomEffects": [{"value": "facFive", "correlations": True,
                               "randomComponents": [{"value": "Intercept", "randomSlopes": True},
                                                    {"value": "facExperim", "randomSlopes": False},
                                                    {"value": "contBinom", "randomSlopes": False}]}],
            "fixedEffectEstimate": True,
        },
        "r": {"formula": "contNormal ~ facExperim + contBinom + (1 | facFive)", "method": "S", "type": 3,
              "factors": ["facFive"], "fixed_factors": ["facExperim"]},
    },
    {
        "id": "debug_legacy_option_names",
        "data": "debug",
        "about": "a JASP 0.16 document: dependentVariable, method 'KR', showFE, fitStats, marginalMeans, "
                 "marginalMeansCompare(To), marginalMeansDf 'kenward-roger', plotsGeom, as Upgrades.qml renames "
                 "them (issue #14)",
        "options": {
            "dependentVariable": "contNormal", "fixedVariables": ["facGender", "facExperim"],
            "randomVariables": ["facFive"],
            "fixedEffects": [{"components": ["facGender"]}, {"components": ["facExperim"]}],
            "randomEffects": [{"value": "facFive", "correlations": True,
                               "randomComponents": [{"value": "Intercept", "randomSlopes": True},
                                                    {"value": "facGender", "randomSlopes": False},
                                                    {"value": "facExperim", "randomSlopes": False}]}],
            "method": "KR", "showFE": True, "fitStats": True, "plotsGeom": "geom_jitter", "plotsTheme": "theme_bw",
            "marginalMeans": ["facExperim"], "marginalMeansCompare": True, "marginalMeansCompareTo": 0.1,
            "marginalMeansDf": "kenward-roger",
        },
        "r": {"formula": "contNormal ~ facGender + facExperim + (1 | facFive)", "method": "KR", "type": 3,
              "factors": ["facFive"],
              "emmeans": {"specs": ["facExperim"], "lmer_df": "kenward-roger", "null": 0.1}},
    },
]
