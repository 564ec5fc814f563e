"""Limit the BLAS thread pool during a fit (through threadpoolctl).

The per-evaluation work of a fit is many small BLAS/LAPACK calls; OpenBLAS's worker threads then
cost more than they give, and on a busy machine their spin-waiting can slow a fit down ten-fold
(measured here: InstEval objective 28 ms single-threaded, 40-1600 ms with 2 threads under load).
The controller, which scans the loaded libraries, is made once: a fresh scan per fit would cost
more than a small fit; the limit is set and restored on its BLAS libraries directly
(threadpoolctl's ``limit`` gathers every library's full description on each entry, a tenth of a
millisecond, several times per small analysis). Measured and not taken: OpenBLAS's
``openblas_set_num_threads`` called through ctypes directly (0.25 µs against threadpoolctl's
0.8 µs a call) skips threadpoolctl's rule that only one Python thread at a time sets the shared
pool, so two threads fitting at once could leave each other's limits behind.
"""
from __future__ import annotations

import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from threadpoolctl import ThreadpoolController


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


@lru_cache(maxsize=1)
def _blas_libraries() -> list:
    return list(_controller().select(user_api="blas").lib_controllers)


class blas_threads:  # noqa: N801 - used as a function, as it was one
    """Within the block, BLAS uses at most ``n`` threads (None: unchanged); each library's own
    setting is restored after it.

    A class rather than a generator under ``contextlib.contextmanager``: entered once or twice
    per fit, and the generator's machinery cost ~1.5 µs of its ~5 µs."""

    __slots__ = ("n", "changed")

    def __init__(self, n: int | None) -> None:
        self.n = None if n is None else int(n)
        self.changed: list[tuple[Any, int]] = []

    def __enter__(self) -> None:
        n = self.n
        if n is None:
            return
        for lib in _blas_libraries():
            old = lib.get_num_threads()
            if old != n:
                lib.set_num_threads(n)
                self.changed.append((lib, old))

    def __exit__(self, *exc: object) -> None:
        for lib, old in self.changed:
            lib.set_num_threads(old)
        self.changed = []


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the system tells it, else all)."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    return len(getaffinity(0)) if getaffinity is not None else (os.cpu_count() or 1)


def _own_running(tasks: Path = Path("/proc/self/task")) -> int:
    """Threads of this process that are running or runnable now (a thread's state is the
    field after its parenthesised name in its ``stat`` file)."""
    count = 0
    for stat in tasks.glob("*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the thread ended meanwhile
            continue
        count += text[text.rfind(")") + 2: text.rfind(")") + 3] == "R"
    return count


#: Samples of the runnable count taken by :func:`others_running`, and the seconds between them.
SAMPLES, SAMPLE_GAP_S = 3, 0.001


def others_running(loadavg: Path = Path("/proc/loadavg"), tasks: Path = Path("/proc/self/task")) -> float:
    """How many threads of other processes are running or runnable now: the kernel's count of
    runnable threads (``/proc/loadavg``'s fourth field) less this process's own, the least of
    :data:`SAMPLES` samples (a process that ran at one instant only is no load). Where the
    system has no such files, the one-minute load average less one (this process).

    Why not the load average alone: it remembers the last minute, so a process started right
    after another busy one (a benchmark's repeats, a host's successive requests) sees a load
    that is gone and keeps one BLAS thread on an idle machine."""
    counts = []
    for i in range(SAMPLES):
        if i:
            time.sleep(SAMPLE_GAP_S)
        try:
            runnable = int(loadavg.read_text().split()[3].split("/")[0])
            own = _own_running(tasks)
        except (OSError, IndexError, ValueError):
            return max(os.getloadavg()[0] - 1.0, 0.0) if hasattr(os, "getloadavg") else 0.0
        counts.append(max(runnable - max(own, 1), 0))
    return float(min(counts))
