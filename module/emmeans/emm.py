"""Estimated marginal means: equally weighted averages of reference-grid rows (emmeans's
default ``fac.reduce = mean``), and the estimate / SE / df / interval / test summary shared by
means, contrasts and trends."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import adjust as adj
from .refgrid import RefGrid, estimable, expand_codes

OVERALL = "1"


@dataclass
class EstimateFamily:
    """A family of linear functions of β and their summary.

    ``kind`` (``emmeans``, ``contrasts``, ``trends``); ``est_name`` the estimate column
    (``emmean``, ``estimate``, ``Days.trend``); ``label_columns`` (name, type) of the label
    columns; ``labels`` one dict of label cells per row; ``L`` rows × full design columns;
    ``by_rows`` row indices of each ``by`` group; the summary columns; ``notes`` emmeans-style
    annotations; ``adjust`` the adjustment applied; ``coef_L`` the rows of L over the fit's
    coefficients, ``coef`` a contrast family's coefficients over the means and
    ``adjust_family`` its p-value family (kept for re-expressing a GLMM's means on the response
    scale, :mod:`.response`); ``stat_name`` the test column (``z.ratio`` where no df is finite,
    as emmeans).
    """

    kind: str
    est_name: str
    label_columns: list[tuple[str, str]]
    labels: list[dict]
    L: np.ndarray | None = None
    by: list[str] = field(default_factory=list)
    by_rows: list[np.ndarray] = field(default_factory=list)
    estimate: np.ndarray | None = None
    se: np.ndarray | None = None
    df: np.ndarray | None = None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    t: np.ndarray | None = None
    p: np.ndarray | None = None
    null: float | None = None
    notes: list[str] = field(default_factory=list)
    adjust: str = "none"
    coef_L: np.ndarray | None = None
    coef: np.ndarray | None = None
    adjust_family: adj.AdjustFamily | None = None
    stat_name: str = "t.ratio"

    @property
    def n(self) -> int:
        return len(self.labels)

    def filled(self, *names: str) -> list[np.ndarray]:
        """The named array fields (``estimate``, ``se``, ``df``...), each required to be set."""
        out = []
        for name in names:
            value = getattr(self, name)
            if value is None:
                raise ValueError(f"the {self.kind} family has no {name!r} yet")
            out.append(value)
        return out


@dataclass
class Marginal:
    """The EMM rows of a grid: ``facs`` (specs then by), ``levels`` per fac, ``codes`` rows ×
    facs, ``L`` rows × full columns, ``avgd_over`` grid variables averaged over."""

    facs: list[str]
    levels: dict[str, list]
    codes: np.ndarray
    L: np.ndarray
    avgd_over: list[str]

    @property
    def nrow(self) -> int:
        return self.codes.shape[0]


def marginal(rg: RefGrid, specs: list[str], by: list[str], X: np.ndarray | None = None) -> Marginal:
    """Average the grid's design rows (or ``X``, same rows) over the variables not in
    ``specs``/``by`` with equal weights, one row per combination of ``specs`` + ``by``
    (first varying fastest)."""
    X = rg.X if X is None else X
    facs = [f for f in list(specs) + list(by) if f != OVERALL]
    sizes = [len(rg.levels[f]) for f in facs]
    combos = expand_codes(sizes)
    idx = np.zeros(rg.nrow, dtype=np.int64)
    stride = 1
    for f, k in zip(facs, sizes):
        idx += rg.codes[:, rg.variables.index(f)] * stride
        stride *= k
    L = np.zeros((combos.shape[0], X.shape[1]))
    counts = np.bincount(idx, minlength=combos.shape[0]).astype(float)
    np.add.at(L, idx, X)
    L /= counts[:, None]
    avgd = [v for v in rg.variables if v not in facs and len(rg.levels[v]) > 1]
    levels = {f: rg.levels[f] for f in facs}
    if OVERALL in specs:
        facs = [OVERALL] + facs
        levels[OVERALL] = ["overall"]
        combos = np.column_stack([np.zeros(combos.shape[0], dtype=np.int64), combos])
    return Marginal(facs, levels, combos, L, avgd)


def by_groups(codes: np.ndarray, by_positions: list[int]) -> list[np.ndarray]:
    """Row indices of each ``by`` group, groups in order of first appearance."""
    if not by_positions:
        return [np.arange(codes.shape[0])]
    keys = [tuple(row) for row in codes[:, by_positions]]
    order: dict[tuple, list[int]] = {}
    for i, k in enumerate(keys):
        order.setdefault(k, []).append(i)
    return [np.array(v, dtype=np.int64) for v in order.values()]


def evaluate(rg: RefGrid, L: np.ndarray, beta: np.ndarray, V: np.ndarray,
             df_fn: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimate, SE and df of each row of L (full columns); non-estimable rows are NaN."""
    ok = estimable(L, rg.nbasis)
    Lk = L[:, rg.coef]
    est = np.full(L.shape[0], np.nan)
    se = np.full(L.shape[0], np.nan)
    df = np.full(L.shape[0], np.nan)
    if ok.any():
        Lo = Lk[ok]
        est[ok] = Lo @ beta
        se[ok] = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", Lo, V, Lo), 0.0))
        df[ok] = np.asarray(df_fn(Lo), dtype=float).reshape(-1)
    return est, se, df


def summarize(fam: EstimateFamily, level: float, adjust: str, family: adj.AdjustFamily, test: bool,
              null: float = 0.0, L_for_rank: np.ndarray | None = None) -> None:
    """Fill intervals, tests and notes as ``summary.emmGrid`` does (two-sided, no transform)."""
    estimate, se, df = fam.filled("estimate", "se", "df")
    if adjust == "scheffe":
        L = fam.filled("L")[0] if L_for_rank is None else L_for_rank
        family.scheffe_rank = adj.scheffe_rank(L, family.by_rows)
    cv, ci_method, ci_msgs = adj.critical_values(level, df, adjust, family)
    fam.lower = estimate - cv * se
    fam.upper = estimate + cv * se
    notes = [f"Confidence level used: {_fmt(level)}"] + ci_msgs
    if test:
        with np.errstate(invalid="ignore", divide="ignore"):
            t = (estimate - null) / se
        fam.t = t
        if df.size and np.all(np.isinf(df) | np.isnan(df)):
            fam.stat_name = "z.ratio"  # emmeans's name when no df is finite
        fam.p, p_method, p_msgs = adj.adjusted_p(t, df, adjust, family)
        fam.null = null
        notes += [m for m in p_msgs if m not in notes]
        fam.adjust = p_method
    else:
        fam.adjust = ci_method
    fam.notes += notes


def _fmt(x: float) -> str:
    return f"{x:.15g}"

