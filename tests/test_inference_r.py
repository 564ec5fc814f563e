"""Inference cross-checked against R (engine "both"): lmerTest's Satterthwaite t and F tests
(type II and III), pbkrtest's Kenward-Roger, lme4's likelihood-ratio tests, model comparison
and profile intervals, on the chapter's examples and more models (tests/inference_cases.py).

Without R: skipped outside CI, failed under CI=true.
"""
from __future__ import annotations

import pytest

from mixedbridge import analysis

from .conftest import require_r
from .inference_cases import TENTHIRTY, cases

pytestmark = pytest.mark.r

MINE = ("parameters", "anova", "confint", "model_comparison")


@pytest.fixture(scope="module")
def r_available():
    require_r()
    return True


def _both(spec: dict, **options) -> analysis.Results:
    sp = {**spec, "engine": "both", "options": {**spec.get("options", {}), **options}}
    return analysis.run(sp)


def _check(res, tables=MINE) -> int:
    cmp = res.table("comparison")
    rows = [r for r in cmp.rows if r["table"] in tables]
    bad = [r for r in rows if r["pass"] != "yes"]
    assert not bad, bad[:5]
    return len(rows)


CASES = cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_satterthwaite_type3(r_available, name):
    res = _both(CASES[name], anova={"type": "III"})
    n = _check(res)
    assert n > 0
    assert any(r["table"] == "parameters" and r["column"] == "df" for r in res.table("comparison").rows)


@pytest.mark.parametrize("name", ["ex-tenthirty", "cake-factors", "cake-numeric-x-factor", "tenthirty-sum",
                                  "strengthvolume-6-times", "pastes-nested",
                                  "sleepstudy-slopes"])
def test_kenward_roger_type2(r_available, name):
    res = _both(CASES[name], df_method="kenward-roger", anova={"type": "II"})
    _check(res)


@pytest.mark.parametrize("name", ["ex-tenthirty", "tenthirty-sum", "cake-factors"])
def test_lrt_per_term(r_available, name):
    res = _both(CASES[name], anova={"method": "lrt", "intercept": True})
    rows = [r for r in res.table("comparison").rows if r["table"] == "anova" and r["column"] == "Chisq"]
    assert rows and all(r["pass"] == "yes" for r in rows), rows
    _check(res)


@pytest.mark.parametrize("name", ["ex-sleepstudy", "dyestuff", "ex-tenthirty"])
def test_profile_confint(r_available, name):
    res = _both(CASES[name], confint={"method": "profile"})
    rows = [r for r in res.table("comparison").rows if r["table"] == "confint" and r["column"] in ("lower", "upper")]
    assert len(rows) >= 6
    _check(res)


def test_model_comparison_lmm_vs_lm(r_available):
    """anova(lmer1, lm1): the chapter's comparison of the mixed model with the regression."""
    spec = {**CASES["ex-tenthirty"], "compare": [{"formula": "load ~ time * group", "analysis": "lm", "name": "lm1"},
                                                 {"formula": "load ~ time + group + (1 | participant)"}]}
    res = _both(spec)
    table = res.table("model_comparison")
    assert [r["model"] for r in table.rows] == ["lm1", "model3", "model"]
    assert [r["npar"] for r in table.rows] == [5, 5, 6]
    _check(res)


def test_asymptotic_and_lm(r_available):
    _check(_both(CASES["ex-sleepstudy"], df_method="asymptotic"))
    lm = {"analysis": "lm", **TENTHIRTY, "formula": "load ~ time * group"}
    res = _both(lm, anova={"type": "III"}, confint=True)
    _check(res)
