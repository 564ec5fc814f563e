"""The host protocol in-process: every request line gets exactly one well-formed answer with its
id, and no line stops the worker (issue #19, items 1, 5, 6, 9, 14, 17 and the request size)."""
from __future__ import annotations

import io
import json
import math

import pytest

import mixedbridge
from mixedbridge import cli, protocol, strictjson, supervisor
from mixedbridge.errors import MixedBridgeError
from mixedbridge.serve import handle, serve

from .bad_inputs import LM

GOOD = json.dumps({"id": "ok", "spec": LM}).encode()
BASE = '{"id": 1, "spec": {"analysis": "lm", "formula": "y ~ x", "data": {"dataset": "tenthirty"}, '
JASP = {"jasp": "lm", "options": {"dependent": "load", "fixedVariables": ["time"]},
        "data": {"dataset": "tenthirty"}}


def strict(line: bytes) -> dict:
    """An answer line parsed as strict JSON (no NaN/Infinity)."""
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in an answer")

    doc = json.loads(line.decode("utf-8"), parse_constant=refuse)
    assert isinstance(doc, dict)
    return doc


def serve_lines(lines: list[bytes], **kwargs) -> list[dict]:
    """Run the worker's loop over these lines; its answers, each checked to be one strict JSON line."""
    out = io.BytesIO()
    assert serve(io.BytesIO(b"".join(line + b"\n" for line in lines)), out, **kwargs) == 0
    raw = out.getvalue()
    assert raw.endswith(b"\n") or not raw
    return [strict(line) for line in raw.split(b"\n")[:-1]]


def error(answer: dict) -> dict:
    return answer["error"]


# -- item 1: one line never kills serve ----------------------------------------------------


@pytest.mark.parametrize("line", [
    b'{"id": 1, "timeout": 1' + b"0" * 400 + b', "spec": ' + json.dumps(LM).encode() + b"}",
    b"[" * 1000,
    b"[" * 100_000,
    b'{"id": 3, "x": "\xff"}',
    bytes(range(256)).replace(b"\n", b""),
    b'{"id": NaN, "spec": ' + json.dumps(LM).encode() + b"}",
    b'{"id": 1' + b"0" * 5000 + b"}",
    b"\x00\x01\x02",
    b'"just a string"',
    b"{",
])
def test_a_bad_line_is_answered_and_the_next_one_too(line):
    answers = serve_lines([line, GOOD])
    assert len(answers) == 2
    assert error(answers[0])["code"] == "spec" and error(answers[0])["message"]
    assert answers[1]["id"] == "ok" and answers[1]["tables"]


def test_the_same_lines_through_the_supervisor_front(monkeypatch):
    """Lines the supervisor refuses itself never reach the worker."""
    child = FakeChild(b"unused")
    for line in (b"[" * 1000, b'{"id": 3, "x": "\xff"}', b'{"id": 1, "timeout": 1' + b"0" * 400 + b', "spec": {}}'):
        answer = strict(supervisor.answer(child, line, 600.0, protocol.MAX_REQUEST_BYTES))
        assert error(answer)["code"] == "spec"
    assert child.asked == []


def test_unreadable_bytes_keep_a_readable_id():
    answer = serve_lines([b'{"id": "r1", "spec": {"formula": "\xff"}}'])[0]
    assert answer["id"] == "r1" and "not UTF-8" in error(answer)["message"]


# -- item 6: NaN, Infinity and lone surrogates ---------------------------------------------


@pytest.mark.parametrize("line,path", [
    (BASE + '"filter": [{"column": "load", "gte": Infinity}]}}', "/spec/filter/0/gte"),
    (BASE + '"options": {"timeout": Infinity}}}', "/spec/options/timeout"),
    (BASE + '"filter": [{"column": "load", "gte": 1e400}]}}', "/spec/filter/0/gte"),
    ('{"id": 1, "spec": {"analysis": "lm", "formula": "y ~ \\ud800", "data": {"dataset": "tenthirty"}}}',
     "/spec/formula"),
    ('{"id": 1, "spec": {"analysis": "lm", "formula": "y ~ x", "data": {"records": [{"\\udfff": 1}]}}}',
     "/spec/data/records/0/\\udfff"),
])
def test_non_json_values_are_refused_with_their_path(line, path):
    answer = serve_lines([line.encode(), GOOD])
    assert answer[0]["id"] == 1 and error(answer[0])["path"] == path
    assert answer[1]["tables"]


def test_nan_id_is_not_echoed():
    answer = serve_lines([b'{"id": NaN, "spec": {}}', b'{"id": "\\ud800", "spec": {}}'])
    assert all("id" not in a for a in answer)
    assert error(answer[0])["path"] == "/id" and "NaN" in error(answer[0])["message"]


def test_cli_exits_2_on_infinity_in_a_spec_file(tmp_path, capsys):
    path = tmp_path / "inf.json"
    path.write_text('{"analysis": "lm", "formula": "load ~ time", "data": {"dataset": "tenthirty"}, '
                    '"filter": [{"column": "load", "gte": Infinity}]}')
    assert cli.main(["run", str(path), "--format", "json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["path"] == "/filter/0/gte"


# -- item 14: time limits ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["beside", "options"])
@pytest.mark.parametrize("value", [0, -5, "2", True, None, 1e300, 10**400, [1]])
def test_a_bad_time_limit_is_an_error(where, value):
    if where == "beside":
        doc, path = {"id": 7, "timeout": value, "spec": LM}, "/timeout"
    else:
        doc, path = {"id": 7, "spec": {**LM, "options": {"timeout": value}}}, "/spec/options/timeout"
    answer = handle(json.dumps(doc))
    assert answer["id"] == 7 and error(answer)["path"] == path
    assert "seconds above 0" in error(answer)["message"]


def test_time_limits_reach_the_worker():
    child = FakeChild(b'{"id": 1}\n')
    cases = [({"spec": LM, "timeout": 2.5}, 2.5), ({"spec": {**LM, "options": {"timeout": 3}}}, 3.0),
             ({**JASP, "timeout": 4}, 4.0), ({"spec": LM}, 600.0), ({**LM, "options": {"timeout": 5}}, 5.0)]
    for doc, expected in cases:
        supervisor.answer(child, json.dumps(doc).encode(), 600.0, protocol.MAX_REQUEST_BYTES)
        assert child.asked[-1][1] == expected


# -- item 5: JASP requests keep their id and shape ------------------------------------------


class FakeChild:
    """Stands in for the worker: answers every line with ``reply``."""

    def __init__(self, reply: bytes | supervisor.Failure) -> None:
        self.reply = reply
        self.asked: list[tuple[bytes, float | None]] = []

    def ask(self, line: bytes, timeout: float):
        self.asked.append((line, timeout))
        return self.reply


@pytest.mark.parametrize("code", ["timeout", "crash"])
def test_jasp_failures_keep_the_id_and_jasp_shape(code):
    child = FakeChild(supervisor.Failure(code, f"the worker {code}"))
    answer = strict(supervisor.answer(child, json.dumps({**JASP, "id": "j1"}).encode(), 1.0, 1000))
    assert answer["id"] == "j1" and answer["status"] == "error"
    assert answer["error"]["type"] == "fatalError" and answer["error"]["errorMessage"] == f"the worker {code}"
    assert answer["title"] == "Linear Model"
    answer = strict(supervisor.answer(child, json.dumps({"id": "s1", "spec": LM}).encode(), 1.0, 1000))
    assert answer == {"error": {"code": code, "message": f"the worker {code}", "path": ""}, "id": "s1"}


def test_jasp_request_errors_are_in_jasp_shape_with_id():
    for doc in ({**JASP, "data": {"records": 5}}, {**JASP, "jasp": ["lm"]}, {**JASP, "options": {"x": math.pi},
                                                                            "timeout": "1"}):
        answer = handle(json.dumps({**doc, "id": "j"}))
        assert answer["id"] == "j" and answer["status"] == "error", answer
        assert answer["error"]["type"] == "validationError"
    answer = handle('{"id": "j", "jasp": "lm", "options": {"x": NaN}, "data": {"dataset": "tenthirty"}}')
    assert answer["id"] == "j" and answer["error"]["path"] == "/options/x"


def test_a_jasp_request_may_carry_a_time_limit():
    answer = handle(json.dumps({**JASP, "id": 9, "timeout": 60}))
    assert answer["id"] == 9 and answer["status"] in ("complete", "error")
    assert "unknown key" not in json.dumps(answer)


# -- item 17: the echo and parsing once ------------------------------------------------------


def test_the_echoed_spec_carries_a_count_not_the_records():
    rows = [{"y": float(i % 4 + i), "x": float(i)} for i in range(200)]
    answer = handle(json.dumps({"id": 1, "spec": {"analysis": "lm", "formula": "y ~ x", "data": {"records": rows}}}))
    assert answer["spec"]["data"] == {"records_count": 200}
    assert len(json.dumps(answer)) < len(json.dumps(rows))


def test_the_supervisor_parses_each_line_once(monkeypatch):
    calls = []
    parse = strictjson.parse
    monkeypatch.setattr(strictjson, "parse", lambda text: calls.append(1) or parse(text))
    child = FakeChild(b'{"id": 1}\n')
    for line in (GOOD, json.dumps({**JASP, "id": 2}).encode(), b'{"id": 3, "timeout": 0, "spec": {}}'):
        calls.clear()
        supervisor.answer(child, line, 600.0, protocol.MAX_REQUEST_BYTES)
        assert len(calls) == 1


# -- the request size --------------------------------------------------------------------------


def test_a_line_over_the_limit_is_answered_with_its_id():
    big = json.dumps({"id": "big", "spec": {**LM, "data": {"records": [{"x": i} for i in range(500)]}}}).encode()
    answers = serve_lines([big, GOOD, b"x" * 5000, GOOD], max_request_bytes=2000)
    assert [a.get("id") for a in answers] == ["big", "ok", None, "ok"]
    assert "longer than the limit of 2000 bytes" in error(answers[0])["message"]
    assert "--max-request-mb" in error(answers[2])["message"]


def test_a_line_of_exactly_the_limit_is_read():
    assert serve_lines([GOOD], max_request_bytes=len(GOOD))[0]["tables"]
    assert "error" in serve_lines([GOOD], max_request_bytes=len(GOOD) - 1)[0]


def test_blank_lines_are_skipped_but_other_control_characters_answered():
    answers = serve_lines([b"", b"  \t\r", b"\x0b", GOOD])
    assert len(answers) == 2 and "error" in answers[0] and answers[1]["id"] == "ok"


# -- answers that cannot be written --------------------------------------------------------


def test_an_unwritable_answer_becomes_an_internal_error_with_the_id():
    request = protocol.read_request(json.dumps({"id": 5, "spec": LM}))
    line = protocol.dump(request.tag({"tables": [math.nan]}), request)
    assert strict(line) == {"error": {"code": "internal", "message": strict(line)["error"]["message"], "path": ""},
                            "id": 5}
    jasp = protocol.read_request(json.dumps({**JASP, "id": 6}))
    assert strict(protocol.dump({"x": "\ud800", "id": 6}, jasp))["status"] == "error"


# -- item 9: the CLI and the API -------------------------------------------------------------


def test_cli_run_continues_after_a_bad_file(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(LM))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**JASP, "data": {"records": 5}}))
    worse = tmp_path / "worse.json"
    worse.write_text('{"analysis": "lm", "formula": "load ~ time", "data": {"dataset": "tenthirty"}, "x": NaN}')
    assert cli.main(["run", str(good), str(bad), str(worse), str(good), "--format", "json"]) == 2
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert "tables" in out[0] and out[1]["status"] == "error" and "error" in out[2] and "tables" in out[3]


def test_cli_check_with_a_numeric_data_path(tmp_path, capsys):
    path = tmp_path / "num.json"
    path.write_text(json.dumps({**LM, "data": {"path": 5}}))
    assert cli.main(["check", str(path)]) == 2
    assert "/data/path" in capsys.readouterr().err


def test_cli_out_naming_a_file(tmp_path, capsys):
    spec, out = tmp_path / "s.json", tmp_path / "taken"
    spec.write_text(json.dumps(LM))
    out.write_text("x")
    assert cli.main(["run", str(spec), "--out", str(out)]) == 2
    assert "is a file" in capsys.readouterr().err and out.read_text() == "x"


@pytest.mark.parametrize("argv", [["serve", "--timeout", "0"], ["serve", "--timeout", "nan"],
                                  ["serve", "--timeout", "-5"], ["serve", "--max-request-mb", "0"],
                                  ["run", "x.json", "--data-root", "/nonexistent-folder"]])
def test_cli_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2


@pytest.mark.parametrize("spec", [
    {"analysis": "lm", "formula": "y ~ x", "data": {"records": 5}},
    {"analysis": "lm", "formula": "y ~ x", "data": {"path": 5}},
    {"analysis": "lm", "formula": "y ~ x", "data": {"dataset": ["x"]}},
    {"analysis": "lm", "formula": "y ~ x", "data": {"records": [{"y": 1, "x": 2}]}, "levels": {"x": [[1]]}},
    {"analysis": "lm", "formula": "y ~ x", "data": {"records": [{"y": 1}]}, "filter": [{"column": "y", "gte": "1"}]},
    "/nonexistent/spec.json",
    5,
])
def test_the_api_raises_only_mixedbridge_errors(spec):
    with pytest.raises(MixedBridgeError):
        mixedbridge.run(spec)


def test_the_api_refuses_a_spec_nested_too_deeply():
    deep: dict = {}
    for _ in range(2000):
        deep = {"x": deep}
    with pytest.raises(MixedBridgeError, match="nested more than"):
        mixedbridge.run({**LM, "options": deep})
