"""The reweighted penalized system of PIRLS: M = ΛᵀZᵀWZΛ + I for working weights W, in the
blocked form of :mod:`mixedbridge.lmm.blocks` (block 0, the factor with most random effects,
block-diagonal; the other factors' Schur complement dense), refactored at every PIRLS step.

Unlike the LMM, W changes with the conditional modes, so the cross-products are formed per step;
their sparsity patterns (which levels of two factors meet, and where that lands in A_r0) are
found once in :class:`PenalizedSystem`, and each step is then a few ``bincount`` passes over the
n rows. The Λ-scaled columns Ũ = ZΛ are formed once per θ.

Random effects are in computational order here (block, level, column); :mod:`.model` maps them
to lme4's term order.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TypeAlias

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cho_solve, lapack, solve_triangular

from ..lmm.remat import ReStructure, ReTerm
from .indicator import IndicatorMatrix
from .nested import NestedChain, NestedFactor, nested_chain

#: Largest q_r·q₀ for which the rest × block-0 part of M is kept dense (faster than sparse
#: products when most levels meet, as in crossed designs).
DENSE_R0 = 2_000_000
#: Smallest share of non-zero entries for which it is kept dense.
DENSE_FILL = 0.1



@dataclass
class Entries:
    """A sparse matrix as its entries (``rows``, ``cols``, ``vals``) and ``shape``, with the
    products the block solve needs: cheaper per PIRLS step than building a scipy matrix."""

    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    shape: tuple[int, int]

    def __matmul__(self, X: np.ndarray) -> np.ndarray:
        if X.ndim == 1:
            return np.bincount(self.rows, weights=self.vals * X[self.cols], minlength=self.shape[0])
        return np.column_stack([self @ X[:, c] for c in range(X.shape[1])])

    @property
    def T(self) -> Entries:
        return Entries(self.cols, self.rows, self.vals, (self.shape[1], self.shape[0]))

    def toarray(self) -> np.ndarray:
        D = np.zeros(self.shape)
        np.add.at(D, (self.rows, self.cols), self.vals)
        return D


#: The rest × block-0 part of M as formed: dense, or a scipy matrix for large designs.
DenseOrCSR: TypeAlias = np.ndarray | sp.csr_matrix
#: ... and as the factor keeps it (also as entries).
RestFirst: TypeAlias = np.ndarray | sp.csr_matrix | Entries


@dataclass
class _Pairs:
    """Where rows of a rest block j meet levels of block 0: ``index`` n-vector into the unique
    (level_j, level_0) pairs, ``lev_j``/``lev_0`` the pairs' levels."""

    index: np.ndarray
    lev_j: np.ndarray
    lev_0: np.ndarray


@dataclass
class Factor:
    """M = ŨᵀWŨ + I factored at one W: ``D0inv`` (ℓ₀, p₀, p₀) inverses of block 0's diagonal
    blocks; ``H`` M_r0·D0⁻¹ (M_r0 the rest × block-0 part; dense or sparse); ``Lrr`` the
    Cholesky factor of the Schur complement S = M_rr − M_r0 D0⁻¹ M_r0ᵀ (cho_factor form, or None
    without rest blocks); ``ldL2`` log|M|; ``ok`` whether the factorisation succeeded."""

    D0inv: np.ndarray
    H: RestFirst | None
    Lrr: tuple | None
    ldL2: float
    ok: bool

    def solve(self, R: np.ndarray) -> np.ndarray:
        """M⁻¹R for R of q rows (one or more columns), by block elimination."""
        if R.ndim == 1 and self.D0inv.shape[1] == 1:
            return self._solve_vector(R)
        vec = R.ndim == 1
        R2 = R[:, None] if vec else R
        ell, p0 = self.D0inv.shape[:2]
        q0 = ell * p0
        R0 = R2[:q0].reshape(ell, p0, -1)
        y0 = (self.D0inv[:, 0, 0, None] * R0[:, 0, :] if p0 == 1
              else (self.D0inv @ R0).reshape(q0, -1))
        if self.Lrr is None or self.H is None:
            out = y0
        else:
            ur, _ = lapack.dpotrs(self.Lrr[0], R2[q0:] - self.H @ R0.reshape(q0, -1), lower=1)
            out = np.empty((q0 + ur.shape[0], R2.shape[1]))
            out[:q0] = y0 - (self.H.T @ ur)
            out[q0:] = ur
        return out[:, 0] if vec else out

    def _solve_vector(self, r: np.ndarray) -> np.ndarray:
        """:meth:`solve` for one right-hand side and a scalar block 0."""
        q0 = self.D0inv.shape[0]
        y0 = self.D0inv[:, 0, 0] * r[:q0]
        if self.Lrr is None or self.H is None:
            return y0
        ur, _ = lapack.dpotrs(self.Lrr[0], r[q0:] - self.H @ r[:q0], lower=1)
        out = np.empty(r.size)
        out[:q0] = y0 - self.H.T @ ur
        out[q0:] = ur
        return out

    def diag_blocks_inverse(self) -> list[np.ndarray]:
        """The diagonal blocks of M⁻¹ per factor block: (ℓ, p, p) arrays, computational order."""
        ell, p0 = self.D0inv.shape[:2]
        V0 = self.D0inv.copy()
        if self.Lrr is None or self.H is None:
            return [V0]
        Sinv = cho_solve(self.Lrr, np.eye(self.Lrr[0].shape[0]))
        Hd = self.H if isinstance(self.H, np.ndarray) else self.H.toarray()
        E = Sinv @ Hd
        V0 += np.einsum("kia,kib->iab", Hd.reshape(-1, ell, p0), E.reshape(-1, ell, p0))
        return [V0, Sinv]


#: Largest q_r for which scalar intercept designs form all of M's sums in one sparse product
#: (:class:`Indicators`; the rest × rest part is then indexed densely, q_r² rows).
INDICATOR_QREST = 1000


class Indicators:
    """Sparse products for designs whose blocks are all scalar intercepts (Ũ columns constant
    per block, sⱼ = θⱼ): Ũu = Z(s∘u) and Ũᵀv = s∘(Zᵀv) as one CSR product each, and every sum
    of w that M = ŨᵀWŨ + I needs (block 0's diagonal, the dense rest × rest part and the rest ×
    block-0 part) as one product G·w, G's rows being M's cells; the factorisation scales the
    cells by sⱼsₖ afterwards.

    Fields: ``Z`` (n × q) and ``Zt`` (q × n) indicator matrices (:mod:`.indicator`), ``G`` the cell matrix (None-like
    empty without ``cells``), ``svec`` each random effect's sⱼ, ``q0``, ``q_rest``, ``r0_start``
    where the rest × block-0 cells begin in G·w. The sums are formed in the same order and
    scaled after summing, as the per-block ``bincount`` passes do, so the numbers are the same.
    """

    def __init__(self, blocks: list[ReTerm], offsets: np.ndarray, pairs: list[_Pairs],
                 r0_dense: bool, cells: bool = True) -> None:
        n = blocks[0].codes.size
        starts = np.cumsum([0] + [b.q for b in blocks])
        self.q0, q = blocks[0].q, int(starts[-1])
        self.q_rest = q - self.q0
        self.Z = IndicatorMatrix([b.codes for b in blocks], [b.q for b in blocks])
        self.Zt = self.Z.T
        self._qblock = np.repeat(np.arange(len(blocks)), [b.q for b in blocks])
        self.G, self.r0_start = (self._cells(blocks, offsets, pairs, r0_dense) if cells
                                 else (sp.csr_matrix((0, n)), 0))
        self.svec = np.ones(q)
        self._s0 = 1.0
        self._cell_scales: tuple[float, np.ndarray, np.ndarray] | None = None

    def _cells(self, blocks: list[ReTerm], offsets: np.ndarray, pairs: list[_Pairs],
               r0_dense: bool) -> tuple[sp.csr_matrix, int]:
        """G (cells × n, entries 1) and where its rest × block-0 cells begin."""
        nb, n, q0, qr = len(blocks), blocks[0].codes.size, self.q0, self.q_rest
        obs = np.arange(n)
        rows, cols = [blocks[0].codes], [obs]
        for j in range(1, nb):
            rj = offsets[j - 1] + blocks[j].codes
            for k in range(1, nb):
                rk = offsets[k - 1] + blocks[k].codes
                rows.append(q0 + rj * qr + rk)
                cols.append(obs)
        r0_start = q0 + qr * qr
        if r0_dense:
            for j in range(1, nb):
                rows.append(r0_start + (offsets[j - 1] + blocks[j].codes) * q0 + blocks[0].codes)
                cols.append(obs)
            ncell = r0_start + qr * q0
        else:
            start = r0_start
            for pr in pairs:
                rows.append(start + pr.index)
                cols.append(obs)
                start += pr.lev_j.size
            ncell = start
        r = np.concatenate(rows)
        return sp.csr_matrix((np.ones(r.size), (r, np.concatenate(cols))), shape=(ncell, n)), r0_start

    def set_scales(self, scale: list[float]) -> None:
        """Each random effect's scale sⱼ (Ũu = Z(s∘u), Ũᵀv = s∘(Zᵀv)), and the products of
        scales that scale M's cells (:meth:`cell_scales`), formed once per θ."""
        self.svec = np.asarray(scale, dtype=float)[self._qblock]
        self._s0, self._cell_scales = float(scale[0]), None

    @property
    def cell_scales(self) -> tuple[float, np.ndarray, np.ndarray]:
        """(s₀², s_r s_rᵀ, s_r s₀ as a column): the scales of block 0's, the rest × rest and the
        rest × block-0 cells of M, formed when first asked for at a θ (a nested chain's
        factorisation does not ask: the q_r × q_r outer product was 4% of grouseticks' fit)."""
        if self._cell_scales is None:
            s0, sr = self._s0, self.svec[self.q0:]
            self._cell_scales = (s0 * s0, np.multiply.outer(sr, sr), (sr * s0)[:, None])
        return self._cell_scales

    def cells(self, w: np.ndarray) -> np.ndarray:
        """All sums of w over M's cells, unscaled (G·w)."""
        return self.G @ w


#: A factorisation of M: blocked (:class:`Factor`) or of a nested chain (:class:`~.nested.NestedFactor`).
AnyFactor: TypeAlias = Factor | NestedFactor


class PenalizedSystem:
    """The pattern of M = ŨᵀWŨ + I for a structure, and its factorisation for given W.

    Fields: ``structure``; ``blocks`` its factor blocks (computational order); ``offsets`` of
    the rest blocks' random effects; ``q0``, ``q_rest``; ``Ut`` the per-block n×pₖ columns of
    Ũ = ZΛ at the current θ (a property).
    """

    def __init__(self, structure: ReStructure) -> None:
        self.structure = structure
        self.blocks: list[ReTerm] = list(structure.blocks)
        b0 = self.blocks[0]
        self.q0 = b0.q
        rest = self.blocks[1:]
        self.offsets = np.cumsum([0] + [b.q for b in rest]).astype(np.int64)
        self.q_rest = int(self.offsets[-1])
        self.q = self.q0 + self.q_rest
        self.pairs = [self._pairs(b, b0) for b in rest]
        self._mr0_pattern()
        self._rr_index()
        self.diag_lead = self._diagonal_lead()
        self._Ut: list[np.ndarray] = [b.X.copy() for b in self.blocks]
        self._ut_theta: np.ndarray | None = None
        #: Blocks whose Ũ column is a constant (a scalar intercept term): Ũ = s·1, s = T₁₁.
        self.const = [b.p == 1 and bool(np.all(b.X == 1.0)) for b in self.blocks]
        self.scale = [1.0 for _ in self.blocks]
        #: A chain of nested scalar intercept terms, factored level by level (:mod:`.nested`).
        self.chain = NestedChain(self.blocks) if nested_chain(self.blocks) else None
        small = self.q_rest <= INDICATOR_QREST and self.chain is None
        self.ind = (Indicators(self.blocks, self.offsets, self.pairs, self.dense_r0, cells=small)
                    if all(self.const) and len(self.blocks) > 1 and (small or self.chain is not None)
                    else None)
        #: The θ that Ũ was last formed at (None: not yet), so that models sharing this system
        #: (refits to new responses) re-form it only when θ changes.
        self.theta: np.ndarray | None = None

    # -- patterns ------------------------------------------------------------------------------
    @staticmethod
    def _pairs(bj: ReTerm, b0: ReTerm) -> _Pairs:
        key = bj.codes * b0.nlevels + b0.codes
        uniq, inv = np.unique(key, return_inverse=True)
        return _Pairs(inv.astype(np.int64), uniq // b0.nlevels, uniq % b0.nlevels)

    def _mr0_pattern(self) -> None:
        """The CSR pattern of A_r0 and the order in which per-(j, a, b) pair sums fill it."""
        if not self.pairs:
            self._mr0 = None
            self.dense_r0 = False
            return
        b0 = self.blocks[0]
        rows, cols = [], []
        for j, (bj, pr) in enumerate(zip(self.blocks[1:], self.pairs)):
            for a in range(bj.p):
                for b in range(b0.p):
                    rows.append(self.offsets[j] + pr.lev_j * bj.p + a)
                    cols.append(pr.lev_0 * b0.p + b)
        r, c = np.concatenate(rows), np.concatenate(cols)
        pos = np.arange(r.size, dtype=float)
        M = sp.csr_matrix((pos + 1.0, (r, c)), shape=(self.q_rest, self.q0))
        M.sort_indices()
        self._mr0 = M
        self._mr0_perm = (M.data - 1.0).astype(np.int64)
        self._mr0_flat = r.astype(np.int64) * self.q0 + c
        self._mr0_rows, self._mr0_cols = r.astype(np.int64), c.astype(np.int64)
        size = self.q_rest * self.q0
        self.dense_r0 = size <= DENSE_R0 and r.size >= DENSE_FILL * size

    def _rr_index(self) -> None:
        """For each (j, k ≤ j, a, b) of the rest blocks: the n-vector into the level pairs that
        meet, their number, and the flat positions of their sums in the dense q_r × q_r block
        (and of the mirrored entries off the diagonal)."""
        self._rr: list[tuple[int, int, int, int, np.ndarray, int, np.ndarray, np.ndarray | None]] = []
        q = self.q_rest
        rest = self.blocks[1:]
        for j, bj in enumerate(rest):
            for k, bk in enumerate(rest[: j + 1]):
                if j == k:
                    index, lj, lk = bj.codes, np.arange(bj.nlevels), np.arange(bj.nlevels)
                else:
                    pr = self._pairs(bj, bk)
                    index, lj, lk = pr.index, pr.lev_j, pr.lev_0
                for a in range(bj.p):
                    for b in range(bk.p):
                        if j == k and b > a:
                            continue
                        rows = self.offsets[j] + lj * bj.p + a
                        cols = self.offsets[k] + lk * bk.p + b
                        mirror = None if (j == k and a == b) else cols * q + rows
                        self._rr.append((j, k, a, b, index, lj.size, rows * q + cols, mirror))

    @cached_property
    def _gram(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """For a sparse rest × block-0 part with scalar block 0: every ordered pair of its
        entries in the same column, so that Mr0 D0⁻¹ Mr0ᵀ is one weighted ``bincount`` (None
        where not). Formed when the blocked factorisation first needs it: a nested chain
        (:mod:`.nested`) never does (grouseticks: 1 ms of a 0.12 s fit)."""
        if self._mr0 is None or self.dense_r0 or self.blocks[0].p != 1:
            return None
        order = np.argsort(self._mr0_cols, kind="stable")
        cols = self._mr0_cols[order]
        starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
        sizes = np.diff(np.r_[starts, cols.size])
        e1, e2 = [], []
        for st, sz in zip(starts, sizes):
            idx = order[st: st + sz]
            e1.append(np.repeat(idx, sz))
            e2.append(np.tile(idx, sz))
        a, b = np.concatenate(e1), np.concatenate(e2)
        uniq, inv = np.unique(self._mr0_rows[a] * self.q_rest + self._mr0_rows[b], return_inverse=True)
        return (a, b, self._mr0_cols[a], uniq, inv.astype(np.int64))

    def _diagonal_lead(self) -> int:
        """The size of the leading rest block when the Schur complement S keeps it diagonal
        (else 0): a scalar term whose every level of block 0 meets at most one of its levels
        (block 0 nested in it, e.g. observations within broods), so that M_r0 D0⁻¹ M_r0ᵀ adds
        nothing off its diagonal. S is then factored by eliminating that block first, leaving
        a dense Cholesky factorisation of only the remaining rest blocks."""
        if not self.pairs or self.blocks[1].p != 1 or len(self.blocks) < 3:
            return 0
        lev_0 = self.pairs[0].lev_0
        return self.blocks[1].nlevels if np.unique(lev_0).size == lev_0.size else 0

    def cholesky(self, S: np.ndarray) -> np.ndarray | None:
        """The lower Cholesky factor of the Schur complement S (formed in S's storage, upper
        triangle not cleared), or None when S is not positive definite; a diagonal leading block
        is eliminated first."""
        d = self.diag_lead
        if d == 0:
            L, info = lapack.dpotrf(S, lower=1, clean=0, overwrite_a=1)
            return L if info == 0 else None
        diag = np.arange(d)
        s11 = S[diag, diag]
        if not np.all(s11 > 0):
            return None
        l11 = np.sqrt(s11)
        L21 = S[d:, :d]
        L21 /= l11[None, :]
        L22, info = lapack.dpotrf(S[d:, d:] - L21 @ L21.T, lower=1, clean=0, overwrite_a=1)
        if info != 0:
            return None
        S[diag, diag] = l11  # the rest of S's leading block is 0 (the premise), its upper part unread
        S[d:, d:] = L22
        return S

    # -- θ -------------------------------------------------------------------------------------
    def set_theta(self, theta: np.ndarray) -> None:
        """Ũ = ZΛ_θ: each block's raw columns times its template (nothing to do at the same θ)."""
        if self.theta is not None and np.array_equal(theta, self.theta):
            return
        self.theta = np.array(theta, dtype=float)
        for i, b in enumerate(self.blocks):
            T = b.template(theta)
            self.scale[i] = float(T[0, 0])
            if self.ind is None:
                self._Ut[i] = b.X * T[0, 0] if b.p == 1 else b.X @ T
        self._ut_theta = None if self.ind is not None else self.theta
        if self.ind is not None:
            self.ind.set_scales(self.scale)

    @property
    def Ut(self) -> list[np.ndarray]:
        """The per-block n×pₖ columns of Ũ = ZΛ at the current θ (formed when asked for: the
        indicator products of scalar intercept designs do not use them)."""
        if self.theta is not None and self._ut_theta is not self.theta:
            for i, b in enumerate(self.blocks):
                T = b.template(self.theta)
                self._Ut[i] = b.X * T[0, 0] if b.p == 1 else b.X @ T
            self._ut_theta = self.theta
        return self._Ut

    # -- products with Ũ -------------------------------------------------------------------------
    def effect_scales(self) -> np.ndarray | None:
        """Each random effect's scale sⱼ (Ũ = Z·diag(s)) when every block is a scalar intercept
        term, else None."""
        if not all(self.const):
            return None
        if self.ind is not None:
            return self.ind.svec.copy()
        return np.repeat(np.asarray(self.scale, dtype=float), [b.q for b in self.blocks])

    def z_times(self, v: np.ndarray) -> np.ndarray:
        """Zv for scalar intercept blocks (the indicators, unscaled)."""
        if self.ind is not None:
            return self.ind.Z @ v
        out = np.zeros(self.blocks[0].codes.size)
        start = 0
        for b in self.blocks:
            out += v[start: start + b.q][b.codes]
            start += b.q
        return out

    def zt_times(self, r: np.ndarray) -> np.ndarray:
        """Zᵀr for scalar intercept blocks (the indicators, unscaled), r a vector or a matrix."""
        if self.ind is not None:
            return self.ind.Zt @ r
        if r.ndim == 2:
            return np.column_stack([self.zt_times(r[:, c]) for c in range(r.shape[1])]) \
                if r.shape[1] else np.zeros((self.q, 0))
        return np.concatenate([np.bincount(b.codes, weights=r, minlength=b.nlevels) for b in self.blocks])

    def zlam(self, u: np.ndarray) -> np.ndarray:
        """Ũu (n-vector) for u in computational order."""
        if self.ind is not None:
            return self.ind.Z @ (self.ind.svec * u)
        out = np.zeros(self.blocks[0].codes.size)
        start = 0
        for i, (b, U) in enumerate(zip(self.blocks, self.Ut)):
            ub = u[start: start + b.q].reshape(b.nlevels, b.p)
            start += b.q
            if self.const[i]:
                out += (self.scale[i] * ub[:, 0])[b.codes]
            elif b.p == 1:
                out += U[:, 0] * ub[b.codes, 0]
            else:
                out += np.einsum("na,na->n", U, ub[b.codes])
        return out

    def zlam_t(self, v: np.ndarray) -> np.ndarray:
        """Ũᵀv (q-vector, computational order) for an n-vector v."""
        if self.ind is not None:
            return self.ind.svec * (self.ind.Zt @ v)
        out = np.empty(self.q)
        start = 0
        for i, (b, U) in enumerate(zip(self.blocks, self.Ut)):
            if self.const[i]:
                out[start: start + b.q] = self.scale[i] * np.bincount(b.codes, weights=v, minlength=b.nlevels)
            else:
                blk = np.empty((b.nlevels, b.p))
                for a in range(b.p):
                    blk[:, a] = np.bincount(b.codes, weights=U[:, a] * v, minlength=b.nlevels)
                out[start: start + b.q] = blk.ravel()
            start += b.q
        return out

    def _wprod(self, i: int, a: int, k: int, b: int, w: np.ndarray) -> tuple[float, np.ndarray]:
        """(c, v) with c·v = w·Ũᵢ[:, a]·Ũₖ[:, b]: no pass over the rows when both are constant."""
        if self.const[i] and self.const[k]:
            return self.scale[i] * self.scale[k], w
        return 1.0, w * self.Ut[i][:, a] * self.Ut[k][:, b]

    def zlam_t_matrix(self, V: np.ndarray) -> np.ndarray:
        """ŨᵀV (q × k) for an n × k matrix V."""
        if self.ind is not None:
            return self.ind.svec[:, None] * (self.ind.Zt @ V)
        return np.column_stack([self.zlam_t(V[:, c]) for c in range(V.shape[1])]) \
            if V.shape[1] else np.zeros((self.q, 0))

    # -- factorisation ---------------------------------------------------------------------------
    def factor(self, w: np.ndarray) -> AnyFactor:
        """Factor M = ŨᵀWŨ + I for the working weights w."""
        if self.chain is not None and self.ind is not None:
            return self.chain.factor(self.ind.Zt @ w, self.scale)
        if self.ind is not None:
            return self._factor_indicators(w)
        b0, U0 = self.blocks[0], self.Ut[0]
        ell, p0 = b0.nlevels, b0.p
        if p0 == 1:
            c, v = self._wprod(0, 0, 0, 0, w)
            d = c * np.bincount(b0.codes, weights=v, minlength=ell) + 1.0
            D0inv = (1.0 / d)[:, None, None]
            ld0 = float(np.sum(np.log(d)))
            ok = bool(np.all(d > 0))
        else:
            wU0 = U0 * w[:, None]
            D0 = np.empty((ell, p0, p0))
            for a in range(p0):
                for b in range(a + 1):
                    D0[:, a, b] = D0[:, b, a] = np.bincount(b0.codes, weights=wU0[:, a] * U0[:, b],
                                                            minlength=ell)
            D0[:, np.arange(p0), np.arange(p0)] += 1.0
            try:
                C = np.linalg.cholesky(D0)
            except np.linalg.LinAlgError:
                return Factor(np.zeros((ell, p0, p0)), None, None, np.inf, False)
            ld0 = float(2.0 * np.sum(np.log(C[:, np.arange(p0), np.arange(p0)])))
            D0inv = np.linalg.inv(D0)
            ok = True
        if self._mr0 is None:
            return Factor(D0inv, None, None, ld0, ok)
        S = self._rest_rest(w)
        H: RestFirst
        if self._gram is not None:
            vals = self._rest_values(w)
            ga, gb, col, uniq, inv = self._gram
            S.reshape(-1)[uniq] -= np.bincount(inv, weights=vals[ga] * vals[gb] * D0inv[col, 0, 0],
                                               minlength=uniq.size)
            H = Entries(self._mr0_rows, self._mr0_cols, vals * D0inv[self._mr0_cols, 0, 0],
                        (self.q_rest, self.q0))
        else:
            Mr0 = self._rest_first(w)
            Hm = self._times_d0inv(Mr0, D0inv)
            HM = Hm @ Mr0.T
            H = Hm
            S -= HM if isinstance(HM, np.ndarray) else HM.toarray()
        L = self.cholesky(S)
        if L is None:
            return Factor(D0inv, H, None, np.inf, False)
        ldr = float(2.0 * np.sum(np.log(np.diag(L))))
        return Factor(D0inv, H, (L, True), ld0 + ldr, ok)

    def _factor_indicators(self, w: np.ndarray) -> Factor:
        """:meth:`factor` for scalar intercept blocks, from one product G·w (:class:`Indicators`;
        the cells' scales formed once per θ)."""
        ind = self.ind
        assert ind is not None
        cells = ind.G @ w
        q0, qr = self.q0, self.q_rest
        s00, srr, sr0 = ind.cell_scales
        d = s00 * cells[:q0] + 1.0
        dinv = 1.0 / d
        D0inv = dinv[:, None, None]
        ld0 = float(np.sum(np.log(d)))
        ok = bool(d.min(initial=np.inf) > 0)
        if qr == 0:
            return Factor(D0inv, None, None, ld0, ok)
        S = cells[q0: ind.r0_start].reshape(qr, qr) * srr
        S.reshape(-1)[:: qr + 1] += 1.0
        H: RestFirst
        if self._gram is not None:
            vals = cells[ind.r0_start:] * sr0[self._mr0_rows, 0]
            ga, gb, col, uniq, inv = self._gram
            S.reshape(-1)[uniq] -= np.bincount(inv, weights=vals[ga] * vals[gb] * dinv[col],
                                               minlength=uniq.size)
            H = Entries(self._mr0_rows, self._mr0_cols, vals * dinv[self._mr0_cols], (qr, q0))
        else:
            Mr0 = cells[ind.r0_start:].reshape(qr, q0) * sr0
            H = Mr0 * dinv[None, :]
            S -= H @ Mr0.T
        L = self.cholesky(S)
        if L is None:
            return Factor(D0inv, H, None, np.inf, False)
        ldr = float(2.0 * np.sum(np.log(L.diagonal())))
        return Factor(D0inv, H, (L, True), ld0 + ldr, ok)

    def _rest_values(self, w: np.ndarray) -> np.ndarray:
        """The entries of Ũ_rᵀWŨ₀ in pattern order (per rest block j, column a, column b)."""
        vals = []
        for j, (bj, pr) in enumerate(zip(self.blocks[1:], self.pairs)):
            for a in range(bj.p):
                for b in range(self.blocks[0].p):
                    c, v = self._wprod(j + 1, a, 0, b, w)
                    vals.append(c * np.bincount(pr.index, weights=v, minlength=pr.lev_j.size))
        return np.concatenate(vals)

    def _rest_first(self, w: np.ndarray) -> DenseOrCSR:
        """Ũ_rᵀWŨ₀, dense or sparse."""
        vals = self._rest_values(w)
        if self.dense_r0:
            D = np.zeros(self.q_rest * self.q0)
            D[self._mr0_flat] = vals
            return D.reshape(self.q_rest, self.q0)
        assert self._mr0 is not None
        M = self._mr0.copy()
        M.data = vals[self._mr0_perm]
        return M

    @staticmethod
    def _times_d0inv(Mr0: DenseOrCSR, D0inv: np.ndarray) -> DenseOrCSR:
        ell, p0 = D0inv.shape[:2]
        if isinstance(Mr0, np.ndarray):
            if p0 == 1:
                return Mr0 * D0inv[:, 0, 0][None, :]
            H3 = np.einsum("kib,ibc->kic", Mr0.reshape(-1, ell, p0), D0inv)
            return H3.reshape(Mr0.shape)
        if p0 == 1:
            H = Mr0.copy()
            H.data = H.data * D0inv[:, 0, 0][H.indices]
            return H
        B = sp.bsr_matrix((D0inv, np.arange(ell), np.arange(ell + 1)), shape=(ell * p0, ell * p0))
        return (Mr0 @ B).tocsr()

    def _rest_rest(self, w: np.ndarray) -> np.ndarray:
        """Dense Ũ_rᵀWŨ_r + I (full symmetric storage)."""
        q = self.q_rest
        S = np.zeros(q * q)
        for j, k, a, b, index, npairs, flat, mirror in self._rr:
            c, wv = self._wprod(j + 1, a, k + 1, b, w)
            v = c * np.bincount(index, weights=wv, minlength=npairs)
            S[flat] += v
            if mirror is not None:
                S[mirror] += v
        S[:: q + 1] += 1.0
        return S.reshape(q, q)


def solve_fixed(fac: AnyFactor, C: np.ndarray, XtWX: np.ndarray, r_u: np.ndarray,
                r_x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The joint PIRLS step for (u, β): [[M, C], [Cᵀ, XᵀWX]] [u; β] = [r_u; r_x], C = ŨᵀWX.

    Returns (u, β, R_X) with R_X upper triangular, R_XᵀR_X = XᵀWX − CᵀM⁻¹C. The triangular
    solves call LAPACK's trtrs as ``scipy.linalg.solve_triangular`` does (the same numbers),
    without its argument checks (ten times the p × p work).
    """
    Y = fac.solve(np.column_stack([C, r_u]))
    YC, Yr = Y[:, :-1], Y[:, -1]
    Sx = XtWX - C.T @ YC
    L = np.linalg.cholesky(Sx)
    beta = cholesky_solve(L, r_x - C.T @ Yr)
    return Yr - YC @ beta, beta, L.T


def cholesky_solve(L: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """(LLᵀ)⁻¹rhs for numpy's (C-ordered) lower Cholesky factor L: the two LAPACK ``trtrs``
    calls that scipy's ``solve_triangular`` makes for L and Lᵀ (the same numbers), without its
    argument checks, which cost more than the solves at the sizes of X."""
    if L.shape[0] < 2 or rhs.size == 0:
        return solve_triangular(L.T, solve_triangular(L, rhs, lower=True, check_finite=False), lower=False,
                                check_finite=False)
    y, info = lapack.dtrtrs(L.T, rhs, lower=0, trans=1)
    x, info2 = lapack.dtrtrs(L.T, y, lower=0, trans=0)
    if info != 0 or info2 != 0:
        raise np.linalg.LinAlgError("singular triangular factor")
    return x
