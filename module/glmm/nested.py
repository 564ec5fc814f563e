"""M = ŨᵀWŨ + I for a chain of nested scalar intercept terms (each factor's levels within the
next one's, as observations within broods within locations): its LDLᵀ factorisation by
eliminating the factors in turn, all in vectors over levels.

With block k nested in block m > k, every level a of k meets one level anc(a) of m, so the
entry of M between them is the only one in that column of the k × m part, and eliminating k
changes only m's diagonal and the entries between later factors' ancestors of a: no fill-in,
and L, D are one vector per pair of factors. The same matrix as the blocked form of
:mod:`.system` factors, reached by other (equally exact) arithmetic.
"""
from __future__ import annotations

import numpy as np

from ..lmm.remat import ReTerm


def nested_chain(blocks: list[ReTerm]) -> bool:
    """Whether the blocks are two or more scalar intercept terms, each nested in the next."""
    if len(blocks) < 2 or any(b.p != 1 or not np.all(b.X == 1.0) for b in blocks):
        return False
    for inner, outer in zip(blocks[:-1], blocks[1:]):
        parent = np.zeros(inner.nlevels, dtype=np.int64)
        parent[inner.codes] = outer.codes
        if not np.array_equal(parent[inner.codes], outer.codes):
            return False
    return True


class NestedChain:
    """The pattern of a nested chain: ``nlev`` levels per block, ``offsets`` of each block's
    random effects, ``anc[(k, m)]`` the level of block m above each level of block k (k < m)."""

    def __init__(self, blocks: list[ReTerm]) -> None:
        self.nlev = [b.nlevels for b in blocks]
        self.offsets = np.cumsum([0] + self.nlev)
        #: The offsets as Python integers (slicing with them is cheaper).
        self.bounds = [int(o) for o in self.offsets]
        self.anc: dict[tuple[int, int], np.ndarray] = {}
        self._columns: dict[tuple[int, int, int], np.ndarray] = {}
        #: Each random effect's block, and the pairs (k, m), k < m, of blocks.
        self._block_of = np.repeat(np.arange(len(blocks)), self.nlev)
        self.pairs = [(k, m) for k in range(len(blocks)) for m in range(k + 1, len(blocks))]
        for k, bk in enumerate(blocks):
            for m in range(k + 1, len(blocks)):
                a = np.zeros(bk.nlevels, dtype=np.int64)
                a[bk.codes] = blocks[m].codes
                self.anc[k, m] = a

    def column_index(self, k: int, m: int, ncol: int) -> np.ndarray:
        """For a (levels of k) × ncol array, raveled: the index of each entry's (ancestor in m,
        column) cell of a (levels of m) × ncol array, raveled (formed once per shape)."""
        key = (k, m, ncol)
        idx = self._columns.get(key)
        if idx is None:
            idx = (self.anc[k, m][:, None] * ncol + np.arange(ncol)[None, :]).ravel()
            self._columns[key] = idx
        return idx

    def factor(self, sums: np.ndarray, scale: list[float]) -> NestedFactor:
        """LDLᵀ of M from the per-level sums of w (``sums``, q-vector, blocks in order) and the
        blocks' scales sₖ (M's entries between block k and m are sₖsₘ·Σw)."""
        K, off = len(self.nlev), self.bounds
        D_all = sums * np.square(np.asarray(scale, dtype=float))[self._block_of] + 1.0
        D = [D_all[off[k]: off[k + 1]] for k in range(K)]
        offd = {(k, m): scale[k] * scale[m] * sums[off[k]: off[k + 1]] for k, m in self.pairs}
        L: dict[tuple[int, int], np.ndarray] = {}
        for k in range(K):
            if not D[k].min() > 0:  # also False for a NaN
                return NestedFactor(self, D, L, np.inf, False)
            for m in range(k + 1, K):
                L[k, m] = offd[k, m] / D[k]
            for m in range(k + 1, K):
                anc, n_m, okm = self.anc[k, m], self.nlev[m], offd[k, m]
                D[m] -= np.bincount(anc, weights=okm * L[k, m], minlength=n_m)
                for m2 in range(m + 1, K):
                    offd[m, m2] = offd[m, m2] - np.bincount(anc, weights=okm * L[k, m2], minlength=n_m)
        ld = 0.0
        for d in D:  # per block, in order, as the blocked factorisation sums log|M|
            ld += float(np.log(d).sum())
        return NestedFactor(self, D, L, ld, True)


class NestedFactor:
    """M = LDLᵀ of a nested chain: ``D`` per block, ``L[(k, m)]`` per level of block k its entry in
    block m's row anc(a); ``ldL2`` log|M|, ``ok``; ``D0inv`` block 0's diagonal of D⁻¹ as
    (ℓ₀, 1, 1) (its diagonal blocks of M, block 0 being eliminated first), as :class:`~.system.Factor`."""

    def __init__(self, chain: NestedChain, D: list[np.ndarray], L: dict[tuple[int, int], np.ndarray],
                 ldL2: float, ok: bool) -> None:
        self.chain, self.D, self.L, self.ldL2, self.ok = chain, D, L, ldL2, ok
        self.D0inv = (1.0 / D[0])[:, None, None]

    def _gather(self, k: int, m: int, y: np.ndarray) -> np.ndarray:
        """Σ over the levels a of block k under each level of block m of L[k, m]·y[a]."""
        Lkm = self.L[k, m]
        n_m = self.chain.nlev[m]
        if y.ndim == 1:
            return np.bincount(self.chain.anc[k, m], weights=Lkm * y, minlength=n_m)
        ncol = y.shape[1]
        idx = self.chain.column_index(k, m, ncol)
        return np.bincount(idx, weights=(Lkm[:, None] * y).ravel(), minlength=n_m * ncol).reshape(n_m, ncol)

    def solve(self, R: np.ndarray) -> np.ndarray:
        """M⁻¹R for R of q rows (one or more columns)."""
        off, K, anc = self.chain.bounds, len(self.D), self.chain.anc
        Y = np.array(R, dtype=float)
        vec = Y.ndim == 1
        y = [Y[off[k]: off[k + 1]] for k in range(K)]  # views: the steps work in place
        for k in range(K):
            for m in range(k + 1, K):
                y[m] -= self._gather(k, m, y[k])
        for k in range(K):
            y[k] /= self.D[k] if vec else self.D[k][:, None]
        for k in range(K - 2, -1, -1):
            for m in range(k + 1, K):
                y[k] -= (self.L[k, m] if vec else self.L[k, m][:, None]) * y[m][anc[k, m]]
        return Y

    def diag_blocks_inverse(self) -> list[np.ndarray]:
        """Block 0's diagonal of M⁻¹ as (ℓ₀, 1, 1) and the dense rest × rest part of M⁻¹, as
        :meth:`~.system.Factor.diag_blocks_inverse`."""
        off = self.chain.offsets
        q0, q = int(off[1]), int(off[-1])
        E = np.zeros((q, q - q0))
        E[q0:] = np.eye(q - q0)
        X = self.solve(E)
        Sinv, X0 = X[q0:], X[:q0]
        V0 = 1.0 / self.D[0]
        rows = np.arange(q0)
        for m in range(1, len(self.D)):
            V0 = V0 - X0[rows, off[m] - q0 + self.chain.anc[0, m]] * self.L[0, m]
        return [V0[:, None, None], Sinv]
