"""Host protocol v1 (issue #17, docs/protocol.md): hello, cancel, progress messages, ``serve --workers
N``, and ids on errors for lines that are not JSON.

In-process: the message shapes, the progress hook (mixedbridge.progress) and the worker's
cooperative stop. Through real processes: ``serve --workers 2`` driven as a host would drive it.
"""
from __future__ import annotations

import io
import json
import os
import queue
import subprocess
import sys
import threading
import time

import pytest

import mixedbridge
from mixedbridge import cli, progress, protocol, serve
from mixedbridge.serve import Session, handle

from .bad_inputs import LM
from .listeners import Listener

SLEEP = {"analysis": "lmm", "formula": "Reaction ~ Days + (Days | Subject)", "data": {"dataset": "sleepstudy"}}
SHORT = {"analysis": "lm", "formula": "Reaction ~ Days", "data": {"dataset": "sleepstudy"}}


def boot(nsim: int, seed: int = 1) -> dict:
    return {**SLEEP, "options": {"confint": {"method": "bootstrap", "nsim": nsim, "seed": seed}}}


def lines_of(raw: bytes) -> list[dict]:
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


def serve_lines(lines: list[dict | bytes], session: Session | None = None) -> list[dict]:
    text = b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines)
    out = io.BytesIO()
    assert serve.serve(io.BytesIO(text), out, session=session) == 0
    return lines_of(out.getvalue())


def strip(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k not in ("timing", "id")}


# -- hello and the method envelope -------------------------------------------------------------


def test_hello_states_the_version_capabilities_and_limits():
    answer = handle(json.dumps({"id": "h", "method": "hello", "params": {"protocol": 1}}))
    hello = answer["hello"]
    assert answer["id"] == "h" and hello["protocol"] == protocol.VERSION == 1
    assert set(hello["methods"]) == {"hello", "run", "cancel"}
    assert {"lm", "lmm"} <= set(hello["analyses"]) and {"native", "lme4"} <= set(hello["engines"])
    assert hello["progress"]["stages"] == ["fit", "bootstrap", "bootstrap-tests", "profile"]
    limits = hello["limits"]
    assert limits["max_request_bytes"] == protocol.MAX_REQUEST_BYTES and limits["max_nesting"] == 64
    assert limits["max_timeout_s"] == protocol.MAX_TIMEOUT
    assert hello["cancel"] is False and hello["workers"] == 1  # the worker alone (serve --unsupervised) ...
    assert limits["default_timeout_s"] is None  # ... has no time limits


@pytest.mark.parametrize("doc,path,words", [
    ({"id": 1, "method": "hello", "params": {"protocol": 2}}, "/params/protocol", "version 1, not 2"),
    ({"id": 1, "method": "goodbye"}, "/method", "'run', 'hello', 'cancel'"),
    ({"id": 1, "method": 5}, "/method", "not 5"),
    ({"id": 1, "method": "cancel"}, "/params", "the id of the request to cancel"),
    ({"id": 1, "method": "cancel", "params": [1]}, "/params", "not an array"),
    ({"id": 1, "method": "cancel", "params": {"id": 2, "why": "x"}}, "/params/why", "'why'"),
    ({"id": 1, "method": "hello", "spec": LM}, "/spec", "unknown key(s) 'spec'"),
    ({"id": 1, "method": "run"}, "/method", "needs 'spec'"),
    ({"id": 1, "method": "run", "spec": LM, "params": {}}, "/params", "not 'params'"),
    ({"id": 1, "spec": LM, "progress": "yes"}, "/progress", "true or false"),
])
def test_a_bad_method_call_is_an_error_with_its_id_and_path(doc, path, words):
    answer = handle(json.dumps(doc))
    assert answer["id"] == 1 and answer["error"]["code"] == "spec" and answer["error"]["path"] == path
    assert words in answer["error"]["message"]


def test_run_may_be_named_and_old_request_lines_still_work():
    named = handle(json.dumps({"id": 1, "method": "run", "spec": LM}))
    assert strip(named) == strip(handle(json.dumps({"id": 2, "spec": LM}))) == strip(handle(json.dumps(LM)))
    jasp = {"jasp": "lm", "options": {"dependent": "load", "fixedVariables": ["time"]},
            "data": {"dataset": "tenthirty"}}
    assert strip(handle(json.dumps({**jasp, "id": 3, "method": "run", "progress": True}))) == strip(
        handle(json.dumps({**jasp, "id": 4})))


def test_cancel_in_the_unsupervised_worker_finds_nothing_running():
    answer = handle(json.dumps({"id": "c", "method": "cancel", "params": {"id": "x"}}))
    assert answer == {"cancel": {"id": "x", "found": False}, "id": "c"}


# -- ids on lines that are not JSON --------------------------------------------------------------


@pytest.mark.parametrize("line,ident", [
    (b'{"id": 5, "spec": {"analysis": "lm", ', 5),
    (b'{"id": "cut", "spec": ' + b"[" * 3000 + b"]" * 3000 + b"}", "cut"),
    (b'{"spec": {"id": 3, "x": 1}, "id": "outer", "x": tru}', "outer"),
    (b'{"id": "a\\"b", "spec": {,}}', 'a"b'),
    (b'{"id": -2.5e1, "spec": x}', -25.0),
    (b'{"id": "\xff", "spec": {', None),
    (b'{"id": "\\ud800", "spec": {', None),
    (b'{"id": NaN, "spec": {', None),
    (b'{"id": 1' + b"0" * 5000 + b", ", None),
    (b'[{"id": 1}', None),
    (b'{"x": "id", "y": ', None),
])
def test_lines_that_are_not_json_keep_a_readable_id(line, ident):
    answer = serve_lines([line])[0]
    assert answer["error"]["code"] == "spec"
    assert answer.get("id") == ident and (ident is not None or "id" not in answer)


def test_an_oversized_line_keeps_an_id_that_is_not_its_first_key():
    line = json.dumps({"spec": LM, "id": "late", "pad": "x" * 5000}).encode()
    out = io.BytesIO()
    serve.serve(io.BytesIO(line + b"\n"), out, max_request_bytes=1000)
    answer = lines_of(out.getvalue())[0]
    assert answer["id"] == "late" and "longer than the limit of 1000 bytes" in answer["error"]["message"]


# -- the progress hook ---------------------------------------------------------------------------


def test_work_inside_a_counted_stage_reports_only_the_stage():
    listener = Listener()
    with progress.listening(listener):
        progress.tick("fit")
        with progress.stage("bootstrap", 3) as step:
            for i in range(3):
                progress.tick("fit")  # an inner refit: checked, not shown
                step(i + 1)
        progress.tick("fit")
    assert listener.seen == [(1, None, "fit"), (0, 3, "bootstrap"), (1, 3, "bootstrap"), (2, 3, "bootstrap"),
                             (3, 3, "bootstrap"), (5, None, "fit")]
    progress.tick("fit")  # no listener: nothing happens


def test_a_cancelled_listener_stops_the_work_through_except_exception():
    listener = Listener(stop_after=3)
    caught = []
    with progress.listening(listener), pytest.raises(progress.Cancelled):
        try:
            for i in range(100):
                progress.report(i, 100, "bootstrap")
        except Exception as exc:  # noqa: BLE001 - what a fallback in the work might do
            caught.append(exc)
    assert caught == [] and len(listener.seen) == 3


def test_bootstrap_and_profile_report_their_stages():
    ml = {**SLEEP, "options": {"reml": False}}  # a model no other test fits (a fit cache cannot answer it)
    listener = Listener()
    with progress.listening(listener):
        mixedbridge.run({**ml, "options": {"reml": False, "confint": {"method": "bootstrap", "nsim": 15}}})
        mixedbridge.run({**ml, "options": {"reml": False, "confint": {"method": "profile"}}})
    stages = [s for s in listener.seen if s[2] != "fit"]
    assert [d for d, _, s in stages if s == "bootstrap"] == list(range(16))
    assert [(d, t) for d, t, s in stages if s == "profile"] == [(d, 6) for d in range(7)]  # 3 sd/cor, σ, 2 β
    fits = [d for d, t, s in listener.seen if s == "fit"]
    assert fits[:3] == [1, 2, 3] and all(b > a for a, b in zip(fits, fits[1:]))  # counted on over all fits
    assert all(t is None for _, t, s in listener.seen if s == "fit")


def test_progress_messages_come_before_the_answer_when_asked(monkeypatch):
    monkeypatch.setattr(protocol, "PROGRESS_INTERVAL_S", 0.0)
    answers = serve_lines([{"id": "b", "spec": boot(10), "progress": True}, {"id": "quiet", "spec": boot(10)}])
    messages = [a for a in answers if "progress" in a]
    assert all(a["id"] == "b" for a in messages) and "progress" not in answers[-2] and "progress" not in answers[-1]
    assert [a["id"] for a in answers if "progress" not in a] == ["b", "quiet"]
    booted = [a["progress"] for a in messages if a["progress"]["stage"] == "bootstrap"]
    assert [p["done"] for p in booted] == list(range(11)) and {p["total"] for p in booted} == {10}


def test_after_hello_every_request_reports_progress_unless_it_says_no(monkeypatch):
    monkeypatch.setattr(protocol, "PROGRESS_INTERVAL_S", 0.0)
    answers = serve_lines([{"id": 0, "method": "hello"}, {"id": 1, "spec": boot(3)},
                           {"id": 2, "spec": boot(3), "progress": False}])
    assert {a["id"] for a in answers if "progress" in a} == {1}


def test_progress_messages_are_spaced_by_the_interval(monkeypatch):
    monkeypatch.setattr(protocol, "PROGRESS_INTERVAL_S", 0.1)
    t0 = time.monotonic()
    answers = serve_lines([{"id": "b", "spec": boot(150), "progress": True}])
    elapsed = time.monotonic() - t0
    messages = [a["progress"] for a in answers if "progress" in a]
    assert len(messages) <= elapsed / 0.1 + 2
    dones = [p["done"] for p in messages if p["stage"] == "bootstrap"]
    assert dones == sorted(dones) and dones[-1] == 150  # the stage's end is always shown


def test_the_worker_stops_a_request_when_the_supervisor_says_so(monkeypatch):
    """The cooperative stop: the control pipe's serial reaches the running request's progress
    checks; the request is answered ``cancelled`` and the next one normally."""
    monkeypatch.setattr(serve, "_STOP", [0])
    timer = threading.Timer(0.5, lambda: serve._STOP.__setitem__(0, 1))
    timer.start()
    t0 = time.monotonic()
    answers = serve_lines([{"id": "long", "spec": boot(20_000)}, {"id": "next", "spec": boot(5)}])
    timer.cancel()
    assert answers[0] == {"error": {"code": "cancelled", "message": protocol.CANCELLED, "path": ""}, "id": "long"}
    assert time.monotonic() - t0 < 30
    assert strip(answers[1]) == strip(handle(json.dumps({"spec": boot(5)})))


def test_a_cancelled_jasp_request_is_answered_in_jasp_shape():
    request = protocol.read_request(json.dumps({"id": "j", "jasp": "lmm", "options": {}, "data": {}}))
    answer = request.failure("cancelled", protocol.CANCELLED)
    assert answer["id"] == "j" and answer["status"] == "error"
    assert answer["error"]["type"] == "cancelled" and answer["error"]["errorMessage"] == protocol.CANCELLED


# -- serve --workers 2, driven as a host would -------------------------------------------------


class Host:
    """A host talking to ``mixedbridge serve``: lines out, messages in (each with its arrival time)."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "MIXEDBRIDGE_FAULTS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "mixedbridge.cli", "serve", *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.inbox: queue.Queue = queue.Queue()
        self.log: list[tuple[float, dict]] = []
        self.returned: set[int] = set()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.inbox.put((time.monotonic(), json.loads(line)))
        self.inbox.put((time.monotonic(), None))

    def send(self, doc: dict) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(doc).encode() + b"\n")
        self.proc.stdin.flush()
        return time.monotonic()

    def until(self, wanted, timeout: float = 120) -> tuple[float, dict]:
        """The first message not returned before that satisfies ``wanted`` (read until it comes),
        with its arrival time."""
        for k, (at, message) in enumerate(self.log):
            if k not in self.returned and wanted(message):
                self.returned.add(k)
                return at, message
        deadline = time.monotonic() + timeout
        while True:
            at, message = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            assert message is not None, "serve stopped"
            self.log.append((at, message))
            if wanted(message):
                self.returned.add(len(self.log) - 1)
                return at, message

    def final(self, ident: object, timeout: float = 120) -> tuple[float, dict]:
        return self.until(lambda m: m.get("id") == ident and "progress" not in m, timeout)

    def of(self, ident: object) -> list[dict]:
        return [m for _, m in self.log if m.get("id") == ident]

    def close(self) -> tuple[int, bytes]:
        assert self.proc.stdin is not None and self.proc.stderr is not None
        self.proc.stdin.close()
        code = self.proc.wait(timeout=60)
        return code, self.proc.stderr.read()


@pytest.fixture(scope="module")
def host():
    h = Host("--workers", "2", "--timeout", "300")
    yield h
    if h.proc.poll() is None:
        h.proc.kill()
        h.proc.wait()


def reference(spec: dict) -> dict:
    return strip(handle(json.dumps({"spec": spec})))


@pytest.mark.subprocess
@pytest.mark.slow
def test_a_host_cancels_a_long_bootstrap_while_a_short_request_is_answered(host):
    host.send({"id": "h", "method": "hello", "params": {"protocol": 1}})
    _, hello = host.final("h")
    assert hello["hello"]["protocol"] == 1 and hello["hello"]["workers"] == 2 and hello["hello"]["cancel"] is True
    assert hello["hello"]["limits"]["default_timeout_s"] == 300
    host.send({"id": "long", "spec": boot(100_000)})
    host.until(lambda m: m.get("id") == "long" and m.get("progress", {}).get("stage") == "bootstrap")
    host.send({"id": "short", "spec": SHORT})
    _, short = host.final("short")
    assert strip(short) == reference(SHORT)
    assert all("progress" in m for m in host.of("long")), "the long request still runs"
    host.until(lambda m: m.get("id") == "long" and m.get("progress", {}).get("done", 0) > 0)
    sent = host.send({"id": "stop", "method": "cancel", "params": {"id": "long"}})
    at, cancelled = host.final("long", timeout=5)
    assert cancelled["error"]["code"] == "cancelled"
    assert at - sent < 0.2, f"the cancel took {at - sent:.3f} s"
    _, ack = host.final("stop", timeout=5)
    assert ack["cancel"] == {"id": "long", "found": True}
    progress_of_long = [m["progress"] for m in host.of("long") if "progress" in m]
    booted = [p for p in progress_of_long if p["stage"] == "bootstrap"]
    assert len(booted) >= 2 and {p["total"] for p in booted} == {100_000}
    dones = [p["done"] for p in booted]
    assert dones == sorted(dones) and len(set(dones)) == len(dones)
    t0 = host.send({"id": "after", "spec": boot(20, seed=7)})
    at, after = host.final("after")
    assert strip(after) == reference(boot(20, seed=7))
    assert at - t0 < 30
    assert host.of("long")[-1] is cancelled  # nothing about it after its answer


@pytest.mark.subprocess
@pytest.mark.slow
def test_a_worker_that_does_not_stop_is_killed_within_the_limit(host):
    """A request with no progress checks (here a hang; in practice a long call into R) is stopped
    by killing its worker; a fresh one answers the next request."""
    host.send({"id": "hang", "fault": "hang", "spec": LM})
    host.send({"id": "queued", "spec": LM})
    host.send({"id": "queued2", "spec": LM})
    _, first = host.final("queued")  # the other worker is free
    time.sleep(0.5)
    sent = host.send({"id": "k", "method": "cancel", "params": {"id": "hang"}})
    at, killed = host.final("hang", timeout=5)
    assert killed["error"]["code"] == "cancelled" and at - sent < 0.2, f"{at - sent:.3f} s"
    host.final("queued2")
    host.send({"id": "again", "spec": LM})
    host.send({"id": "again2", "spec": LM})
    answers = [host.final("again")[1], host.final("again2")[1]]
    assert all(strip(a) == strip(first) for a in answers)


@pytest.mark.subprocess
@pytest.mark.slow
def test_a_waiting_request_is_cancelled_at_once_and_unknown_ids_are_said_so(host):
    host.send({"id": "w1", "fault": "hang", "spec": LM})
    host.send({"id": "w2", "fault": "hang", "spec": LM})
    host.send({"id": "w3", "spec": LM})  # waits: both workers hang
    time.sleep(0.3)
    sent = host.send({"id": "c3", "method": "cancel", "params": {"id": "w3"}})
    at, answer = host.final("w3", timeout=5)
    assert answer["error"]["code"] == "cancelled" and at - sent < 0.2
    assert host.final("c3")[1]["cancel"]["found"] is True
    for ident in ("w1", "w2"):
        host.send({"id": f"c-{ident}", "method": "cancel", "params": {"id": ident}})
        assert host.final(ident, timeout=5)[1]["error"]["code"] == "cancelled"
    host.send({"id": "c4", "method": "cancel", "params": {"id": "w3"}})
    assert host.final("c4")[1]["cancel"] == {"id": "w3", "found": False}
    host.send({"id": "last", "spec": LM})
    assert "tables" in host.final("last")[1]
    code, err = host.close()
    assert code == 0 and b"Traceback" not in err


@pytest.mark.parametrize("args", [["--workers", "0"], ["--workers", "65"], ["--workers", "two"]])
def test_serve_refuses_a_number_of_workers_out_of_range(args, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", *args])
    assert info.value.code == 2 and "--workers must be a whole number from 1 to 64" in capsys.readouterr().err


def test_serve_refuses_workers_without_the_supervisor(capsys):
    assert cli.main(["serve", "--workers", "2", "--unsupervised"]) == 2
    assert "--workers needs the supervisor" in capsys.readouterr().err


def test_a_worker_that_cannot_be_started_is_an_answer_not_a_hang(monkeypatch):
    from mixedbridge import supervisor

    def no_process(*args, **kwargs):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(supervisor.subprocess, "Popen", no_process)
    out = io.BytesIO()
    lines = b'{"id": 1, "spec": {}}\n{"id": 2, "method": "hello"}\n{"id": 3, "spec": {}}\n'
    assert supervisor.supervise(io.BytesIO(lines), out, workers=2) == 0
    answers = {a["id"]: a for a in lines_of(out.getvalue())}
    assert answers[2]["hello"]["workers"] == 2
    for ident in (1, 3):
        assert answers[ident]["error"]["code"] == "crash" and "no worker could be started" in answers[ident]["error"][
            "message"]
