"""Contrasts among EMM (or trend) rows: emmeans's ``pairs`` (``pairwise.emmc``) and custom
weights (``contrast(emm, method = list(...))``), applied within each ``by`` group."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from . import adjust as adj
from .emm import OVERALL, Marginal

_PARENS = re.compile(r"-|\+|/|\*")


def needs_parens(label: str) -> bool:
    """Whether a level label is put in parentheses inside a contrast name (emmeans does so for
    labels holding ``-``, ``+``, ``/`` or ``*``)."""
    return _PARENS.search(label) is not None


@dataclass
class ContrastSet:
    """Coefficients over the EMM rows: ``C`` contrasts × EMM rows; ``names`` a label per
    contrast row; ``by_codes`` the ``by`` level codes of each contrast row; ``size`` means per
    family (Tukey's k); ``per_group`` contrasts per ``by`` group; ``kind`` adjust.PAIRS /
    CONTRAST / PREDICTION."""

    C: np.ndarray
    names: list[str]
    group_of_row: np.ndarray
    groups: list[np.ndarray]
    size: int
    per_group: int
    kind: int


def r_character(x: float) -> str:
    """R's ``as.character`` of a double (15 significant digits)."""
    return f"{float(x):.15g}"


def level_labels(m: Marginal, spec_facs: list[str], rows: np.ndarray, factors: set[str]) -> list[str]:
    """Each EMM row's label in a contrast: its spec values joined by spaces, numeric values
    prefixed by the variable's name (emmeans's ``enhance.levels``)."""
    out = []
    for i in rows:
        parts = []
        for f in spec_facs:
            v = m.levels[f][m.codes[i, m.facs.index(f)]]
            parts.append(str(v) if (f in factors or f == OVERALL) else f"{f}{r_character(v)}")
        out.append(" ".join(parts))
    return out


def _parens(labels: list[str], all_labels: list[str]) -> list[str]:
    if not any(needs_parens(s) for s in all_labels):
        return labels
    return [f"({s})" if needs_parens(s) else s for s in labels]


def pairwise(m: Marginal, spec_facs: list[str], groups: list[np.ndarray], factors: set[str]) -> ContrastSet:
    """All pairwise differences (first minus later) among the EMMs of each ``by`` group."""
    k = len(groups[0])
    all_labels = level_labels(m, spec_facs, np.arange(m.nrow), factors)
    labels = _parens(level_labels(m, spec_facs, groups[0], factors), all_labels)
    pairs = [(i, j) for i in range(k - 1) for j in range(i + 1, k)]
    names = [f"{labels[i]} - {labels[j]}" for i, j in pairs]
    rows, gof = [], []
    for g, grp in enumerate(groups):
        for i, j in pairs:
            c = np.zeros(m.nrow)
            c[grp[i]], c[grp[j]] = 1.0, -1.0
            rows.append(c)
            gof.append(g)
    C = np.array(rows) if rows else np.zeros((0, m.nrow))
    n = len(pairs)
    return ContrastSet(C, names * len(groups), np.array(gof, dtype=np.int64),
                       [np.arange(g * n, (g + 1) * n) for g in range(len(groups))], k, n, adj.PAIRS)


def custom(m: Marginal, groups: list[np.ndarray], weights: list[tuple[str, list[float]]]) -> ContrastSet:
    """Named weight vectors over the EMMs of each ``by`` group."""
    k = len(groups[0])
    rows, gof = [], []
    for g, grp in enumerate(groups):
        for _, w in weights:
            c = np.zeros(m.nrow)
            c[grp] = np.asarray(w, dtype=float)
            rows.append(c)
            gof.append(g)
    n = len(weights)
    is_con = all(abs(sum(w)) < 1e-3 for _, w in weights)
    return ContrastSet(np.array(rows), [name for name, _ in weights] * len(groups),
                       np.array(gof, dtype=np.int64),
                       [np.arange(g * n, (g + 1) * n) for g in range(len(groups))], k, n,
                       adj.CONTRAST if is_con else adj.PREDICTION)
