"""Models the inference layer is cross-checked on (engine "both"): the chapter's examples and
more (crossed, nested, random slopes, multi-level factors, sum contrasts, ML fits)."""
from __future__ import annotations

import json
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

TENTHIRTY = {"data": {"dataset": "tenthirty"},
             "filter": [{"column": "exercise", "in": ["legpress"]}, {"column": "time", "in": ["pre", "post"]}],
             "levels": {"time": ["pre", "post"]}}
def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def cases() -> dict[str, dict]:
    """name -> spec (without engine)."""
    sv = {"data": {"dataset": "strengthvolume"}, "filter": [{"column": "exercise", "in": ["legext"]}],
          "levels": {"time": ["pre", "session1", "week2", "week5", "week9", "post"], "sets": ["single", "multiple"]}}
    return {
        "ex-tenthirty": example("table-12-2-tenthirty-lmm.json"),
        "ex-strengthvolume": example("table-12-3-strengthvolume-lmm.json"),
        "ex-sleepstudy": example("table-12-4-sleepstudy-lmm.json"),
        "sleepstudy-slopes": {"analysis": "lmm", "data": {"dataset": "sleepstudy"},
                              "formula": "Reaction ~ Days + (Days | Subject)"},
        "sleepstudy-uncorrelated-ml": {"analysis": "lmm", "data": {"dataset": "sleepstudy"},
                                       "formula": "Reaction ~ Days + (Days || Subject)", "options": {"reml": False}},
        "penicillin-crossed": {"analysis": "lmm", "data": {"dataset": "Penicillin"},
                               "formula": "diameter ~ 1 + (1 | plate) + (1 | sample)"},
        "pastes-nested": {"analysis": "lmm", "data": {"dataset": "Pastes"},
                          "formula": "strength ~ 1 + (1 | batch/cask)"},
        "dyestuff": {"analysis": "lmm", "data": {"dataset": "Dyestuff"}, "formula": "Yield ~ 1 + (1 | Batch)"},
        "cake-factors": {"analysis": "lmm", "data": {"dataset": "cake"},
                         "formula": "angle ~ recipe * temperature + (1 | recipe:replicate)"},
        "cake-numeric-x-factor": {"analysis": "lmm", "data": {"dataset": "cake"},
                                  "formula": "angle ~ recipe * temp + (1 | recipe:replicate)"},
        "tenthirty-sum": {"analysis": "lmm", **TENTHIRTY, "formula": "load ~ time * group + (1 | participant)",
                          "options": {"contrasts": "sum"}},
        "strengthvolume-6-times": {"analysis": "lmm", **sv, "formula": "load ~ time * sets + (1 | participant)"},
        "fhch2010-subset": {"analysis": "lmm", "data": {"dataset": "fhch2010"},
                            "filter": [{"column": "id", "in": ["N1", "N3", "N5", "N6", "L1", "L2", "L4", "L5"]}],
                            "formula": "log_rt ~ task * stimulus * density + (1 | id) + (1 | item)"},
        "tenthirty-three-times": {"analysis": "lmm", "data": {"dataset": "tenthirty"},
                                  "filter": [{"column": "exercise", "in": ["legpress"]}],
                                  "formula": "load ~ time * group + (1 | participant)"},
    }
