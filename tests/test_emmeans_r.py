"""EMMs, contrasts and trends: the native side (on the native fit) against R's emmeans 1.8 (on
the lme4 engine's fit of the same prepared data), cell by cell.

Tolerances (issue 6): estimates 1e-4 (relative, floored at the SE), SE / df / limits / p 2e-3
(relative; p floored at 1e-4). Under CI=true a missing R fails these tests instead of skipping.
"""
from __future__ import annotations

import pandas as pd
import pytest

from mixedbridge import analysis
from mixedbridge import spec as specmod
from mixedbridge.datasets import load as load_dataset
from mixedbridge.emmeans import emmeans_tables
from mixedbridge.engines import get_engine

from .conftest import TENTHIRTY_LEGPRESS, require_r

pytestmark = pytest.mark.r

R_CALL_NOTE = "R: emmeans::emmeans / emtrends / contrast on the lme4 engine's fit, see bridge/emmeans_r.py"


@pytest.fixture(scope="module")
def r_session():
    from mixedbridge.bridge.session import session

    require_r()
    return session().start()


def _problem(spec: dict, data: pd.DataFrame | None = None):
    s = specmod.validate(spec)
    return analysis.prepare(s, data=data)


_FITS: dict = {}


def _native_fit(key: str, problem):
    if key not in _FITS:
        _FITS[key] = get_engine("native").fit(problem)
    return _FITS[key]


def _close(a, b, tol, floor=0.0) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol * max(abs(b), floor) + 1e-12


def assert_tables_agree(native, r, where: str) -> dict:
    """Every cell of every table; returns the largest relative differences by quantity."""
    worst = {"estimate": 0.0, "se": 0.0, "df": 0.0, "p": 0.0}
    assert [t.name for t in native] == [t.name for t in r], where
    for tn, tr in zip(native, r):
        assert [c.name for c in tn.columns] == [c.name for c in tr.columns], f"{where}: {tn.name} columns"
        assert len(tn.rows) == len(tr.rows), f"{where}: {tn.name} rows"
        est_col = tn.columns[[c.name for c in tn.columns].index("SE") - 1].name
        for rn, rr in zip(tn.rows, tr.rows):
            for c in tn.columns:
                a, b = rn[c.name], rr[c.name]
                if c.type == "string":
                    assert a == b, f"{where}: {tn.name} label {c.name}: {a!r} vs {b!r}"
                    continue
                se = rr.get("SE") or 0.0
                if c.name == est_col or c.name in ("lower.CL", "upper.CL"):
                    tol, floor, q = (1e-4, se, "estimate") if c.name == est_col else (2e-3, se, "se")
                elif c.name == "p.value":
                    tol, floor, q = 2e-3, 1e-4, "p"
                elif c.name == "df":
                    tol, floor, q = 2e-3, 0.0, "df"
                elif c.name == "t.ratio":
                    tol, floor, q = 2e-3, 1.0, "se"
                else:
                    tol, floor, q = 2e-3, se or 1.0, "se"
                assert _close(a, b, tol, floor), (f"{where}: {tn.name} row {rn} column {c.name}: "
                                                  f"native {a!r} vs R {b!r}")
                if a is not None and b is not None:
                    worst[q] = max(worst[q], abs(a - b) / max(abs(b), floor, 1e-300))
    return worst


TENTHIRTY_LMM = {"analysis": "lmm", "formula": "load ~ time * group + (1 | participant)", **TENTHIRTY_LEGPRESS}
TENTHIRTY_LM = {"analysis": "lm", "formula": "load ~ time * group", **TENTHIRTY_LEGPRESS}
INTERACTION = [{"name": "change in RM30 minus change in RM10", "weights": [1, -1, -1, 1]}]


def _sleep_binary() -> pd.DataFrame:
    d = load_dataset("sleepstudy")[0].copy()
    d["late"] = (d["Days"] >= 5).astype(float)
    return d


def _tenthirty_missing_cell() -> pd.DataFrame:
    """Unbalanced, with one time × group cell empty: a rank-deficient design."""
    d = load_dataset("tenthirty")[0]
    d = d[(d["exercise"] == "legpress") & d["time"].isin(["pre", "mid", "post"])]
    d = d[~((d["time"] == "mid") & (d["group"] == "RM30"))]
    return d.iloc[3:].reset_index(drop=True)


def _fhch_subset() -> pd.DataFrame:
    d = load_dataset("fhch2010")[0]
    ids = sorted(d["id"].unique())
    d = d[d["id"].isin(ids[::5])]
    # drop one cell of the within-subject design for a few participants (unbalanced)
    drop = (d["stimulus"] == "nonword") & (d["density"] == "low") & (d["id"].isin(ids[:10:5]))
    return d[~drop].reset_index(drop=True)


CASES = [
    # (id, spec, data factory, [emmeans requests])
    ("tenthirty-lmm", TENTHIRTY_LMM, None, [
        {"specs": ["time", "group"], "contrasts": INTERACTION, "df": "kenward-roger"},
        {"specs": ["time", "group"], "contrasts": INTERACTION, "df": "satterthwaite"},
        {"specs": ["time"], "by": ["group"], "contrasts": "pairwise", "df": "asymptotic", "adjust": "tukey"},
        {"specs": "group", "contrasts": "pairwise", "df": "kenward-roger", "null": 250},
    ]),
    ("tenthirty-lm", TENTHIRTY_LM, None, [
        {"specs": ["time", "group"], "contrasts": "pairwise", "adjust": "holm"},
        {"specs": ["time", "group"], "contrasts": "pairwise", "adjust": "hommel", "level": 0.9},
        {"specs": ["time", "group"], "contrasts": "pairwise", "adjust": "scheffe"},
        {"specs": ["time", "group"], "contrasts": "pairwise", "adjust": "bonferroni"},
        {"specs": ["time", "group"], "contrasts": "pairwise", "adjust": "tukey"},
        {"specs": ["time", "group"], "contrasts": INTERACTION + [{"name": "pre", "weights": [1, 0, -1, 0]}],
         "adjust": "tukey"},
    ]),
    ("cake-lmm", {"analysis": "lmm", "data": {"dataset": "cake"},
                  "formula": "angle ~ recipe * temperature + (1 | recipe:replicate)"}, None, [
        {"specs": ["recipe"], "contrasts": "pairwise", "adjust": "holm", "df": "satterthwaite"},
        {"specs": ["temperature"], "contrasts": "pairwise", "adjust": "tukey", "df": "asymptotic"},
        {"specs": ["temperature"], "by": ["recipe"], "contrasts": "pairwise", "adjust": "scheffe",
         "df": "asymptotic"},
        {"specs": ["recipe"], "at": {"temperature": ["175", "225"]}, "contrasts": "pairwise",
         "adjust": "none", "df": "asymptotic"},
    ]),
    ("cake-covariate-lm", {"analysis": "lm", "data": {"dataset": "cake"}, "formula": "angle ~ recipe * temp"}, None, [
        {"specs": ["recipe"], "contrasts": "pairwise"},
        {"specs": ["recipe"], "trend": "temp", "contrasts": "pairwise", "adjust": "tukey"},
        {"specs": ["temp", "recipe"], "sd_steps": 1, "contrasts": "pairwise", "by": []},
        {"specs": ["recipe"], "by": ["temp"], "at": {"temp": [180, 220]}, "contrasts": "pairwise"},
    ]),
    ("sleepstudy-lmm", {"analysis": "lmm", "data": {"dataset": "sleepstudy"},
                        "formula": "Reaction ~ Days + (Days | Subject)"}, None, [
        {"specs": [], "trend": "Days", "df": "satterthwaite"},
        {"specs": [], "trend": "Days", "df": "kenward-roger"},
        {"specs": ["Days"], "at": {"Days": [0, 4.5, 9]}, "contrasts": "pairwise", "df": "satterthwaite"},
        {"specs": [], "df": "kenward-roger", "null": 300},
    ]),
    ("sleepstudy-binary-covariate", {"analysis": "lmm", "formula": "Reaction ~ Days * late + (1 | Subject)",
                                     "data": {"dataset": "sleepstudy"}}, _sleep_binary, [
        {"specs": ["late"], "contrasts": "pairwise", "df": "satterthwaite"},
        {"specs": ["late"], "trend": "Days", "contrasts": "pairwise", "df": "kenward-roger"},
    ]),
    ("strengthvolume-lmm", {"analysis": "lmm", "data": {"dataset": "strengthvolume"},
                            "filter": [{"column": "exercise", "in": ["legpress"]}],
                            "levels": {"time": ["pre", "session1", "week2", "week5", "week9", "post"],
                                       "sets": ["single", "multiple"]},
                            "formula": "load ~ time * sets + (1 | participant)"}, None, [
        {"specs": ["sets"], "by": ["time"], "contrasts": "pairwise", "df": "satterthwaite"},
        {"specs": ["time"], "contrasts": "pairwise", "adjust": "tukey", "df": "asymptotic"},
        {"specs": ["time", "sets"], "df": "satterthwaite", "contrasts": [
            {"name": "multiple - single at post minus at pre", "weights": [-1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, -1]}],
         "adjust": "none"},
    ]),
    ("tenthirty-missing-cell-lm", {"analysis": "lm", "formula": "load ~ time * group",
                                   "data": {"dataset": "tenthirty"},
                                   "levels": {"time": ["pre", "mid", "post"]}}, _tenthirty_missing_cell, [
        {"specs": ["time", "group"], "contrasts": "pairwise", "adjust": "holm"},
        {"specs": ["group"], "contrasts": "pairwise"},
        {"specs": ["time"], "by": ["group"], "contrasts": "pairwise", "adjust": "tukey"},
    ]),
    ("tenthirty-missing-cell-lmm", {"analysis": "lmm", "formula": "load ~ time * group + (1 | participant)",
                                    "data": {"dataset": "tenthirty"},
                                    "levels": {"time": ["pre", "mid", "post"]}}, _tenthirty_missing_cell, [
        {"specs": ["time", "group"], "contrasts": "pairwise", "adjust": "hommel", "df": "satterthwaite"},
    ]),
    ("fhch2010-subset", {"analysis": "lmm", "data": {"dataset": "fhch2010"},
                         "formula": "log_rt ~ task * stimulus * density + (1 | id)"}, _fhch_subset, [
        {"specs": ["stimulus", "density"], "by": ["task"], "contrasts": "pairwise", "adjust": "holm",
         "df": "satterthwaite"},
        {"specs": ["task"], "contrasts": "pairwise", "df": "asymptotic"},
    ]),
    ("tenthirty-sum-contrasts", {**TENTHIRTY_LMM, "options": {"contrasts": "sum"}}, None, [
        {"specs": ["time", "group"], "contrasts": INTERACTION, "df": "satterthwaite"},
    ]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_native_matches_emmeans(case, r_session):
    from mixedbridge.bridge.emmeans_r import emmeans_tables_r

    key, spec, data_fn, requests = case
    problem = _problem(spec, data_fn() if data_fn else None)
    fit = _native_fit(key, problem)
    for i, req in enumerate(requests):
        native, _ = emmeans_tables(problem, fit, req)
        r, _ = emmeans_tables_r(problem, req, r_session=r_session)
        assert_tables_agree(native, r, f"{key} request {i}")


def test_tenthirty_interaction_contrast_is_the_interaction(r_session):
    """The chapter's model: 'change in RM30 minus change in RM10' is the time × group coefficient."""
    from mixedbridge.bridge.emmeans_r import emmeans_tables_r

    problem = _problem(TENTHIRTY_LMM)
    fit = _native_fit("tenthirty-lmm", problem)
    req = {"specs": ["time", "group"], "contrasts": INTERACTION, "df": "kenward-roger"}
    native, _ = emmeans_tables(problem, fit, req)
    row = native[1].rows[0]
    j = fit.coef_names.index("timepost:groupRM30")
    assert row["estimate"] == pytest.approx(fit.beta[j], rel=1e-10)
    assert round(row["estimate"], 2) == -39.43
    r, _ = emmeans_tables_r(problem, req, r_session=r_session)
    assert r[1].rows[0]["estimate"] == pytest.approx(-39.4285, abs=1e-3)
    assert row["SE"] == pytest.approx(r[1].rows[0]["SE"], rel=2e-3)
    assert [x["emmean"] for x in native[0].rows] == pytest.approx([x["emmean"] for x in r[0].rows], rel=1e-6)


def test_nonestimable_rows_match(r_session):
    from mixedbridge.bridge.emmeans_r import emmeans_tables_r

    problem = _problem(CASES[7][1], _tenthirty_missing_cell())
    fit = _native_fit("tenthirty-missing-cell-lm", problem)
    native, _ = emmeans_tables(problem, fit, {"specs": ["time", "group"], "contrasts": "pairwise"})
    r, _ = emmeans_tables_r(problem, {"specs": ["time", "group"], "contrasts": "pairwise"}, r_session=r_session)
    empty_n = [i for i, x in enumerate(native[0].rows) if x["emmean"] is None]
    empty_r = [i for i, x in enumerate(r[0].rows) if x["emmean"] is None]
    assert empty_n == empty_r == [4]
    assert [x["estimate"] is None for x in native[1].rows] == [x["estimate"] is None for x in r[1].rows]
