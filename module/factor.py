"""A model frame's factor column as its codes and level labels, made into a pandas Categorical
only when something reads it as one.

A fit reads a factor's codes and labels (the random-effects terms' grouping factors, the fixed
part's indicator columns), never its Categorical; pandas takes ~20 µs a factor to make one (its
categories' text index, on pyarrow, costs most of it), more than the rest of a small model's
factor coding. :class:`Factor` keeps the codes and labels and makes the Categorical, once, when
the model frame's DataFrame is made or a caller asks for it; that Categorical is the one pandas'
public constructors give (``tests/test_frame_prepare.py`` pins them).

Measured and rejected: the categories' index taken from pyarrow's sorted dictionary of a text
column (a sort and a take, each a compute-kernel call, cost more than the index made from the
sorted Python labels); for a text column whose dictionary is in sorted order already, its
dictionary codes taken as the level codes without the look-up table (no gain measurable in
instructions).
"""
from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd

#: The dtype pandas gives a list of Python strings (``str``), named once: naming it by text at
#: each call costs ~10 µs.
_TEXT = pd.api.types.pandas_dtype("str")

#: pandas' constructor of a CategoricalDtype that skips the checks that its categories are
#: distinct and not missing (private: where a pandas release lacks it, the public constructor).
_UNCHECKED = getattr(pd.CategoricalDtype, "_from_fastpath", None)

#: pandas' constructor of an Index around an array it keeps as it is (private: where a pandas
#: release lacks it, the public constructor).
_WRAP = getattr(pd.Index, "_simple_new", None)


def _arrow_text(labels: list[str]):
    """``pd.Index(labels, dtype="str")`` where that dtype keeps text in pyarrow: the labels made
    into pyarrow's large strings at once (pandas' route checks and converts each label first,
    ~10 µs for a handful); None where pandas keeps text otherwise."""
    if not (isinstance(_TEXT, pd.StringDtype) and _TEXT.storage == "pyarrow") or _WRAP is None:
        return None
    import pyarrow as pa  # present: pandas keeps its text in it

    return _WRAP(pd.arrays.ArrowStringArray(pa.array(labels, type=pa.large_string()), dtype=_TEXT))


def text_index(labels: list[str]) -> pd.Index:
    """``pd.Index(labels, dtype="str")`` of text labels (see :func:`_arrow_text`)."""
    made = _arrow_text(labels)
    return pd.Index(labels, dtype=_TEXT) if made is None else made


def text_dtype(labels: list[str]) -> pd.CategoricalDtype:
    """``pd.CategoricalDtype(labels)`` for distinct text labels (distinct and present by the
    callers' construction), their index made with its dtype named, not inferred, and not checked
    again: pandas' check of a pyarrow-backed index (``is_unique``) costs ~40 µs a factor.
    ``tests/test_frame_prepare.py`` pins the result to the public constructor's."""
    if not labels:
        return pd.CategoricalDtype(labels)
    index = text_index(labels)
    if _UNCHECKED is None:
        return pd.CategoricalDtype(index)
    return _UNCHECKED(index, False)


class Factor:
    """A factor column: ``codes`` (0-based level numbers, -1 for a missing value; callers must
    not write into them) and ``labels`` (the levels' distinct text labels, in level order).

    :meth:`categorical` is ``pd.Categorical.from_codes(codes, dtype=text_dtype(labels))``, made
    on first call and kept (a model frame's DataFrame holds that very Categorical).
    """

    __slots__ = ("codes", "labels", "_categorical")

    def __init__(self, codes: np.ndarray, labels: list[str]) -> None:
        self.codes = codes
        self.labels = labels
        self._categorical: pd.Categorical | None = None

    def __len__(self) -> int:
        return len(self.codes)

    @classmethod
    def of(cls, cat: pd.Categorical) -> Factor:
        """A Categorical's factor: its own codes, its categories as text."""
        return cls(cat.codes, text_labels(cat.categories))

    def categorical(self) -> pd.Categorical:
        """The pandas Categorical (made once)."""
        if self._categorical is None:
            self._categorical = pd.Categorical.from_codes(self.codes, dtype=text_dtype(self.labels), validate=False)
        return self._categorical

    def take(self, keep: np.ndarray) -> Factor:
        """The rows where the boolean mask ``keep`` holds."""
        return Factor(self.codes[keep], self.labels)

    def has_unused(self) -> bool:
        """Whether a level occurs in no row (a count, not a sort)."""
        return has_unused(self.codes, len(self.labels))

    def used(self) -> Factor:
        """The factor of the levels that occur, in their order (``remove_unused_categories``)."""
        codes = self.codes
        present = np.bincount(codes[codes >= 0], minlength=len(self.labels)) > 0
        if present.all():
            return self
        position = np.append(np.cumsum(present) - 1, -1)
        return Factor(position[codes], [lab for lab, u in zip(self.labels, present.tolist()) if u])


#: Up to this many rows a text column's factor is made from its Python strings (a dict of its
#: distinct values, then one look-up a row): measured in instructions a call, 103k against
#: pyarrow's dictionary encoding's 122k at 60 rows, 259k against 176k at 144 rows.
LIST_ROWS = 80


def arrow_text_factor(values: pd.arrays.ArrowStringArray) -> Factor:
    """The factor of a pyarrow text column (no listed levels): its distinct values in Python's
    order of text (that of their UTF-8 bytes); a missing value coded -1. A short column by
    :func:`_listed_factor`, a longer one by pyarrow's dictionary encoding (pandas' ``factorize``
    wraps the same call in ~10 µs more)."""
    data = values.__arrow_array__()
    if len(data) <= LIST_ROWS:
        return _listed_factor(data.to_pylist())
    if data.num_chunks != 1:
        data = data.combine_chunks()
    else:
        data = data.chunk(0)
    encoded = data.dictionary_encode()
    found = encoded.dictionary.to_pylist()
    indices = encoded.indices
    if indices.null_count:
        indices = indices.fill_null(-1)
    order = sorted(found)
    position = {lab: i for i, lab in enumerate(order)}
    to_level = np.array([position[lab] for lab in found] + [-1], dtype=np.int64)
    return Factor(to_level[indices.to_numpy()], order)


def _listed_factor(items: list[str | None]) -> Factor:
    """The factor of a column's values as Python strings (None: missing, coded -1)."""
    distinct = dict.fromkeys(items)
    distinct.pop(None, None)
    order: list[str] = sorted(cast("dict[str, None]", distinct))
    position: dict[str | None, int] = dict(zip(order, range(len(order))))
    position[None] = -1
    return Factor(np.fromiter(map(position.__getitem__, items), dtype=np.int64, count=len(items)), order)


def has_unused(codes: np.ndarray, nlevels: int) -> bool:
    """Whether one of ``nlevels`` levels is in none of ``codes`` (-1: missing)."""
    return bool(nlevels and not (np.bincount(codes[codes >= 0], minlength=nlevels) > 0).all())


def text_labels(categories: pd.Index) -> list[str]:
    """``[str(c) for c in categories]``, read out of the index in one call (iterating a pandas
    string index element by element costs ~2 µs a level)."""
    return [c if type(c) is str else str(c) for c in categories.tolist()]
