"""The ``mixedbridge`` program's end: a one-shot command ends without the interpreter's teardown
(``cli.entry``), its output complete and its exit status kept; a serving or R-loading process ends
the ordinary way."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mixedbridge import cli

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "table-12-4-sleepstudy-lmm.json"


def _program(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mixedbridge.cli", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.subprocess
def test_run_output_is_complete_and_files_written(tmp_path):
    out = _program("run", str(EXAMPLE), "--format", "json", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)  # the whole document reached the pipe before the process ended
    written = json.loads((tmp_path / f"{EXAMPLE.stem}.json").read_text())
    assert written["tables"] == doc["tables"] and doc["tables"]


@pytest.mark.subprocess
def test_error_status_and_message_survive_the_quick_end(tmp_path):
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"analysis": "lmm", "formula": "y ~ x + (1 | g)",
                                "data": {"records": [{"y": 1.0, "x": 2.0}]}}))
    out = _program("run", str(spec))
    assert out.returncode == 2
    assert "error in" in out.stderr and "'g'" in out.stderr


def test_one_shot_commands_end_quickly_unless_a_package_needs_its_teardown(monkeypatch):
    assert {"run", "validate", "check", "schema", "manifest"} == set(cli.QUICK_EXIT_COMMANDS)
    assert "serve" not in cli.QUICK_EXIT_COMMANDS
    for name in ("rpy2.robjects", "distributed", "multiprocessing.pool"):
        with monkeypatch.context() as m:
            m.setitem(sys.modules, name, sys)
            assert cli._needs_teardown()
    monkeypatch.setattr(cli, "TEARDOWN_PACKAGES", ("no_such_package_loaded",))
    monkeypatch.setattr(sys, "gettrace", lambda: None)  # pytest's coverage, when it runs
    assert not cli._needs_teardown()
    monkeypatch.setattr(sys, "gettrace", lambda: print)  # a tracer waits for the end
    assert cli._needs_teardown()


def test_main_returns_the_status_in_process():
    # tests and hosts call main(); only entry() ends the process
    assert cli.main(["schema"]) == 0
