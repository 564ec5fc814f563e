"""Smoke test of the benchmark suite: quick mode on tiny inputs must run and produce a complete
report (JSON and markdown). Nothing about time is asserted."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import unavailable

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

ROOT = Path(__file__).resolve().parent.parent
QUICK_CASES = {"sleepstudy", "Penicillin", "Pastes", "synth-slope-tiny", "synth-crossed-tiny"}


def _run(tmp_path: Path, *args: str) -> tuple[dict, str]:
    js, md = tmp_path / "quick.json", tmp_path / "quick.md"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--json", str(js), "--md", str(md),
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(js.read_text(encoding="utf-8")), md.read_text(encoding="utf-8")


def test_quick_benchmark_report_structure(tmp_path):
    engines = ["native"] + [e for e, mod in (("mixedlm", "mixedlm"), ("statsmodels", "statsmodels"))
                            if importlib.util.find_spec(mod)]
    res, md = _run(tmp_path, "--engines", ",".join(engines))

    assert res["mode"] == "quick"
    assert {"date", "cpu", "cores", "memory_gib", "numpy", "scipy", "blas"} <= set(res["machine"])
    assert {c["name"] for c in res["cases"]} == QUICK_CASES
    for case in QUICK_CASES:
        per = res["results"][case]
        assert set(per) == set(engines)
        nat = per["native"]
        assert nat["status"] == "ok", nat
        assert nat["repeats"] >= 1
        assert {"median", "min", "max", "n"} <= set(nat["time_s"])
        assert nat["objective"] > 0 and nat["feval"] > 0
        assert "native" in res["comparison"][case]["engines"]
        for engine in engines[1:]:
            assert per[engine]["status"] == "ok", per[engine]
    if "statsmodels" in engines:   # crossed factors through the one-group device
        assert res["results"]["synth-crossed-tiny"]["statsmodels"]["status"] == "ok"
    if "mixedlm" in engines:
        assert "vs_mixedlm" in res["comparison"]["sleepstudy"]

    ex = res["extras"]
    assert ex["serve"]["engines"]["native"]["warm"]["n"] >= 1
    assert ex["inference"]["status"] in ("ok", "pending")
    if ex["inference"]["status"] == "ok":
        sat = ex["inference"]["sides"]["native"]["sleepstudy"]["satterthwaite"]
        assert sat["status"] == "ok" and sat["df"]

    for heading in ("# Benchmarks", "## Headline ratios", "## Machine and software", "## What is measured",
                    "## Per model", "## Inference tables", "## `mixedbridge serve` latency", "## Reproduce"):
        assert heading in md, heading
    assert md.index("## Headline ratios") < md.index("## Per model")
    assert "quick run on tiny inputs" in md
    assert "Where native is slower" in md
    for case in QUICK_CASES:
        assert f"### {case}" in md


@pytest.mark.r
def test_quick_benchmark_against_lme4(tmp_path):
    if importlib.util.find_spec("rpy2") is None:
        unavailable("rpy2 is not installed")
    res, md = _run(tmp_path, "--engines", "native,lme4", "--cases", "sleepstudy", "--no-extras")
    per = res["results"]["sleepstudy"]
    if per["lme4"]["status"] == "unavailable":
        unavailable(per["lme4"]["note"])
    assert per["lme4"]["status"] == "ok", per["lme4"]
    cmp_ = res["comparison"]["sleepstudy"]["engines"]["native"]
    assert {"ratio", "obj_diff", "obj_rel", "lower"} <= set(cmp_)
    assert abs(cmp_["obj_rel"]) < 1e-6
    assert res["versions"]["lme4"]["lme4"]
    assert "native ÷ lme4" in md
