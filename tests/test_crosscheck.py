"""The cross-check suite: each spec run with ``"engine": "both"``; every numeric cell of every
table must agree with lme4 within the tolerances of mixedbridge.agreement."""
from __future__ import annotations

import dataclasses

import pytest

import mixedbridge

from .conftest import EXAMPLES, TENTHIRTY_LEGPRESS

pytestmark = pytest.mark.r

TENTHIRTY_ALL = {"data": {"dataset": "tenthirty"}, "filter": [{"column": "exercise", "in": ["legpress"]}],
                 "levels": {"time": ["pre", "mid", "post"]}}
SLEEP = {"data": {"dataset": "sleepstudy"}}

SUITE: dict[str, dict] = {
    "sleepstudy ML": {**SLEEP, "analysis": "lmm", "formula": "Reaction ~ Days + (Days | Subject)",
                      "options": {"reml": False}},
    "sleepstudy uncorrelated": {**SLEEP, "analysis": "lmm", "formula": "Reaction ~ Days + (Days || Subject)"},
    "sleepstudy slope only": {**SLEEP, "analysis": "lmm", "formula": "Reaction ~ Days + (0 + Days | Subject)"},
    "sleepstudy two terms": {**SLEEP, "analysis": "lmm",
                             "formula": "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"},
    "Penicillin crossed": {"data": {"dataset": "Penicillin"}, "analysis": "lmm",
                           "formula": "diameter ~ 1 + (1 | plate) + (1 | sample)"},
    "Pastes nested": {"data": {"dataset": "Pastes"}, "analysis": "lmm", "formula": "strength ~ 1 + (1 | batch/cask)"},
    "Dyestuff": {"data": {"dataset": "Dyestuff"}, "analysis": "lmm", "formula": "Yield ~ 1 + (1 | Batch)"},
    "Dyestuff2 singular": {"data": {"dataset": "Dyestuff2"}, "analysis": "lmm", "formula": "Yield ~ 1 + (1 | Batch)"},
    "cake interaction group": {"data": {"dataset": "cake"}, "analysis": "lmm",
                               "formula": "angle ~ recipe * temperature + (1 | recipe:replicate)"},
    "tenthirty three times, sum coding": {**TENTHIRTY_ALL, "analysis": "lmm",
                                          "formula": "load ~ time * group + (1 | participant)",
                                          "options": {"contrasts": "sum"}},
    "tenthirty ML": {**TENTHIRTY_LEGPRESS, "analysis": "lmm", "formula": "load ~ time * group + (1 | participant)",
                     "options": {"reml": False}},
    "fhch2010 crossed (12,960 rows)": {"data": {"dataset": "fhch2010"}, "analysis": "lmm",
                                       "formula": "log_rt ~ task * stimulus + (1 | id) + (1 | item)"},
    "fhch2010 factor slope": {"data": {"dataset": "fhch2010"}, "analysis": "lmm",
                              "filter": [{"column": "task", "in": ["naming"]}],
                              "formula": "log_rt ~ stimulus + (1 + stimulus | id)"},
}
SPECS = {p.stem: str(p) for p in sorted(EXAMPLES.glob("*.json"))} | SUITE


@pytest.mark.parametrize("name", list(SPECS))
def test_both_engines_agree(with_r, name):
    spec = SPECS[name]
    if isinstance(spec, str):
        spec = mixedbridge.spec.read_spec(spec)[0]
    res = mixedbridge.run({**spec, "engine": "both"})
    table = res.table("comparison")
    failed = [r for r in table.rows if r["pass"] != "yes"]
    assert not failed, failed[:5]
    assert len(table.rows) > 10


def test_suite_covers_six_data_sets_and_fifteen_models():
    datasets = {(s if isinstance(s, dict) else mixedbridge.spec.read_spec(s)[0])["data"]["dataset"]
                for s in SPECS.values()}
    assert len(SPECS) >= 15 and len(datasets) >= 6


def test_weights_and_offset_agree_with_lme4_and_emmeans(with_r):
    import numpy as np

    df = mixedbridge.datasets.load("sleepstudy")[0]
    df["o"] = np.arange(len(df)) % 5 * 1.0
    df["w"] = 1.0 + (np.arange(len(df)) % 3)
    df["phase"] = np.where(df["Days"] < 5, "early", "late")
    spec = {"analysis": "lmm", "engine": "both", "data": {"dataset": "sleepstudy"},
            "formula": "Reaction ~ Days + phase + (Days | Subject)",
            "options": {"offset": "o", "weights": "w", "anova": False, "emmeans": {"specs": ["phase"]}}}
    res = mixedbridge.run(spec, data=df)
    table = res.table("comparison")
    assert {r["table"] for r in table.rows} >= {"parameters", "fit", "emmeans"}
    failed = [r for r in table.rows if r["pass"] != "yes"]
    assert not failed, failed[:5]


def test_a_fit_the_r_worker_no_longer_holds_is_a_clear_error(with_r):
    from mixedbridge.analysis import prepare
    from mixedbridge.bridge.emmeans_r import emmeans_tables_r
    from mixedbridge.engines import get_engine
    from mixedbridge.errors import EngineError

    spec = mixedbridge.spec.validate({**SUITE["Dyestuff"], "engine": "lme4"})
    problem = prepare(spec)
    fit = get_engine("lme4").fit(problem)
    fit = dataclasses.replace(fit, backend=dataclasses.replace(fit.backend, handle=-1))
    with pytest.raises(EngineError, match="no longer holds the fitted model"):
        emmeans_tables_r(problem, {"specs": ["1"]}, fit=fit)
