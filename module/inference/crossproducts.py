"""The dense cross-products A = [Z X̃ ỹ]ᵀW[Z X̃ ỹ] of a fitted linear mixed model, Z's columns in
lme4's order (term, level, column), assembled from the estimator's blocks
(:class:`~mixedbridge.lmm.blocks.Crossprod`) rather than from the rows.

The dense algebra of the variance-parameter derivatives (Satterthwaite's exact route,
Kenward-Roger's pieces) needs only these inner products: every n-vector it forms is a combination
of the columns of [Z X̃ ỹ]. Built from the blocks, it serves a model reduced to its cross-products
over Dask exactly as one that holds its rows, and with prior weights it is the whitened model's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class DenseGram:
    """A = [Z X̃ ỹ]ᵀW[Z X̃ ỹ] ((q+p+1)², Z in lme4's column order), with ``q`` random effects,
    ``p`` fixed-effect columns and ``n`` rows."""

    A: np.ndarray
    q: int
    p: int
    n: int

    @property
    def ZtZ(self) -> np.ndarray:
        return self.A[: self.q, : self.q]

    @property
    def ZtX(self) -> np.ndarray:
        return self.A[: self.q, self.q: self.q + self.p]

    @property
    def XtX(self) -> np.ndarray:
        return self.A[self.q: self.q + self.p, self.q: self.q + self.p]

    def inner(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """uᵀv for n-vectors (or n×k matrices) given by their coefficients on [Z X̃ ỹ]."""
        return u.T @ self.A @ v

    def zt(self, u: np.ndarray) -> np.ndarray:
        """Zᵀu for u given by its coefficients."""
        return self.A[: self.q] @ u

    def xt(self, u: np.ndarray) -> np.ndarray:
        """X̃ᵀu for u given by its coefficients."""
        return self.A[self.q: self.q + self.p] @ u


def dense_gram(model) -> DenseGram:
    """:class:`DenseGram` of ``model`` (a native linear mixed model, with or without rows) from
    its blocks: block 0's diagonal blocks, the rest-rest and rest-first products and the [X y]
    rows, put in block order, then permuted to lme4's order of Z."""
    cp, structure = model.A, model.structure
    q, m = structure.q, cp.m
    q0 = cp.ell0 * cp.p0
    B = np.zeros((q + m, q + m))
    at = np.arange(cp.ell0)[:, None] * cp.p0 + np.arange(cp.p0)[None, :]
    B[at[:, :, None], at[:, None, :]] = cp.A00
    B[q:, :q0] = cp.Ax0.reshape(m, q0)
    if q > q0:
        Arr = cp.Arr.toarray() if sp.issparse(cp.Arr) else np.asarray(cp.Arr)
        B[q0:q, q0:q] = Arr
        B[q0:q, :q0] = cp.Ar0.toarray()
        B[q:, q0:q] = cp.Axr
    B[:q, q:] = B[q:, :q].T
    B[:q0, q0:q] = B[q0:q, :q0].T
    B[q:, q:] = cp.Axx
    order = np.concatenate([_block_positions(structure, q0, cp.offsets), q + np.arange(m)])
    return DenseGram(B[np.ix_(order, order)], q, cp.p, cp.n)


def _block_positions(structure, q0: int, offsets: np.ndarray) -> np.ndarray:
    """For each random effect in lme4's order, its position in the blocks' order (block 0, then
    the other blocks at ``q0 + offsets``; within a block level-major, a term's columns at its
    placement in the amalgamated template)."""
    starts = [0] + [q0 + int(o) for o in offsets[:-1]]
    out = []
    for t, (b, c0) in zip(structure.terms, structure.placement):
        pb = structure.blocks[b].p
        idx = starts[b] + np.arange(t.nlevels)[:, None] * pb + c0 + np.arange(t.p)[None, :]
        out.append(idx.ravel())
    return np.concatenate(out)
