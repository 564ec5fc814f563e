"""The worker of the host protocol: one JSON request per line in, one JSON answer per line out.

A request is a spec object, ``{"id": ..., "spec": {...}, "timeout": ...}``, or a JASP option document
``{"id": ..., "jasp": "lmm", "options": {...}, "data": {...}}`` (answered in JASP's results shape).
Every request line gets exactly one answer line with the same ``id``: results, or ``{"error":
{code, message, path}}``. How lines are read and answers written is :mod:`mixedbridge.protocol`.
The worker keeps R (when used) warm across requests. ``mixedbridge serve`` runs it under a
supervisor (:mod:`mixedbridge.supervisor`); ``serve --unsupervised`` runs it alone.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from . import protocol
from .analysis import run
from .datapath import data_roots
from .errors import MixedBridgeError
from .jasp.request import run_request


def handle(line: str | bytes, out: IO[bytes] | None = None) -> dict:
    """Answer one request line; never raises (``out``: the answer stream, for fault tests)."""
    try:
        request = protocol.read_request(line)
    except protocol.BadRequest as exc:
        return exc.answer
    try:
        return request.tag(_answer(request, out))
    except MixedBridgeError as exc:
        return request.failure(exc.code, exc.message, exc.path)
    except Exception as exc:  # noqa: BLE001 - a worker answers every request
        print(f"mixedbridge serve: internal error ({type(exc).__name__}: {exc})", file=sys.stderr)
        return request.failure("internal", f"internal error ({type(exc).__name__}); the worker's log "
                               "(standard error) has the details; please report the request")


def _answer(request: protocol.Request, out: IO[bytes] | None) -> dict:
    if request.kind == "jasp":
        return run_request(request.doc)
    if request.kind == "spec":
        _inject_fault(request.doc, out)
    return protocol.without_records(run(request.spec).to_dict())


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
          roots: Sequence[str | Path] | None = None) -> int:
    """Answer requests until end of input; data files only inside ``roots`` (default: the
    working directory)."""
    with data_roots(roots or [os.getcwd()]):
        for line in protocol.read_lines(stdin, max_request_bytes):
            if isinstance(line, protocol.Oversized):
                stdout.write(protocol.dump(line.answer(max_request_bytes)))
            else:
                stdout.write(protocol.dump(handle(line, stdout)))
            stdout.flush()
    return 0


def serve_process(max_request_bytes: int = protocol.MAX_REQUEST_BYTES,
                  roots: Sequence[str | Path] | None = None) -> int:
    """:func:`serve` on this process's standard input and output, with standard output kept for
    answers (stray output goes to standard error) and SIGTERM/SIGHUP ending it cleanly."""
    out = protocol.answer_stream()
    with protocol.stop_on_signals():
        return serve(sys.stdin.buffer, out, max_request_bytes, roots)


def main(argv: list[str] | None = None) -> int:
    """The supervised worker: ``python -m mixedbridge.serve [--max-request-bytes N] [--data-root DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m mixedbridge.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--max-request-bytes", type=int, default=protocol.MAX_REQUEST_BYTES)
    parser.add_argument("--data-root", action="append", default=None)
    args = parser.parse_args(argv)
    _die_with_parent()
    return serve_process(args.max_request_bytes, args.data_root)


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
