"""The Gram term A_r0(I⊗W)A_r0ᵀ of the blocked factorisation: eliminating block 0 (whose
per-level inverse factors are Wᵢ) from the rest blocks subtracts it from A_rr.

It is linear in W, so its non-zero values are precomputed once as a sparse matrix acting on
vec(W) (:class:`GramMap`): each evaluation is then one sparse matrix-vector product and one
scatter, with no sparse-sparse product and no work on the n rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from .blocks import Crossprod

#: Most level-pairs the precomputed Gram map of A_r0(I⊗W)A_r0ᵀ may hold; above it a sparse
#: matrix product is used per evaluation instead.
GRAM_MAP_LIMIT = 12_000_000


@dataclass
class GramMap:
    """A precomputed linear map W ↦ A_r0(I⊗W)A_r0ᵀ.

    Fields: ``P`` sparse (npairs × ℓ₀p₀²) matrix giving the value of each position pair from
    vec(W); ``Pg`` the same acting on the Wᵢ of ``reps`` only (levels of block 0 with equal
    A₀₀ᵢ have equal Wᵢ, so their columns are summed), or None when there is nothing to merge;
    ``reps`` one level per group of equal A₀₀ᵢ; ``rows``/``cols`` the pairs' positions
    (rows ≥ cols); ``upper``/``lower`` their flat indices in a C-ordered q_r×q_r matrix above/
    below the diagonal (equal on the diagonal), ``upper`` sorted; ``off`` mask of the
    off-diagonal pairs.
    """

    P: sp.csr_matrix
    Pg: sp.csc_matrix | None
    reps: np.ndarray | None
    rows: np.ndarray
    cols: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    off: np.ndarray

    def values(self, W: np.ndarray) -> np.ndarray:
        """The npairs values of A_r0(I⊗W)A_r0ᵀ at (rows, cols)."""
        if self.Pg is not None:
            return self.Pg @ W[self.reps].ravel()
        return self.P @ W.ravel()

    def subtract_from(self, S: np.ndarray, W: np.ndarray) -> None:
        """S ← S − A_r0(I⊗W)A_r0ᵀ in place (C-ordered, both triangles)."""
        g = self.values(W)
        flat = S.reshape(-1)
        flat[self.upper] -= g
        flat[self.lower[self.off]] -= g[self.off]


def _level_groups(A00: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Group the levels of block 0 by equal A₀₀ᵢ: (group of each level, one level per group),
    or None when fewer than a quarter of the levels would merge."""
    flat = A00.reshape(A00.shape[0], -1)
    _, first, groups = np.unique(flat, axis=0, return_index=True, return_inverse=True)
    if len(first) > 0.75 * len(flat):
        return None
    return groups.ravel(), first


def _merge_columns(P: sp.csr_matrix, groups: np.ndarray, p0: int) -> sp.csc_matrix:
    """P·E with E summing the columns (i, a, b) of levels in the same group."""
    k = p0 * p0
    ngroups = int(groups.max()) + 1
    target = (groups[:, None] * k + np.arange(k)[None, :]).ravel()
    E = sp.csr_matrix((np.ones(len(target)), (np.arange(len(target)), target)),
                      shape=(len(target), ngroups * k))
    return (P @ E).tocsc()


def _pair_counts(Ar0: sp.csc_matrix, p0: int) -> tuple[np.ndarray, np.ndarray]:
    level_start = Ar0.indptr[:: p0]
    counts = np.diff(level_start)
    return level_start, counts


def _unique_positions(flat: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique values of ``flat`` (all in [0, size)) and each value's index among them;
    a counting pass instead of a sort when ``size`` is moderate and not much larger than
    ``flat`` (its lookup table has ``size`` entries: 200 MB for a 5,000-row fill-in)."""
    if size > min(64_000_000, 16 * len(flat) + 1_000_000):
        uniq, inv = np.unique(flat, return_inverse=True)
        return uniq, inv.ravel()
    seen = np.zeros(size, dtype=bool)
    seen[flat] = True
    uniq = np.flatnonzero(seen)
    lookup = np.empty(size, dtype=flat.dtype)
    lookup[uniq] = np.arange(len(uniq))
    return uniq, lookup[flat]


def build_gram_map(Ar0: sp.csr_matrix, A00: np.ndarray) -> GramMap | None:
    """Precompute W ↦ A_r0(I⊗W)A_r0ᵀ as one sparse matrix acting on vec(W).

    Entry pairs (e₁, e₂) of A_r0 in the same level of block 0 contribute
    A[r₁,(i,a)]·A[r₂,(i,b)]·Wᵢ[a,b] to position (r₁, r₂). Returns None when the number of
    pairs exceeds :data:`GRAM_MAP_LIMIT`.
    """
    ell0, p0 = A00.shape[0], A00.shape[1]
    A = Ar0.tocsc()
    A.sort_indices()
    level_start, counts = _pair_counts(A, p0)
    nnz = A.nnz
    q_r = A.shape[0]
    # indices in 32 bits where they fit: the pair arrays are the map's whole cost, most of it
    # the memory they take (InstEval: 1.8M pairs, 0.10 -> 0.08 s)
    small = max(nnz, q_r * q_r, ell0 * p0 * p0) < 2**31
    idx = np.int32 if small else np.int64
    col = np.repeat(np.arange(A.shape[1], dtype=idx), np.diff(A.indptr))
    level = col // p0
    row = A.indices.astype(idx)
    if p0 == 1:
        # rows are sorted within each level's single column: pairing each entry with the ones
        # before it (and itself) gives exactly the pairs with row₁ ≥ row₂
        reps = np.arange(nnz, dtype=idx) - level_start[level].astype(idx) + 1
    else:
        reps = counts[level].astype(idx)
    total = int(reps.sum(dtype=np.int64))
    if total > GRAM_MAP_LIMIT:
        return None
    e1 = np.repeat(np.arange(nnz, dtype=idx), reps)
    starts = np.cumsum(reps, dtype=idx)
    starts -= reps  # each entry's first pair
    e2 = np.arange(total, dtype=idx)
    e2 -= np.repeat(starts - level_start[level].astype(idx), reps)  # the level's first entry + the pair's place
    del starts
    if p0 > 1:
        keep = row[e1] >= row[e2]
        e1, e2 = e1[keep], e2[keep]
    upper = row[e2] * idx(q_r)
    upper += row[e1]
    if p0 == 1:
        wcol = level[e1]
    else:
        a = col % p0
        wcol = level[e1] * (p0 * p0) + a[e1] * p0 + a[e2]
    vals = A.data[e1] * A.data[e2]
    del e1, e2
    uniq, inv = _unique_positions(upper, q_r * q_r)
    P = sp.csr_matrix((vals, (inv, wcol)), shape=(len(uniq), ell0 * p0 * p0))
    P.sum_duplicates()
    rows, cols = uniq % q_r, uniq // q_r
    grouping = _level_groups(A00)
    Pg = reps = None
    if grouping is not None:
        Pg, reps = _merge_columns(P, grouping[0], p0), grouping[1]
    return GramMap(P, Pg, reps, rows, cols, uniq, rows * q_r + cols, rows != cols)


#: Most entries of A_r0 for which :func:`gram_product` multiplies it as a dense array.
DENSE_GRAM_ENTRIES = 40_000


def gram_product(A: Crossprod, W: np.ndarray) -> np.ndarray:
    """Dense A_r0(I⊗W)A_r0ᵀ by a sparse product (fallback when no Gram map), or by dense
    products when A_r0 is small (a few microseconds against a sparse product's overhead)."""
    ell, p = W.shape[0], W.shape[1]
    if A.q_rest * ell * p <= DENSE_GRAM_ENTRIES:
        D = A.ar0_array()
        DW = np.einsum("ria,iab->rib", D.reshape(-1, ell, p), W)
        return DW.reshape(D.shape) @ D.T
    idx = np.arange(ell * p).reshape(ell, p)
    cols = np.repeat(idx, p, axis=0).ravel()
    BD = sp.csr_matrix((W.ravel(), cols, np.arange(0, ell * p * p + 1, p)), shape=(ell * p, ell * p))
    return (A.Ar0 @ BD @ A.Ar0.T).toarray()
