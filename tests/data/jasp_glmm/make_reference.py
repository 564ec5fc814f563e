"""Regenerate ``reference.json`` from the cases in ``tests/test_jasp_glmm.py`` (needs R with afex,
lme4, emmeans, jsonlite):

    .venv/bin/python tests/data/jasp_glmm/make_reference.py
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from tests.test_jasp_glmm import CASES  # noqa: E402


def main() -> None:
    cases = [{"id": c["id"], "data": c["data"], "vars": c["r"]["vars"], "r": c["r"]} for c in CASES]
    (HERE / "cases.json").write_text(json.dumps(cases, indent=1) + "\n", encoding="utf-8")
    subprocess.run(["Rscript", str(HERE / "reference.R"), str(HERE / "cases.json"), str(HERE / "reference.json")],
                   check=True)
    print(f"wrote {HERE / 'reference.json'}")


if __name__ == "__main__":
    main()
