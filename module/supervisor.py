"""The host's worker, supervised: requests go to a child process that does the work; if it
crashes, hangs past a request's time limit, or grows past a memory limit, the supervisor kills it
(with the R worker under it), answers with a structured error, and starts a fresh one. The host
keeps talking to one process that never dies.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from typing import IO

#: Seconds a request may take when neither it nor ``serve --timeout`` says otherwise.
DEFAULT_TIMEOUT = 600.0


def request_timeout(line: str, default: float) -> float:
    """The time limit a request asks for (``timeout`` beside ``spec``, or ``options.timeout``)."""
    try:
        doc = json.loads(line)
    except ValueError:
        return default
    if not isinstance(doc, dict):
        return default
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else doc
    for value in (doc.get("timeout"), (spec.get("options") or {}).get("timeout") if isinstance(spec.get("options"), dict) else None):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return default


def request_id(line: str):
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc.get("id") if isinstance(doc, dict) and isinstance(doc.get("spec"), dict) else None


class Child:
    """The working process: ``python -m mixedbridge.serve``, in its own process group."""

    def __init__(self, max_rss_mb: float | None = None) -> None:
        self.max_rss_mb = max_rss_mb
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    def ensure(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.restarts += 1
            self.proc = subprocess.Popen([sys.executable, "-m", "mixedbridge.serve"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=None, text=True, bufsize=1,
                                         start_new_session=True)
        return self.proc

    def kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.proc = None
        self.restarts += 1

    def rss_mb(self) -> float:
        """Resident memory of the child (not its R worker), in MiB."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except (OSError, AttributeError):
            pass
        return 0.0

    def ask(self, line: str, timeout: float) -> str | dict:
        """Send one request line; the answer line, or an error dict on timeout or crash."""
        proc = self.ensure()
        try:
            proc.stdin.write(line.rstrip("\n") + "\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.kill()
            return {"code": "crash", "message": "the worker stopped before reading the request; it was restarted"}
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return {"code": "timeout", "message": f"the request took longer than its limit of {timeout:g} s "
                        "and was stopped; simplify the model or raise the limit ('timeout')"}
            if sel.select(timeout=min(left, 1.0)):
                answer = proc.stdout.readline()
                sel.close()
                if not answer:
                    code = proc.wait()
                    self.kill()
                    return {"code": "crash", "message": f"the worker crashed while answering (exit status {code}); "
                            "it was restarted and the next request is served normally"}
                if self.max_rss_mb and self.rss_mb() > self.max_rss_mb:
                    self.kill()
                return answer


def supervise(stdin: IO[str], stdout: IO[str], timeout: float = DEFAULT_TIMEOUT,
              max_rss_mb: float | None = None) -> int:
    """Answer every request line, whatever happens to the worker."""
    child = Child(max_rss_mb)
    try:
        for line in stdin:
            if not line.strip():
                continue
            answer = child.ask(line, request_timeout(line, timeout))
            if isinstance(answer, dict):
                doc = {"error": {**answer, "path": ""}}
                rid = request_id(line)
                if rid is not None:
                    doc["id"] = rid
                answer = json.dumps(doc, ensure_ascii=False)
            stdout.write(answer.rstrip("\n") + "\n")
            stdout.flush()
    finally:
        child.kill()
    return 0
