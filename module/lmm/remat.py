"""Random-effects terms: each term's raw model matrix, its relative covariance template Tᵢ and
the map from θ to the templates, following lme4's ``mkReTrms``.

A term i with pᵢ columns and ℓᵢ levels contributes the block Λᵢ = I_ℓᵢ ⊗ Tᵢ of Λ; θ lists the
lower triangle of each Tᵢ column-wise, terms in lme4's order (decreasing number of levels, see
:func:`lme4_order`). Random effects are numbered level-major (level, then column) as in lme4.

For the computation, terms sharing a grouping factor are merged into one :class:`FactorBlock`
(MixedModels.jl's "amalgamate"): its template is block-diagonal over the merged terms, so that
the factor's Z'Z block stays uniform block-diagonal.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..design import ReTermData


def lme4_order(nlevels: list[int]) -> list[int]:
    """Order of the random-effects terms as lme4 sorts them.

    lme4's ``mkReTrms`` reorders only if some term has more levels than the one before it, and
    then uses ``rev(order(nl))``: decreasing number of levels, with ties in *reversed* input
    order.
    """
    nl = np.asarray(nlevels)
    if len(nl) < 2 or not np.any(np.diff(nl) > 0):
        return list(range(len(nl)))
    return list(np.argsort(nl, kind="stable")[::-1])


def term_label(term: ReTermData) -> str:
    """lme4-like label of a term, e.g. ``1 + Days | Subject`` or ``0 + Days | Subject``."""
    cols = ["1" if n == "(Intercept)" else n for n in term.names]
    if "1" not in cols:
        cols = ["0"] + cols
    return f"{' + '.join(cols)} | {term.group}"


@dataclass
class ReTerm:
    """One random-effects term in lme4's order.

    Fields: ``data`` the term's :class:`ReTermData` (grouping factor, levels, codes, raw Xᵢ);
    ``p`` pᵢ columns; ``nlevels`` ℓᵢ; ``theta_slice`` its slice of θ (pᵢ(pᵢ+1)/2 values, the
    lower triangle of Tᵢ column-wise); ``block`` index of its :class:`FactorBlock`; ``offset``
    first column of Tᵢ inside the block's template.
    """

    data: ReTermData
    p: int
    nlevels: int
    theta_slice: slice
    block: int = -1
    offset: int = 0

    @property
    def group(self) -> str:
        return self.data.group

    @property
    def names(self) -> list[str]:
        return self.data.names

    @property
    def label(self) -> str:
        return term_label(self.data)

    def template(self, theta: np.ndarray) -> np.ndarray:
        """Tᵢ (pᵢ×pᵢ lower triangular) filled from θ."""
        T = np.zeros((self.p, self.p))
        rows, cols = _theta_positions(self.p)
        T[rows, cols] = theta[self.theta_slice]
        return T


@dataclass
class FactorBlock:
    """The terms of one grouping factor, merged for the blocked computation.

    Fields: ``group`` factor name; ``nlevels`` ℓ; ``codes`` n-vector of 0-based levels; ``X`` n×p
    raw model matrix (the merged terms' Xᵢ side by side); ``p`` columns; ``terms`` indices of
    the merged :class:`ReTerm`; ``rows``/``cols``/``theta_index`` where each θ element goes in
    the p×p template T (block-diagonal over the merged terms).
    """

    group: str
    nlevels: int
    codes: np.ndarray
    X: np.ndarray
    terms: list[int]
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cols: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    theta_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def q(self) -> int:
        """Number of random effects ℓ·p of the block."""
        return self.nlevels * self.p

    def template(self, theta: np.ndarray) -> np.ndarray:
        """The block's p×p template T from θ."""
        T = np.zeros((self.p, self.p))
        T[self.rows, self.cols] = theta[self.theta_index]
        return T


@dataclass
class ReStructure:
    """All random-effects terms of a model.

    Fields: ``terms`` the :class:`ReTerm` list in lme4's order (the order of θ, VarCorr and
    ranef); ``blocks`` the :class:`FactorBlock` list in computational order (decreasing number of
    random effects, so that the first block, which stays (block-)diagonal, is the largest);
    ``ntheta`` length of θ; ``lower`` lower bounds of θ (0 on template diagonals, −∞ otherwise);
    ``theta0`` lme4's start (1 on diagonals, 0 off).
    """

    terms: list[ReTerm]
    blocks: list[FactorBlock]
    ntheta: int
    lower: np.ndarray
    theta0: np.ndarray

    @property
    def q(self) -> int:
        return sum(b.q for b in self.blocks)

    def factor_names(self) -> list[str]:
        """Grouping factors in lme4's ``flist`` order (first appearance in term order)."""
        seen: list[str] = []
        for t in self.terms:
            if t.group not in seen:
                seen.append(t.group)
        return seen


def _theta_positions(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each θ element of a p×p template (lower triangle, column-wise)."""
    rows, cols = np.tril_indices(p)
    order = np.lexsort((rows, cols))
    return rows[order], cols[order]


def build_structure(reterms: list[ReTermData]) -> ReStructure:
    """Order the terms as lme4 does, lay out θ, and merge terms per grouping factor."""
    order = lme4_order([len(t.levels) for t in reterms])
    terms: list[ReTerm] = []
    start = 0
    lower_parts, start_parts = [], []
    for i in order:
        data = reterms[i]
        p = data.X.shape[1]
        k = p * (p + 1) // 2
        terms.append(ReTerm(data, p, len(data.levels), slice(start, start + k)))
        rows, cols = _theta_positions(p)
        diag = rows == cols
        lower_parts.append(np.where(diag, 0.0, -np.inf))
        start_parts.append(diag.astype(float))
        start += k
    blocks = _merge_blocks(terms)
    return ReStructure(terms, blocks, start, np.concatenate(lower_parts), np.concatenate(start_parts))


def _merge_blocks(terms: list[ReTerm]) -> list[FactorBlock]:
    by_group: dict[str, list[int]] = {}
    for j, t in enumerate(terms):
        by_group.setdefault(t.group, []).append(j)
    blocks: list[FactorBlock] = []
    for group, idx in by_group.items():
        first = terms[idx[0]].data
        X = np.column_stack([terms[j].data.X for j in idx]) if len(idx) > 1 else first.X
        rows, cols, tind = [], [], []
        offset = 0
        for j in idx:
            t = terms[j]
            r, c = _theta_positions(t.p)
            rows.append(r + offset)
            cols.append(c + offset)
            tind.append(np.arange(t.theta_slice.start, t.theta_slice.stop))
            t.offset = offset
            offset += t.p
        blocks.append(FactorBlock(group, len(first.levels), np.asarray(first.codes, dtype=np.int64),
                                  np.ascontiguousarray(X, dtype=float), idx,
                                  np.concatenate(rows), np.concatenate(cols), np.concatenate(tind)))
    order = sorted(range(len(blocks)), key=lambda b: -blocks[b].q)
    blocks = [blocks[b] for b in order]
    for b, blk in enumerate(blocks):
        for j in blk.terms:
            terms[j].block = b
    return blocks
