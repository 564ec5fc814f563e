"""The long-lived R worker process, started lazily and reused across calls.

One :class:`RSession` per host process (see :func:`session`) owns a child process running
``_worker.py``, which embeds R through rpy2, keeps lme4 loaded and answers every R request of
the package: fits (the lme4 engine), inference (:mod:`.inference_r`) and emmeans
(:mod:`.emmeans_r`) on the models it keeps. Requests are serialized by a lock; if the worker
dies (R crashed, someone killed it) the call fails with :class:`~mixedbridge.errors.EngineError`
and the next call starts a fresh worker (which holds none of the old worker's models).
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

from ..errors import EngineError
from . import _worker

#: What to install when R or rpy2 is missing (Debian package names).
INSTALL_HINT = ("install R and the R packages (Debian: apt-get install r-base-core r-cran-lme4 "
                "r-cran-lmertest r-cran-pbkrtest r-cran-emmeans), then pip install 'mixedbridge[r]' "
                "(rpy2>=3.5,<3.6 for R < 4.4)")

_WORKER = Path(_worker.__file__)


class RSession:
    """A child process hosting embedded R; ``call`` sends one request and returns the reply.

    ``worker`` is the script the child runs (default ``_worker.py``)."""

    def __init__(self, python: str | None = None, env: dict | None = None,
                 worker: Path | str | None = None):
        self.worker = Path(worker) if worker is not None else _WORKER
        self.python = python or sys.executable
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.versions: dict = {}
        self.started_in: float | None = None
        self._stderr: IO[bytes] | None = None
        self._owner = os.getpid()
        self._lock = threading.RLock()

    # -- life cycle ----------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        if self.proc is not None and self._owner != os.getpid():
            # A forked copy of the host: the worker belongs to the parent; start our own.
            self.proc, self._stderr, self._owner = None, None, os.getpid()
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> RSession:
        """Start the worker now (if not running) and wait until R and lme4 are loaded."""
        with self._lock:
            if self.alive:
                return self
            self._cleanup()
            if self.python == sys.executable and importlib.util.find_spec("rpy2") is None:
                raise EngineError(f"the lme4 engine needs rpy2 and R, and rpy2 is not installed; {INSTALL_HINT}")
            t0 = time.perf_counter()
            env = dict(os.environ)
            if self.env:
                env.update(self.env)
            self._stderr = tempfile.TemporaryFile()
            try:
                self.proc = subprocess.Popen([self.python, str(self.worker)], stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=self._stderr, env=env,
                                             close_fds=True)
            except OSError as exc:
                self._cleanup()
                raise EngineError(f"could not start the R worker: {exc}") from None
            try:
                hello = self._receive(what="starting R")
            except EngineError as exc:
                raise EngineError(f"{exc.message}; if R is missing: {INSTALL_HINT}") from None
            if not hello.get("ok"):
                self._cleanup()
                raise EngineError(f"R could not be started through rpy2 ({hello.get('error')}); {INSTALL_HINT}")
            self.versions = hello.get("versions", {})
            self.started_in = time.perf_counter() - t0
            return self

    def close(self) -> None:
        """Stop the worker (it exits when its input ends)."""
        with self._lock:
            self._cleanup()

    def _cleanup(self, kill: bool = False) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                if kill:
                    proc.kill()
                if proc.stdin:
                    proc.stdin.close()
                proc.wait(timeout=5)
            except Exception:  # noqa: BLE001 - make sure it is gone
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    # -- requests ------------------------------------------------------------------------------

    def call(self, request: dict) -> dict:
        """Send one request to the worker (starting it if needed) and return its reply."""
        with self._lock:
            self.start()
            try:
                _worker.send(self._running().stdin, request)
            except (BrokenPipeError, OSError):
                tail = self._stderr_tail()
                self._cleanup()
                raise EngineError(f"the R worker stopped unexpectedly{tail}; it restarts on the next call") from None
            except BaseException:
                self._cleanup(kill=True)  # interrupted mid-message: the stream is unusable
                raise
            try:
                return self._receive(what="answering")
            except EngineError:
                raise
            except BaseException:
                # Interrupted (Ctrl-C) while R works: its late answer would be taken for the
                # next request's, so this worker goes; the next call starts a fresh one.
                self._cleanup(kill=True)
                raise

    def _receive(self, what: str) -> dict:
        try:
            reply = _worker.recv(self._running().stdout)
        except Exception as exc:  # noqa: BLE001 - a garbled reply means a broken worker
            reply = None
            err = f": {exc}"
        else:
            err = ""
        if reply is None:
            tail = self._stderr_tail()
            self._cleanup()
            raise EngineError(f"the R worker stopped unexpectedly while {what}{err}{tail}; "
                              "it restarts on the next call")
        return reply

    def _running(self) -> subprocess.Popen:
        """The worker process, launched by :meth:`start` (callers run after it)."""
        assert self.proc is not None, "the R worker has not been started"
        return self.proc

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            if self.proc is not None:
                try:
                    self.proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
            self._stderr.seek(0)
            text = self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""
        return f" (R said: {text[-800:]})" if text else ""


_SESSION: RSession | None = None
_SESSION_LOCK = threading.Lock()


def session() -> RSession:
    """The process-wide R session (created on first use, started on first call)."""
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is None:
            _SESSION = RSession()
            atexit.register(_SESSION.close)
        return _SESSION
