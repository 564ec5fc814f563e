"""Progress of long work, and its cancellation, for whoever listens (``serve``, a script, the CLI).

Long-running code (a bootstrap's samples, a profile's parameters, the optimizer's evaluations, a
GLMM's iterations) calls :func:`report` (or :func:`tick`, for work of unknown length) now and then
and never knows who listens. A listener is
installed for the current context with :func:`listening`: its ``progress(done, total, stage)`` is
called at each report (throttling is the listener's business), and its ``cancelled()`` is asked
first; when it answers yes, :func:`report` raises :class:`Cancelled`, which unwinds the work.

Nested work: while a counted stage runs (``with stage("bootstrap", nsim) as step``), reports from
inside it (the optimizer of each refit) only check for cancellation, so a listener sees one stage
counting up, not the inner ones. Without a listener, a counted stage that runs longer than
:data:`TEXT_AFTER_S` prints its progress to standard error, as the bootstrap always did.
"""
from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from functools import partial
from typing import Protocol

#: Without a listener, a counted stage prints its progress to standard error after this many seconds.
TEXT_AFTER_S = 5.0
#: ... and then at most every this many seconds.
TEXT_EVERY_S = 2.0


class Listener(Protocol):
    """Who hears progress: ``progress`` at each report, ``cancelled`` asked before it."""

    def progress(self, done: int, total: int | None, stage: str) -> None: ...

    def cancelled(self) -> bool: ...


class Cancelled(BaseException):
    """The work was cancelled by its listener. A BaseException, as KeyboardInterrupt is, so that
    no ``except Exception`` on the way (a fallback optimizer, an error collector) swallows it."""


_LISTENER: ContextVar[Listener | None] = ContextVar("mixedbridge_progress_listener", default=None)
_STAGE: ContextVar[str | None] = ContextVar("mixedbridge_progress_stage", default=None)
_TICKS: ContextVar[dict[str, int]] = ContextVar("mixedbridge_progress_ticks")


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[Listener]:
    """Send the reports of the work inside the block to ``listener``."""
    token = _LISTENER.set(listener)
    ticks = _TICKS.set({})
    try:
        yield listener
    finally:
        _TICKS.reset(ticks)
        _LISTENER.reset(token)


def tick(stage: str) -> None:
    """One more step of work whose total is not known in advance (an evaluation of the
    objective); the listener sees the steps of ``stage`` counted since it started listening, so
    that they only grow across several fits.

    Raises
    ------
    Cancelled
        When the listener says the work was cancelled.
    """
    if _LISTENER.get() is None:
        return
    ticks = _TICKS.get()
    ticks[stage] = done = ticks.get(stage, 0) + 1
    report(done, None, stage)


def ticker(stage: str) -> Callable[[], None] | None:
    """:func:`tick` of ``stage`` as a function of no arguments for work that ticks at every step
    (an optimizer's evaluations, a few microseconds each for a small model), or None when no
    listener listens in the current context, where a tick does nothing: the caller skips it. A
    listener is installed around the work (:func:`listening`), so the answer holds throughout."""
    if _LISTENER.get() is None:
        return None
    return partial(tick, stage)


def report(done: int, total: int | None, stage: str) -> None:
    """``done`` of ``total`` steps (None: not known in advance) of ``stage`` are done.

    Raises
    ------
    Cancelled
        When the listener says the work was cancelled.
    """
    listener = _LISTENER.get()
    if listener is None:
        return
    if listener.cancelled():
        raise Cancelled(stage)
    outer = _STAGE.get()
    if outer is None or outer == stage:
        listener.progress(done, total, stage)


def check() -> None:
    """Raise :class:`Cancelled` when the listener says the work was cancelled (no report)."""
    listener = _LISTENER.get()
    if listener is not None and listener.cancelled():
        raise Cancelled(_STAGE.get() or "work")


@contextlib.contextmanager
def stage(name: str, total: int) -> Iterator[Callable[[int], None]]:
    """A counted stage: the block gets ``step(done)`` to call after each of ``total`` steps;
    reports from work nested inside it only check for cancellation."""
    outer = _STAGE.get()
    token = _STAGE.set(name) if outer is None else None
    if _LISTENER.get() is None:
        text = _Text(name, total)

        def step(done: int) -> None:
            text(done)
    else:
        def step(done: int) -> None:
            report(done, total, name)
    try:
        step(0)
        yield step
    finally:
        if token is not None:
            _STAGE.reset(token)


class _Text:
    """Progress of a long counted stage on standard error, for the command line and scripts."""

    def __init__(self, what: str, total: int) -> None:
        self.what, self.total, self.t0, self.last = what, total, time.perf_counter(), 0.0

    def __call__(self, done: int) -> None:
        now = time.perf_counter() - self.t0
        if done == 0 or (done < self.total and (now < TEXT_AFTER_S or now - self.last < TEXT_EVERY_S)):
            return
        if done == self.total and now < TEXT_AFTER_S:
            return
        self.last = now
        eta = now / max(done, 1) * (self.total - done)
        print(f"[mixedbridge] {self.what}: {done}/{self.total}, {now:.0f} s"
              + (f", about {eta:.0f} s left" if done < self.total else ""), file=sys.stderr, flush=True)
