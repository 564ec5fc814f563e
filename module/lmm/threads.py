"""Limit the BLAS thread pool during a fit.

The per-evaluation work of a fit is many small BLAS/LAPACK calls; OpenBLAS's worker threads then
cost more than they give, and on a busy machine their spin-waiting can slow a fit down ten-fold
(measured here: InstEval objective 28 ms single-threaded, 40-1600 ms with 2 threads under load).
This is what ``threadpoolctl`` does, reduced to the OpenBLAS builds numpy and scipy ship; when no
known library is loaded nothing happens.
"""
from __future__ import annotations

import ctypes
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

_SYMBOLS = [("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
            ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
            ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
            ("openblas_set_num_threads", "openblas_get_num_threads")]


@lru_cache(maxsize=1)
def _controls() -> tuple[tuple[object, object], ...]:
    try:
        with open("/proc/self/maps", encoding="utf-8") as fh:
            paths = {line.split()[-1] for line in fh if "openblas" in line.lower() and "/" in line}
    except OSError:
        return ()
    out = []
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for setter, getter in _SYMBOLS:
            if hasattr(lib, setter) and hasattr(lib, getter):
                out.append((getattr(lib, setter), getattr(lib, getter)))
                break
    return tuple(out)


@contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Within the block, OpenBLAS uses at most ``n`` threads (None: unchanged)."""
    if n is None:
        yield
        return
    controls = _controls()
    saved = [get() for _, get in controls]
    try:
        for set_, _ in controls:
            set_(int(n))
        yield
    finally:
        for (set_, _), k in zip(controls, saved):
            set_(int(k))
