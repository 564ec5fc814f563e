"""The indicator matrix Z of scalar intercept terms (n × q, one 1 per row in each term's columns)
and its transpose. For small designs (at most :data:`GATHER_MAX` entries) a vector product is
one gather (``take``) or one ``bincount`` instead of a sparse product: PIRLS forms Zv and Zᵀw
several times per step, and there a sparse product's call overhead is most of its cost. Larger
designs, and products with matrices, use the CSR form (faster there).

The sums are accumulated in the same order as the CSR products (per row, the terms in order;
per column, the rows in order), so the numbers are the same.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: Most entries (rows × terms) for which vector products gather instead of using the CSR form.
GATHER_MAX = 2000


class IndicatorMatrix:
    """Z for the terms' level codes ``codes`` (one n-vector per term) with ``sizes`` columns
    each: ``Z @ v`` for v a q-vector or a q × k matrix; ``T`` its transpose; ``gather`` whether
    vector products gather."""

    def __init__(self, codes: list[np.ndarray], sizes: list[int]) -> None:
        starts = np.cumsum([0] + list(sizes))
        #: Column of each row's 1 per term, (terms, n).
        self.cols = np.stack([s + np.asarray(c, dtype=np.int64) for s, c in zip(starts, codes)])
        self.n, self.q = self.cols.shape[1], int(starts[-1])
        flat = self.cols.ravel()
        rows = np.tile(np.arange(self.n), len(codes))
        self.csr = sp.csr_matrix((np.ones(flat.size), (rows, flat)), shape=(self.n, self.q))
        #: Whether vector products gather (small designs) rather than use the CSR form.
        self.gather = flat.size <= GATHER_MAX
        self.T = IndicatorTranspose(self)

    @property
    def shape(self) -> tuple[int, int]:
        return self.n, self.q

    def __matmul__(self, v: np.ndarray) -> np.ndarray:
        if v.ndim == 1 and self.gather:
            return v[self.cols].sum(axis=0) if self.cols.shape[0] > 1 else v[self.cols[0]]
        return np.asarray(self.csr @ v)


class IndicatorTranspose:
    """Zᵀ of an :class:`IndicatorMatrix`: ``Zt @ w`` for w an n-vector (small designs: one
    ``bincount`` over the gathered rows) or an n × k matrix."""

    def __init__(self, Z: IndicatorMatrix) -> None:
        self.Z = Z
        self.flat = Z.cols.ravel()
        #: The row of each entry of ``flat`` (the rows repeated per term).
        self.rows = np.tile(np.arange(Z.n), Z.cols.shape[0])
        self.csr = sp.csr_matrix((np.ones(self.flat.size), (self.flat, self.rows)), shape=(Z.q, Z.n))

    @property
    def shape(self) -> tuple[int, int]:
        return self.Z.q, self.Z.n

    def __matmul__(self, w: np.ndarray) -> np.ndarray:
        if w.ndim == 1 and self.Z.gather:
            return np.bincount(self.flat, weights=w[self.rows], minlength=self.Z.q)
        return np.asarray(self.csr @ w)
