"""The host's workers, supervised: requests go to child processes that do the work; if one
crashes, hangs past a request's time limit, or grows past a memory limit, the supervisor kills it
(with the R worker under it), answers with a structured error, and starts a fresh one. The host
keeps talking to one process that never dies before its input ends (or SIGTERM/SIGHUP, which stop
the workers and R first).

``serve --workers N`` keeps N such children and answers up to N requests at once; answers carry
their ``id`` and may come out of order (with one worker, the default, they come in order). The
supervisor answers ``hello`` and ``cancel`` itself, at once. A cancelled request's worker is told
to stop (it checks at every progress report, :mod:`mixedbridge.progress`); one that has not
stopped within :data:`CANCEL_GRACE_S` is killed and replaced. Progress messages of the workers are
forwarded to hosts that said ``hello`` or asked for them.

The supervisor reads each line once (:func:`mixedbridge.protocol.read_request` without the
strict-JSON walk, which the worker does): lines it cannot read (not UTF-8, not a JSON object,
too long, a bad ``timeout``) it answers itself; the others go to a worker unchanged.
"""
from __future__ import annotations

import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from . import protocol
from .errors import MixedBridgeError
from .guard import LIMIT_ENV

#: Seconds a request may take when neither it nor ``serve --timeout`` says otherwise.
DEFAULT_TIMEOUT = protocol.DEFAULT_TIMEOUT
#: Seconds a cancelled request's worker has to stop by itself before it is killed and replaced.
CANCEL_GRACE_S = 0.1
#: How often the memory of a working worker is measured, in seconds.
MEMORY_EVERY_S = 0.5

_CHUNK = 2**20
_PROGRESS = b'{"progress": '


@dataclass(frozen=True)
class Failure:
    """Why the worker gave no answer: ``code`` (``crash``, ``timeout``, ``memory`` or
    ``cancelled``) and a message."""

    code: str
    message: str


class Job:
    """One run request on its way: its line, its parse, whether the host wants its progress
    messages, and whether it was cancelled (``wake`` tells the worker's slot at once)."""

    def __init__(self, line: bytes, request: protocol.Request, progress: bool = False) -> None:
        self.line, self.request, self.progress = line, request, progress
        self.cancelled = self.running = self.finished = False
        self.wake_pipe: tuple[int, int] | None = None
        self.forward: Callable[[bytes], None] = lambda line: None

    def wake(self) -> None:
        """Wake the thread waiting for this request's answer (it was cancelled)."""
        if self.wake_pipe is not None:
            os.write(self.wake_pipe[1], b"!")


class Child:
    """The working process: ``python -m mixedbridge.serve``, in its own process group, with a
    control pipe on which it is told which request to stop."""

    def __init__(self, max_rss_mb: float | None = None, args: Sequence[str] = ()) -> None:
        self.max_rss_mb = max_rss_mb
        self.args = list(args)
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self.control: int | None = None
        self.serial = 0
        self.buffer = bytearray()
        self.doomed = False

    def ensure(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.restarts += 1
                self._close()
            env = dict(os.environ)
            if self.max_rss_mb:  # the worker's resource guard refuses, before fitting, what would not fit
                env[LIMIT_ENV] = f"{self.max_rss_mb:g}"
            read_end, self.control = os.pipe()
            try:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "mixedbridge.serve", *self.args, "--control-fd", str(read_end)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, start_new_session=True, env=env,
                    pass_fds=(read_end,))
            except OSError:
                self.proc = None
                self._close()
                raise
            finally:
                os.close(read_end)
            self.serial, self.buffer = 0, bytearray()
        return self.proc

    def kill(self) -> None:
        """Kill the worker's process group (the worker and its R process) and wait for it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        _kill_group(proc)
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self._close()
        self.restarts += 1

    def _close(self) -> None:
        if self.control is not None:
            try:
                os.close(self.control)
            except OSError:
                pass
            self.control = None

    def stop_request(self) -> None:
        """Tell the worker to stop the request it is working on (it checks at its next progress
        report)."""
        if self.control is not None:
            try:
                os.write(self.control, f"{self.serial}\n".encode())
            except OSError:
                pass

    def rss_mb(self) -> float:
        """Resident memory of the child and everything it started (its R worker), in MiB."""
        if self.proc is None:
            return 0.0
        return sum(_rss_kb(pid) for pid in _process_tree(self.proc.pid)) / 1024

    def over_memory(self) -> bool:
        """Whether the worker with its R worker has grown past ``max_rss_mb``."""
        return bool(self.max_rss_mb) and self.rss_mb() > float(self.max_rss_mb or 0)

    def ask(self, line: bytes, timeout: float, job: Job | None = None) -> bytes | Failure:
        """Send one request line; the answer line, or why there is none (the worker is then
        replaced). Progress lines go to ``job.forward``; a cancelled ``job`` stops the worker."""
        proc = self.ensure()
        try:
            proc.stdin.write(line if line.endswith(b"\n") else line + b"\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        except OSError:
            self.kill()
            return Failure("crash", "the worker stopped before reading the request; it was restarted")
        self.serial += 1
        answer = self._await(proc, time.monotonic() + timeout, job)
        if isinstance(answer, bytes):
            if self.over_memory():
                self.kill()
            return answer
        if answer == "cancelled":  # answered at once; the process is reaped and replaced after (replace)
            self.doomed = True
            _kill_group(proc)
            return self._failure(answer, timeout, None)
        code = proc.poll()
        self.kill()
        return self._failure(answer, timeout, code)

    def replace(self) -> None:
        """After a cancelled request: reap a worker that was killed and start its successor now,
        so that it is ready for the next request."""
        if self.doomed:
            self.kill()
            self.doomed = False
        self.ensure()

    def _failure(self, why: str, timeout: float, code: int | None) -> Failure:
        if why == "cancelled":
            return Failure("cancelled", protocol.CANCELLED)
        if why == "memory":
            return Failure("memory", f"the request needed more than the memory limit of {self.max_rss_mb:g} MiB "
                           "(worker and R together) and was stopped; use fewer rows or a simpler model, or raise "
                           "the limit (serve --max-rss-mb)")
        if why == "timeout":
            return Failure("timeout", f"the request took longer than its limit of {timeout:g} s and was stopped; "
                           "simplify the model or raise the limit ('timeout')")
        return Failure("crash", f"the worker stopped while answering (exit status {code}); it was restarted "
                       "and the next request is served normally")

    def _await(self, proc: subprocess.Popen, deadline: float, job: Job | None) -> bytes | str:
        """The worker's answer line, or ``timeout`` / ``memory`` / ``crash`` / ``cancelled`` (a
        line cut short by a crash is not an answer); progress lines on the way are forwarded."""
        fd = proc.stdout.fileno()  # type: ignore[union-attr]
        waits = [fd] if job is None or job.wake_pipe is None else [fd, job.wake_pipe[0]]
        kill_at = None
        next_memory = time.monotonic() + MEMORY_EVERY_S
        while True:
            line = self._line()
            if line is not None:
                if not line.startswith(b"{"):
                    return "crash"
                if not line.startswith(_PROGRESS):
                    return line
                if job is not None:
                    job.forward(line)
                continue
            now = time.monotonic()
            if job is not None and job.cancelled and kill_at is None:
                self.stop_request()
                kill_at = now + CANCEL_GRACE_S
            if kill_at is not None and now >= kill_at:
                return "cancelled"
            if now >= deadline:
                return "timeout"
            if now >= next_memory:
                if self.over_memory():
                    return "memory"
                next_memory = now + MEMORY_EVERY_S
            ready, _, _ = select.select(waits, [], [], max(0.0, min(deadline, next_memory, kill_at or deadline) - now))
            for ready_fd in ready:
                chunk = os.read(ready_fd, _CHUNK)
                if ready_fd == fd and not chunk:
                    return "crash"
                if ready_fd == fd:
                    self.buffer += chunk

    def _line(self) -> bytes | None:
        """The next complete line the worker wrote, or None."""
        end = self.buffer.find(b"\n")
        if end < 0:
            return None
        line = bytes(self.buffer[:end + 1])
        del self.buffer[:end + 1]
        return line


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL to a worker's process group (the worker and its R process)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


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


def worker_args(max_request_bytes: int, roots: Sequence[str] | None) -> list[str]:
    """The worker's command-line arguments: the line limit and the data folders (absolute)."""
    args = ["--max-request-bytes", str(max_request_bytes), "--progress"]
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
    return final(request, child.ask(line, request.timeout or timeout))


def final(request: protocol.Request, reply: bytes | Failure) -> bytes:
    """The answer line: the worker's, or the failure in the request's shape."""
    if isinstance(reply, bytes):
        return reply
    return protocol.dump(request.failure(reply.code, reply.message), request)


@dataclass(frozen=True)
class Limits:
    """What ``serve`` was started with: time and memory limits, the line limit, the data folders."""

    timeout: float = DEFAULT_TIMEOUT
    max_rss_mb: float | None = None
    max_request_bytes: int = protocol.MAX_REQUEST_BYTES
    roots: Sequence[str] | None = None


class Pool:
    """``workers`` supervised children sharing one queue of requests; one thread per child."""

    def __init__(self, out: IO[bytes], workers: int, limits: Limits) -> None:
        self.out, self.limits = out, limits
        self.output = threading.Lock()
        self.lock = threading.Lock()
        self.queue: queue.Queue[bytes | Job | None] = queue.Queue()
        self.jobs: list[Job] = []
        self.progress = False
        self.stopping = False
        args = worker_args(limits.max_request_bytes, limits.roots)
        self.children = [Child(limits.max_rss_mb, args) for _ in range(workers)]
        self.threads = [threading.Thread(target=self._work, args=(child,), daemon=True, name=f"worker-{i}")
                        for i, child in enumerate(self.children)]

    def write(self, line: bytes) -> None:
        if self.stopping:
            return
        with self.output:
            self.out.write(line)
            self.out.flush()

    def take(self, line: bytes | protocol.Oversized) -> None:
        """One line from the host: answered now (hello, cancel), or queued in order."""
        if isinstance(line, protocol.Oversized):
            self.queue.put(protocol.dump(line.answer(self.limits.max_request_bytes)))
            return
        try:
            request = protocol.read_request(line, check=False)
        except protocol.BadRequest as exc:
            self.queue.put(protocol.dump(exc.answer))
            return
        if request.kind == "hello":
            self.write(protocol.dump(self._hello(request), request))
        elif request.kind == "cancel":
            self.write(protocol.dump(protocol.cancel_answer(request, self.cancel((request.params or {})["id"])),
                                     request))
        else:
            job = Job(line, request, self.progress if request.progress is None else request.progress)
            with self.lock:
                self.jobs.append(job)
            self.queue.put(job)

    def _hello(self, request: protocol.Request) -> dict:
        self.progress = True
        limits = self.limits
        try:
            return protocol.hello_answer(request, workers=len(self.children), cancel=True, timeout=limits.timeout,
                                         max_request_bytes=limits.max_request_bytes, max_rss_mb=limits.max_rss_mb)
        except MixedBridgeError as exc:
            return request.failure(exc.code, exc.message, exc.path)

    def cancel(self, ident: object) -> bool:
        """Cancel the waiting and running requests with this id; whether there were any. A waiting
        one is answered at once, a running one when its worker has stopped."""
        key = _key(ident)
        with self.lock:
            found = [job for job in self.jobs if job.request.has_id and _key(job.request.id) == key
                     and not job.cancelled and not job.finished]
            waiting = [job for job in found if not job.running]
            for job in found:
                job.cancelled = True
                if job.running:
                    job.wake()
                else:
                    self.jobs.remove(job)
        for job in waiting:
            self.write(protocol.dump(job.request.failure("cancelled", protocol.CANCELLED), job.request))
        return bool(found)

    def _work(self, child: Child) -> None:
        """A slot's thread: takes the next line off the queue and answers it with its child."""
        wake = os.pipe()
        if not self.stopping:
            try:
                child.ensure()  # started at once, so that the first request finds it ready
            except OSError:
                child.kill()  # tried again with the first request, which is answered if it fails
        while True:
            item = self.queue.get()
            if item is None or self.stopping:
                return
            if isinstance(item, bytes):
                self.write(item)
            else:
                self._answer(child, item, wake)

    def _answer(self, child: Child, job: Job, wake: tuple[int, int]) -> None:
        with self.lock:
            if job.cancelled:
                return
            job.running, job.wake_pipe = True, wake
        job.forward = lambda line: self._forward(job, line)
        try:
            reply: bytes | Failure = child.ask(job.line, job.request.timeout or self.limits.timeout, job)
        except OSError as exc:  # no worker could be started (no memory, no processes left)
            child.kill()
            reply = Failure("crash", f"no worker could be started ({type(exc).__name__}: {exc.strerror}); the "
                            "next request tries again")
        with self.lock:
            job.finished = True
            self.jobs.remove(job)
            if job.cancelled:
                reply = Failure("cancelled", protocol.CANCELLED)
        _drain(wake[0])
        self.write(final(job.request, reply))
        if job.cancelled and not self.stopping:
            child.replace()

    def _forward(self, job: Job, line: bytes) -> None:
        if job.progress and not job.cancelled:
            self.write(line)

    def run(self, stdin: IO[bytes]) -> None:
        """Answer every line until end of input; then finish the requests under way."""
        for thread in self.threads:
            thread.start()
        for line in protocol.read_lines(stdin, self.limits.max_request_bytes):
            self.take(line)
        for _ in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            thread.join()

    def kill(self) -> None:
        self.stopping = True
        for child in self.children:
            child.kill()


def _key(ident: object) -> str:
    """An id as JSON text, so that 1, 1.0 and true are different ids."""
    return json.dumps(ident, sort_keys=True)


def _drain(fd: int) -> None:
    """Empty a wake pipe (a cancel that came after the worker answered)."""
    while select.select([fd], [], [], 0)[0]:
        os.read(fd, 4096)


def supervise(stdin: IO[bytes], stdout: IO[bytes], timeout: float = DEFAULT_TIMEOUT,
              max_rss_mb: float | None = None, max_request_bytes: int = protocol.MAX_REQUEST_BYTES,
              roots: Sequence[str] | None = None, workers: int = 1) -> int:
    """Answer every request line, whatever happens to the workers, until end of input."""
    pool = Pool(stdout, workers, Limits(timeout, max_rss_mb, max_request_bytes, roots))
    with protocol.stop_on_signals(pool.kill):
        try:
            pool.run(stdin)
        finally:
            pool.kill()
    return 0
