"""The host's worker, supervised: requests go to a child process that does the work; if it
crashes, hangs past a request's time limit, or grows past a memory limit, the supervisor kills it
(with the R worker under it), answers with a structured error, and starts a fresh one. The host
keeps talking to one process that never dies before its input ends (or SIGTERM/SIGHUP, which stop
the worker and R first).

The supervisor reads each line once (:func:`mixedbridge.protocol.read_request` without the
strict-JSON walk, which the worker does): lines it cannot read (not UTF-8, not a JSON object,
too long, a bad ``timeout``) it answers itself; the others go to the worker unchanged.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from . import protocol
from .guard import LIMIT_ENV

#: Seconds a request may take when neither it nor ``serve --timeout`` says otherwise.
DEFAULT_TIMEOUT = protocol.DEFAULT_TIMEOUT

_CHUNK = 2**20


@dataclass(frozen=True)
class Failure:
    """Why the worker gave no answer: ``code`` (``crash``, ``timeout`` or ``memory``) and a
    message."""

    code: str
    message: str


class Child:
    """The working process: ``python -m mixedbridge.serve``, in its own process group."""

    def __init__(self, max_rss_mb: float | None = None, args: Sequence[str] = ()) -> None:
        self.max_rss_mb = max_rss_mb
        self.args = list(args)
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    def ensure(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.restarts += 1
            env = dict(os.environ)
            if self.max_rss_mb:  # the worker's resource guard refuses, before fitting, what would not fit
                env[LIMIT_ENV] = f"{self.max_rss_mb:g}"
            self.proc = subprocess.Popen([sys.executable, "-m", "mixedbridge.serve", *self.args],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
                                         start_new_session=True, env=env)
        return self.proc

    def kill(self) -> None:
        """Kill the worker's process group (the worker and its R process) and wait for it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self.restarts += 1

    def rss_mb(self) -> float:
        """Resident memory of the child and everything it started (its R worker), in MiB."""
        if self.proc is None:
            return 0.0
        return sum(_rss_kb(pid) for pid in _process_tree(self.proc.pid)) / 1024

    def over_memory(self) -> bool:
        """Whether the worker with its R worker has grown past ``max_rss_mb``."""
        return bool(self.max_rss_mb) and self.rss_mb() > float(self.max_rss_mb or 0)

    def ask(self, line: bytes, timeout: float) -> bytes | Failure:
        """Send one request line; the answer line, or why there is none (the worker is then
        replaced)."""
        proc = self.ensure()
        try:
            proc.stdin.write(line if line.endswith(b"\n") else line + b"\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        except OSError:
            self.kill()
            return Failure("crash", "the worker stopped before reading the request; it was restarted")
        answer = _read_line(proc, time.monotonic() + timeout, self.over_memory)
        if isinstance(answer, bytes):
            if self.over_memory():
                self.kill()
            return answer
        code = proc.poll()
        self.kill()
        if answer == "memory":
            return Failure("memory", f"the request needed more than the memory limit of {self.max_rss_mb:g} MiB "
                           "(worker and R together) and was stopped; use fewer rows or a simpler model, or raise "
                           "the limit (serve --max-rss-mb)")
        if answer == "timeout":
            return Failure("timeout", f"the request took longer than its limit of {timeout:g} s and was stopped; "
                           "simplify the model or raise the limit ('timeout')")
        return Failure("crash", f"the worker stopped while answering (exit status {code}); it was restarted "
                       "and the next request is served normally")


def _rss_kb(pid: int) -> int:
    """Resident memory of one process in KiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux's ``/proc/PID/task/*/children``)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except (OSError, ValueError):
                continue
    return out


def _read_line(proc: subprocess.Popen, deadline: float,
               over_memory: Callable[[], bool] = lambda: False) -> bytes | str:
    """The worker's answer line, or ``timeout`` / ``memory`` / ``crash`` (a line cut short by a
    crash is not an answer); memory is checked about every half second while the worker works."""
    fd = proc.stdout.fileno()  # type: ignore[union-attr]
    parts: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if not ready:
            if over_memory():
                return "memory"
            continue
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            return "crash"
        parts.append(chunk)
        if chunk.endswith(b"\n"):
            answer = b"".join(parts)
            return answer if answer.startswith(b"{") and answer.count(b"\n") == 1 else "crash"


def worker_args(max_request_bytes: int, roots: Sequence[str] | None) -> list[str]:
    """The worker's command-line arguments: the line limit and the data folders (absolute)."""
    args = ["--max-request-bytes", str(max_request_bytes)]
    for root in roots or [os.getcwd()]:
        args += ["--data-root", os.path.realpath(root)]
    return args


def answer(child: Child, line: bytes | protocol.Oversized, timeout: float, limit: int) -> bytes:
    """The answer line to one request line, whatever happens to the worker."""
    if isinstance(line, protocol.Oversized):
        return protocol.dump(line.answer(limit))
    try:
        request = protocol.read_request(line, check=False)
    except protocol.BadRequest as exc:
        return protocol.dump(exc.answer)
    reply = child.ask(line, request.timeout or timeout)
    if isinstance(reply, bytes):
        return reply
    return protocol.dump(request.failure(reply.code, reply.message), request)


def supervise(stdin: IO[bytes], stdout: IO[bytes], timeout: float = DEFAULT_TIMEOUT,
              max_rss_mb: float | None = None, max_request_bytes: int = protocol.MAX_REQUEST_BYTES,
              roots: Sequence[str] | None = None) -> int:
    """Answer every request line, whatever happens to the worker, until end of input."""
    child = Child(max_rss_mb, worker_args(max_request_bytes, roots))
    with protocol.stop_on_signals(child.kill):
        try:
            for line in protocol.read_lines(stdin, max_request_bytes):
                stdout.write(answer(child, line, timeout, max_request_bytes))
                stdout.flush()
        finally:
            child.kill()
    return 0
