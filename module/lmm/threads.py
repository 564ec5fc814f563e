"""Limit the BLAS thread pool during a fit (through threadpoolctl).

The per-evaluation work of a fit is many small BLAS/LAPACK calls; OpenBLAS's worker threads then
cost more than they give, and on a busy machine their spin-waiting can slow a fit down ten-fold
(measured here: InstEval objective 28 ms single-threaded, 40-1600 ms with 2 threads under load).
The controller, which scans the loaded libraries, is made once: a fresh scan per fit would cost
more than a small fit; the limit is set and restored on its BLAS libraries directly
(threadpoolctl's ``limit`` gathers every library's full description on each entry, a tenth of a
millisecond, several times per small analysis).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from threadpoolctl import ThreadpoolController


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


@lru_cache(maxsize=1)
def _blas_libraries() -> list:
    return list(_controller().select(user_api="blas").lib_controllers)


@contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Within the block, BLAS uses at most ``n`` threads (None: unchanged); each library's own
    setting is restored after it."""
    if n is None:
        yield
        return
    n = int(n)
    libraries = _blas_libraries()
    before = [lib.get_num_threads() for lib in libraries]
    for lib, old in zip(libraries, before):
        if old != n:
            lib.set_num_threads(n)
    try:
        yield
    finally:
        for lib, old in zip(libraries, before):
            if old != n:
                lib.set_num_threads(old)
