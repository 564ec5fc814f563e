"""Every class of bad spec or data gives a clear error naming where and what was expected."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import mixedbridge
from mixedbridge.errors import MixedBridgeError
from mixedbridge.serve import handle

from .conftest import TENTHIRTY_LEGPRESS

BASE = {"analysis": "lm", "formula": "load ~ time * group", **TENTHIRTY_LEGPRESS}

CASES = [
    # (id, change to BASE, error code, path, words the message must contain)
    ("unknown analysis", {"analysis": "glm"}, "spec", "/analysis", ["'glm'", "'lm'", "'lmm'"]),
    ("wrong type", {"formula": 42}, "spec", "/formula", ["expected string"]),
    ("unknown key", {"color": "red"}, "spec", "", ["'color'"]),
    ("bad engine", {"engine": "sas"}, "spec", "/engine", ["'sas'", "'native'"]),
    ("bad data", {"data": {"file": "x.csv"}}, "spec", "/data", ["path", "dataset", "records"]),
    ("unknown dataset", {"data": {"dataset": "iris"}}, "data", "/data/dataset", ["'iris'", "sleepstudy"]),
    ("missing file", {"data": {"path": "/nonexistent/x.csv"}}, "data", "/data/path", ["does not exist"]),
    ("unknown column in formula", {"formula": "load ~ tme * group"}, "data", "/formula", ["'tme'", "not in the data"]),
    ("unknown column in filter", {"filter": [{"column": "exercize", "in": ["legpress"]}]}, "data",
     "/filter/0/column", ["'exercize'"]),
    ("unknown column in levels", {"levels": {"tim": ["pre", "post"]}}, "data", "/levels/tim", ["'tim'"]),
    ("level that does not occur", {"levels": {"time": ["pre", "postt"]}}, "data", "/levels/time/1",
     ["'postt'", "does not occur"]),
    ("unlisted level present", {"levels": {"time": ["pre"]}}, "data", "/levels/time", ["'post'", "not listed"]),
    ("non-numeric response", {"formula": "group ~ time"}, "data", "/formula", ["'group'", "numeric"]),
    ("filter leaves no rows", {"filter": [{"column": "exercise", "in": ["squat"]}]}, "data", "/filter/0",
     ["no rows"]),
    ("filter type mismatch", {"filter": [{"column": "load", "in": ["heavy"]}]}, "data", "/filter/0/in",
     ["numeric"]),
    ("formula syntax", {"formula": "load ~ time * "}, "formula", "/formula", ["ends too early"]),
    ("formula without tilde", {"formula": "load time"}, "formula", "/formula", ["'~'"]),
    ("unbalanced parenthesis", {"formula": "load ~ (time + group"}, "formula", "/formula", ["')'"]),
    ("unknown function", {"formula": "load ~ system(time)"}, "formula", "/formula", ["'system'", "allowed"]),
    ("code in formula", {"formula": "load ~ __import__('os')"}, "formula", "/formula", ["unexpected character"]),
    ("bar outside parentheses", {"formula": "load ~ time | participant"}, "formula", "/formula", ["parentheses"]),
    ("random term in lm", {"formula": "load ~ time + (1 | participant)"}, "formula", "/formula", ["'lmm'"]),
    ("lmm without random term", {"analysis": "lmm"}, "formula", "/formula", ["random-effects"]),
]


@pytest.mark.parametrize("name,change,code,path,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(name, change, code, path, words):
    with pytest.raises(MixedBridgeError) as info:
        mixedbridge.run({**BASE, **change})
    err = info.value
    assert (err.code, err.path) == (code, path), err.message
    for w in words:
        assert w in err.message


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


def test_cli_exit_code_2_and_json_error(tmp_path):
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({**BASE, "formula": "load ~ tme"}))
    out = _cli("run", str(spec), "--format", "json")
    assert out.returncode == 2
    assert json.loads(out.stdout)["error"] == {
        "code": "data", "path": "/formula",
        "message": json.loads(out.stdout)["error"]["message"]}
    assert "Traceback" not in out.stderr


def test_cli_malformed_json_file(tmp_path):
    spec = tmp_path / "bad.json"
    spec.write_text("{not json")
    out = _cli("run", str(spec))
    assert out.returncode == 2
    assert "malformed JSON" in out.stderr and "Traceback" not in out.stderr
