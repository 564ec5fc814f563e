"""One partition's rows as the model sees them: the model frame of :mod:`mixedbridge.frame`
(filters, transformations, listwise deletion) with every factor on the levels of the whole
data, and from it the partition's X, y, weights, offset and random-effects codes.

A partition is a plain pandas DataFrame; nothing here knows about Dask. A partition whose rows
are all filtered out or all incomplete contributes no rows (the whole data's frame raises those
errors only when no partition has rows left: :mod:`.prepare`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..datapath import FROM_FILE
from ..design import FormulaicNames, ReTermData
from ..errors import DataError, ModelError
from ..formula import ModelDescription
from ..frame import RESERVED, ModelFrame, apply_filters, model_frame
from .levels import LevelsSeen, union_sorted

#: Transformations whose value depends on the rows around it (a mean, quantiles, a range), so
#: that a partition alone cannot compute them.
WHOLE_DATA_FUNCTIONS = ("scale", "poly", "ns", "bs", "relevel")


@dataclass
class FrameRecipe:
    """How every partition builds its model frame: the parsed formula, the spec without its
    ``levels`` (a partition need not hold every level) and the columns forced to be factors
    (those ``levels`` names, and the data set's factors); once pass 1 is merged, the whole data's
    ``levels`` (and ``combos`` of interaction groups). ``integer_groups`` are the integer columns
    that only group (one-column terms, not variables, no ``levels`` given): partitions keep them
    as integers and code them on ``values``, the whole data's sorted distinct ids."""

    desc: ModelDescription
    spec: dict
    factor_hint: set[str]
    contrasts: str = "treatment"
    levels: dict[str, list[str]] = field(default_factory=dict)
    combos: dict[tuple[str, ...], list[tuple[str, ...]]] = field(default_factory=dict)
    given: dict[str, list] = field(default_factory=dict)
    integer_groups: frozenset[str] = frozenset()
    values: dict[str, np.ndarray] = field(default_factory=dict)

    from_file: bool = False

    def level_index(self, label: str) -> pd.Index:
        """``levels[label]`` as a pandas Index, made once per process and recipe and reused by
        every partition there (its uniqueness check and hash table: a million labels hashed
        again for each partition and pass cost seconds). Only once the levels are final."""
        cache = self.__dict__.setdefault("_indexes", {})
        if label not in cache:
            cache[label] = pd.Index(self.levels[label])
        return cache[label]

    def __getstate__(self) -> dict:
        """Pickled without the indexes (each process makes its own)."""
        return {k: v for k, v in self.__dict__.items() if k != "_indexes"}

    @classmethod
    def from_spec(cls, desc: ModelDescription, spec: dict, factor_hint: set[str],
                  from_file: bool = False) -> FrameRecipe:
        check_row_wise(desc)
        stripped = {k: v for k, v in spec.items() if k != "levels"}
        hint = set(factor_hint) | set(spec.get("levels") or {})
        return cls(desc, stripped, hint, (spec.get("options") or {}).get("contrasts", "treatment"),
                   given=dict(spec.get("levels") or {}), from_file=from_file)

    def with_integer_groups(self, dtypes: dict) -> FrameRecipe:
        """Mark the grouping columns whose ``dtypes`` are integers and that only group (see the
        class docstring) as :attr:`integer_groups`."""
        variables = {c for v in list(self.desc.variables) + list(self.desc.offsets) for c in v.columns}
        variables |= set(self.desc.response.columns)
        multi = {g for r in self.desc.random if len(r.group) > 1 for g in r.group}
        self.integer_groups = frozenset(
            g for g in self.desc.grouping_columns
            if g in dtypes and _is_integer(dtypes[g]) and g not in variables | multi | set(self.given)
            | self.factor_hint)
        return self


def check_row_wise(desc: ModelDescription) -> None:
    """Refuse transformations a partition cannot compute alone (see :data:`WHOLE_DATA_FUNCTIONS`)
    and ``cut`` with a number of intervals (its breaks come from the range of the whole column)."""
    for v in list(desc.variables) + list(desc.offsets):
        fun = v.function
        whole = fun in WHOLE_DATA_FUNCTIONS or (fun == "cut" and _cut_by_count(v))
        if whole:
            raise ModelError(f"{v.label!r} needs the whole column at once ({fun}() depends on its mean, "
                             "quantiles or range), which the Dask backend never gathers: compute the "
                             "variable beforehand (e.g. with Dask), or fit in memory", "/formula")


def _cut_by_count(v) -> bool:
    args = [a for a in v.expr.children if a.kind != "arg"] + \
        [a.children[0] for a in v.expr.children if a.kind == "arg" and a.value == "breaks"]
    return len(args) >= 2 and args[1].kind == "num"


def _filtered_rows(pdf: pd.DataFrame, filters: list[dict]) -> int:
    try:
        return len(apply_filters(pdf, filters))
    except DataError as exc:
        if _no_rows(exc):
            return 0
        raise


def _no_rows(exc: DataError) -> bool:
    """Whether the error says only that this partition has no rows left (by a filter, or
    because every row is incomplete or a column is missing in every row)."""
    text = str(exc.message)
    return ((exc.path or "").startswith("/filter/") and text.endswith("leaves no rows")) or \
        (exc.path == "/data" and text.startswith("no complete rows remain")) or \
        (exc.path == "/formula" and "has no values: it is missing in every row" in text)


@dataclass
class PartFrame:
    """A partition's model frame (None when it has no complete rows) and its row counts:
    ``filtered`` rows after the filters, ``missing`` of them deleted as incomplete."""

    frame: ModelFrame | None
    filtered: int
    missing: int


def part_frame(pdf: pd.DataFrame, recipe: FrameRecipe) -> PartFrame:
    """The partition's model frame with its own levels (the frame's errors, except those that
    only say this partition has no rows left)."""
    if len(pdf) == 0:
        return PartFrame(None, 0, 0)
    if recipe.from_file:
        pdf.attrs[FROM_FILE] = True
    try:
        frame = model_frame(pdf, recipe.desc, recipe.spec, recipe.factor_hint, recipe.integer_groups)
    except DataError as exc:
        if not _no_rows(exc):
            raise
        n = _filtered_rows(pdf, recipe.spec.get("filter") or [])
        return PartFrame(None, n, n)
    return PartFrame(frame, frame.nobs + frame.n_missing, frame.n_missing)


def group_factor(frame: ModelFrame, column: str) -> pd.Series:
    """A grouping column as a factor with the partition's levels (a numeric column that is also
    a numeric model variable becomes the factor of its values)."""
    return frame.grouping_factor(column)


def levels_seen(pdf: pd.DataFrame, recipe: FrameRecipe) -> tuple[LevelsSeen, PartFrame]:
    """Pass 1 on one partition: the levels of every factor in its complete rows, the labels of
    the columns the spec lists ``levels`` for, and the combinations of interaction groups."""
    pf = part_frame(pdf, recipe)
    seen = LevelsSeen()
    for col in recipe.given:
        seen.listed[col] = _labels_in_filtered(pdf, recipe, col)
    if pf.frame is None:
        return seen, pf
    frame = pf.frame
    for lab in frame.factors:
        seen.present[lab] = {str(c) for c in frame.data[lab].cat.categories}
    for r in recipe.desc.random:
        if r.group[0] in recipe.integer_groups and frame.data[r.group[0]].dtype.kind in "iu":
            seen.values[r.group[0]] = distinct_sorted(frame.data[r.group[0]].to_numpy())
            continue
        cols = [group_factor(frame, g) for g in r.group]
        for g, c in zip(r.group, cols):
            seen.present[g] = _used_labels(c)
        if len(cols) > 1:
            pairs = pd.MultiIndex.from_arrays([c.astype(str) for c in cols]).unique()
            seen.combos[r.group] = set(pairs)
    return seen, pf


def _used_labels(col: pd.Series) -> set[str]:
    """The labels of the categories a factor's rows use (by their codes, not row by row)."""
    codes = np.unique(col.cat.codes.to_numpy())
    return set(map(str, col.cat.categories.take(codes[codes >= 0]).tolist()))


def _labels_in_filtered(pdf: pd.DataFrame, recipe: FrameRecipe, column: str) -> set[str]:
    """The level labels of ``column`` in the partition's filtered rows (missing values left out),
    as :mod:`mixedbridge.frame` labels them."""
    if column not in pdf.columns:
        return set()
    try:
        rows = apply_filters(pdf, recipe.spec.get("filter") or [])
    except DataError as exc:
        if _no_rows(exc):
            return set()
        raise
    col = rows[column].dropna()
    return {level_label(v, text=not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col))
            for v in col.unique()}


def level_label(value, text: bool) -> str:
    """A value's level label as R's ``factor`` writes it (``TRUE``/``FALSE`` for logicals, whole
    numbers without a decimal point)."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if not text and isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


@dataclass
class PartArrays:
    """A partition's model arrays on the whole data's levels: ``X`` (all columns of the fixed
    design, before aliased ones are dropped), ``y``, ``weights``, ``offset`` (or None), and the
    random-effects terms (``reterms``, codes on the global levels)."""

    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray | None
    offset: np.ndarray | None
    reterms: list[ReTermData]

    @property
    def n(self) -> int:
        return len(self.y)


def part_arrays(pdf: pd.DataFrame, recipe: FrameRecipe, pf: PartFrame | None = None) -> PartArrays | None:
    """The partition's arrays on the levels in ``recipe.levels`` (None without complete rows);
    ``pf`` its model frame when already made."""
    frame = (pf or part_frame(pdf, recipe)).frame
    if frame is None:
        return None
    data = frame.data.copy()
    for lab in design_factors(frame, recipe):
        data[lab] = data[lab].cat.set_categories(recipe.level_index(lab))
    glob = ModelFrame(data, set(frame.factors), data, frame.n_missing, [], frame.matrices)
    safe = FormulaicNames(glob, recipe.contrasts)
    X, _, _ = safe.matrix(recipe.desc.intercept, recipe.desc.fixed)
    reterms = []
    for r in recipe.desc.random:
        Xi, names, _ = safe.matrix(r.intercept, r.terms)
        levels, codes = _global_codes(frame, r.group, recipe)
        reterms.append(ReTermData(r.group_label, levels, codes, Xi, names))
    w = data[RESERVED["weights"]].to_numpy(dtype=float) if RESERVED["weights"] in data else None
    o = data[RESERVED["offset"]].to_numpy(dtype=float) if RESERVED["offset"] in data else None
    return PartArrays(np.asarray(X, dtype=float), frame.response(recipe.desc), w, o, reterms)


def design_factors(frame: ModelFrame, recipe: FrameRecipe) -> list[str]:
    """The partition's factors that a design matrix reads (fixed terms, random slopes): those
    need the whole data's levels for their contrasts; a factor that only groups needs codes on
    them alone (:func:`_global_codes`), not a million categories set on its column."""
    used = {v.label for v in recipe.desc.variables}
    return [lab for lab in frame.factors if lab in used]


def _global_codes(frame: ModelFrame, group: tuple[str, ...], recipe: FrameRecipe) -> tuple[list[str], np.ndarray]:
    """Levels and 0-based codes of a grouping factor on the whole data's levels."""
    label = ":".join(group)
    if label in recipe.values and frame.data[label].dtype.kind in "iu":
        codes = _codes_of_values(frame.data[label].to_numpy(), recipe.values[label])
    elif len(group) == 1:
        col = group_factor(frame, group[0])
        where = recipe.level_index(label).get_indexer(list(map(str, col.cat.categories.tolist())))
        local = col.cat.codes.to_numpy()
        codes = np.where(local >= 0, where[local], -1)
    else:
        cols = [group_factor(frame, g).astype(str) for g in group]
        combos = pd.MultiIndex.from_tuples(recipe.combos[group])
        codes = combos.get_indexer(pd.MultiIndex.from_arrays(cols))
    if np.any(codes < 0):
        raise ModelError(f"a level of the grouping factor {label!r} was not seen when the levels were "
                         "collected (did the data change between the passes over it?)")
    return list(recipe.levels[label]), np.asarray(codes, dtype=np.int64)


def distinct_sorted(ids: np.ndarray) -> np.ndarray:
    """The distinct integer ids, sorted (a sort and a comparison: ``np.unique``'s hash table is
    several times slower on a million ids)."""
    return union_sorted(ids, ids[:0])


def _codes_of_values(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """0-based positions of integer group ids among the sorted ``values`` (-1 where absent): a
    lookup table over their range when it is at most 8 times their number (ids numbered
    consecutively, as usual), else a binary search."""
    lo, span = int(values[0]), int(values[-1]) - int(values[0]) + 1
    if span <= 8 * len(values) and -2**62 < lo and int(values[-1]) < 2**62:
        ids = ids.astype(np.int64, copy=False) - lo
        inside = (ids >= 0) & (ids < span)
        table = np.full(span, -1, dtype=np.int64)
        table[values.astype(np.int64) - lo] = np.arange(len(values))
        return np.where(inside, table[np.where(inside, ids, 0)], -1)
    pos = np.minimum(np.searchsorted(values, ids), len(values) - 1)
    return np.where(values[pos] == ids, pos, -1)


def _is_integer(dtype) -> bool:
    """Whether a column's dtype is a numpy integer (not a nullable or Arrow one: those can hold
    missing values)."""
    return isinstance(dtype, np.dtype) and dtype.kind in "iu"
