"""Factor levels over partitions: what each partition saw, merged into the levels the whole data
would give (R's order rules, as :mod:`mixedbridge.frame` applies them to one table).

A partition's model frame knows only its own levels. The global order is rebuilt from the
union by the rule that made it: text (and logical columns) in sorted order, numbers in numeric
order, ``I(x > k)`` as FALSE, TRUE, and the order the spec's ``levels`` give; an interaction
grouping factor ``a:b`` has the observed combinations, ordered by the levels of a, then b.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError

#: How a factor's levels are ordered: ``text`` sorted labels, ``number`` numeric order of the
#: labels, ``logical`` FALSE before TRUE, ``interval`` ``cut``'s intervals by their lower bound,
#: ``given`` the spec's ``levels``.
ORDERS = ("text", "number", "logical", "interval", "given")


@dataclass
class LevelsSeen:
    """What the partitions saw: per factor label the level labels present in complete rows
    (``present``), per column with ``levels`` in the spec the labels present in the filtered
    rows (``listed``), per interaction grouping factor its combinations (``combos``), and per
    integer grouping column its sorted distinct values (``values``: a million group ids merged
    as arrays, not as a million labels)."""

    present: dict[str, set[str]] = field(default_factory=dict)
    listed: dict[str, set[str]] = field(default_factory=dict)
    combos: dict[tuple[str, ...], set[tuple[str, ...]]] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)

    def merge(self, other: LevelsSeen) -> LevelsSeen:
        """The union of two partitions' (or subtrees') levels."""
        out = LevelsSeen({k: set(v) for k, v in self.present.items()},
                         {k: set(v) for k, v in self.listed.items()},
                         {k: set(v) for k, v in self.combos.items()}, dict(self.values))
        for mine, theirs in ((out.present, other.present), (out.listed, other.listed),
                             (out.combos, other.combos)):
            for k, v in theirs.items():
                mine.setdefault(k, set()).update(v)  # type: ignore[arg-type]
        for k, a in other.values.items():
            out.values[k] = union_sorted(out.values[k], a) if k in out.values else a
        return out

    def settle_values(self) -> None:
        """Integer grouping columns some partition saw as labels (its column was not integer
        there) merged into ``present``, so that one rule orders and codes them."""
        for k in [k for k in self.values if k in self.present]:
            self.present[k] |= set(self.values.pop(k).astype(str).tolist())


def ordered(labels: set[str], order: str, given: list | None = None) -> list[str]:
    """The labels in the order ``order`` (one of :data:`ORDERS`) gives."""
    if order == "given":
        return [str(v) for v in given or []]
    if order == "number":
        return sorted(labels, key=float)
    if order == "interval":
        return sorted(labels, key=lambda lab: float(lab[1: lab.index(",")]))
    if order == "logical":
        return [lab for lab in ("FALSE", "TRUE") if lab in labels]
    return sorted(labels)


def check_listed(column: str, seen: set[str], given: list) -> None:
    """The spec's ``levels`` of ``column`` against the labels of the filtered rows: each listed
    level occurs and every label is listed (the errors of :mod:`mixedbridge.frame`, without
    quoting the data)."""
    order = [str(v) for v in given]
    for j, lev in enumerate(order):
        if lev not in seen:
            raise DataError(f"level {lev!r} of column {column!r} does not occur in the data (after "
                            "filtering)", f"/levels/{column}/{j}")
    if seen - set(order):
        raise DataError(f"column {column!r} has {len(seen - set(order))} value(s) not listed in levels; "
                        "list them or filter them out", f"/levels/{column}")


def combo_levels(combos: set[tuple[str, ...]], parts: list[list[str]]) -> list[tuple[str, ...]]:
    """The observed combinations of an interaction grouping factor, ordered by the levels of its
    first column, then the second (R's ``factor(a:b)`` after dropping unused levels)."""
    index = [{lab: i for i, lab in enumerate(p)} for p in parts]
    return sorted(combos, key=lambda c: tuple(ix[lab] for ix, lab in zip(index, c)))


def union_sorted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sorted distinct values of two sorted arrays: a stable sort of the two runs (a merge,
    linear) and a comparison; ``np.union1d``'s hash table costs ~2 s on a million ids."""
    s = np.sort(np.concatenate([a, b]), kind="stable")
    return s[np.concatenate(([True], s[1:] != s[:-1]))] if len(s) else s
