"""Property tests of ``serve`` (issue #19): random byte strings, random JSON (deep, huge numbers,
NaN/Infinity, lone surrogates) and random valid and invalid specs, interleaved with valid requests.
Every line gets exactly one well-formed JSON answer with its id where the id is readable, the valid
requests get the right results, and serve never stops before the end of its input.

The worker's loop runs in-process; a few examples go through a real supervised ``serve``.
"""
from __future__ import annotations

import io
import json
import os
import re
import select
import subprocess
import sys
from functools import cache

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mixedbridge.serve import handle, serve

from .bad_inputs import CATALOGUE, LM, LMM

EXAMPLES = int(os.environ.get("MIXEDBRIDGE_HYPOTHESIS_EXAMPLES", "40"))
PROFILE = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MISSING = object()

VALID = {
    "lm": LM,
    "lmm": LMM,
    "sleep": {"analysis": "lm", "data": {"dataset": "sleepstudy"}, "formula": "Reaction ~ Days"},
}
KEYS = ["id", "spec", "timeout", "jasp", "options", "data", "analysis", "formula", "records", "filter", "x"]

SURROGATES = st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2)
TEXT = st.one_of(st.text(max_size=6), SURROGATES)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300, max_value=10**320),
                    st.floats(allow_nan=True, allow_infinity=True), TEXT)
DOCS = st.recursive(SCALARS, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                     st.dictionaries(st.sampled_from(KEYS), kids, max_size=4)),
                    max_leaves=10)
IDS = st.one_of(st.integers(-10**6, 10**6), st.text(max_size=6), st.none(), st.floats(allow_nan=True), SURROGATES)


def _dump(doc: object, ascii_only: bool) -> bytes:
    """JSON as Python writes it (NaN, Infinity; a lone surrogate as an escape or as raw bytes)."""
    return json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def json_lines(draw) -> bytes:
    doc = draw(st.one_of(DOCS, st.dictionaries(st.sampled_from(KEYS), DOCS, max_size=4)))
    if isinstance(doc, dict) and draw(st.booleans()):
        doc["id"] = draw(IDS)
    return _dump(doc, draw(st.booleans()))


@st.composite
def deep_lines(draw) -> bytes:
    depth = draw(st.integers(min_value=50, max_value=3000))
    inner = b"[" * depth + b"]" * depth
    return draw(st.sampled_from([inner, b'{"id": "deep", "spec": ' + inner + b"}"]))


@st.composite
def spec_lines(draw) -> bytes:
    """A catalogued bad spec, or a request with a bad time limit."""
    ident = draw(IDS)
    if draw(st.booleans()):
        return _dump({"id": ident, "spec": draw(st.sampled_from(CATALOGUE))[1]}, True)
    timeout = draw(st.one_of(SCALARS, st.sampled_from([0, -5, "2", 10**400])).filter(lambda t: not _limit(t)))
    return _dump({"id": ident, "timeout": timeout, "spec": LM}, True)


def _limit(value: object) -> bool:
    """Whether a value is an acceptable time limit (0 < seconds <= one day)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 86400


def valid_line(name: str, ident: int) -> bytes:
    return json.dumps({"id": ident, "spec": VALID[name]}).encode()


LINES = st.one_of(
    st.binary(max_size=300).map(lambda b: b.replace(b"\n", b" ")),
    json_lines(), deep_lines(), spec_lines(),
    st.tuples(st.sampled_from(sorted(VALID)), st.integers(0, 99)).map(lambda t: valid_line(*t)),
)


@cache
def reference(name: str) -> dict:
    return strip(handle(json.dumps({"spec": VALID[name]})))


def strip(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k not in ("timing", "id")}


def strict(line: bytes) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in an answer")

    doc = json.loads(line.decode("utf-8"), parse_constant=refuse)
    assert isinstance(doc, dict) and doc, line[:200]
    return doc


def expected_id(line: bytes) -> object:
    """The id an answer must carry: the line's ``id`` when it is plain JSON, else none; a line that
    is not JSON (cut short, nested too deeply) still has the id it starts with (protocol v1)."""
    try:
        doc = json.loads(line.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        return leading_id(line)
    if not isinstance(doc, dict) or "id" not in doc or not _plain(doc["id"]):
        return MISSING
    return doc["id"]


LEADING_ID = re.compile(r'\s*\{\s*"id"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*[,}]')


def leading_id(line: bytes) -> object:
    """The plain JSON string or number after a line's opening ``{"id":``, else none."""
    found = LEADING_ID.match(line.decode("utf-8", "surrogateescape"))
    if not found:
        return MISSING
    try:
        value = json.loads(found[1])
    except ValueError:
        return MISSING
    return value if _plain(value) else MISSING


def _plain(value: object) -> bool:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.float_info.max:
        return False
    if isinstance(value, (list, dict)):
        return all(_plain(v) for v in (value.values() if isinstance(value, dict) else value))
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return False
    return True


def blank(line: bytes) -> bool:
    return not line.strip(b" \t\r\n")


def check(line: bytes, answer: dict) -> None:
    """One answer to one line: its id where readable; a valid request's right results; else an error."""
    want = expected_id(line)
    assert answer.get("id", MISSING) == want, (line[:200], answer)
    event("id echoed" if want is not MISSING else "no readable id")
    valid = [name for name in VALID if line == valid_line(name, answer.get("id", -1))]
    if valid:
        event("valid request")
        assert strip(answer) == reference(valid[0])
        return
    assert "error" in answer, (line[:200], answer)
    assert answer.get("status") == "error" or answer["error"]["code"] != "internal", (line[:200], answer)
    event("JASP-shaped error" if answer.get("status") == "error" else f"error at {answer['error']['path'][:12]!r}")


@PROFILE
@given(lines=st.lists(LINES, min_size=1, max_size=8))
def test_every_line_gets_one_answer_in_process(lines):
    out = io.BytesIO()
    assert serve(io.BytesIO(b"".join(line + b"\n" for line in lines)), out) == 0
    raw = out.getvalue()
    answers = [strict(a) for a in raw.split(b"\n")[:-1]]
    kept = [line for line in lines if not blank(line)]
    assert len(answers) == len(kept) and (raw.endswith(b"\n") or not raw)
    for line, answer in zip(kept, answers):
        check(line, answer)


class Server:
    """One supervised ``mixedbridge serve`` for a whole module of examples."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "mixedbridge.cli", "serve", "--timeout", "120"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        self.stdin, self.stdout, self.stderr = self.proc.stdin, self.proc.stdout, self.proc.stderr

    def ask(self, line: bytes) -> dict | None:
        assert self.proc.poll() is None, "serve stopped before the end of its input"
        self.stdin.write(line + b"\n")
        self.stdin.flush()
        if blank(line):
            return None
        ready, _, _ = select.select([self.stdout], [], [], 180)
        assert ready, f"no answer to {line[:200]!r}"
        return strict(self.stdout.readline())

    def close(self) -> tuple[int, bytes]:
        self.stdin.close()
        code = self.proc.wait(timeout=60)
        rest = self.stdout.read()
        return code, rest + self.stderr.read()


@pytest.fixture(scope="module")
def server():
    srv = Server()
    yield srv
    if srv.proc.poll() is None:
        srv.proc.kill()
        srv.proc.wait()


@pytest.mark.subprocess
@pytest.mark.slow
@settings(max_examples=max(4, EXAMPLES // 5), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINES, min_size=1, max_size=8))
def test_every_line_gets_one_answer_from_the_supervisor(server, lines):
    for line in lines:
        answer = server.ask(line)
        if answer is not None:
            check(line, answer)


@pytest.mark.subprocess
@pytest.mark.slow
def test_the_supervisor_ends_only_with_its_input(server):
    assert server.ask(valid_line("lm", 1))["id"] == 1
    code, rest = server.close()
    assert code == 0 and b"Traceback" not in rest


SPEC_KEYS = ["analysis", "formula", "data", "filter", "levels", "options", "engine", "compare", "name"]
API_KEYS = KEYS + SPEC_KEYS + ["path", "dataset", "column", "in", "gte"]
API_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6),
                                    st.sampled_from(["load", "time", "group", "participant", "x.csv", "../a.csv"])),
                          lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                 st.dictionaries(st.sampled_from(API_KEYS), kids, max_size=3)),
                          max_leaves=8)


@PROFILE
@given(changes=st.dictionaries(st.sampled_from(SPEC_KEYS), API_VALUES, min_size=1, max_size=3))
def test_the_api_raises_only_mixedbridge_errors(changes):
    """Any spec a caller can build from JSON values: results, or a MixedBridgeError."""
    from mixedbridge import MixedBridgeError, run

    try:
        run({**LM, **changes})
    except MixedBridgeError:
        event("MixedBridgeError")
