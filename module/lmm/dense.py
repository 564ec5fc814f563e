"""Small-model path for the objective: the whole Λ-scaled [Z X y]ᵀW[Z X y] as one dense matrix.

For a few dozen random effects (sleepstudy: q = 36) the blocked factorisation is dominated by
numpy call overhead; one dense (q+m)×(q+m) scaling and one LAPACK Cholesky per θ is several
times faster. It gives the same three numbers (log|L_θ|², log|R_X|², r²) as
:func:`~.blocks.update_L`; the quantities at θ̂ (β̂, ũ, condVar) always come from the blocked
factor.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

from .blocks import Crossprod
from .remat import ReStructure

#: Largest number of random effects q for which the dense path is used.
DENSE_MAX_Q = 160


@dataclass
class DenseFactor:
    """What the objective needs from L(θ): ``ldL2`` log|L_θ|², ``ldRX2`` log|R_X|², ``pwrss``
    r²(θ), ``ok`` whether the Cholesky factorisation succeeded."""

    ldL2: float
    ldRX2: float
    pwrss: float
    ok: bool


@dataclass
class DenseSystem:
    """The dense A (``full``, (q+m)×(q+m), order: block 0, rest blocks, [X y]) and where each θ
    element goes in the dense Λ (``rows``, ``cols``, ``index``); ``q`` random effects, ``p``
    fixed effects."""

    full: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    index: np.ndarray
    q: int
    p: int

    def __post_init__(self) -> None:
        size = self.full.shape[0]
        self._eye = np.eye(size)
        self._diag_q = np.arange(self.q) * (size + 1)  # flat positions of the first q diagonal cells

    def factor(self, theta: np.ndarray) -> DenseFactor:
        """log|L_θ|², log|R_X|² and r² at θ from one dense Cholesky factorisation (few numpy
        calls: this runs once per objective evaluation)."""
        lam = self._eye.copy()
        lam[self.rows, self.cols] = theta[self.index]
        M = lam.T @ self.full @ lam
        M.flat[self._diag_q] += 1.0
        U, info = lapack.dpotrf(M.T, lower=0, clean=0, overwrite_a=1)
        if info != 0:
            return DenseFactor(np.inf, np.inf, np.inf, False)
        d = U.diagonal()
        logd = np.log(d[:-1])
        q = self.q
        return DenseFactor(float(2.0 * logd[:q].sum()), float(2.0 * logd[q:].sum()),
                           float(d[-1] ** 2), True)


def build_dense(A: Crossprod, structure: ReStructure) -> DenseSystem | None:
    """The dense system when q ≤ :data:`DENSE_MAX_Q`, else None."""
    q = structure.q
    if q > DENSE_MAX_Q:
        return None
    q0 = A.ell0 * A.p0
    m = A.m
    full = np.zeros((q + m, q + m))
    for i in range(A.ell0):
        sl = slice(i * A.p0, (i + 1) * A.p0)
        full[sl, sl] = A.A00[i]
    xy = slice(q, q + m)
    full[xy, :q0] = A.Ax0.reshape(m, q0)
    if A.rest:
        rs = slice(q0, q)
        full[rs, rs] = A.Arr
        full[rs, :q0] = A.Ar0.toarray()
        full[xy, rs] = A.Axr
    full[xy, xy] = A.Axx
    full = np.tril(full) + np.tril(full, -1).T
    rows, cols, index = [], [], []
    offset = 0
    for blk in structure.blocks:
        base = offset + blk.p * np.arange(blk.nlevels)[:, None]
        rows.append((base + blk.rows).ravel())
        cols.append((base + blk.cols).ravel())
        index.append(np.tile(blk.theta_index, blk.nlevels))
        offset += blk.q
    return DenseSystem(full, np.concatenate(rows), np.concatenate(cols), np.concatenate(index),
                       q, A.p)
