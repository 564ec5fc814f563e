"""Regenerate ``reference.json`` from the cases in ``tests/jasp_cases.py`` (needs R with afex,
lme4, lmerTest, pbkrtest, emmeans, jsonlite, car):

    .venv/bin/python tests/data/jasp/make_reference.py
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from mixedbridge.jasp.options import normalize  # noqa: E402
from tests.jasp_cases import CASES, load  # noqa: E402


def r_case(case: dict) -> dict:
    opts, _ = normalize(case["options"], case.get("column_types"))
    fixed = opts["fixedVariables"]
    types = opts["types"]
    vars_ = list(dict.fromkeys([opts["dependent"], *fixed, *opts["randomVariables"]]))
    data = load(case["data"])
    # the case states the factors where the document declares no types (JASP's import rule)
    fixed_factors = case["r"].get("fixed_factors") or [
        v for v in fixed if types.get(v) in ("nominal", "ordinal") or not pd.api.types.is_numeric_dtype(data[v])]
    return {"id": case["id"], "data": case["data"], "vars": vars_, "fixed_factors": fixed_factors,
            "factors": case["r"].get("factors", []), "r": case["r"]}


def main() -> None:
    cases = [r_case(c) for c in CASES]
    (HERE / "cases.json").write_text(json.dumps(cases, indent=1) + "\n", encoding="utf-8")
    subprocess.run(["Rscript", str(HERE / "reference.R"), str(HERE / "cases.json"), str(HERE / "reference.json")],
                   check=True)
    print(f"wrote {HERE / 'reference.json'}")


if __name__ == "__main__":
    main()
