"""The worker of the host protocol: one JSON request per line in, one JSON answer per line out.

A request is a spec object, ``{"id": ..., "spec": {...}, "timeout": ...}``, or a JASP option document
``{"id": ..., "jasp": "lmm", "options": {...}, "data": {...}}`` (answered in JASP's results shape).
Every request line gets exactly one answer line with the same ``id``: results, or ``{"error":
{code, message, path}}``; before it, progress messages ``{"progress": {...}, "id": ...}`` when the
request or the session asked for them (``docs/protocol.md``). How lines are read and answers
written is :mod:`mixedbridge.protocol`. The worker keeps R (when used) warm across requests.
``mixedbridge serve`` runs it under a supervisor (:mod:`mixedbridge.supervisor`), which tells it on
a control pipe which request to stop; ``serve --unsupervised`` runs it alone.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from . import progress, protocol
from .analysis import run
from .datapath import data_roots
from .errors import MixedBridgeError
from .guard import LIMIT_ENV
from .jasp.request import run_request

#: The highest request serial the supervisor has asked this worker to stop (its control pipe).
_STOP = [0]


@dataclass
class Session:
    """What a worker remembers between lines: whether progress messages are wanted (``hello``
    said so, or the supervisor, which filters them), and the serial of the current request line
    (the supervisor counts the same)."""

    progress: bool = False
    serial: int = 0
    max_request_bytes: int = protocol.MAX_REQUEST_BYTES
    warm: bool = False
    analysed: bool = False
    settle: bool = False
    #: The prepared model of the last answered analysis, until the warm-up takes it (its text).
    problem: object | None = None


#: What a later request may need that a first one rarely does (emmeans grids, plots), imported by
#: :func:`warm_up` while the worker waits for its next line.
WARM_MODULES = ("formulaic", "mixedbridge.emmeans.refgrid", "mixedbridge.plots")


def warm_up() -> None:
    """Import :data:`WARM_MODULES` and draw one small figure (fonts, the PNG and SVG writers), so
    that a host's first emmeans or plot click after the first answer pays no start-up. Best
    effort: a module that is not installed is left to the request that needs it."""
    import importlib

    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            return
    from .plots import warm_up as warm_plots

    warm_plots()


def settle_memory() -> None:
    """Collect garbage once, then move every object now alive (modules, what the warm-up imported,
    the kept fits) to the permanent generation (``gc.freeze``), so that a full collection walks
    only what later requests make: without it one plot click in a few paid a full collection
    of the ~130,000 objects the imports leave (100-170 ms). A frozen object is still freed when
    its last reference goes (a fit the cache lets go is); only cyclic garbage among them stays."""
    gc.collect()
    gc.freeze()


#: Set to ``0`` to turn the warm-up off in every worker (``serve --unsupervised`` and the supervised ones).
WARM_UP_ENV = "MIXEDBRIDGE_WARM_UP"


def warm_text(problem: object, stop) -> None:
    """Draw the model's default means plots from its rows alone, to be thrown away
    (:func:`mixedbridge.plots.warm_text`): its first plot click then meets no text it has not
    measured. Best effort: without matplotlib nothing is warmed."""
    try:
        from .plots import warm_text as warm_plot_text
    except ImportError:
        return
    warm_plot_text(problem, stop)  # type: ignore[arg-type]


class _Warmer:
    """Runs :func:`warm_up` once, in a background thread, after the first answered analysis, and
    then :func:`settle_memory` when ``settle`` (a worker process of its own); not when a memory
    limit is set (the warm modules would count against it) nor with :data:`WARM_UP_ENV` ``0``.

    The same thread then warms the text of the newest answered model (:func:`warm_text`; one
    is held at a time) while the worker waits for its next line: :meth:`busy` (a line has
    come) stops it between figures, and it waits for :meth:`idle` before it starts again, so
    that it draws in the host's pause and not during a request (drawing holds the plots' lock:
    the two never draw at once)."""

    def __init__(self, enabled: bool, settle: bool = False) -> None:
        self.enabled = enabled and not os.environ.get(LIMIT_ENV) and os.environ.get(WARM_UP_ENV, "1") != "0"
        self.settle = settle
        self.thread: threading.Thread | None = None
        self._pending: object | None = None  # the newest answered model not yet warmed
        self._closed = False
        self._wake = threading.Condition()
        self._idle = threading.Event()
        self._idle.set()

    def after(self, session: Session) -> None:
        """Start the warm-up once the session has answered an analysis; hand it the model."""
        problem, session.problem = session.problem, None
        if not self.enabled or not session.analysed:
            return
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, daemon=True, name="warm-up")
            self.thread.start()
        if problem is not None:
            with self._wake:
                self._pending = problem
                self._wake.notify()

    def busy(self) -> None:
        """A request line has come: warming stops at its next step."""
        self._idle.clear()

    def idle(self) -> None:
        """The request is answered: warming may go on."""
        self._idle.set()

    def close(self) -> None:
        """End the thread (no more lines will come)."""
        with self._wake:
            self._closed = True
            self._wake.notify()

    def _run(self) -> None:
        try:
            warm_up()
        except Exception as exc:  # noqa: BLE001 - warming is optional; requests import what they need
            print(f"mixedbridge serve: warm-up skipped ({type(exc).__name__}: {exc})", file=sys.stderr)
        if self.settle:
            settle_memory()
        while (problem := self._next()) is not None:
            self._idle.wait()
            try:
                warm_text(problem, lambda: not self._idle.is_set())
            except Exception as exc:  # noqa: BLE001 - warming is optional
                print(f"mixedbridge serve: text warm-up skipped ({type(exc).__name__}: {exc})", file=sys.stderr)

    def _next(self) -> object | None:
        """The next model to warm (the newest answered one), None once closed."""
        with self._wake:
            while self._pending is None and not self._closed:
                self._wake.wait()
            problem, self._pending = self._pending, None
            return None if self._closed else problem


class _Reporter:
    """A request's listener (:mod:`mixedbridge.progress`): progress lines on the answer stream, at
    most one per :data:`~mixedbridge.protocol.PROGRESS_INTERVAL_S`, and the stop signal."""

    def __init__(self, request: protocol.Request, out: IO[bytes] | None, serial: int) -> None:
        self.request, self.out, self.serial = request, out, serial
        self.last = time.monotonic()
        self.shown: set[str] = set()

    def cancelled(self) -> bool:
        return 0 < self.serial <= _STOP[0]

    def progress(self, done: int, total: int | None, stage: str) -> None:
        if self.out is None:
            return
        now = time.monotonic()
        if now - self.last < protocol.PROGRESS_INTERVAL_S and not (done == total and stage in self.shown):
            return
        self.last = now
        self.shown.add(stage)
        self.out.write(self.request.progress_line(done, total, stage))
        self.out.flush()


def handle(line: str | bytes, out: IO[bytes] | None = None, session: Session | None = None) -> dict:
    """Answer one request line; never raises (``out``: the answer stream, for progress messages
    and fault tests)."""
    session = session or Session()
    try:
        request = protocol.read_request(line)
    except protocol.BadRequest as exc:
        return exc.answer
    if not request.runs:
        return _method(request, session)
    wanted = session.progress if request.progress is None else request.progress
    reporter = _Reporter(request, out if wanted else None, session.serial)
    try:
        with progress.listening(reporter):
            answer = request.tag(_answer(request, out, session))
        session.analysed = True
        return answer
    except progress.Cancelled:
        return request.failure("cancelled", protocol.CANCELLED)
    except MixedBridgeError as exc:
        return request.failure(exc.code, exc.message, exc.path)
    except Exception as exc:  # noqa: BLE001 - a worker answers every request
        print(f"mixedbridge serve: internal error ({type(exc).__name__}: {exc})", file=sys.stderr)
        return request.failure("internal", f"internal error ({type(exc).__name__}); the worker's log "
                               "(standard error) has the details; please report the request")


def _method(request: protocol.Request, session: Session) -> dict:
    """``hello`` and ``cancel`` when this worker runs alone (``serve --unsupervised``): it reads a
    line only when the one before is answered, so nothing is running to cancel."""
    if request.kind == "cancel":
        return protocol.cancel_answer(request, False)
    session.progress = True
    try:
        return protocol.hello_answer(request, workers=1, cancel=False, timeout=None,
                                     max_request_bytes=session.max_request_bytes, max_rss_mb=None)
    except MixedBridgeError as exc:
        return request.failure(exc.code, exc.message, exc.path)


def _answer(request: protocol.Request, out: IO[bytes] | None, session: Session) -> dict:
    if request.kind == "jasp":
        return run_request(request.jasp_doc)
    if request.kind == "spec":
        _inject_fault(request.doc, out)
    results = run(request.spec)
    if results.outcome is not None:
        session.problem = results.outcome.problem
    return protocol.without_records(results.to_dict())


def _inject_fault(request: dict, out: IO[bytes] | None) -> None:
    """Test hook, active only with MIXEDBRIDGE_FAULTS=1: ``{"fault": "crash" | "hang" | "raise" |
    "truncate" | "noise" | "grow"}`` (``truncate``: half an answer line, then a crash; ``noise``:
    writes to standard output from Python and from a child process, then answers; ``grow``: takes
    50 MiB more memory every 0.1 s, up to 4 GiB)."""
    if os.environ.get("MIXEDBRIDGE_FAULTS") != "1" or "fault" not in request:
        return
    fault = request["fault"]
    if fault == "noise":
        print("noise from Python")
        os.system("echo noise from a child process")
        return
    if fault == "truncate" and out is not None:
        out.write(b'{"id": "partial", "tables": [')
        out.flush()
        os._exit(70)
    if fault == "crash":
        os._exit(70)
    if fault == "hang":
        time.sleep(3600)
    if fault == "raise":
        raise RuntimeError("injected fault")
    if fault == "grow":
        held = [bytearray(50 * 2**20) for _ in range(1)]
        while len(held) < 80:
            time.sleep(0.1)
            held.append(bytearray(50 * 2**20))


def serve(stdin: IO[bytes], stdout: IO[bytes], max_request_bytes: int = protocol.MAX_REQUEST_BYTES,
          roots: Sequence[str | Path] | None = None, session: Session | None = None) -> int:
    """Answer requests until end of input; data files only inside ``roots`` (default: the
    working directory)."""
    session = session or Session(max_request_bytes=max_request_bytes)
    warmer = _Warmer(session.warm, session.settle)
    with data_roots(roots or [os.getcwd()]):
        for line in protocol.read_lines(stdin, max_request_bytes):
            session.serial += 1
            warmer.busy()
            if isinstance(line, protocol.Oversized):
                stdout.write(protocol.dump(line.answer(max_request_bytes)))
            else:
                stdout.write(protocol.dump(handle(line, stdout, session)))
                stdout.flush()
                warmer.after(session)
            stdout.flush()
            warmer.idle()
    warmer.close()
    return 0


def serve_process(max_request_bytes: int = protocol.MAX_REQUEST_BYTES,
                  roots: Sequence[str | Path] | None = None, session: Session | None = None) -> int:
    """:func:`serve` on this process's standard input and output, with standard output kept for
    answers (stray output goes to standard error) and SIGTERM/SIGHUP ending it cleanly; the
    process is the worker's own, so its warm-up settles memory (:func:`settle_memory`)."""
    session = session or Session(max_request_bytes=max_request_bytes)
    session.settle = True
    out = protocol.answer_stream()
    with protocol.stop_on_signals():
        return serve(sys.stdin.buffer, out, max_request_bytes, roots, session)


def main(argv: list[str] | None = None) -> int:
    """The supervised worker: ``python -m mixedbridge.serve [--max-request-bytes N] [--data-root DIR]
    [--progress] [--control-fd FD]``."""
    parser = argparse.ArgumentParser(prog="python -m mixedbridge.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--max-request-bytes", type=int, default=protocol.MAX_REQUEST_BYTES)
    parser.add_argument("--data-root", action="append", default=None)
    parser.add_argument("--progress", action="store_true", help="send progress messages for every request")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="import plots and emmeans only when a request needs them (no warm-up after the "
                             "first answer)")
    parser.add_argument("--control-fd", type=int, default=None,
                        help="a pipe on which the supervisor writes the serial of a request to stop")
    args = parser.parse_args(argv)
    _die_with_parent()
    if args.control_fd is not None:
        _listen_for_stops(args.control_fd)
    session = Session(progress=args.progress, max_request_bytes=args.max_request_bytes, warm=not args.no_warm_up)
    return serve_process(args.max_request_bytes, args.data_root, session)


def _listen_for_stops(fd: int) -> None:
    """Read the supervisor's stop messages (a request serial per line) in a background thread;
    the running request sees them at its next progress report."""
    def listen() -> None:
        with os.fdopen(fd, "rb") as pipe:
            for line in pipe:
                try:
                    _STOP[0] = max(_STOP[0], int(line))
                except ValueError:
                    continue

    threading.Thread(target=listen, daemon=True, name="stop-listener").start()


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when its supervisor dies, however it dies (best effort)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return


if __name__ == "__main__":
    sys.exit(main())
