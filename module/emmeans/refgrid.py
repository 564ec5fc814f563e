"""The reference grid, built as emmeans 1.8's ``ref_grid`` builds it.

Grid variables are the variables of the model's fixed part, in model order. A factor enters
with all its levels (or the levels named in ``at``). A covariate enters at its mean over the
rows used in the fit; at the values named in ``at``; at mean − k·SD, mean, mean + k·SD when
``sd_steps`` = k is asked; and at both of its values when it has at most two distinct values
(emmeans's ``cov.keep = "2"``). The grid is every combination, the first variable varying
fastest (R's ``expand.grid``).

Each grid row's design row is built by the same formulaic model spec that built X, so factor
codings (treatment or sum) and column names are exactly those of the fit; aliased columns
are kept here (the *full* design) and estimability is judged against the null space of the
full X, as ``estimability::is.estble`` does.

Note: a covariate is a variable of the model as written (``log(x)`` is one variable), so a
transformed covariate is averaged on its transformed scale; emmeans on a raw R formula would
average ``x`` and transform the mean. Both engines here see the transformed column.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..design import FormulaicNames
from ..frame import ModelFrame
from ..inference.permodel import remembered
from ..problem import Problem

#: emmeans's ``cov.keep = "2"``: covariates with at most this many distinct values are kept at each.
COV_KEEP = 2
#: Relative tolerance of the null-basis SVD (``estimability::nonest.basis.svd``).
NULL_TOL = 5e-8
#: Estimability tolerance (emmeans option ``estble.tol``).
ESTBLE_TOL = 1e-8
#: Most rows a reference grid may have (emmeans option ``rg.limit``).
MAX_GRID_ROWS = 10_000


@dataclass
class DesignMaker:
    """Rebuilds rows of the full fixed-effects design (aliased columns included) for new data."""

    problem: Problem
    names: list[str] = field(init=False)
    X: np.ndarray = field(init=False)
    key: tuple = field(init=False)

    def __post_init__(self) -> None:
        p = self.problem
        self._contrasts = p.options.get("contrasts", "treatment")
        self.key = ("full design", self._contrasts, p.desc.intercept, tuple(t.label for t in p.desc.fixed))
        self._spec, self.names, self.X = remembered(p.frame, self.key, self._full_design)

    def _full_design(self) -> tuple:
        """The model spec, column names and rows of the full design; computed once per model frame
        (:mod:`..inference.permodel`): every emmeans request on a kept model reads the same."""
        from formulaic import model_matrix  # a second's import, paid only by emmeans requests

        p = self.problem
        safe = FormulaicNames(p.frame, self._contrasts)
        mm = model_matrix(safe.rhs(p.desc.intercept, p.desc.fixed), safe.safe, na_action="raise")
        X = np.asarray(mm, dtype=float)
        X.setflags(write=False)
        return mm.model_spec, [safe.r_name(c) for c in mm.columns], X

    def null_basis(self) -> np.ndarray | None:
        """:func:`null_basis` of the full design, computed once per design."""
        return remembered(self.X, ("null basis",), lambda: null_basis(self.X))

    def rows(self, data: pd.DataFrame) -> np.ndarray:
        """Design rows for ``data`` (same columns and categories as the model frame)."""
        frame = ModelFrame(data, set(self.problem.frame.factors), data)
        safe = FormulaicNames(frame, self._contrasts)
        mm = self._spec.get_model_matrix(safe.safe)
        return np.asarray(mm, dtype=float)


def null_basis(X: np.ndarray, tol: float = NULL_TOL) -> np.ndarray | None:
    """Orthonormal basis of the null space of X (None when X has full column rank)."""
    if X.shape[1] == 0:
        return None
    _, d, vt = np.linalg.svd(X, full_matrices=X.shape[0] < X.shape[1])  # vt is p×p either way
    d = np.concatenate([d, np.zeros(vt.shape[0] - len(d))])
    w = d < d[0] * tol
    if not w.any():
        return None
    return vt[w].T


def estimable(L: np.ndarray, nbasis: np.ndarray | None, tol: float = ESTBLE_TOL) -> np.ndarray:
    """Whether each row of L (full columns) is estimable (``estimability::is.estble``)."""
    L = np.atleast_2d(L)
    if nbasis is None:
        return np.ones(L.shape[0], dtype=bool)
    chk = L @ nbasis
    ssq = np.sum(L * L, axis=1)
    ssq = np.where(ssq < tol, 1.0, ssq)
    return np.sum(chk * chk, axis=1) < tol * ssq


@dataclass
class RefGrid:
    """A reference grid.

    ``variables`` grid variables in model order; ``levels`` their values (level labels for
    factors, floats for covariates); ``factors`` which are factors; ``kept`` covariates kept at
    their two values; ``reduced`` covariates reduced to their mean (or mean ± k·SD), with the
    values; ``codes`` grid rows × variables, index of each row's value in ``levels``; ``X`` the
    grid's full design rows; ``names`` full design column names; ``coef`` index of each
    estimated coefficient in ``names``; ``nbasis`` null basis of the full X (None: all
    estimable).
    """

    variables: list[str]
    levels: dict[str, list]
    factors: set[str]
    kept: list[str]
    reduced: dict[str, list[float]]
    codes: np.ndarray
    X: np.ndarray
    names: list[str]
    coef: np.ndarray
    nbasis: np.ndarray | None
    maker: DesignMaker | None = None

    @property
    def nrow(self) -> int:
        return self.codes.shape[0]

    def values(self, var: str) -> list:
        """The grid column of ``var`` (one value per grid row)."""
        j = self.variables.index(var)
        lev = self.levels[var]
        return [lev[c] for c in self.codes[:, j]]


def fixed_variables(problem: Problem) -> list[str]:
    """Labels of the variables of the fixed part, in model order."""
    out: list[str] = []
    for term in problem.desc.fixed:
        for v in term.variables:
            if v.label not in out:
                out.append(v.label)
    return out


def grid_sizes(problem: Problem, at: dict | None = None, sd_steps: float | None = None) -> dict[str, int]:
    """How many values each grid variable takes (as :func:`build` chooses them), without
    building the grid: levels (or those in ``at``) for a factor; for a covariate, its ``at``
    values, its distinct values when at most :data:`COV_KEEP`, else 3 with ``sd_steps`` or 1."""
    at = at or {}
    frame = problem.frame
    sizes: dict[str, int] = {}
    for var in fixed_variables(problem):
        if var in at:
            sizes[var] = len(at[var])
        elif var in frame.factors:
            sizes[var] = len(frame.data[var].cat.categories)
        else:
            distinct = len(np.unique(frame.data[var].to_numpy(dtype=float)))
            sizes[var] = distinct if distinct <= COV_KEEP else (3 if sd_steps else 1)
    return sizes


def expand_codes(sizes: list[int]) -> np.ndarray:
    """All index combinations, the first position varying fastest (R's ``expand.grid``)."""
    if not sizes:
        return np.zeros((1, 0), dtype=np.int64)
    total = int(np.prod(sizes))
    out = np.empty((total, len(sizes)), dtype=np.int64)
    stride = 1
    for j, k in enumerate(sizes):
        out[:, j] = (np.arange(total) // stride) % k
        stride *= k
    return out


def covariate_values(x: np.ndarray, at: list | None, sd_steps: float | None) -> tuple[list[float], str]:
    """A covariate's grid values and how they were chosen (``at``/``kept``/``mean``/``sd``)."""
    if at is not None:
        return [float(v) for v in at], "at"
    uniq = np.unique(x)
    if len(uniq) <= COV_KEEP:
        return [float(v) for v in uniq], "kept"
    m = float(np.mean(x))
    if sd_steps:
        s = float(np.std(x, ddof=1))
        return [m - sd_steps * s, m, m + sd_steps * s], "sd"
    return [m], "mean"


def build(problem: Problem, fit_coef_names: list[str], at: dict | None = None, sd_steps: float | None = None,
          maker: DesignMaker | None = None, shift: tuple[str, float] | None = None) -> RefGrid:
    """The reference grid of ``problem`` for a fit with coefficients ``fit_coef_names``.

    ``at`` maps variables to the values (covariates) or levels (factors) to use; ``shift``
    (variable, h) adds h to a covariate in every grid row (for trends).
    """
    at = at or {}
    frame = problem.frame
    maker = maker or DesignMaker(problem)
    variables = fixed_variables(problem)
    levels: dict[str, list] = {}
    kept: list[str] = []
    reduced: dict[str, list[float]] = {}
    for var in variables:
        col = frame.data[var]
        if var in frame.factors:
            cats = [str(c) for c in col.cat.categories]
            levels[var] = [str(v) for v in at[var]] if var in at else cats
        else:
            vals, how = covariate_values(col.to_numpy(dtype=float), at.get(var), sd_steps)
            levels[var] = vals
            if how == "kept":
                kept.append(var)
            elif how in ("mean", "sd"):
                reduced[var] = vals
    codes = expand_codes([len(levels[v]) for v in variables])
    X = _grid_rows(problem, maker, variables, levels, codes, shift)
    names = maker.names
    missing = [c for c in fit_coef_names if c not in names]
    if missing:
        raise ValueError(f"coefficients {missing} are not columns of the model's design {names}")
    coef = np.array([names.index(c) for c in fit_coef_names], dtype=np.int64)
    nbasis = maker.null_basis() if len(coef) < len(names) else None
    return RefGrid(variables, levels, set(v for v in variables if v in frame.factors), kept, reduced,
                   codes, X, names, coef, nbasis, maker)


def _grid_rows(problem: Problem, maker: DesignMaker, variables: list[str], levels: dict[str, list],
               codes: np.ndarray, shift: tuple[str, float] | None) -> np.ndarray:
    """The grid's design rows (read-only), built once per model frame and grid: the emmeans and
    plot requests on one model share the reference grid of every fixed variable."""
    key = ("grid rows", maker.key, tuple((v, tuple(levels[v])) for v in variables), shift)

    def compute() -> np.ndarray:
        X = maker.rows(_grid_frame(problem, variables, levels, codes, shift))
        X.setflags(write=False)
        return X

    return remembered(problem.frame, key, compute)


def _grid_frame(problem: Problem, variables: list[str], levels: dict[str, list], codes: np.ndarray,
                shift: tuple[str, float] | None) -> pd.DataFrame:
    """A frame with the model frame's columns and categories holding the grid's values
    (columns that are not grid variables hold a constant placeholder)."""
    frame = problem.frame
    n = codes.shape[0]
    cols = {}
    for label in frame.data.columns:
        col = frame.data[label]
        if label in variables:
            j = variables.index(label)
            vals = [levels[label][c] for c in codes[:, j]]
            if isinstance(col.dtype, pd.CategoricalDtype):
                cols[label] = pd.Categorical(vals, categories=col.cat.categories)
            else:
                arr = np.asarray(vals, dtype=float)
                if shift is not None and shift[0] == label:
                    arr = arr + shift[1]
                cols[label] = arr
        elif isinstance(col.dtype, pd.CategoricalDtype):
            cols[label] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int64), categories=col.cat.categories)
        else:
            cols[label] = np.zeros(n)
    return pd.DataFrame(cols, columns=list(frame.data.columns))
