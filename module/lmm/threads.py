"""Limit the BLAS thread pool during a fit (through threadpoolctl).

The per-evaluation work of a fit is many small BLAS/LAPACK calls; OpenBLAS's worker threads then
cost more than they give, and on a busy machine their spin-waiting can slow a fit down ten-fold
(measured here: InstEval objective 28 ms single-threaded, 40-1600 ms with 2 threads under load).
The controller, which scans the loaded libraries, is made once: a fresh scan per fit would cost
more than a small fit. For a small problem (:data:`SMALL_WORK`) nothing is limited and the
controller is never made: its scan of the loaded libraries (10-20 ms) is most of a cold process's
first small fit, and OpenBLAS runs calls that small on one thread anyway.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from threadpoolctl import ThreadpoolController


#: Below this many array elements (rows × design columns, plus q² of the dense random-effects
#: blocks) a problem's BLAS calls are far under OpenBLAS's threading threshold.
SMALL_WORK = 200_000


def unless_small(work: int, n: int | None) -> int | None:
    """``n`` threads, or None (leave BLAS alone) for a problem of ``work`` elements below :data:`SMALL_WORK`."""
    return None if work < SMALL_WORK else n


def model_work(model) -> int:
    """A fitted model's size for :func:`unless_small`: rows × fixed-effects columns plus q² (a
    model built from reduced blocks, without its rows, counts as large)."""
    if not getattr(model, "has_rows", False):
        return SMALL_WORK
    return int(model.X.size) + int(model.structure.q) ** 2


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Within the block, BLAS uses at most ``n`` threads (None: unchanged)."""
    if n is None:
        yield
        return
    with _controller().limit(limits=int(n), user_api="blas"):
        yield
