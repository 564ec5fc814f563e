"""Small-model path for the objective: the whole Λ-scaled [Z X y]ᵀW[Z X y] as one dense matrix.

For a few dozen random effects (sleepstudy: q = 36) the blocked factorisation is dominated by
numpy call overhead; one dense (q+m)×(q+m) matrix and one LAPACK Cholesky per θ is several
times faster. It gives the same three numbers (log|L_θ|², log|R_X|², r²) as
:func:`~.blocks.update_L`; the quantities at θ̂ (β̂, ũ, condVar) always come from the blocked
factor.

Λ is linear in θ: with v = (θ, 1) and Eₖ the 0/1 pattern of vₖ in Λ (the last one the identity of
the [X y] rows), ΛᵀAΛ + I_q = Σₖₗ vₖvₗ EₖᵀAEₗ + I_q is a quadratic form in v. Its
(nθ+1)(nθ+2)/2 coefficient matrices are formed once, so an evaluation is one matrix-vector
product (no Λ to fill, no two matrix products) and one Cholesky factorisation.

Measured and not taken (issue #16): when block 0 is scalar (D diagonal), forming only D, the rows
beside it and the trailing corner and factoring the Schur complement C − BᵀD⁻¹B (8 or 12 rows)
costs more numpy calls than the 32- or 42-row dense factorisation saves (Penicillin 11.7 against
8.1 µs, Pastes 12.5 against 12.2 µs per evaluation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.linalg import lapack

from .blocks import Crossprod
from .remat import ReStructure

#: Largest number of random effects q for which the dense path is used.
DENSE_MAX_Q = 160
#: Most numbers the quadratic form's coefficient matrices may hold (4 MB); above it each
#: evaluation forms ΛᵀAΛ by two matrix products instead.
QUADRATIC_MAX_ENTRIES = 500_000


class DenseFactor(NamedTuple):
    """What the objective needs from L(θ): ``ldL2`` log|L_θ|², ``ldRX2`` log|R_X|², ``pwrss``
    r²(θ), ``ok`` whether the Cholesky factorisation succeeded."""

    ldL2: float
    ldRX2: float
    pwrss: float
    ok: bool


_FAILED = DenseFactor(math.inf, math.inf, math.inf, False)


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
        self._segments = np.array([0, self.q, size - 1])  # log-diagonal sums: L_θ, R_X (the rest is r)
        self._quadratic = _quadratic_form(self)
        self._v = np.ones(int(self.index.max()) + 2 if self.index.size else 1)  # (θ, 1), filled per evaluation

    def factor(self, theta: np.ndarray) -> DenseFactor:
        """log|L_θ|², log|R_X|² and r² at θ from one dense Cholesky factorisation (few numpy
        calls: this runs once per objective evaluation)."""
        if self._quadratic is not None:
            first, second, coef = self._quadratic
            v = self._v
            v[:-1] = theta
            M = ((v[first] * v[second]) @ coef).reshape(self.full.shape)
        else:
            lam = self._eye.copy()
            lam[self.rows, self.cols] = theta[self.index]
            M = lam.T @ self.full @ lam
            M.flat[self._diag_q] += 1.0
        U, info = lapack.dpotrf(M.T, lower=0, clean=0, overwrite_a=1)
        if info != 0:
            return _FAILED
        d = U.diagonal()
        ld, lx, _ = np.add.reduceat(np.log(d), self._segments)
        return DenseFactor(2.0 * float(ld), 2.0 * float(lx), float(d[-1]) ** 2, True)


    def factor_many(self, thetas: np.ndarray) -> list[DenseFactor] | None:
        """:meth:`factor` at each row of ``thetas`` from batched products and one batched
        Cholesky factorisation (the derivative check's points); None without the quadratic
        form or when some factorisation fails (the caller then factors one θ at a time)."""
        if self._quadratic is None:
            return None
        first, second, coef = self._quadratic
        V = np.ones((len(thetas), len(self._v)))
        V[:, :-1] = thetas
        Ms = ((V[:, first] * V[:, second]) @ coef).reshape(len(thetas), *self.full.shape)
        try:
            L = np.linalg.cholesky(Ms)
        except np.linalg.LinAlgError:
            return None
        d = np.diagonal(L, axis1=1, axis2=2)
        sums = np.add.reduceat(np.log(d), self._segments, axis=1)
        return [DenseFactor(2.0 * float(ld), 2.0 * float(lx), float(r) ** 2, True)
                for (ld, lx, _), r in zip(sums, d[:, -1])]


def _quadratic_form(system: DenseSystem) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """ΛᵀAΛ + I_q as Σ over pairs k ≤ l of vₖvₗ·Cₖₗ, v = (θ, 1): the pairs (k and l, K indices
    into v each) and the coefficient matrices C (K × size², each symmetric, I_q folded into the
    pair of the last v); None when they would hold more than :data:`QUADRATIC_MAX_ENTRIES`
    numbers."""
    size = system.full.shape[0]
    ntheta = int(system.index.max()) + 1 if system.index.size else 0
    k_all = ntheta + 1
    pairs = np.array(np.triu_indices(k_all))
    if pairs.shape[1] * size * size > QUADRATIC_MAX_ENTRIES:
        return None
    # source[k, j]: the row of vₖ's cell in column j of Λ (size: none); a column holds at most
    # one cell of each vₖ, so (EₖᵀAEₗ)[i, j] = A[source[k, i], source[l, j]] (0 where none)
    source = np.full((k_all, size), size)
    source[ntheta] = np.arange(size)  # Λ's cells that no θ sets: the identity's
    source[ntheta, system.cols[system.rows == system.cols]] = size
    source[system.index, system.cols] = system.rows
    if np.any(np.bincount(system.index * size + system.cols, minlength=k_all * size) > 1):
        return None
    padded = np.zeros((size + 1, size + 1))
    padded[:size, :size] = system.full
    G = padded[source[pairs[0]][:, :, None], source[pairs[1]][:, None, :]]
    off = pairs[0] != pairs[1]
    G[off] += np.swapaxes(G[off], 1, 2)
    coef = G
    coef[-1].flat[system._diag_q] += 1.0
    return pairs[0].copy(), pairs[1].copy(), coef.reshape(pairs.shape[1], -1)


def wants_dense(structure: ReStructure) -> bool:
    """Whether the objective is evaluated densely: q ≤ :data:`DENSE_MAX_Q`."""
    return structure.q <= DENSE_MAX_Q


def build_dense(A: Crossprod, structure: ReStructure) -> DenseSystem | None:
    """The dense system when :func:`wants_dense`, else None."""
    q = structure.q
    if not wants_dense(structure):
        return None
    q0 = A.ell0 * A.p0
    m = A.m
    full = np.zeros((q + m, q + m))
    at = A.p0 * np.arange(A.ell0)[:, None, None]  # the diagonal blocks of block 0, all at once
    a = np.arange(A.p0)
    full[at + a[:, None], at + a[None, :]] = A.A00
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
