"""The supervised worker answers every request, whatever happens to the process doing the work."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import TENTHIRTY_LEGPRESS

pytestmark = pytest.mark.subprocess

LM = {"analysis": "lm", "formula": "load ~ time * group", **TENTHIRTY_LEGPRESS}


def serve(lines: list[str], *args: str, faults: bool = True) -> list[dict]:
    env = {**os.environ, "MIXEDBRIDGE_FAULTS": "1" if faults else "0"}
    proc = subprocess.run([sys.executable, "-m", "mixedbridge.cli", "serve", *args], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.slow
def test_crash_hang_and_error_leave_the_worker_answering():
    good = json.dumps({"id": "ok", "spec": LM})
    answers = serve([
        good,
        json.dumps({"id": "crash", "fault": "crash", "spec": LM}),
        good,
        json.dumps({"id": "hang", "fault": "hang", "timeout": 2, "spec": LM}),
        good,
        json.dumps({"id": "raise", "fault": "raise", "spec": LM}),
        good,
    ])
    assert [a.get("id") for a in answers] == ["ok", "crash", "ok", "hang", "ok", "raise", "ok"]
    assert answers[1]["error"]["code"] == "crash"
    assert answers[3]["error"]["code"] == "timeout" and "2 s" in answers[3]["error"]["message"]
    assert answers[5]["error"]["code"] == "internal"
    fresh = answers[0]["tables"]
    assert all(a["tables"] == fresh for a in answers[2::2])


def test_faults_are_inert_without_the_test_switch():
    answers = serve([json.dumps({"id": 1, "fault": "crash", "spec": LM})], faults=False)
    assert answers[0]["id"] == 1 and "tables" in answers[0]
