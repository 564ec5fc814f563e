"""The per-partition pieces of the native estimator's one pass over the rows, and their sums.

Two sums are formed over the partitions, as a tree:

* :class:`QRPiece`: the triangular factor of [X, √w X, √w (y − o − c)] by a tall-skinny QR
  (each partition's R, then the R of the stacked Rs), from which the aliased columns are found
  and the fixed-effects basis of :mod:`mixedbridge.lmm.basis` is built without the rows;
* :class:`Blocks`: the blocks of A = [Z X̃ ỹ]ᵀW[Z X̃ ỹ] on the global level codes, in the
  estimator's basis (X̃ = XR⁻¹, ỹ = y − o − c − Xγ₀), as :func:`mixedbridge.lmm.blocks.build_crossprod`
  forms them from all rows at once; Z_rᵀWZ_r and Z_rᵀWZ₀ stay sparse until the sum is done.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import solve_triangular

from ..lmm.remat import ReStructure, ReTerm
from .levels import union_sorted


@dataclass
class QRPiece:
    """A partition's (or a subtree's) contribution to the basis.

    ``Ru`` triangular factor of the unweighted X (for the aliasing rule); ``Rw`` of
    [√w X, √w(y − o − c)]; ``colmax`` largest |value| per column of X; ``n`` rows; ``ymin``,
    ``ymax`` of y; ``wmin`` smallest weight (1 without weights).
    """

    Ru: np.ndarray
    Rw: np.ndarray
    colmax: np.ndarray
    n: int
    ymin: float
    ymax: float
    wmin: float

    def __add__(self, other: QRPiece) -> QRPiece:
        if self.n == 0:
            return other
        if other.n == 0:
            return self
        return QRPiece(r_factor(np.vstack([self.Ru, other.Ru])), r_factor(np.vstack([self.Rw, other.Rw])),
                       np.maximum(self.colmax, other.colmax), self.n + other.n,
                       min(self.ymin, other.ymin), max(self.ymax, other.ymax), min(self.wmin, other.wmin))


def r_factor(M: np.ndarray) -> np.ndarray:
    """The triangular factor of M (square, zero-padded when M has fewer rows than columns)."""
    R = np.asarray(np.linalg.qr(M, mode="r"))
    k = M.shape[1]
    if R.shape[0] < k:
        R = np.vstack([R, np.zeros((k - R.shape[0], k))])
    return R


def qr_piece(X: np.ndarray, yc: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> QRPiece:
    """The basis piece of one partition; ``yc`` = y − o − c."""
    p = X.shape[1]
    if len(y) == 0:
        return QRPiece(np.zeros((p, p)), np.zeros((p + 1, p + 1)), np.zeros(p), 0, np.inf, -np.inf, np.inf)
    sw = np.ones(len(y)) if w is None else np.sqrt(w)
    Rw = r_factor(np.column_stack([X * sw[:, None], yc * sw]))
    return QRPiece(r_factor(X), Rw, np.max(np.abs(X), axis=0), len(y), float(y.min()), float(y.max()),
                   float(w.min()) if w is not None else 1.0)


@dataclass
class Blocks:
    """A partition's (or a subtree's) blocks of A, in the estimator's notation
    (:class:`mixedbridge.lmm.blocks.Crossprod`): ``A00`` (ℓ₀, p₀, p₀), ``Ax0`` (m, ℓ₀, p₀),
    ``Axx`` (m×m), ``Arr`` (q_r×q_r sparse), ``Ar0`` (q_r×q₀ sparse), ``Axr`` (m×q_r); ``n``
    rows; ``sum_log_w`` Σ log wᵢ. With ``level0`` (sorted level indices of block 0) A00 and Ax0
    hold those ℓ₀ levels only: a partition that sees few of a million groups sends and adds
    blocks of its groups, not of all (:meth:`dense` fills in the rest)."""

    A00: np.ndarray
    Ax0: np.ndarray
    Axx: np.ndarray
    Arr: sp.csr_matrix
    Ar0: sp.csr_matrix
    Axr: np.ndarray
    n: int
    sum_log_w: float
    level0: np.ndarray | None = None
    ell0: int = 0

    def __add__(self, other: Blocks) -> Blocks:
        A00, Ax0, level0 = _add_first(self, other)
        return Blocks(A00, Ax0, self.Axx + other.Axx,
                      (self.Arr + other.Arr).tocsr(), (self.Ar0 + other.Ar0).tocsr(), self.Axr + other.Axr,
                      self.n + other.n, self.sum_log_w + other.sum_log_w, level0, max(self.ell0, other.ell0))

    def dense(self) -> Blocks:
        """The blocks with A00 and Ax0 on every level of block 0."""
        if self.level0 is None:
            return self
        A00, Ax0 = _on_levels(self, np.arange(self.ell0))
        return Blocks(A00, Ax0, self.Axx, self.Arr, self.Ar0, self.Axr, self.n, self.sum_log_w, None, self.ell0)


#: Above this share of block 0's levels, partial sums are kept on all of them.
DENSE_SHARE = 0.5


def _on_levels(b: Blocks, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A00 and Ax0 of ``b`` placed on the sorted level indices ``levels`` (zero elsewhere)."""
    if b.level0 is None:
        return b.A00[levels], b.Ax0[:, levels]
    at = np.searchsorted(levels, b.level0)
    A00 = np.zeros((len(levels),) + b.A00.shape[1:])
    Ax0 = np.zeros((b.Ax0.shape[0], len(levels), b.Ax0.shape[2]))
    A00[at], Ax0[:, at] = b.A00, b.Ax0
    return A00, Ax0


def _add_first(a: Blocks, b: Blocks) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The sum of two partial A00 and Ax0, on the union of their levels (all levels when either
    holds all, or when the union holds more than :data:`DENSE_SHARE` of them)."""
    if a.level0 is None and b.level0 is None:
        return a.A00 + b.A00, a.Ax0 + b.Ax0, None
    ell = max(a.ell0, b.ell0)
    levels = None if a.level0 is None or b.level0 is None else union_sorted(a.level0, b.level0)
    if levels is None or len(levels) > DENSE_SHARE * ell:
        levels = np.arange(ell)
        A1, X1 = _on_levels(a, levels)
        A2, X2 = _on_levels(b, levels)
        return A1 + A2, X1 + X2, None
    A1, X1 = _on_levels(a, levels)
    A2, X2 = _on_levels(b, levels)
    return A1 + A2, X1 + X2, levels


def _sums(codes: np.ndarray, values: np.ndarray, nlevels: int) -> np.ndarray:
    return np.bincount(codes, weights=values, minlength=nlevels)


def _z_rows(b: ReTerm, a: int, offset: int) -> np.ndarray:
    return b.codes * b.p + a + offset


def _first_blocks(b0: ReTerm, wXy: np.ndarray, w: np.ndarray | None,
                  codes: np.ndarray, ell: int) -> tuple[np.ndarray, np.ndarray]:
    """A₀₀ per level and [X y] against block 0, on ``ell`` levels coded ``codes``."""
    p, m = b0.p, wXy.shape[1]
    A00 = np.empty((ell, p, p))
    for a in range(p):
        xa = b0.X[:, a] if w is None else b0.X[:, a] * w
        for b in range(a + 1):
            A00[:, a, b] = A00[:, b, a] = _sums(codes, xa * b0.X[:, b], ell)
    Ax0 = np.empty((m, ell, p))
    for c in range(m):
        for a in range(p):
            Ax0[c, :, a] = _sums(codes, wXy[:, c] * b0.X[:, a], ell)
    return A00, Ax0


def _levels_seen(codes: np.ndarray, ell: int) -> tuple[np.ndarray | None, np.ndarray, int]:
    """The sorted levels a partition's rows take and the rows' codes among them, or (None, the
    codes, ℓ) when they take more than :data:`DENSE_SHARE` of the ℓ levels."""
    seen = np.zeros(ell, dtype=bool)
    seen[codes] = True
    levels = np.flatnonzero(seen)
    if len(levels) > DENSE_SHARE * ell:
        return None, codes, ell
    position = np.cumsum(seen) - 1
    return levels, position[codes], len(levels)


def _sparse_product(left: list[ReTerm], loffsets: np.ndarray, right: list[ReTerm], roffsets: np.ndarray,
                    shape: tuple[int, int], w: np.ndarray | None) -> sp.csr_matrix:
    """Z_leftᵀ W Z_right as a sparse matrix (duplicates summed)."""
    rows, cols, vals = [], [], []
    for bj, oj in zip(left, loffsets):
        for a in range(bj.p):
            xa = bj.X[:, a] if w is None else bj.X[:, a] * w
            for bk, ok in zip(right, roffsets):
                for b in range(bk.p):
                    rows.append(_z_rows(bj, a, int(oj)))
                    cols.append(_z_rows(bk, b, int(ok)))
                    vals.append(xa * bk.X[:, b])
    if not rows:
        return sp.csr_matrix(shape)
    M = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape).tocsr()
    M.sum_duplicates()
    return M


def part_blocks(structure: ReStructure, Xt: np.ndarray, yt: np.ndarray, w: np.ndarray | None) -> Blocks:
    """The blocks of one partition's rows (``Xt`` X̃, ``yt`` ỹ, weights ``w``) on the terms of
    ``structure`` (codes on the global levels)."""
    Xy = np.column_stack([Xt, yt])
    wXy = Xy if w is None else Xy * w[:, None]
    b0, rest = structure.blocks[0], structure.blocks[1:]
    level0, codes0, ell = _levels_seen(b0.codes, b0.nlevels)
    A00, Ax0 = _first_blocks(b0, wXy, w, codes0, ell)
    offsets = np.cumsum([0] + [b.q for b in rest]).astype(np.int64)
    q_r = int(offsets[-1])
    Arr = _sparse_product(rest, offsets[:-1], rest, offsets[:-1], (q_r, q_r), w)
    Ar0 = _sparse_product(rest, offsets[:-1], [b0], np.zeros(1, dtype=np.int64), (q_r, b0.q), w)
    Axr = np.zeros((wXy.shape[1], q_r))
    for bj, oj in zip(rest, offsets[:-1]):
        for a in range(bj.p):
            idx = _z_rows(bj, a, int(oj))
            for c in range(wXy.shape[1]):
                Axr[c] += np.bincount(idx, weights=wXy[:, c] * bj.X[:, a], minlength=q_r)
    slw = 0.0 if w is None else float(np.sum(np.log(w)))
    return Blocks(A00, Ax0, wXy.T @ Xy, Arr, Ar0, Axr, len(yt), slw, level0, b0.nlevels)


def to_basis(X: np.ndarray, yc: np.ndarray, R: np.ndarray, gamma0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X̃ = XR⁻¹ and ỹ = yc − Xγ₀ for one partition's rows."""
    if X.shape[1] == 0:
        return X, yc
    Xt = solve_triangular(R, X.T, trans="T", lower=False).T
    return np.ascontiguousarray(Xt), yc - X @ gamma0
