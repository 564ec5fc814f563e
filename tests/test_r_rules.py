"""R's data and formula rules (issue 14): files read as ``read.csv`` reads them, numeric grouping
columns kept numeric in the fixed part, logical levels named ``TRUE``/``FALSE``, interaction-only
and marginality-violating terms coded as ``model.matrix`` codes them, and lmerTest's type III
and II tests when a main effect is missing.

Each case is a real data set (nlme, datasets) exported with ``tests/data/r_rules/export.R``; the
native engine is compared with plain ``lmerTest::lmer`` values stored by
``tests/data/r_rules/reference.R`` (no R needed) and, where R is present, with the lme4 engine
through ``engine: "both"``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import mixedbridge

from .conftest import ROOT

DATA = Path(__file__).resolve().parent / "data" / "r_rules"
REFERENCE = json.loads((DATA / "reference.json").read_text())
CASES = sorted(k for k in REFERENCE if not k.startswith("_"))
#: Cases not yet matched (none open now; a case listed here is skipped by the fit / anova tests).
OPEN_FIT: set[str] = set()
OPEN_ANOVA = OPEN_FIT
FILES = {k: ("alfalfa.csv" if k.startswith("alfalfa") else "oats.csv" if k.startswith("oats")
             else "orthodont.csv" if k.startswith("orthodont") else "co2.csv") for k in CASES}


def _list(x: object) -> list:
    return x if isinstance(x, list) else [x]


def _spec(case: str, anova: str = "III", engine: str = "native") -> dict:
    return {"analysis": "lmm", "engine": engine, "formula": REFERENCE[case]["formula"],
            "data": {"path": str((DATA / FILES[case]).relative_to(ROOT))},
            "options": {"anova": {"type": anova}}}


def _close(ours: float | None, theirs: float | None, rel: float) -> bool:
    if theirs is None:
        return ours is None or (isinstance(ours, float) and math.isnan(ours))
    return ours is not None and abs(ours - theirs) <= rel * max(1.0, abs(theirs))


@pytest.mark.parametrize("case", [c for c in CASES if c not in OPEN_FIT])
def test_native_fit_equals_lmertest(case, monkeypatch):
    monkeypatch.chdir(ROOT)
    ref = REFERENCE[case]
    res = mixedbridge.run(_spec(case))
    fit = res.table("fit").rows[0]
    assert fit["nobs"] == ref["nobs"]
    assert abs(fit["REMLcrit"] - ref["REMLcrit"]) <= 1e-6 * max(1.0, abs(ref["REMLcrit"]))
    assert fit["REMLcrit"] <= ref["REMLcrit"] + 1e-6 * max(1.0, abs(ref["REMLcrit"]))
    rows = {r["term"]: r for r in res.table("parameters").rows if r["effect"] == "fixed"}
    coef = ref["coef"]
    assert list(rows) == _list(coef["name"])
    for name, est, se, df in zip(_list(coef["name"]), _list(coef["estimate"]), _list(coef["se"]),
                                 _list(coef["df"])):
        assert _close(rows[name]["estimate"], est, 1e-4), name
        assert _close(rows[name]["std.error"], se, 1e-3), name
        assert _close(rows[name]["df"], df, 1e-3), name


@pytest.mark.parametrize("anova", ["III", "II"])
@pytest.mark.parametrize("case", [c for c in CASES if c not in OPEN_ANOVA])
def test_native_anova_equals_lmertest(case, anova, monkeypatch):
    monkeypatch.chdir(ROOT)
    ref = REFERENCE[case][f"anova{anova[::-1].count('I')}"]
    rows = {r["term"]: r for r in mixedbridge.run(_spec(case, anova)).table("anova").rows}
    assert list(rows) == _list(ref["term"])
    for term, numdf, dendf, f in zip(_list(ref["term"]), _list(ref["NumDF"]), _list(ref["DenDF"]),
                                     _list(ref["F"])):
        assert _close(rows[term]["NumDF"], numdf, 1e-3), term
        assert _close(rows[term]["DenDF"], dendf, 1e-3), term
        assert _close(rows[term]["statistic"], f, 1e-3), term


@pytest.mark.r
@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c not in OPEN_ANOVA])
def test_both_engines_agree(with_r, case, monkeypatch):
    monkeypatch.chdir(ROOT)
    res = mixedbridge.run(_spec(case, engine="both"))
    failed = [r for r in res.table("comparison").rows if r["pass"] != "yes"]
    assert not failed, failed[:5]


def test_text_none_null_and_na_strings_are_values_in_a_file(monkeypatch):
    monkeypatch.chdir(ROOT)
    res = mixedbridge.run(_spec("alfalfa"))
    assert res.table("fit").rows[0]["nobs"] == 72
    assert "DateS1" in [r["term"] for r in res.table("parameters").rows]
