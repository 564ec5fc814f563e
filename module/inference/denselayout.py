"""Where Λ's cells and the unit patterns Λ_i = ∂Λ/∂θ_i sit in the dense algebra of a small model
(:func:`.blockedderivatives.dense_derivatives`), Z in lme4's order, computed once per shape of
the random-effects structure and kept.

The fit already holds the dense cross-products A = [Z X̃ ỹ]ᵀW[Z X̃ ỹ] in its block order
(:class:`~mixedbridge.lmm.dense.DenseSystem`); lme4's order is a permutation of it (the identity
for one grouping factor with one term, and for several factors each with one term, as on
sleepstudy, Penicillin and Pastes). The permutation, Λ's cells and the unit positions depend only
on the structure's shape (levels, columns, template cells, placement), so a second model of the
same shape (a refit, the next request) finds them here instead of rebuilding a dozen index
arrays (issue #16: on sleepstudy they were about a quarter of the derivatives' time).
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

#: One unit pattern Λ_i: its rows and columns in Z's lme4 order (one per level) and the key
#: (term, template column) that says which other patterns share its columns.
Unit = tuple[np.ndarray, np.ndarray, tuple[int, int]]


class DenseLayout(NamedTuple):
    """The index arrays of :mod:`this module <.denselayout>` for one structure shape.

    ``order`` the rows of the block-ordered A that make lme4's order ([Z X y]; None when it is
    the identity); ``a00_at`` the rows and columns of block 0's diagonal blocks in that A
    (broadcasting to levels × p₀ × p₀); ``lam_rows``, ``lam_cols``, ``lam_index`` Λ's cells and
    their θ elements (Λ = Σ θ_iΛ_i: the unit cells); ``units`` the Λ_i in θ order (terms in
    lme4's order, each template's cells in θ order); ``unit_at`` (θ element, row, column) of
    every unit cell, for filling all the Λ_iΛᵀ at once; ``pair_rows`` per term the pairs
    (i, j), i ≤ j, whose Λ_iΛ_jᵀ is non-zero (i and j in the same template column) with the
    rows of Λ_j and of Λ_i (pairs × levels), for tr(MΛ_iΛ_jᵀ) = Σ_levels M[rows_j, rows_i].
    """

    order: np.ndarray | None
    a00_at: tuple[np.ndarray, np.ndarray]
    lam_rows: np.ndarray
    lam_cols: np.ndarray
    lam_index: np.ndarray
    units: list[Unit]
    unit_at: tuple[np.ndarray, np.ndarray, np.ndarray]
    pair_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def dense_layout(structure, m: int) -> DenseLayout:
    """The :class:`DenseLayout` of ``structure`` with ``m`` [X y] columns (kept per shape)."""
    terms = tuple((t.nlevels, t.p, _key(t.rows), _key(t.cols), _key(t.theta_index))
                  for t in structure.terms)
    blocks = tuple((b.nlevels, b.p) for b in structure.blocks)
    return _layout(terms, blocks, tuple(structure.placement), m)


def _key(a: np.ndarray) -> bytes:
    return np.asarray(a, dtype=np.intp).tobytes()


@lru_cache(maxsize=32)
def _layout(terms: tuple[tuple[int, int, bytes, bytes, bytes], ...], blocks: tuple[tuple[int, int], ...],
            placement: tuple[tuple[int, int], ...], m: int) -> DenseLayout:
    """:func:`dense_layout` from the shape's description (terms: levels, columns, template rows,
    columns and θ elements; blocks: levels, columns; each term's block and first column)."""
    units: list[Unit] = []
    lam_index = []
    start = 0
    for k, (ell, p, *cells) in enumerate(terms):
        rows, cols, index = (np.frombuffer(c, dtype=np.intp) for c in cells)
        base = start + np.arange(ell) * p
        for r, c, i in zip(rows, cols, index):
            units.append((base + r, base + c, (k, int(c))))
            lam_index.append(np.full(ell, i))
        start += ell * p
    unit_at = (np.concatenate([np.full(u[0].size, i) for i, u in enumerate(units)]),
               np.concatenate([u[0] for u in units]), np.concatenate([u[1] for u in units]))
    ell0, p0 = blocks[0]
    at = p0 * np.arange(ell0)[:, None, None] + np.zeros((1, p0, p0), dtype=np.intp)
    a00_at = (at + np.arange(p0)[:, None], at + np.arange(p0)[None, :])
    layout = DenseLayout(_lme4_order(terms, blocks, placement, m), a00_at, unit_at[1], unit_at[2],
                         np.concatenate(lam_index), units, unit_at, _pair_rows(units))
    for a in [*a00_at, *unit_at, layout.lam_index, *(x for u in units for x in u[:2]),
              *(x for g in layout.pair_rows for x in g)]:
        a.flags.writeable = False
    return layout


def _pair_rows(units: list[Unit]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """:attr:`DenseLayout.pair_rows`: the pairs of units with the same key, grouped by term (whose
    units all have one row per level)."""
    by_term: dict[int, list[tuple[int, int]]] = {}
    for i, a in enumerate(units):
        for j in range(i, len(units)):
            if a[2] == units[j][2]:
                by_term.setdefault(a[2][0], []).append((i, j))
    out = []
    for pairs in by_term.values():
        first, second = (np.array(x, dtype=np.intp) for x in zip(*pairs))
        out.append((first, second, np.stack([units[j][0] for j in second]),
                    np.stack([units[i][0] for i in first])))
    return out


def _lme4_order(terms: tuple[tuple[int, int, bytes, bytes, bytes], ...], blocks: tuple[tuple[int, int], ...],
                placement: tuple[tuple[int, int], ...], m: int) -> np.ndarray | None:
    """For each row of A in lme4's order, its row in the block order (block 0, the other blocks
    after it, then [X y]; within a block level-major, a term's columns at its placement), or
    None when that is the identity (:func:`.crossproducts.dense_gram`'s permutation)."""
    starts = np.concatenate([[0], np.cumsum([ell * p for ell, p in blocks])])
    out = []
    for (ell, p, *_), (b, c0) in zip(terms, placement):
        pb = blocks[b][1]
        out.append((starts[b] + np.arange(ell)[:, None] * pb + c0 + np.arange(p)[None, :]).ravel())
    q = int(starts[-1])
    order = np.concatenate(out + [q + np.arange(m)]).astype(np.intp)
    if (order == np.arange(order.size)).all():
        return None
    order.flags.writeable = False
    return order


@lru_cache(maxsize=16)
def strictly_lower(size: int) -> np.ndarray:
    """The mask of the strict lower triangle of a size×size matrix (kept per size)."""
    out = np.tri(size, size, -1, dtype=bool)
    out.flags.writeable = False
    return out
