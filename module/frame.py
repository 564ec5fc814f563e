"""Data preparation: filter rows, order factor levels, evaluate transformations and delete
incomplete rows listwise, giving the model frame every engine fits.

Transformations (``log(x)``, ``I(x^2)``) are evaluated by walking the formula's syntax tree
with numpy; nothing is passed to ``eval``.
"""
from __future__ import annotations

import numbers
from collections.abc import Callable, Collection
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias, cast

import numpy as np
import pandas as pd

from .datapath import FROM_FILE
from .errors import DataError, ModelError
from .factor import Factor, arrow_text_factor, has_unused, text_labels
from .formula import CONSTANTS, ModelDescription, Node, Variable, columns_of, deparse, left_spine, walk
from .guard import check_design
from .response import GlmmResponse, check, from_counts, from_factor, from_values

_OPS = {"eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "not_missing"}
#: Labels the model frame keeps for the prior weights and the offset (R's names), by option.
RESERVED = {"weights": "(weights)", "offset": "(offset)"}
_ROLE_OF = {label: role for role, label in RESERVED.items()}


class _Columns:
    """A model frame's columns before its DataFrame is made: ``values`` by label (what the
    DataFrame is made of, a factor as its :class:`~mixedbridge.factor.Factor`), their numpy
    arrays, Categoricals and Factors (``arrays``), the rows' ``index`` and the frame's
    ``matrices``; ``frame`` the DataFrame once made."""

    __slots__ = ("values", "arrays", "index", "matrices", "frame")

    def __init__(self, values: dict[str, Values], index: pd.Index, matrices: dict[str, list[str]]) -> None:
        self.values = values
        self.arrays = _arrays(values)
        self.index = index
        self.matrices = matrices
        self.frame: pd.DataFrame | None = None

    def make(self) -> pd.DataFrame:
        """The DataFrame (made once): the columns as they are (pandas copies on write), a
        factor as its Categorical."""
        if self.frame is None:
            columns = {lab: col.categorical() if isinstance(col, Factor) else col for lab, col in self.values.items()}
            self.frame = pd.DataFrame(columns, index=self.index, copy=False)
            self.frame.attrs["matrices"] = self.matrices
        return self.frame


class _FrameData:
    """:attr:`ModelFrame.data`: a DataFrame, or :class:`_Columns` made into one on first read (a
    fit reads the arrays, not the DataFrame, and pandas takes ~40 µs to make a small one)."""

    def __get__(self, obj: ModelFrame | None, owner: type | None = None) -> pd.DataFrame:
        if obj is None:
            raise AttributeError("data")  # the dataclass field has no default
        value = obj.__dict__["_data"]
        if isinstance(value, _Columns):
            value = obj.__dict__["_data"] = value.make()
        return value

    def __set__(self, obj: ModelFrame, value: pd.DataFrame | _Columns) -> None:
        obj.__dict__["_data"] = value
        obj.__dict__["_columns"] = value if isinstance(value, _Columns) else None


@dataclass
class ModelFrame:
    """The rows and variables a model is fitted to.

    ``data`` one column per model variable (by its formula label) plus grouping columns, factors
    as ordered pandas Categoricals (first level = reference); ``factors`` labels of factor
    variables; ``source`` the filtered rows of the original data (for plots and notes);
    ``n_missing`` rows deleted for missing values; ``notes`` what was done, in words;
    ``matrices`` the frame columns of each matrix-valued variable (``poly(Days, 2)`` →
    ``poly(Days, 2)1``, ``poly(Days, 2)2``, as R names a matrix's columns in the model matrix);
    ``warnings`` what R would warn about the data (a glmm's non-integer counts).

    For a glmm the response column holds the response on the family's scale (a binomial's
    proportion of successes) and ``(weights)`` the binomial trials times any prior weights.

    :func:`model_frame` gives ``data`` as its columns, made into the DataFrame on first read;
    :meth:`categorical`, :meth:`floats`, :attr:`nobs`, :attr:`weights` and :attr:`offset` read
    the columns without making it.
    """

    if TYPE_CHECKING:
        data: pd.DataFrame
    else:
        data: pd.DataFrame = _FrameData()
    factors: set[str]
    source: pd.DataFrame
    n_missing: int = 0
    notes: list[str] = field(default_factory=list)
    matrices: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def _own_arrays(self) -> dict[str, np.ndarray | pd.Categorical | Factor]:
        """The arrays ``data`` is (or was made of), while ``data`` is still that frame."""
        columns = self.__dict__.get("_columns")
        if columns is None:
            return {}
        raw = self.__dict__["_data"]
        return columns.arrays if raw is columns or raw is columns.frame else {}

    def _labels(self) -> Collection[str]:
        """The column labels, without making the DataFrame."""
        raw = self.__dict__["_data"]
        return raw.values if isinstance(raw, _Columns) else raw.columns

    @property
    def nobs(self) -> int:
        raw = self.__dict__["_data"]
        return len(raw.index) if isinstance(raw, _Columns) else len(raw)

    def categorical(self, label: str) -> pd.Categorical | None:
        """Factor column ``label``'s Categorical (None for another column): the one the frame
        was made of where there is one (pandas' column access costs ~10 µs), else the column's."""
        found = self._own_arrays().get(label)
        if isinstance(found, Factor):
            return found.categorical()
        if found is None:
            col = self.data[label]
            found = col.array if isinstance(col.dtype, pd.CategoricalDtype) else None
        return found if isinstance(found, pd.Categorical) else None

    def factor(self, label: str) -> Factor | None:
        """Factor column ``label``'s codes and level labels (None for another column), without
        making its Categorical where the frame has them."""
        found = self._own_arrays().get(label)
        if isinstance(found, Factor):
            return found
        cat = self.categorical(label)
        return None if cat is None else Factor.of(cat)

    def floats(self, label: str) -> np.ndarray:
        """Numeric column ``label`` as floats (``to_numpy(dtype=float)``; read-only)."""
        found = self._own_arrays().get(label)
        if found is not None:
            out = np.asarray(found, dtype=float).view()
            out.flags.writeable = False  # as pandas' view of a column: the frame's own numbers
            return out
        return self.data[label].to_numpy(dtype=float)

    def response(self, desc: ModelDescription) -> np.ndarray:
        return self.floats(desc.response.label)

    @property
    def weights(self) -> np.ndarray | None:
        """Prior weights (R's ``(weights)`` column), or None."""
        label = RESERVED["weights"]
        return self.floats(label) if label in self._labels() else None

    @property
    def offset(self) -> np.ndarray | None:
        """Offset added to the linear predictor (R's ``(offset)`` column), or None."""
        label = RESERVED["offset"]
        return self.floats(label) if label in self._labels() else None

    def grouping_factor(self, column: str) -> pd.Series:
        """Grouping column ``column`` as a factor: itself, or, for a numeric column that is also
        a numeric variable of the fixed part (kept numeric there, as lme4 keeps it), the factor
        of its values (levels in numeric order, labelled as R's ``factor`` labels them)."""
        col = self.data[column]
        if isinstance(col.dtype, pd.CategoricalDtype):
            return col
        return _as_factor(col, None, f"/levels/{column}", column)

    def _factor(self, column: str) -> Factor:
        """:meth:`grouping_factor`'s codes and labels."""
        col = self.factor(column)
        if col is not None:
            return col
        return _factor_codes(self.data[column], None, f"/levels/{column}", column)

    def grouping(self, group: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
        """Levels and 0-based codes of a grouping factor (``a:b`` as R's ``factor(a:b)``)."""
        cols = [self._factor(g) for g in group]
        if len(cols) == 1:
            col = cols[0]
            if not isinstance(self._own_arrays().get(group[0]), (Factor, pd.Categorical)):
                col = col.used()  # model_frame's own factors have no unused levels
            return list(col.labels), col.codes.astype(np.int64)
        names = [c.labels for c in cols]
        codes = np.zeros(self.nobs, dtype=np.int64)
        for c, k in zip(cols, names):
            codes = codes * len(k) + c.codes
        uniq, inv = unique_integers(codes)
        parts = []
        for k in reversed(names):  # the last factor's level is the lowest digit of a code
            uniq, digit = np.divmod(uniq, len(k))
            parts.append([k[j] for j in digit.tolist()])
        return [":".join(p) for p in zip(*reversed(parts))], inv.reshape(-1).astype(np.int64)


#: Whether errors may list the data's own column names and values: not for data read from a file
#: (``data.path``), whose content must never come back through an error; only names the spec
#: itself gave are quoted then.
_QUOTE_DATA: ContextVar[bool] = ContextVar("mixedbridge_quote_data", default=True)


def _listing(values: object) -> str:
    """The data's own names or values for an error message, or a phrase instead of them for data
    read from a file."""
    if not _QUOTE_DATA.get():
        return "(not listed for data read from a file: check the file itself)"
    return ", ".join(repr(v) for v in values)  # type: ignore[attr-defined]


def _missing_words() -> str:
    """What counts as missing in a data file (said beside the rows removed), as R's ``read.csv``."""
    if _QUOTE_DATA.get():
        return ""
    return (" In the data file only empty fields and NA are missing values (as R's read.csv reads it; "
            "None, NULL or N/A are values) and NaN in a numeric column.")


def _is_text(col: pd.Series | ColumnArray) -> bool:
    """Whether a column holds text (or logicals), by its dtype (which dropping its missing
    values would not change); a numpy dtype is read directly (pandas' test costs ~1 µs)."""
    dtype = col.dtype
    if isinstance(dtype, np.dtype):
        return not issubclass(dtype.type, np.number)
    if isinstance(dtype, (pd.StringDtype, pd.CategoricalDtype)):
        return True
    return not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)


def _check_column(df: pd.DataFrame, column: str, path: str) -> None:
    if column not in df.columns:
        raise DataError(f"column {column!r} is not in the data; the data have {_listing(list(df.columns)[:12])}",
                        path)


def apply_filters(df: pd.DataFrame, filters: list[dict]) -> pd.DataFrame:
    """Keep the rows where every filter condition holds."""
    for i, cond in enumerate(filters or []):
        base = f"/filter/{i}"
        column = cond["column"]
        _check_column(df, column, f"{base}/column")
        ops = [k for k in cond if k != "column"]
        mask = np.ones(len(df), dtype=bool)
        for op in ops:
            mask &= _condition(df[column], op, cond[op], f"{base}/{op}", column)
        df = df[mask]
        if len(df) == 0:
            raise DataError(f"filter {i} on column {column!r} leaves no rows", base)
    return df


def _condition(col: pd.Series, op: str, value, path: str, column: str) -> np.ndarray:
    if op == "not_missing":
        return col.notna().to_numpy() if value else np.ones(len(col), dtype=bool)
    values = value if op in ("in", "not_in") else [value]
    numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    if numeric and not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise DataError(f"column {column!r} is numeric; expected numbers in this filter", path)
    if not numeric and op in ("lt", "lte", "gt", "gte"):
        raise DataError(f"column {column!r} is text; '{op}' needs a numeric column", path)
    target = col.to_numpy(dtype=float) if numeric else col.astype("string").to_numpy(dtype=object)
    if not numeric:
        values = [str(v) for v in values]
    if op == "in":
        return pd.Series(target).isin(values).to_numpy()
    if op == "not_in":
        return ~pd.Series(target).isin(values).to_numpy()
    v = values[0]
    with np.errstate(invalid="ignore"):
        out = {"eq": target == v, "ne": target != v, "lt": target < v, "lte": target <= v,
               "gt": target > v, "gte": target >= v}[op]
    return np.asarray(out, dtype=bool) & col.notna().to_numpy()


def _level_label(value) -> str:
    """A value's level label as R's ``factor`` writes it (``TRUE``/``FALSE`` for logicals)."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _as_factor(col: pd.Series, levels: list | None, path: str, column: str) -> pd.Series:
    """An ordered Categorical; listed levels must each occur and cover every value. Without
    listed levels a pandas Categorical keeps its categories' order (those that occur).
    (:func:`_factor_values` in a Series on the column's index.)"""
    return pd.Series(_factor_values(col, levels, path, column), index=col.index, copy=False)


def _factor_values(col: pd.Series, levels: list | None, path: str, column: str) -> pd.Categorical:
    """:func:`_as_factor`'s Categorical (:func:`_factor_codes` made into one)."""
    return _categorical(_factor_codes(col, levels, path, column))


def _categorical(col: Factor | pd.Categorical) -> pd.Categorical:
    return col.categorical() if isinstance(col, Factor) else col


def _column_factor(columns: ColumnCache, name: str, levels: list | None, path: str) -> Factor | pd.Categorical:
    """:func:`_factor_codes` of data column ``name``, an integer or pyarrow text column
    without listed levels coded from its array (no Series made)."""
    if levels is None:
        values = columns.array(name)
        if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
            return _integer_factor(values)
        if isinstance(values, pd.arrays.ArrowStringArray):
            return arrow_text_factor(values)
    return _factor_codes(columns[name], levels, path, name)


def _factor_codes(col: pd.Series, levels: list | None, path: str, column: str) -> Factor | pd.Categorical:
    """The factor of a column: a :class:`~mixedbridge.factor.Factor` without listed levels,
    the Categorical of the listed levels otherwise. Labels are made once per distinct value
    (``factorize``), not once per row; a Categorical without listed levels keeps its codes
    (:func:`_categorical_factor`)."""
    if levels is None and isinstance(col.dtype, pd.CategoricalDtype):
        kept = _categorical_factor(col)
        if kept is not None:
            return kept
    if levels is None and col.dtype.kind in "iu":
        return _integer_factor(col.to_numpy())
    text = _is_text(col)
    # a pandas string column factorizes its own array (pd.factorize's wrapping costs ~10 µs)
    codes, found = col.array.factorize() if isinstance(col.dtype, pd.StringDtype) else pd.factorize(col)
    uniques = found.tolist()  # Python values at once (iterating the index boxes each, ~2 µs a level)
    ulabels = [_level_label(u) if isinstance(u, (bool, np.bool_)) or not text else str(u) for u in uniques]
    seen = set(ulabels)
    if levels is None and isinstance(col.dtype, pd.CategoricalDtype):
        order = [lab for lab in dict.fromkeys(str(c) for c in col.cat.categories) if lab in seen]
    elif levels is None:
        ordered = sorted(ulabels) if text else [_level_label(v) for v in sorted(uniques)]
        order = list(dict.fromkeys(ordered))
    else:
        order = [str(v) for v in levels]
        for j, lev in enumerate(order):
            if lev not in seen:
                raise DataError(f"level {lev!r} of column {column!r} does not occur in the data "
                                f"(after filtering); it has {_listing(sorted(seen))}", f"{path}/{j}")
        extra = sorted(seen - set(order))
        if extra:
            raise DataError(f"column {column!r} has values not listed in levels: "
                            f"{_listing(extra)}; list them or filter them out", path)
    position = {lab: i for i, lab in enumerate(order)}
    to_level = np.array([position[lab] for lab in ulabels] + [-1], dtype=np.int64)
    if levels is None:
        return Factor(to_level[codes], order)
    # listed levels may name one label twice (1 and "1"): pandas checks those
    return pd.Categorical.from_codes(to_level[codes], dtype=pd.CategoricalDtype(order), validate=False)


def _integer_factor(values: np.ndarray) -> Factor:
    """:func:`_factor_codes` of a numpy integer column without listed levels (no missing values
    by its dtype): R's numeric level order and labels, made by ``np.unique`` over the values,
    not per row or per level in Python (a Parquet partition of a million rows and 600,000
    group ids: ~0.2 s instead of ~5 s)."""
    uniques, codes = unique_integers(values)
    return Factor(codes.reshape(-1), uniques.astype(str).tolist())


def unique_integers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` of an integer array (the sorted distinct
    values and each value's index among them), by a table over the values' range when it is
    not much wider than the array (a pass over the rows instead of a sort: InstEval's four
    grouping columns, 73,421 rows, 27 -> 3 ms)."""
    values = np.asarray(values).reshape(-1)
    if values.size == 0:
        return values.copy(), np.zeros(0, dtype=np.intp)
    low, high = int(values.min()), int(values.max())
    if high - low > 4 * values.size + 1024:
        uniques, codes = np.unique(values, return_inverse=True)
        return uniques, codes.reshape(-1)
    shifted = values - low
    seen = np.zeros(high - low + 1, dtype=bool)
    seen[shifted] = True
    present = np.flatnonzero(seen)
    lookup = np.zeros(high - low + 1, dtype=np.intp)
    lookup[present] = np.arange(len(present))
    return (present + low).astype(values.dtype), lookup[shifted]


def _categorical_factor(col: pd.Series) -> Factor | None:
    """:func:`_factor_codes` of a Categorical without listed levels, from its codes: the
    categories that occur, in their order, labelled as :func:`_factor_codes` labels them; None
    when two categories share a label (the general path merges them)."""
    cats = col.cat.categories
    values = cats.tolist()
    labels = text_labels(cats)
    if len(set(labels)) != len(labels) or any(isinstance(c, (bool, np.bool_)) for c in values):
        return None
    # the Categorical's own codes (``.cat.codes`` is a copy), not a copy where every category
    # occurs (pandas' copy-on-write keeps them apart)
    return Factor(col.array.codes, labels).used()


_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power}
_COMPARE = {">": np.greater, "<": np.less, ">=": np.greater_equal, "<=": np.less_equal,
            "==": np.equal, "!=": np.not_equal}
_OPERATORS = frozenset(_ARITH) | frozenset(_COMPARE) | {"&", "|", "%in%"}


def _evaluate(node: Node, df: pd.DataFrame, label: str) -> np.ndarray:
    """Numeric value of a transformation, walking its syntax tree (a chain ``a + b + ...`` in a
    loop, so that its length costs no recursion). Logical values are 1.0/0.0 (NaN for R's NA)."""
    if node.kind == "num":
        return np.full(len(df), float(node.value))  # type: ignore[arg-type]
    if node.kind == "name":
        return _name_values(str(node.value), df, label)
    if node.kind == "paren":
        return _evaluate(node.children[0], df, label)
    if node.kind == "neg":
        return -_evaluate(node.children[0], df, label)
    if node.kind == "not":
        return 1.0 - _evaluate(node.children[0], df, label)
    if node.kind == "call":
        return _call(node, df, label)
    if node.kind != "bin":
        raise DataError(f"{deparse(node)} cannot be used as a number in {label!r}", "/formula")
    first, rest = left_spine(node, _OPERATORS)
    out = _evaluate(first, df, label)
    for op, right in rest:
        out = _binary(op, out, right, df, label)
    return out


def _name_values(name: str, df: pd.DataFrame, label: str) -> np.ndarray:
    """A data column's values, or a constant (``pi``, ``TRUE``) where the data have no such column."""
    if name not in df.columns:
        return np.full(len(df), CONSTANTS[name])
    col = df[name]
    if pd.api.types.is_bool_dtype(col):
        return col.astype(float).to_numpy()
    if _is_text(col):
        raise DataError(f"column {name!r} is text and cannot be used in {label!r}", "/formula")
    return col.to_numpy(dtype=float)


def _binary(op: str, left: np.ndarray, right: Node, df: pd.DataFrame, label: str) -> np.ndarray:
    """``left op right`` with R's rules for missing values in comparisons and ``&``, ``|``."""
    if op == "%in%":
        return np.isin(left, _constants(right, label)).astype(float)
    value = _evaluate(right, df, label)
    if op in _ARITH:
        return _ARITH[op](left, value)
    missing = np.isnan(left) | np.isnan(value)
    if op == "&":
        out = np.where((left == 0) | (value == 0), 0.0, np.where(missing, np.nan, 1.0))
    elif op == "|":
        out = np.where((left == 1) | (value == 1), 1.0, np.where(missing, np.nan, 0.0))
    else:
        out = np.where(missing, np.nan, _COMPARE[op](left, value).astype(float))
    return out


def _constants(node: Node, label: str) -> np.ndarray:
    """The numbers of an expression without data columns: ``3``, ``c(0, 1.5, 2)``, ``2 * pi``."""
    if node.kind == "call" and node.value == "c":
        return np.concatenate([_constants(a, label) for a in node.children])
    if columns_of(node) or any(n.kind in ("str", "arg") for n in walk(node)):
        raise DataError(f"{deparse(node)} in {label!r} must be a number or c() of numbers", "/formula")
    return _evaluate(node, pd.DataFrame(index=[0]), label)


def _arguments(node: Node, names: tuple[str, ...], label: str) -> dict[str, Node]:
    """R's matching of a call's arguments to its parameters: by exact name, then by position."""
    fun = str(node.value).rpartition("::")[2]
    named = {str(a.value): a.children[0] for a in node.children if a.kind == "arg"}
    positional = [a for a in node.children if a.kind != "arg"]
    for key in named:
        if key not in names:
            raise DataError(f"{fun}() in {label!r} has no argument {key!r}; it takes {', '.join(names)}",
                            "/formula")
    free = [n for n in names if n not in named]
    if len(positional) > len(free):
        raise DataError(f"{fun}() in {label!r} takes at most {len(names)} argument(s): {', '.join(names)}",
                        "/formula")
    return {**dict(zip(free, positional)), **named}


def _flag_or_number(node: Node | None, label: str) -> bool | float:
    """A logical argument (``TRUE``/``FALSE``) as a bool, else a number; absent means TRUE."""
    if node is None:
        return True
    if node.kind == "name" and node.value in ("TRUE", "T", "FALSE", "F"):
        return node.value in ("TRUE", "T")
    values = _constants(node, label)
    if values.size != 1:
        raise DataError(f"{deparse(node)} in {label!r} must be one number or TRUE/FALSE", "/formula")
    return float(values[0])


def _scale(x: np.ndarray, center: bool | float, scale: bool | float) -> np.ndarray:
    """R's ``scale(x, center, scale)``: centre by the mean (or a number), then divide by the
    root mean square with n - 1 (the SD when centred by the mean) or a number."""
    ok = ~np.isnan(x)
    if center is not False:
        x = x - (x[ok].mean() if center is True else center)
    if scale is True:
        x = x / np.sqrt(np.sum(x[ok] ** 2) / max(1, int(ok.sum()) - 1))
    elif scale is not False:
        x = x / scale
    return x


_FUNCS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "log2": np.log2, "log10": np.log10, "log1p": np.log1p, "exp": np.exp, "sqrt": np.sqrt,
    "abs": np.abs, "sin": np.sin, "cos": np.cos, "tan": np.tan, "I": lambda x: x, "as.numeric": lambda x: x,
    "offset": lambda x: x}


def _call(node: Node, df: pd.DataFrame, label: str) -> np.ndarray:
    """A whitelisted numeric function of the formula applied to its evaluated arguments."""
    fun = str(node.value).rpartition("::")[2]
    if fun == "log":
        args = _arguments(node, ("x", "base"), label)
        x = np.log(_evaluate(args["x"], df, label))
        return x / np.log(_flag_or_number(args["base"], label)) if "base" in args else x
    if fun == "scale":
        args = _arguments(node, ("x", "center", "scale"), label)
        return _scale(_evaluate(args["x"], df, label), _flag_or_number(args.get("center"), label),
                      _flag_or_number(args.get("scale"), label))
    if fun not in _FUNCS:
        raise DataError(f"{fun}() cannot be used inside another expression in {label!r}", "/formula")
    args = _arguments(node, ("x",), label)
    return _FUNCS[fun](_evaluate(args["x"], df, label))


def _factor_variable(v: Variable, df: pd.DataFrame, levels: dict) -> pd.Series:
    """A factor-valued variable: ``factor(f)``, ``relevel(f, ref = "B")``, ``cut(x, breaks)``
    or a logical ``I(age > 10)`` (levels FALSE, TRUE)."""
    if v.is_logical:
        with np.errstate(all="ignore"):
            values = _evaluate(v.expr, df, v.label)
        codes = np.where(np.isnan(values), -1, values).astype(np.int64)
        return pd.Series(pd.Categorical.from_codes(codes, categories=["FALSE", "TRUE"]), index=df.index)
    fun = v.function
    args = _arguments(v.expr, ("x", "breaks") if fun == "cut" else ("x", "ref"), v.label)
    if fun == "cut":
        if "breaks" not in args:
            raise DataError(f"cut() in {v.label!r} needs breaks", "/formula")
        with np.errstate(all="ignore"):
            return _cut(_evaluate(args["x"], df, v.label), _constants(args["breaks"], v.label), df.index, v.label)
    inner = args["x"]
    if inner.kind != "name":
        raise DataError(f"{v.label!r}: {fun}() takes a column name", "/formula")
    name = str(inner.value)
    col = _as_factor(df[name], levels.get(name), f"/levels/{name}", name)
    if fun == "relevel":
        col = _relevel(col, args.get("ref"), v.label)
    elif "ref" in args:
        raise DataError(f"{fun}() in {v.label!r} takes one argument", "/formula")
    return col


def _relevel(col: pd.Series, ref: Node | None, label: str) -> pd.Series:
    """R's ``relevel``: the reference level (a label, or a 1-based position) put first."""
    cats = [str(c) for c in col.cat.categories]
    position = float(ref.value) if ref is not None and ref.kind == "num" else 0.0  # type: ignore[arg-type]
    if ref is not None and ref.kind == "str":
        level = str(ref.value)
    elif position.is_integer() and 1 <= position <= len(cats):
        level = cats[int(position) - 1]
    else:
        raise DataError(f"relevel() in {label!r} needs ref = a level (in quotes) or its position", "/formula")
    if level not in cats:
        raise DataError(f"'ref' level {level!r} in {label!r} is not a level of the factor", "/formula")
    return col.cat.reorder_categories([level] + [c for c in cats if c != level])


def _cut_breaks(x: np.ndarray, breaks: np.ndarray) -> np.ndarray:
    """R's ``cut`` breaks: a number k of intervals over the range, widened by range/1000 at
    each end, or the sorted break points given."""
    if breaks.size != 1:
        return np.sort(breaks)
    k = int(breaks[0])
    lo, hi = np.nanmin(x), np.nanmax(x)
    if k < 2 or breaks[0] != k:
        raise DataError("cut(): the number of intervals must be a whole number of at least 2", "/formula")
    if hi == lo:
        lo, hi = lo - abs(lo) / 1000, hi + abs(hi) / 1000
        return np.linspace(lo, hi, k + 1)
    out = np.linspace(lo, hi, k + 1)
    dx = hi - lo
    out[0], out[-1] = lo - dx / 1000, hi + dx / 1000
    return out


def _cut(x: np.ndarray, breaks: np.ndarray, index: pd.Index, label: str) -> pd.Series:
    """R's ``cut(x, breaks)`` (right-closed intervals, labels with 3 significant digits, more
    if needed to tell them apart); values outside every interval are missing."""
    b = _cut_breaks(x, breaks)
    if b.size < 2 or np.any(np.diff(b) <= 0):
        raise DataError(f"cut() in {label!r}: the breaks must be distinct", "/formula")
    for digits in range(3, 13):
        nb = [_format_g(v, digits) for v in b]
        if all(nb[i] != nb[i + 1] for i in range(len(nb) - 1)):
            break
    labels = [f"({nb[i]},{nb[i + 1]}]" for i in range(len(nb) - 1)]
    codes = np.searchsorted(b, x, side="left") - 1
    codes = np.where(np.isnan(x) | (x <= b[0]) | (x > b[-1]), -1, codes)
    return pd.Series(pd.Categorical.from_codes(codes.astype(np.int64), categories=labels), index=index)


def _format_g(value: float, digits: int) -> str:
    """C's ``%.{digits}g`` as R's ``formatC(x, digits, width = 1)`` writes it."""
    return f"{value:.{digits}g}"


def _matrix(v: Variable, df: pd.DataFrame) -> pd.DataFrame:
    """A matrix-valued variable's columns (named 1..k, as R names them): ``poly``, ``ns``, ``bs``."""
    if v.function == "poly":
        return _poly(v, df)
    names = ("x", "df", "knots", "degree") if v.function == "bs" else ("x", "df", "knots")
    args = _arguments(v.expr, names, v.label)
    x = _evaluate(args["x"], df, v.label)
    ok = ~np.isnan(x)
    degree = _whole(args.get("degree"), 3, v.label) if v.function == "bs" else 3
    knots = _spline_knots(x[ok], args, degree if v.function == "bs" else 1, v.label)
    basis = _spline_basis(x[ok], knots, degree, natural=v.function == "ns")
    out = np.full((len(x), basis.shape[1]), np.nan)
    out[ok] = basis
    return pd.DataFrame(out, index=df.index, columns=[str(j) for j in range(1, out.shape[1] + 1)])


def _whole(node: Node | None, default: int, label: str) -> int:
    """A whole-number argument (``degree = 2``, ``df = 4``), or its default when absent."""
    value = default if node is None else _flag_or_number(node, label)
    if isinstance(value, bool) or not float(value).is_integer() or value < 1:
        what = str(value) if node is None else deparse(node)
        raise DataError(f"{what} in {label!r} must be a whole number of at least 1", "/formula")
    return int(value)


def _spline_knots(x: np.ndarray, args: dict[str, Node], ord_less: int, label: str) -> np.ndarray:
    """Interior knots of R's ``bs``/``ns``: those given, or ``df - ord_less`` knots at the
    quantiles (R's type 7) of x at equally spaced probabilities; none without df or knots
    (``ord_less`` is the degree for ``bs``, 1 for ``ns``, both without an intercept)."""
    if "knots" in args:
        return np.sort(_constants(args["knots"], label))
    if "df" not in args:
        return np.zeros(0)
    n = max(0, _whole(args["df"], 1, label) - ord_less)
    return np.quantile(x, np.linspace(0, 1, n + 2)[1:-1]) if n else np.zeros(0)


def _spline_basis(x: np.ndarray, knots: np.ndarray, degree: int, natural: bool) -> np.ndarray:
    """R's ``splineDesign`` B-spline basis without its first column (``intercept = FALSE``), with
    boundary knots at the range of x; for ``ns``, projected (by the QR of the second derivatives
    at the boundary knots, as R's ``qr.qty``) onto the natural splines."""
    from scipy.interpolate import BSpline  # imported only by models with spline terms

    lo, hi = float(np.min(x)), float(np.max(x))
    t = np.concatenate([np.full(degree + 1, lo), knots, np.full(degree + 1, hi)])
    nb = len(t) - degree - 1
    spline = BSpline(t, np.eye(nb), degree, extrapolate=True)
    basis = spline(x)[:, 1:]
    if not natural:
        return basis
    const = spline.derivative(2)(np.array([lo, hi]))[:, 1:]
    q, _ = np.linalg.qr(const.T, mode="complete")
    return basis @ q[:, 2:]


def _poly(v: Variable, df: pd.DataFrame) -> pd.DataFrame:
    """R's ``poly(x, degree, raw = FALSE)``: the orthonormal polynomials of the centred x of degree
    1..k (Gram-Schmidt of 1, x, ..., x^k, as R's QR with a positive diagonal, i.e. the columns of
    ``Z / sqrt(norm2)``), or the raw powers x, ..., x^k; columns named 1..k."""
    args = _arguments(v.expr, ("x", "degree", "raw"), v.label)
    x = _evaluate(args["x"], df, v.label)
    degree = _flag_or_number(args.get("degree", Node("num", 1.0)), v.label)
    raw = _flag_or_number(args["raw"], v.label) if "raw" in args else False
    if isinstance(degree, bool) or not float(degree).is_integer() or degree < 1:
        raise DataError(f"poly() in {v.label!r}: the degree must be a whole number of at least 1", "/formula")
    k = int(degree)
    if np.isnan(x).any():
        raise DataError(f"poly() in {v.label!r}: missing values are not allowed in 'poly' (as in R)", "/formula")
    if raw:
        out = np.column_stack([x ** j for j in range(1, k + 1)])
    else:
        if k >= len(np.unique(x)):
            raise DataError(f"poly() in {v.label!r}: 'degree' must be less than number of unique points",
                            "/formula")
        q, r = np.linalg.qr(np.vander(x - x.mean(), k + 1, increasing=True))
        out = (q * np.sign(np.diag(r)))[:, 1:]
    return pd.DataFrame(out, index=df.index, columns=[str(j) for j in range(1, k + 1)])


#: pandas' reader of a DataFrame's column as the array it holds, by position (private: where a
#: pandas release lacks it, the column's Series is made and its array read).
_COLUMN_ARRAY = getattr(pd.DataFrame, "_get_column_array", None)


class ColumnCache:
    """``df[name]`` read once per column (pandas builds a new Series on every ``df[name]``, some
    microseconds each, and a small model's frame reads each column several times); :meth:`array`
    reads a column's values without a Series (~0.5 µs instead of ~9 µs)."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df
        self._got: dict[str, pd.Series] = {}
        self._arrays: dict[str, ColumnArray] = {}

    def __getitem__(self, name: str) -> pd.Series:
        got = self._got.get(name)
        if got is None:
            got = self._got[name] = self.df[name]
        return got

    def array(self, name: str) -> ColumnArray:
        """Column ``name``'s values as pandas holds them: a read-only view of its numpy array,
        or its ExtensionArray (a Categorical, pyarrow text, ...), to read and never to keep in a
        model frame (no copy-on-write reference guards it: a write into the data would show)."""
        got = self._arrays.get(name)
        if got is None:
            got = self._arrays[name] = self._read(name)
        return got

    def _read(self, name: str) -> ColumnArray:
        reader = _COLUMN_ARRAY
        loc = self.df.columns.get_loc(name) if reader is not None else None
        if reader is not None and isinstance(loc, int):
            values = reader(self.df, loc)
        else:  # no private reader, or a column name the data hold twice
            col = self[name]
            values = col.to_numpy() if isinstance(col.dtype, np.dtype) else col.array
        if isinstance(values, np.ndarray):
            values = values.view()
            values.flags.writeable = False
        return values

    def of(self, df: pd.DataFrame) -> ColumnCache:
        """This cache when ``df`` is its frame, else a fresh one for ``df``."""
        return self if df is self.df else ColumnCache(df)


#: A model frame column before the frame is made: a numpy array, Categorical or Factor of its
#: own, or a Series (a view of the data's column, which pandas' copy-on-write keeps apart from it).
Values: TypeAlias = np.ndarray | pd.Categorical | Factor | pd.Series
#: A data column's values as pandas holds them (:meth:`ColumnCache.array`).
ColumnArray: TypeAlias = np.ndarray | pd.api.extensions.ExtensionArray


def _variable_column(v: Variable, df: pd.DataFrame, factors: set[str], levels: dict,
                     columns: ColumnCache | None = None) -> pd.Series:
    """A model variable's column on the data's index."""
    values = _variable_values(v, df, factors, levels, columns)
    if isinstance(values, pd.Series):
        return values
    return pd.Series(_categorical(values) if isinstance(values, Factor) else values, index=df.index, copy=False)


def _variable_values(v: Variable, df: pd.DataFrame, factors: set[str], levels: dict,
                     columns: ColumnCache | None = None) -> Values:
    """A model variable's values: a factor's Factor (or the Categorical of its listed levels), a
    number column as floats, a transformation's values."""
    if v.is_column:
        name = str(v.expr.value)
        cols = ColumnCache(df) if columns is None else columns
        if name in factors:
            return _column_factor(cols, name, levels.get(name), f"/levels/{name}")
        return _float_values(cols, name)
    if v.is_factor_call:
        return _factor_variable(v, df, levels)
    with np.errstate(all="ignore"):
        values = _evaluate(v.expr, df, v.label)
    present = df[list(v.columns)].notna().all(axis=1).to_numpy()
    bad = present & ~np.isfinite(values)
    if bad.any():
        raise ModelError(f"{v.label!r} is undefined or infinite for {int(bad.sum())} row(s) "
                         "(e.g. the log of a value <= 0); filter those rows or change the transformation")
    return values


#: Up to this many rows a float column is copied into the model frame (a few µs) rather than
#: shared with the data under pandas' copy-on-write (whose bookkeeping costs ~20 µs a frame).
COPY_ROWS = 10_000


def _float_values(columns: ColumnCache, name: str) -> Values:
    """``df[name].astype(float)``: a float64 column itself (its copy when short), a numpy
    number column's values as a new float array (pandas' astype costs ~20 µs a call), anything
    else by pandas."""
    values = columns.array(name)
    dtype = values.dtype
    if dtype == np.float64 and isinstance(dtype, np.dtype):
        return np.array(values) if len(values) <= COPY_ROWS else columns[name]
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        return values.astype(float)
    return columns[name].astype(float)


def model_frame(df: pd.DataFrame, desc: ModelDescription, spec: dict,
                factor_hint: set[str] | None = None, integer_groups: frozenset[str] = frozenset()) -> ModelFrame:
    """Filter, type, transform and complete the data for a model (errors quote the data's own
    names and values only when the rows did not come from a file). Grouping columns named in
    ``integer_groups`` that hold integers stay integer columns (the Dask backend codes them on
    the whole data's values itself; :meth:`ModelFrame.grouping_factor` makes their factor)."""
    token = _QUOTE_DATA.set(not df.attrs.get(FROM_FILE, False))
    try:
        return _model_frame(df, desc, spec, factor_hint, integer_groups)
    finally:
        _QUOTE_DATA.reset(token)


def _model_frame(df: pd.DataFrame, desc: ModelDescription, spec: dict,
                 factor_hint: set[str] | None, integer_groups: frozenset[str] = frozenset()) -> ModelFrame:
    levels = spec.get("levels") or {}
    options = spec.get("options") or {}
    columns = ColumnCache(df)
    _check_input(df, desc, levels, columns)
    df = _numbers(df, desc.columns + [options[r] for r in RESERVED if options.get(r) in df.columns], columns)
    _check_labels(desc)
    df = apply_filters(df, spec.get("filter") or [])
    columns = columns.of(df)
    glmm = spec.get("analysis") == "glmm"
    raw = {g for g in integer_groups if g in df.columns and columns.array(g).dtype.kind in "iu" and g not in levels}
    factors = _factors(df, desc, levels, factor_hint, glmm, columns) - raw
    data, matrices, resp = _model_columns(df, desc, factors, levels, options, glmm, raw, columns)
    complete = _complete_rows(data.values())
    index = df.index
    n_missing = 0 if complete is None else int((~complete).sum())
    if complete is not None and n_missing:
        index = index[complete]
        data = {lab: _rows(col, complete) for lab, col in data.items()}
    if len(index) == 0:
        raise DataError("no complete rows remain: every row misses a value of a model variable", "/data")
    warnings = [] if resp is None else check(resp, index, _prior_weights(data, index, options))
    made = _used_factors(data)
    factor_labels = set(made)
    _check_finite(data, factor_labels)
    notes = []
    if n_missing:
        notes.append(f"{n_missing} row{'s' if n_missing != 1 else ''} with missing values in model "
                     f"variables removed (listwise deletion); {len(index)} rows used." + _missing_words())
    source = df if not n_missing and df.index.is_unique else df.loc[index]
    out = ModelFrame(_Columns(data, index, matrices), factor_labels, source,  # type: ignore[arg-type]
                     n_missing, notes, matrices, warnings)
    check_design(desc, {lab: _nlevels(col) for lab, col in made.items()}, out.nobs)
    return out


def _rows(col: Values, keep: np.ndarray) -> Values:
    """The rows of a column where ``keep`` holds (numpy values as a numpy array of their own)."""
    if isinstance(col, pd.Series):
        return (col.to_numpy() if isinstance(col.dtype, np.dtype) else col.array)[keep]
    if isinstance(col, Factor):
        return col.take(keep)
    return col[keep]


def _used_factors(data: dict[str, Values]) -> dict[str, Factor | pd.Categorical]:
    """The factor columns as Factors (or Categoricals) of the levels that occur (written back
    into ``data``)."""
    made: dict[str, Factor | pd.Categorical] = {}
    for lab, col in data.items():
        if isinstance(col, Factor):
            made[lab] = col.used()
        elif isinstance(col.dtype, pd.CategoricalDtype):
            cat = cast(pd.Categorical, col.array if isinstance(col, pd.Series) else col)
            made[lab] = cat.remove_unused_categories() if _has_unused(cat) else cat
    data.update(made)
    return made


def _nlevels(col: Factor | pd.Categorical) -> int:
    return len(col.labels) if isinstance(col, Factor) else len(col.categories)


def _arrays(data: dict[str, Values]) -> dict[str, np.ndarray | pd.Categorical | Factor]:
    """The numpy arrays, Categoricals and Factors a frame is made of (a Series of numpy values
    as its array; other pandas arrays are left to the frame)."""
    out: dict[str, np.ndarray | pd.Categorical | Factor] = {}
    for lab, col in data.items():
        if isinstance(col, pd.Series) and isinstance(col.dtype, np.dtype):
            out[lab] = col.to_numpy()
        elif isinstance(col, (np.ndarray, pd.Categorical, Factor)):
            out[lab] = col
    return out


def _complete_rows(columns) -> np.ndarray | None:
    """Rows where every column holds a value (``notna().all(axis=1)`` column by column on the
    arrays), or None when all do."""
    complete: np.ndarray | None = None
    for col in columns:
        ok = _present(col)
        if ok is not None and not ok.all():
            complete = ok if complete is None else complete & ok
    return complete


def _present(col: Values) -> np.ndarray | None:
    """Rows where a column holds a value; None for a dtype that cannot miss one."""
    if isinstance(col, Factor):
        return col.codes >= 0
    dtype = col.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return None
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return ~np.isnan(np.asarray(col))
    if isinstance(dtype, pd.CategoricalDtype):
        return _codes(col) >= 0
    return np.asarray(pd.notna(col))


def _codes(col: pd.Series | pd.Categorical) -> np.ndarray:
    """A Categorical's own codes (``.cat.codes`` is a copy in a Series)."""
    return (col.array if isinstance(col, pd.Series) else col).codes


def _has_unused(col: pd.Series | pd.Categorical) -> bool:
    """Whether a Categorical column has a category that no row takes (a count, not a sort)."""
    return has_unused(_codes(col), len(col.dtype.categories))


def _numbers(df: pd.DataFrame, columns: list[str], cache: ColumnCache | None = None) -> pd.DataFrame:
    """The data with each named column that holds only numbers (and missing values) but was
    read as objects (integers beyond 64 bits, mixed ints and floats) made a float column."""
    changed = {}
    cache = ColumnCache(df) if cache is None else cache
    for c in dict.fromkeys(columns):
        dtype = cache.array(c).dtype
        if not (isinstance(dtype, np.dtype) and dtype.kind == "O"):
            continue
        col = cache[c]
        values = col.dropna()
        if len(values) and all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in values):
            try:
                changed[c] = col.astype(float)
            except OverflowError:
                raise DataError(f"column {c!r} holds a number too large for a double-precision value "
                                "(above about 1.8e308); rescale the column", "/data") from None
    return df.assign(**changed) if changed else df


def _check_labels(desc: ModelDescription) -> None:
    """A grouping column must not carry a label the model frame gives something else: the
    prior weights' or offset's (``(weights)``), or a transformation's (``factor(f)``)."""
    labels = {v.label: v for v in desc.variables}
    for g in desc.grouping_columns:
        role = _ROLE_OF.get(g)
        if role is not None:
            what = "prior weights" if role == "weights" else role
            raise DataError(f"the grouping column {g!r} has the name under which the model keeps the "
                            f"{what} (as R does); rename the column", "/formula")
        v = labels.get(g)
        if v is not None and not (v.is_column and v.expr.value == g):
            made = ", ".join(repr(c) for c in v.columns) or "no column"
            raise DataError(f"the grouping column {g!r} has the same name as the model variable {v.label}, "
                            f"made from {made}; rename the column", "/formula")


def _check_input(df: pd.DataFrame, desc: ModelDescription, levels: dict,
                 columns: ColumnCache | None = None) -> None:
    """Rows and columns present, names unique, every named column there."""
    if len(df) == 0 or len(df.columns) == 0:
        raise DataError("the data have no rows" if len(df.columns) else "the data have no columns", "/data")
    if not df.columns.is_unique:
        names = list(df.columns)
        dupes = sorted({str(c) for c in names if names.count(c) > 1})
        raise DataError(f"duplicate column name(s) in the data: {_listing(dupes)}", "/data")
    cols = ColumnCache(df) if columns is None else columns
    for col in desc.columns:
        _check_column(df, col, "/formula")
        if not _has_value(cols.array(col)):
            raise DataError(f"column {col!r} has no values: it is missing in every row", "/formula")
    for col in levels:
        _check_column(df, col, f"/levels/{col}")


def _has_value(values: ColumnArray) -> bool:
    """Whether some row of a column (its array) holds a value (``notna().any()``, without
    pandas' per-call cost for numpy number columns)."""
    kind = values.dtype.kind if isinstance(values.dtype, np.dtype) else ""
    if kind in "iub":
        return True
    if kind == "f":
        return not np.isnan(values).all()
    return not bool(np.asarray(pd.isna(values)).all())


def _factors(df: pd.DataFrame, desc: ModelDescription, levels: dict, factor_hint: set[str] | None,
             glmm: bool = False, columns: ColumnCache | None = None) -> set[str]:
    """The columns treated as factors: text, listed in ``levels``, grouping factors, marked by
    the data set, or wrapped in ``factor()``; the response must not be one, except a glmm's
    (a binomial response may be a two-level factor). A numeric grouping
    column that is also a variable of the model stays numeric there, as in lme4
    (``yield ~ nitro + Block + (1 | Block:Variety)`` fits one slope for Block); its grouping
    factor is made by :meth:`ModelFrame.grouping_factor`."""
    cols = ColumnCache(df) if columns is None else columns
    factors = {c for c in desc.columns if _is_text(cols.array(c))}
    variables = {v.label for v in desc.variables if v.is_column}
    factors |= set(levels) | (set(desc.grouping_columns) - variables)
    factors |= set(factor_hint or ()) & set(desc.columns)
    factors |= {v.label for v in desc.variables if v.is_factor_call}
    if desc.response.is_counts and not glmm:
        raise DataError(f"the response {desc.response.label} (successes and failures) is a binomial response: "
                        "use analysis 'glmm' with options.family 'binomial'", "/formula")
    if glmm and not desc.response.is_counts:
        return factors
    if desc.response.is_factor_call or (set(desc.response.columns) & factors):
        raise DataError(f"the response {desc.response.label!r} must be numeric; it holds text or a factor",
                        "/formula")
    return factors


def _model_columns(df: pd.DataFrame, desc: ModelDescription, factors: set[str], levels: dict,
                   options: dict, glmm: bool = False, raw: set[str] | None = None,
                   columns: ColumnCache | None = None
                   ) -> tuple[dict[str, Values], dict[str, list[str]], GlmmResponse | None]:
    """The model frame's columns: variables (a matrix-valued one as its columns, R's names),
    grouping factors (those in ``raw`` as their integers), ``(weights)`` and ``(offset)``, and
    each matrix-valued variable's columns;
    ``levels`` of columns outside the model are checked too. A glmm's response is on its
    family's scale (see :mod:`.response`), and returned for its checks."""
    data: dict[str, Values] = {}
    matrices: dict[str, list[str]] = {}
    cols = ColumnCache(df) if columns is None else columns
    resp = _glmm_response(desc.response, df, factors, levels, options) if glmm else None
    if resp is not None:
        data[desc.response.label] = resp.y
    for v in desc.variables:
        if v.label in data:
            continue
        if v.is_matrix:
            block = _matrix(v, df)
            matrices[v.label] = [v.label + c for c in block.columns]
            data.update({v.label + c: block[c] for c in block.columns})
        else:
            data[v.label] = _variable_values(v, df, factors, levels, cols)
    for g in desc.grouping_columns:
        if g not in data:
            data[g] = cols[g] if g in (raw or ()) else _column_factor(cols, g, levels.get(g), f"/levels/{g}")
    for col in set(levels) - set(data):
        _as_factor(df[col], levels[col], f"/levels/{col}", col)
    for role, label in RESERVED.items():
        col = options.get(role)
        if col:
            data[label] = _numeric_column(df, col, f"/options/{role}", role)
    if desc.offsets:
        data[RESERVED["offset"]] = _offset(desc, df, data.get(RESERVED["offset"]))
    if resp is not None and resp.trials is not None:
        prior = data.get(RESERVED["weights"])
        data[RESERVED["weights"]] = resp.trials if prior is None else resp.trials * prior
    return data, matrices, resp


def _glmm_response(v: Variable, df: pd.DataFrame, factors: set[str], levels: dict, options: dict) -> GlmmResponse:
    """A glmm's response in the form written: counts ``cbind(s, f)``, a factor, or numbers."""
    family = str(options.get("family"))
    if v.is_counts:
        with np.errstate(all="ignore"):
            s, f = (_evaluate(a, df, v.label) for a in v.expr.children)
        return from_counts(v.label, family, s, f, df.index)
    col = _variable_column(v, df, factors, levels)
    if isinstance(col.dtype, pd.CategoricalDtype):
        return from_factor(v.label, family, col)
    return from_values(v.label, family, col)


def _prior_weights(data: dict[str, Values], index: pd.Index, options: dict) -> pd.Series | None:
    """The prior weights of the complete rows (``index``; the ``weights`` option's column), or
    None; a counts response's trials are in ``(weights)`` already and are not prior weights."""
    label = RESERVED["weights"]
    if not options.get("weights") or label not in data:
        return None
    col = data[label]
    return pd.Series(col.array if isinstance(col, pd.Series) else col, index=index, name=label)


def _offset(desc: ModelDescription, df: pd.DataFrame, given: pd.Series | None) -> pd.Series:
    """The ``offset(x)`` terms of the formula summed, with the ``offset`` option's column, as R's
    ``model.offset`` sums them."""
    total = np.zeros(len(df)) if given is None else given.to_numpy(dtype=float)
    for v in desc.offsets:
        args = _arguments(v.expr, ("object",), v.label)
        with np.errstate(all="ignore"):
            total = total + _evaluate(args["object"], df, v.label)
    return pd.Series(total, index=df.index)


def _numeric_column(df: pd.DataFrame, column: str, path: str, role: str) -> pd.Series:
    _check_column(df, column, path)
    col = df[column]
    if _is_text(col):
        raise DataError(f"the {role} column {column!r} must be numeric", path)
    if role == "weights" and (col.dropna() < 0).any():
        raise DataError(f"the weights column {column!r} has negative values; weights must be >= 0", path)
    return col.astype(float)


def _check_finite(data: dict[str, Values], factors: set[str]) -> None:
    for lab, col in data.items():
        if lab in factors or isinstance(col, Factor):
            continue
        dtype = col.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "iub":
            continue
        values = col.astype(float, copy=False) if isinstance(col, np.ndarray) else col.to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            raise ModelError(f"variable {lab!r} has {int(bad.sum())} non-finite value(s) "
                             "(infinite, or undefined after a transformation); remove or filter them")
