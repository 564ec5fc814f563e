"""Every class of bad spec or data gives a clear error naming where and what was expected."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import mixedbridge
from mixedbridge.errors import MixedBridgeError
from mixedbridge.serve import handle

from .bad_inputs import CATALOGUE, DOC, LM, document

BASE = LM


@pytest.mark.parametrize("name,spec,code,path,words", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_bad_input_is_a_clear_error(name, spec, code, path, words):
    with pytest.raises(MixedBridgeError) as info:
        mixedbridge.run(spec)
    err = info.value
    assert (err.code, err.path) == (code, path), err.message
    for w in words:
        assert w in err.message


def test_catalogue_is_large_and_documented_as_it_behaves():
    assert len(CATALOGUE) >= 40
    assert DOC.read_text(encoding="utf-8") == document(), "run: python -m tests.bad_inputs"


def test_malformed_json_names_line_and_column():
    answer = handle('{"analysis": "lm",\n "formula": }')
    assert answer["error"]["code"] == "spec"
    assert "line 2" in answer["error"]["message"]


def test_non_finite_values_are_refused():
    records = [{"y": 1.0, "x": 1.0}, {"y": float("inf"), "x": 2.0}, {"y": 3.0, "x": 3.0}]
    with pytest.raises(MixedBridgeError, match="non-finite"):
        mixedbridge.run({"analysis": "lm", "formula": "y ~ x", "data": {"records": records}})


def test_log_of_negative_values_is_refused():
    records = [{"y": 1.0, "x": -1.0}, {"y": 2.0, "x": 2.0}, {"y": 3.0, "x": 3.0}]
    with pytest.raises(MixedBridgeError, match=r"log\(x\)"):
        mixedbridge.run({"analysis": "lm", "formula": "y ~ log(x)", "data": {"records": records}})


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mixedbridge.cli", *args], capture_output=True,
                          text=True, input=stdin, timeout=120)


@pytest.mark.subprocess
def test_cli_exit_code_2_and_json_error(tmp_path):
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({**BASE, "formula": "load ~ tme"}))
    out = _cli("run", str(spec), "--format", "json")
    assert out.returncode == 2
    assert json.loads(out.stdout)["error"] == {
        "code": "data", "path": "/formula",
        "message": json.loads(out.stdout)["error"]["message"]}
    assert "Traceback" not in out.stderr


@pytest.mark.subprocess
def test_cli_malformed_json_file(tmp_path):
    spec = tmp_path / "bad.json"
    spec.write_text("{not json")
    out = _cli("run", str(spec))
    assert out.returncode == 2
    assert "malformed JSON" in out.stderr and "Traceback" not in out.stderr
