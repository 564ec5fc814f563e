"""Results kept for the next request on the same objects: a bounded store keyed by owners.

A host's clicks on one fitted model ask for the same tables, means, plots or layouts again. Each
of those is kept by the objects it was made from (its *owners*: the fit, the model frame, the
inference), held weakly so that an entry goes with them, and by a key naming the rest (the
request). The newest ``size`` entries stay; an entry is returned only while every owner is
alive and is the very object it was made from (an id alone may be reused by a new object).
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class KeptByOwners(Generic[V]):
    """The newest ``size`` values by owners (held weakly) and a key; thread-safe.

    Callers that hand out mutable values copy them on the way in and out: the store keeps
    what it is given."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple, tuple[list[weakref.ref], V]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, owners: tuple, key: Hashable) -> V | None:
        """The value kept for ``owners`` and ``key``, or None."""
        full = (*(id(o) for o in owners), key)
        with self._lock:
            got = self._entries.get(full)
            if got is None or len(got[0]) != len(owners) or any(r() is not o for r, o in zip(got[0], owners)):
                return None
            self._entries.move_to_end(full)
            return got[1]

    def put(self, owners: tuple, key: Hashable, value: V) -> None:
        """Keep ``value`` for ``owners`` and ``key``; the oldest entries beyond ``size`` go, and
        so does every entry whose owner has gone."""
        full = (*(id(o) for o in owners), key)
        refs = [weakref.ref(o) for o in owners]
        with self._lock:
            for gone in [k for k, (rs, _) in self._entries.items() if any(r() is None for r in rs)]:
                del self._entries[gone]
            self._entries[full] = (refs, value)
            self._entries.move_to_end(full)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
