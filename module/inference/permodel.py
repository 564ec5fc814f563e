"""Quantities computed once per fitted model and variance parameters, then reused.

Satterthwaite's covariance of the variance parameters and Kenward-Roger's adjusted covariance
cost dozens of factorizations; the coefficient tests, the anova table, every emmeans request and
the next request on a kept fit (:mod:`mixedbridge.fitcache`) all read the same ones. They are
kept beside the model (by identity, dropped with it), keyed by what they were computed at.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_MEMO: dict[int, tuple[weakref.ref, dict[Hashable, Any]]] = {}


def remembered(model: Any, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()`` for ``model`` at ``key``, computed on the first call only."""
    slot = _MEMO.get(id(model))
    if slot is None or slot[0]() is not model:
        ident = id(model)
        slot = (weakref.ref(model, lambda _ref: _MEMO.pop(ident, None)), {})
        _MEMO[ident] = slot
    table = slot[1]
    if key not in table:
        table[key] = compute()
    return table[key]


def forget(model: Any) -> None:
    """Drop what was remembered for ``model`` (for timing the computations themselves)."""
    _MEMO.pop(id(model), None)
