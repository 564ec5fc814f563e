"""The ``serve`` worker's warm-up (issue #16): after its first answered analysis it imports what
an emmeans or plot click needs and draws one small figure, in a background thread, so that the
click pays no start-up; never before an analysis, never with a memory limit, and the answers are
the same with and without it."""
from __future__ import annotations

import io
import json
import sys
import time

import pytest

from mixedbridge import serve as servemod
from mixedbridge.guard import LIMIT_ENV
from mixedbridge.serve import Session, _Warmer, serve

LM = {"analysis": "lm", "data": {"dataset": "sleepstudy"}, "formula": "Reaction ~ Days"}


def _answers(lines: list[dict], warm: bool) -> list[dict]:
    out = io.BytesIO()
    stdin = io.BytesIO(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
    serve(stdin, out, session=Session(warm=warm))
    return [json.loads(x) for x in out.getvalue().splitlines()]


def test_warm_up_starts_after_the_first_analysis_only(monkeypatch):
    started = []
    monkeypatch.delenv(LIMIT_ENV, raising=False)
    monkeypatch.setattr(servemod, "warm_up", lambda: started.append(True))
    hello = {"id": 1, "method": "hello", "params": {"protocol": 1}}
    bad = {"id": 2, "spec": {**LM, "formula": "Reaction ~ nope"}}
    assert [("error" in a) for a in _answers([hello, bad], warm=True)] == [False, True]
    assert started == []
    answers = _answers([{"id": 3, "spec": LM}, {"id": 4, "spec": LM}], warm=True)
    assert all("error" not in a for a in answers)
    for _ in range(200):  # the warm-up thread runs on its own
        if started:
            break
        time.sleep(0.01)
    assert started == [True]  # once, however many analyses follow


def test_no_warm_up_when_off_or_under_a_memory_limit(monkeypatch):
    session = Session(analysed=True)
    monkeypatch.setenv(LIMIT_ENV, "500")
    warmer = _Warmer(True)
    warmer.after(session)
    assert warmer.thread is None
    monkeypatch.delenv(LIMIT_ENV)
    off = _Warmer(False)
    off.after(session)
    assert off.thread is None


def test_warm_up_loads_the_click_modules_and_answers_stay_the_same(monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.delenv(LIMIT_ENV, raising=False)
    servemod.warm_up()
    assert {"formulaic", "mixedbridge.plots", "mixedbridge.emmeans.refgrid"} <= set(sys.modules)
    warm = _answers([{"id": 1, "spec": LM}], warm=True)[0]
    cold = _answers([{"id": 1, "spec": LM}], warm=False)[0]
    warm.pop("timing", None)
    cold.pop("timing", None)
    assert warm == cold


def test_no_warm_up_when_the_environment_says_so(monkeypatch):
    monkeypatch.delenv(LIMIT_ENV, raising=False)
    monkeypatch.setenv(servemod.WARM_UP_ENV, "0")
    warmer = _Warmer(True)
    warmer.after(Session(analysed=True))
    assert warmer.thread is None
