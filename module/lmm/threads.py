"""Limit the BLAS thread pool during a fit (through threadpoolctl).

The per-evaluation work of a fit is many small BLAS/LAPACK calls; OpenBLAS's worker threads then
cost more than they give, and on a busy machine their spin-waiting can slow a fit down ten-fold
(measured here: InstEval objective 28 ms single-threaded, 40-1600 ms with 2 threads under load).
The controller, which scans the loaded libraries, is made once: a fresh scan per fit would cost
more than a small fit.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from threadpoolctl import ThreadpoolController


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


@contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Within the block, BLAS uses at most ``n`` threads (None: unchanged)."""
    if n is None:
        yield
        return
    with _controller().limit(limits=int(n), user_api="blas"):
        yield
