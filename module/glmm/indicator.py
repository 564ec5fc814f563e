"""The indicator matrix Z of scalar intercept terms (n × q, one 1 per row in each term's columns)
and its transpose, multiplied by a vector with one gather (``take``) or one ``bincount``
instead of a sparse product: PIRLS forms Zv and Zᵀw several times per step, where a sparse
product's call overhead is most of its cost. Z times a matrix goes through the CSR form.

The sums are accumulated in the same order as the CSR products (per row, the terms in order;
per column, the rows in order), so the numbers are the same.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class IndicatorMatrix:
    """Z for the terms' level codes ``codes`` (one n-vector per term) with ``sizes`` columns
    each: ``Z @ v`` for v a q-vector or a q × k matrix; ``T`` its transpose."""

    def __init__(self, codes: list[np.ndarray], sizes: list[int]) -> None:
        starts = np.cumsum([0] + list(sizes))
        #: Column of each row's 1 per term, (terms, n).
        self.cols = np.stack([s + np.asarray(c, dtype=np.int64) for s, c in zip(starts, codes)])
        self.n, self.q = self.cols.shape[1], int(starts[-1])
        flat = self.cols.ravel()
        rows = np.tile(np.arange(self.n), len(codes))
        self.csr = sp.csr_matrix((np.ones(flat.size), (rows, flat)), shape=(self.n, self.q))
        self.T = IndicatorTranspose(self)

    @property
    def shape(self) -> tuple[int, int]:
        return self.n, self.q

    def __matmul__(self, v: np.ndarray) -> np.ndarray:
        if v.ndim == 1:
            return v[self.cols].sum(axis=0) if self.cols.shape[0] > 1 else v[self.cols[0]]
        return np.asarray(self.csr @ v)


class IndicatorTranspose:
    """Zᵀ of an :class:`IndicatorMatrix`: ``Zt @ w`` for w an n-vector or an n × k matrix (one
    ``bincount`` over the gathered rows)."""

    def __init__(self, Z: IndicatorMatrix) -> None:
        self.Z = Z
        self.flat = Z.cols.ravel()
        #: The row of each entry of ``flat`` (the rows repeated per term).
        self.rows = np.tile(np.arange(Z.n), Z.cols.shape[0])
        self.csr = sp.csr_matrix((np.ones(self.flat.size), (self.flat, self.rows)), shape=(Z.q, Z.n))
        #: Per number of columns k, the (column, k) cell of each entry of an n × k matrix gathered by ``rows``.
        self._index: dict[int, np.ndarray] = {}

    @property
    def shape(self) -> tuple[int, int]:
        return self.Z.q, self.Z.n

    def __matmul__(self, w: np.ndarray) -> np.ndarray:
        q = self.Z.q
        if w.ndim == 1:
            return np.bincount(self.flat, weights=w[self.rows], minlength=q)
        k = w.shape[1]
        idx = self._index.get(k)
        if idx is None:
            idx = (self.flat[:, None] * k + np.arange(k)[None, :]).ravel()
            self._index[k] = idx
        return np.bincount(idx, weights=w[self.rows].ravel(), minlength=q * k).reshape(q, k)
