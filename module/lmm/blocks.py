"""The blocked cross-product A = [Z X y]ᵀW[Z X y], formed once, and the blocked Cholesky factor
L(θ) of the Λ-scaled matrix, formed per θ without touching the n rows (MixedModels.jl's
``updateL!``).

Blocks, in computational order of the structure's ``blocks`` (one amalgamated
:class:`~.remat.ReTerm` per grouping factor):

* block 0 (the factor with most random effects): A₀₀ is uniform block-diagonal (ℓ₀ blocks of
  p₀×p₀; diagonal when p₀ = 1) and stays so in L: a batched Cholesky, closed form for p₀ ≤ 2;
* the remaining factors ("rest", q_r random effects): A_r0 = Z_rᵀWZ₀ is sparse, A_rr dense; after
  eliminating block 0 their Schur complement is dense (the fill-in) and is factored by LAPACK;
* the last block is [X y] (m = p + 1 columns), dense.

With Wᵢ = T₀(T₀ᵀA₀₀ᵢT₀ + I)⁻¹T₀ᵀ per level of block 0, eliminating block 0 leaves
S_r = Λ_rᵀ(A_rr − A_r0(I⊗W)A_r0ᵀ)Λ_r + I, B_xr = (A_xr − A_x0(I⊗W)A_r0ᵀ)Λ_r and
S_x = A_xx − A_x0(I⊗W)A_x0ᵀ − L_xrL_xrᵀ with L_rr = chol(S_r), L_xr = B_xr L_rr⁻ᵀ,
L_xx = chol(S_x). The last diagonal element of L_xx is √r²(θ) (the penalized weighted residual
sum of squares) and its leading p×p block is R_Xᵀ.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from .gram import GramMap, build_gram_map, gram_product
from .remat import ReStructure, ReTerm


@dataclass
class Crossprod:
    """The blocks of A = [Z X y]ᵀW[Z X y], in the model's notation.

    Fields: ``ell0``, ``p0`` levels and columns of block 0; ``A00`` (ℓ₀, p₀, p₀) its diagonal
    blocks; ``Ax0`` (m, ℓ₀, p₀) the [X y] rows against block 0; ``rest`` the other factor blocks
    with ``offsets`` into the q_r rest random effects; ``Arr`` (q_r×q_r dense), ``ar0`` A_r0
    (q_r×q₀, sparse: scipy's CSR matrix or the :class:`SparseRows` arrays it is made of, read
    as :attr:`Ar0`), ``Axr`` (m×q_r), empty (q_r = 0) without rest; ``Axx`` (m×m); ``gram`` the
    :class:`GramMap` (or None, then a sparse product is used); ``n`` rows; ``p`` fixed-effect
    columns; ``sum_log_w`` Σ log wᵢ (0 without weights).
    """

    ell0: int
    p0: int
    A00: np.ndarray
    Ax0: np.ndarray
    Axx: np.ndarray
    rest: list[ReTerm]
    offsets: np.ndarray
    Arr: np.ndarray
    ar0: sp.csr_matrix | SparseRows
    Axr: np.ndarray
    gram: GramMap | None
    n: int
    p: int
    sum_log_w: float
    arr_upper: np.ndarray | None = None
    _arr_pattern: ArrPattern | None = field(init=False, default=None, repr=False)
    _pattern_done: bool = field(init=False, default=False, repr=False)
    _upper_plan: UpperPlan | None = field(init=False, default=None, repr=False)
    _plan_done: bool = field(init=False, default=False, repr=False)
    _ar0_array: np.ndarray | None = field(init=False, default=None, repr=False)
    _ar0_rows: np.ndarray | None = field(init=False, default=None, repr=False)

    @property
    def m(self) -> int:
        return self.p + 1

    @property
    def Ar0(self) -> sp.csr_matrix:
        """A_r0 as scipy's CSR matrix, made when first read: a model evaluated densely forms its
        products from the arrays (:meth:`ar0_times`, :meth:`ar0_transposed`, :meth:`ar0_array`)
        and never needs the matrix, whose constructor's checks cost more than its products."""
        if isinstance(self.ar0, SparseRows):
            self.ar0 = self.ar0.tocsr()
        return self.ar0

    def ar0_rows(self) -> np.ndarray:
        """The row of each stored entry of A_r0 (CSR order), formed once."""
        if self._ar0_rows is None:
            ar0 = self.ar0
            self._ar0_rows = (ar0.rows if isinstance(ar0, SparseRows)
                              else np.repeat(np.arange(ar0.shape[0]), np.diff(ar0.indptr)))
        return self._ar0_rows

    def ar0_times(self, Yt: np.ndarray) -> np.ndarray:
        """A_r0 Yᵀ for Yᵀ (q₀ × k): the sums scipy's product ``Ar0 @ Yt`` forms (each output's
        terms in the order of the stored entries, from zero), by one bincount over the entries
        while scipy's matrix has not been made and they are few (:data:`ROWS_PRODUCT_ENTRIES`),
        else by scipy's product (cheaper than the bincount once the matrix exists: Penicillin,
        on a loaded host, 14 against 20 µs, where the constructor alone took 40)."""
        ar0 = self.ar0
        k = Yt.shape[1]
        if not isinstance(ar0, SparseRows) or len(ar0.data) * k > ROWS_PRODUCT_ENTRIES:
            return self.Ar0 @ Yt
        key = self.ar0_rows()[:, None] * k + np.arange(k)
        terms = ar0.data[:, None] * Yt[ar0.indices]
        return np.bincount(key.ravel(), weights=terms.ravel(), minlength=ar0.shape[0] * k).reshape(-1, k)

    def ar0_transposed(self, v: np.ndarray) -> np.ndarray:
        """A_r0ᵀv for a q_r-vector v (:func:`transposed_product`'s sums)."""
        ar0 = self.ar0
        return _transposed_sums(self.ar0_rows(), ar0.indices, ar0.data, ar0.shape[1], v)

    @property
    def q_rest(self) -> int:
        return int(self.offsets[-1]) if len(self.offsets) else 0

    def ar0_array(self) -> np.ndarray:
        """A_r0 as a dense array (read-only), kept when it holds at most
        :data:`KEEP_AR0_ENTRIES` numbers (a small model reads it at every blocked factorisation)."""
        if self._ar0_array is not None:
            return self._ar0_array
        ar0 = self.ar0
        if isinstance(ar0, SparseRows):  # scipy's toarray adds each entry to a zero: the same values
            out = np.zeros(ar0.shape)
            out[ar0.rows, ar0.indices] = ar0.data
        else:
            out = ar0.toarray()
        out.flags.writeable = False
        if out.size <= KEEP_AR0_ENTRIES:
            self._ar0_array = out
        return out

    def arr_pattern(self) -> ArrPattern | None:
        """The non-zeros of A_rr's upper triangle when it is sparse (fewer than
        :data:`SPARSE_ARR_FRACTION` of the cells), else None; computed once (from
        ``arr_upper``, the cells that can be non-zero, when given)."""
        if not self._pattern_done:
            self._arr_pattern = _sparse_pattern(self.Arr, self.arr_upper)
            self._pattern_done = True
        return self._arr_pattern

    def upper_plan(self) -> UpperPlan | None:
        """How S_r's upper triangle is written from the Gram values alone (:class:`UpperPlan`),
        or None (no Gram map, A_rr not sparse, or a non-zero of A_rr outside the map's
        positions); formed once."""
        if not self._plan_done:
            pattern = self.arr_pattern()
            self._upper_plan = (None if self.gram is None or pattern is None
                                else _upper_plan(self.gram, pattern, self.rest, self.offsets))
            self._plan_done = True
        return self._upper_plan


#: Most numbers of the dense A_r0 that :meth:`Crossprod.ar0_array` keeps (320 kB).
KEEP_AR0_ENTRIES = 40_000
#: Most terms (stored entries × columns) of a product A_r0 Yᵀ formed by a bincount
#: (:meth:`Crossprod.ar0_times`) rather than by making scipy's matrix for its product.
ROWS_PRODUCT_ENTRIES = 4096


class SparseRows(NamedTuple):
    """A CSR matrix's arrays (``data``, ``indices`` sorted within rows, ``indptr``, ``shape``) and
    the row of each entry (``rows``), from which scipy's matrix is made when first needed
    (:attr:`Crossprod.Ar0`)."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    shape: tuple[int, int]
    rows: np.ndarray

    def tocsr(self) -> sp.csr_matrix:
        """scipy's CSR matrix of these arrays (sorted indices)."""
        A = sp.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)
        A.has_sorted_indices = True
        return A
#: Largest fraction of non-zero cells of A_rr for which S_r is assembled from A_rr's non-zeros
#: (a zeroed matrix and two scatters) instead of a scaled dense copy.
SPARSE_ARR_FRACTION = 0.125


@dataclass
class ArrPattern:
    """The upper-triangle non-zeros of A_rr: ``flat`` indices in the C-ordered q_r×q_r matrix,
    their ``rows``/``cols`` and ``values``."""

    flat: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray


def _sparse_pattern(Arr: np.ndarray, upper: np.ndarray | None) -> ArrPattern | None:
    q = Arr.shape[0]
    if q == 0 or (upper is not None and len(upper) > SPARSE_ARR_FRACTION * q * q):
        return None
    if upper is None:
        rows, cols = np.nonzero(np.triu(Arr))
    else:
        rows, cols = np.divmod(upper, q)
    if len(rows) > SPARSE_ARR_FRACTION * q * q:
        return None
    return ArrPattern(rows * q + cols, rows, cols, Arr[rows, cols])


@dataclass
class UpperPlan:
    """S_r's upper triangle written from the Gram map's positions alone, each once: ``within``
    the map index of each non-zero of A_rr (all of them are among the map's positions, as in a
    model whose every observation has a level of block 0 and no zero covariate); ``pair`` for
    each map position the index of its scale d_r·d_c in the flattened outer product of the
    rest blocks' column scales (d is constant over the levels of a block's column)."""

    within: np.ndarray
    pair: np.ndarray


def _upper_plan(gram: GramMap, pattern: ArrPattern, rest: list[ReTerm], offsets: np.ndarray) -> UpperPlan | None:
    """The :class:`UpperPlan` of a Gram map and A_rr's pattern, or None when some non-zero of
    A_rr is not at one of the map's positions."""
    where = np.searchsorted(gram.upper, pattern.flat)
    where = np.minimum(where, len(gram.upper) - 1)
    if len(gram.upper) == 0 or not np.array_equal(gram.upper[where], pattern.flat):
        return None
    column_class = np.concatenate([np.tile(np.arange(b.p), b.nlevels) + sum(r.p for r in rest[:j])
                                   for j, b in enumerate(rest)])
    k = sum(b.p for b in rest)
    dtype = np.int16 if k * k < 2**15 else np.int64
    pair = (column_class[gram.rows] * k + column_class[gram.cols]).astype(dtype)
    return UpperPlan(where, pair)


#: Rows per chunk of :func:`_product_sums`.
CHUNK_ROWS = 16_384


def _product_sums(codes: np.ndarray, a: np.ndarray, b: np.ndarray, nlevels: int,
                  w: np.ndarray | None = None) -> np.ndarray:
    """Σ (a·w)·b per level, over row chunks: no n-row product; the sums bincount forms of the
    whole product (each level's terms added in row order, one at a time), which is what it
    forms for a model of one chunk."""
    if codes.size <= CHUNK_ROWS:
        t = a * b if w is None else a * w
        if w is not None:
            t *= b
        return np.bincount(codes, weights=t, minlength=nlevels)
    out = np.zeros(nlevels)
    tmp = np.empty(min(CHUNK_ROWS, codes.size))
    for start in range(0, codes.size, CHUNK_ROWS):
        stop = min(codes.size, start + CHUNK_ROWS)
        t = tmp[: stop - start]
        if w is None:
            np.multiply(a[start:stop], b[start:stop], out=t)
        else:
            np.multiply(a[start:stop], w[start:stop], out=t)
            t *= b[start:stop]
        np.add.at(out, codes[start:stop], t)
    return out


def _diag_blocks(block: ReTerm, w: np.ndarray | None) -> np.ndarray:
    """(ℓ, p, p) sums of w·x xᵀ per level."""
    p, ell = block.p, block.nlevels
    out = np.empty((ell, p, p))
    for a in range(p):
        for b in range(a + 1):
            out[:, a, b] = out[:, b, a] = _product_sums(block.codes, block.X[:, a], block.X[:, b], ell, w)
    return out


def _xy_against(block: ReTerm, wXy: list[np.ndarray]) -> np.ndarray:
    """(m, ℓ, p) sums of w·[X y]_c·x_a per level (``wXy`` the columns of W[X y])."""
    m = len(wXy)
    out = np.empty((m, block.nlevels, block.p))
    for c in range(m):
        for a in range(block.p):
            out[c, :, a] = _product_sums(block.codes, wXy[c], block.X[:, a], block.nlevels)
    return out


def _z_index(block: ReTerm, a: int, offset: int = 0) -> np.ndarray:
    return block.codes * block.p + a + offset


#: Most cells of a cross-product block per product for which its sums are formed by a bincount
#: over all of its cells rather than over the distinct cells the products touch (a sort first).
DENSE_CELLS_PER_PRODUCT = 4


def _rest_rest(rest: list[ReTerm], offsets: np.ndarray, w: np.ndarray | None,
               upper_cells: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Dense Z_rᵀWZ_r (full symmetric storage) and the flat C-order indices of its
    upper-triangle cells that can be non-zero (sorted; None unless ``upper_cells``: only a
    model with a Gram map reads them, through :meth:`Crossprod.arr_pattern`).

    Each product of two columns is summed per cell over its distinct cells only (a bincount
    over the cells it touches, then one scatter): no q_r²-long accumulator per product, the
    same sums in the same order."""
    q = int(offsets[-1])
    out = np.zeros((q, q))
    flat = out.reshape(-1)
    upper = []
    for j, bj in enumerate(rest):
        for k, bk in enumerate(rest[: j + 1]):
            for a in range(bj.p):
                rj = _z_index(bj, a, offsets[j])
                xa = bj.X[:, a] if w is None else bj.X[:, a] * w
                for b in range(bk.p):
                    rk = _z_index(bk, b, offsets[k])
                    cells, sums = _cell_sums(rj * q + rk, xa * bk.X[:, b], q * q)
                    flat[cells] += sums
                    if j != k:
                        r, c = np.divmod(cells, q)
                        flat[c * q + r] += sums
                    if upper_cells:
                        upper.append(np.minimum(cells, (cells % q) * q + cells // q))
    if not upper_cells:
        return out, None
    return out, np.unique(np.concatenate(upper)) if upper else np.zeros(0, dtype=np.int64)


def _cell_sums(key: np.ndarray, products: np.ndarray, ncells: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct cells ``key`` touches (sorted) and the sums of their ``products``, each
    cell's in row order: by bincounts over all ``ncells`` cells when they are few
    (:data:`DENSE_CELLS_PER_PRODUCT`), else over the distinct cells (a sort first)."""
    if ncells <= DENSE_CELLS_PER_PRODUCT * key.size:
        cells = np.flatnonzero(np.bincount(key, minlength=ncells))
        return cells, np.bincount(key, weights=products, minlength=ncells)[cells]
    cells, inv = np.unique(key, return_inverse=True)
    return cells, np.bincount(inv.ravel(), weights=products, minlength=len(cells))


def _rest_first(rest: list[ReTerm], offsets: np.ndarray, b0: ReTerm,
                w: np.ndarray | None) -> SparseRows:
    """Sparse Z_rᵀWZ₀ (q_r × q₀), CSR arrays with sorted indices and no zeros: each cell's products
    summed in row order (a bincount, as :func:`_cell_sums`; scipy's COO → CSR conversion, which
    sums them in that order too where a cell has up to two products, costs ten times more)."""
    rows, cols, vals = [], [], []
    for j, bj in enumerate(rest):
        for a in range(bj.p):
            xa = bj.X[:, a] if w is None else bj.X[:, a] * w
            for b in range(b0.p):
                rows.append(_z_index(bj, a, offsets[j]))
                cols.append(_z_index(b0, b))
                vals.append(xa * b0.X[:, b])
    q_r, q0 = int(offsets[-1]), b0.q
    key = np.concatenate(rows).astype(np.int64) * q0 + np.concatenate(cols)
    products = np.concatenate(vals)
    if q_r * q0 <= DENSE_CELLS_PER_PRODUCT * len(key):  # a bincount over every cell
        sums = np.bincount(key, weights=products, minlength=q_r * q0)
        cells = np.flatnonzero(sums)
        sums = sums[cells]
    else:
        cells, inv = np.unique(key, return_inverse=True)
        sums = np.bincount(inv.ravel(), weights=products, minlength=len(cells))
        nonzero = sums != 0
        cells, sums = cells[nonzero], sums[nonzero]
    r, c = np.divmod(cells, q0)
    index = np.int32 if max(q_r, q0, len(cells)) < 2**31 else np.int64
    indptr = np.zeros(q_r + 1, dtype=index)
    np.cumsum(np.bincount(r, minlength=q_r), out=indptr[1:])
    return SparseRows(sums, c.astype(index), indptr, (q_r, q0), r)


def _rest_xy(rest: list[ReTerm], offsets: np.ndarray, wXy: list[np.ndarray]) -> np.ndarray:
    q = int(offsets[-1])
    out = np.zeros((len(wXy), q))
    for j, bj in enumerate(rest):
        for a in range(bj.p):
            idx = _z_index(bj, a, offsets[j])
            for c in range(len(wXy)):
                out[c] += np.bincount(idx, weights=wXy[c] * bj.X[:, a], minlength=q)
    return out


def build_crossprod(structure: ReStructure, X: np.ndarray, y: np.ndarray,
                    weights: np.ndarray | None = None, offset: np.ndarray | None = None,
                    Xy: np.ndarray | None = None, gram_map: bool = True) -> Crossprod:
    """Form every block of A once (the only O(n) work of a fit); ``Xy`` the n×(p+1) matrix
    [X y] when the caller holds one (no offset), else it is stacked for the product A_xx.
    ``gram_map`` False leaves out the Gram map (:mod:`.gram`): a model whose objective is
    evaluated densely factors blockwise only a few times, and a sparse product each time is
    cheaper than building the map."""
    n, p = X.shape
    yo = y if offset is None else y - offset
    # [X y] as its columns (views of X): no n×(p+1) copy
    stacked = Xy if offset is None else None
    cols = [X[:, j] for j in range(p)] + [yo]
    wXy = cols if weights is None else [c * weights for c in cols]
    b0, rest = structure.blocks[0], structure.blocks[1:]
    A00 = _diag_blocks(b0, weights)
    Ax0 = _xy_against(b0, wXy)
    S = np.column_stack(cols) if stacked is None else stacked  # BLAS's sums, as before
    Axx = S.T @ S if weights is None else np.column_stack(wXy).T @ S
    del S
    offsets = _offsets(rest)
    gram = None
    arr_upper = None
    if rest:
        Arr, arr_upper = _rest_rest(rest, offsets, weights, upper_cells=gram_map)
        Ar0: sp.csr_matrix | SparseRows = _rest_first(rest, offsets, b0, weights)
        Axr = _rest_xy(rest, offsets, wXy)
        if gram_map:  # the map is built from scipy's matrix, which the model then keeps
            Ar0 = Ar0.tocsr()
            gram = build_gram_map(Ar0, A00)
    else:
        Arr, Ar0, Axr = np.zeros((0, 0)), _no_rows(b0.q), np.zeros((p + 1, 0))
    slw = 0.0 if weights is None else float(np.sum(np.log(weights)))
    return Crossprod(b0.nlevels, b0.p, A00, Ax0, Axx, list(rest), offsets, Arr, Ar0, Axr, gram,
                     n, p, slw, arr_upper)


def _offsets(rest: list[ReTerm]) -> np.ndarray:
    """The first random effect of each rest block among the rest ones, and q_r (int64): the
    cumulative sums of the blocks' q, added as Python integers."""
    out = [0]
    for b in rest:
        out.append(out[-1] + b.q)
    return np.array(out, dtype=np.int64)


def transposed_product(Ar0: sp.csr_matrix, v: np.ndarray) -> np.ndarray:
    """A_r0ᵀv for a q_r-vector v: a bincount over the stored entries in row order, the sums
    scipy's product ``Ar0.T @ v`` forms (each output's terms in that order, from zero) without
    its dispatch (a dozen microseconds on a small model)."""
    rows = np.repeat(np.arange(Ar0.shape[0]), np.diff(Ar0.indptr))
    return _transposed_sums(rows, Ar0.indices, Ar0.data, Ar0.shape[1], v)


def _transposed_sums(rows: np.ndarray, indices: np.ndarray, data: np.ndarray, ncols: int,
                     v: np.ndarray) -> np.ndarray:
    """Σ over the stored entries (row r, column c, value a) of a·v[r] per column c, in entry order."""
    return np.bincount(indices, weights=data * v[rows], minlength=ncols)


@lru_cache(maxsize=64)
def _no_rows(q0: int) -> sp.csr_matrix:
    """The empty 0×q₀ A_r0 of a model with one grouping factor, made once per q₀ (it holds
    nothing to change, and scipy's constructor costs tens of microseconds of checks)."""
    return sp.csr_matrix((np.zeros(0), np.zeros(0, dtype=np.int32), np.zeros(1, dtype=np.int32)),
                         shape=(0, q0))


# ----------------------------------------------------------------------------------------------
# Per-θ factorisation
# ----------------------------------------------------------------------------------------------

#: Largest fill-in block whose inverse a factor keeps (:meth:`BlockedCholesky.rest_inverse`;
#: 2,500 rows: 50 MB beside L_rr's own).
KEEP_REST_INVERSE = 2500


@dataclass
class BlockedCholesky:
    """L(θ) in blocked form, with what later solves need.

    Fields: ``T0`` block 0's template; ``M0inv`` (ℓ₀, p₀, p₀) the inverses of
    M₀ᵢ = T₀ᵀA₀₀ᵢT₀ + I (block 0's factors L₀₀ are read by nothing and not kept); ``W`` (ℓ₀, p₀, p₀)
    T₀M₀ᵢ⁻¹T₀ᵀ; ``rest_T`` templates of the rest blocks; ``Lrr`` lower Cholesky of S_r
    (column-major; only its lower triangle is meaningful);
    ``Bxr`` (m×q_r) B_xr; ``Lxr`` (m×q_r); ``Lxx`` (m×m) lower Cholesky of S_x; ``ldL2``
    log|L_θ|²; ``ok`` whether every factorisation succeeded.
    """

    T0: np.ndarray
    M0inv: np.ndarray
    W: np.ndarray
    rest_T: list[np.ndarray]
    Lrr: np.ndarray | None
    Bxr: np.ndarray | None
    Lxr: np.ndarray | None
    Lxx: np.ndarray
    ldL2: float
    ok: bool
    rest_inv: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _ldRX2: float | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def pwrss(self) -> float:
        """r²(θ): the penalized weighted residual sum of squares."""
        return float(self.Lxx[-1, -1] ** 2)

    @property
    def ldRX2(self) -> float:
        """log|R_X|² (formed once per factor: a fit reads it three times at θ̂)."""
        if self._ldRX2 is None:
            d = np.diag(self.Lxx)[:-1]
            self._ldRX2 = float(2.0 * np.sum(np.log(d)))
        return self._ldRX2

    def rest_factor(self) -> tuple[np.ndarray, np.ndarray]:
        """(L_rr, B_xr) of a factor with rest blocks whose factorisation succeeded.

        Raises
        ------
        numpy.linalg.LinAlgError
            When there are no rest blocks or S_r was not positive definite at this θ.
        """
        if self.Lrr is None or self.Bxr is None:
            raise np.linalg.LinAlgError("L(θ) has no rest blocks, or their factorisation failed at this θ")
        return self.Lrr, self.Bxr

    def rest_inverse(self) -> np.ndarray:
        """S_r⁻¹ = (L_rrL_rrᵀ)⁻¹, column-major, only its lower triangle valid; formed once per
        factor and kept while q_r ≤ :data:`KEEP_REST_INVERSE` (lme4's ``condVar`` and the exact
        Satterthwaite derivatives both need it at θ̂: one O(q_r³) inversion for both).

        Raises
        ------
        numpy.linalg.LinAlgError
            As :meth:`rest_factor`, or when the inversion fails.
        """
        if self.rest_inv is not None:
            return self.rest_inv
        inv, info = lapack.dpotri(np.asfortranarray(self.rest_factor()[0]), lower=1)
        if info != 0:
            raise np.linalg.LinAlgError("dpotri failed")
        if inv.shape[0] <= KEEP_REST_INVERSE:
            self.rest_inv = inv
        return inv


def _first_block(A00: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Batched factorisation of M₀ᵢ = TᵀA₀₀ᵢT + I: returns M₀⁻¹, W = TM₀⁻¹Tᵀ, log|L₀₀|² (the
    factors L₀₀ themselves are read by nothing, so they are not formed where the log-determinant
    does not need them)."""
    p = T.shape[0]
    if p == 1:
        t2 = T[0, 0] ** 2
        m = t2 * A00[:, 0, 0] + 1.0
        minv = 1.0 / m
        ld = float(np.sum(np.log(m)))
        return minv[:, None, None], (t2 * minv)[:, None, None], ld
    if p == 2:
        return _first_block_2(A00, T)
    M = np.swapaxes(A00 @ T, 1, 2) @ T
    idx = np.arange(p)
    M[:, idx, idx] += 1.0
    L = np.linalg.cholesky(M)
    Minv = np.linalg.inv(M)
    W = T @ Minv @ T.T
    ld = float(2.0 * np.sum(np.log(L[:, idx, idx])))
    return Minv, W, ld


def _first_block_2(A00: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Closed-form 2×2 version of :func:`_first_block`."""
    t11, t21, t22, t12 = T[0, 0], T[1, 0], T[1, 1], T[0, 1]
    a11, a21, a22 = A00[:, 0, 0], A00[:, 1, 0], A00[:, 1, 1]
    # AT columns
    c11 = a11 * t11 + a21 * t21
    c21 = a21 * t11 + a22 * t21
    c12 = a11 * t12 + a21 * t22
    c22 = a21 * t12 + a22 * t22
    m11 = t11 * c11 + t21 * c21 + 1.0
    m21 = t12 * c11 + t22 * c21
    m22 = t12 * c12 + t22 * c22 + 1.0
    ell = A00.shape[0]
    det = m11 * m22 - m21 * m21
    Minv = np.empty((ell, 2, 2))
    Minv[:, 0, 0] = m22 / det
    Minv[:, 1, 1] = m11 / det
    Minv[:, 0, 1] = Minv[:, 1, 0] = -m21 / det
    ld = float(np.sum(np.log(det)))
    return Minv, _sandwich_2(T, Minv), ld


def _sandwich_2(T: np.ndarray, Minv: np.ndarray) -> np.ndarray:
    """W = T M⁻¹ Tᵀ per level for 2×2 T and symmetric M⁻¹, elementwise (a stacked matmul of
    ℓ 2×2 matrices costs far more in numpy's per-matrix dispatch)."""
    t11, t12, t21, t22 = T[0, 0], T[0, 1], T[1, 0], T[1, 1]
    v11, v21, v22 = Minv[:, 0, 0], Minv[:, 1, 0], Minv[:, 1, 1]
    u11, u12 = t11 * v11 + t12 * v21, t11 * v21 + t12 * v22
    u21, u22 = t21 * v11 + t22 * v21, t21 * v21 + t22 * v22
    W = np.empty_like(Minv)
    W[:, 0, 0] = u11 * t11 + u12 * t12
    W[:, 1, 0] = W[:, 0, 1] = u21 * t11 + u22 * t12
    W[:, 1, 1] = u21 * t21 + u22 * t22
    return W


def _against_W(Ax0: np.ndarray, W: np.ndarray) -> np.ndarray:
    """(m, ℓ, p) products [X y]-rows × W per level; for small p as p² vector operations over
    (m, ℓ) (a small-matrix einsum is many times slower), else one einsum."""
    p = W.shape[1]
    if p > 3:
        return np.einsum("cia,iab->cib", Ax0, W)
    Y = np.empty_like(Ax0)
    for b in range(p):
        acc = Ax0[:, :, 0] * W[:, 0, b]
        for a in range(1, p):
            acc += Ax0[:, :, a] * W[:, a, b]
        Y[:, :, b] = acc
    return Y


def diagonal_scale(A: Crossprod, rest_T: list[np.ndarray]) -> np.ndarray | None:
    """The diagonal of Λ_r when every rest template is diagonal, else None (a one-column
    block's template is diagonal: its part is its one value, repeated, with no test)."""
    parts = []
    for T, b in zip(rest_T, A.rest):
        if b.p == 1:
            parts.append(np.full(b.nlevels, T[0, 0]))
        elif np.count_nonzero(T - np.diag(np.diag(T))):
            return None
        else:
            parts.append(np.tile(np.diag(T), b.nlevels))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _scaled_copy(A: Crossprod, d: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """diag(d)·A_rr·diag(d) as a new array (or in ``out``). When every rest block has one column, d is constant
    per block: one pass scales by the largest block's value and only the other blocks' rows and
    columns are rescaled."""
    sizes = [b.q for b in A.rest]
    big = max(range(len(sizes)), key=sizes.__getitem__)  # the first largest, as np.argmax
    c = d[int(A.offsets[big])]
    if all(b.p == 1 for b in A.rest) and c > 0:
        S = np.multiply(A.Arr, c * c, out=out)
        for j in range(len(A.rest)):
            if j == big:
                continue
            sl = slice(int(A.offsets[j]), int(A.offsets[j + 1]))
            r = d[sl.start] / c
            S[sl, :] *= r
            S[:, sl] *= r
        return S
    S = np.multiply(A.Arr, d[:, None], out=out)
    S *= d
    return S


def _rest_schur(A: Crossprod, W: np.ndarray, rest_T: list[np.ndarray],
                out: np.ndarray | None = None) -> np.ndarray:
    """S_r = Λ_rᵀ(A_rr − A_r0(I⊗W)A_r0ᵀ)Λ_r + I, C-ordered, in ``out`` when given (a C-ordered
    q_r×q_r workspace); only its upper triangle is valid when Λ_r is diagonal (the Gram values
    are scattered there, in memory order)."""
    d = diagonal_scale(A, rest_T)
    if d is None:
        S = A.Arr.copy() if out is None else _copied(A.Arr, out)
        if A.gram is not None:
            A.gram.subtract_from(S, W)
        else:
            S -= gram_product(A, W)
        _scale_cols(S, A, rest_T)
        _scale_cols(S.T, A, rest_T)
    elif A.gram is not None and (pattern := A.arr_pattern()) is not None:
        S = _sparse_upper(A, W, d, pattern, A.gram, out)
    else:
        S = _scaled_copy(A, d, out)
        if A.gram is not None:
            g = A.gram.values(W) * (d[A.gram.rows] * d[A.gram.cols])
            S.reshape(-1)[A.gram.upper] -= g
        else:
            S -= gram_product(A, W) * (d[:, None] * d)  # np.outer's products
    S.reshape(-1)[:: S.shape[0] + 1] += 1.0
    return S


def _copied(src: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.copyto(out, src)
    return out


def _sparse_upper(A: Crossprod, W: np.ndarray, d: np.ndarray, pattern: ArrPattern,
                  gram: GramMap, out: np.ndarray | None = None) -> np.ndarray:
    """The upper triangle of diag(d)(A_rr − A_r0(I⊗W)A_r0ᵀ)diag(d) on a zeroed C-ordered
    matrix (``out`` when given), from A_rr's non-zeros and the Gram values alone (no dense
    pass over A_rr). With an :class:`UpperPlan` each position is written once (the same
    numbers: A_rr's scaled value less the scaled Gram value, whose negation is exact)."""
    q = A.q_rest
    if out is None:
        S = np.zeros((q, q))
    else:
        S = out
        S.fill(0.0)
    flat = S.reshape(-1)
    plan = A.upper_plan()
    if plan is None:
        flat[pattern.flat] = pattern.values * (d[pattern.rows] * d[pattern.cols])
        flat[gram.upper] -= gram.values(W) * (d[gram.rows] * d[gram.cols])
        return S
    scales = np.concatenate([d[int(o): int(o) + b.p] for b, o in zip(A.rest, A.offsets[:-1])])
    scale = np.multiply.outer(scales, scales).ravel()[plan.pair]
    g = gram.values(W)
    g *= scale
    np.negative(g, out=g)
    g[plan.within] += pattern.values * scale[plan.within]
    flat[gram.upper] = g
    return S


def _scale_cols(M: np.ndarray, A: Crossprod, rest_T: list[np.ndarray]) -> None:
    """M ← M Λ_r in place."""
    for T, b, o in zip(rest_T, A.rest, A.offsets[:-1]):
        sl = slice(int(o), int(o) + b.q)
        if b.p == 1:
            M[:, sl] *= T[0, 0]
        else:
            sub = M[:, sl].reshape(M.shape[0], b.nlevels, b.p)
            M[:, sl] = (sub @ T).reshape(M.shape[0], b.q)


def _chol_lower(S: np.ndarray, clean: bool = False) -> tuple[np.ndarray, bool]:
    """Lower Cholesky factor L (LLᵀ = S) of a C-ordered S whose upper triangle is valid (the
    lower triangle of the column-major view Sᵀ), computed in place; L is column-major and,
    unless ``clean``, its strict upper triangle holds leftovers."""
    L, info = lapack.dpotrf(S.T, lower=1, clean=int(clean), overwrite_a=1)
    return L, info == 0


def _solve_lower(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """L⁻¹B for a column-major lower-triangular L (only its lower triangle is read)."""
    X, info = lapack.dtrtrs(L, B, lower=1)
    return X


#: Size of the dense fill-in block from which a factor's storage is reused by the next one:
#: fresh pages of a matrix this large (above the allocator's mmap threshold) cost more to
#: map than the factorization's own memory traffic (synth-crossed, q_r = 5,000: 0.4-0.6 s
#: per evaluation).
REUSE_STORAGE_FILL = 2000


def _workspace(previous: BlockedCholesky | None, q: int) -> np.ndarray | None:
    """The C-ordered q×q storage of ``previous``'s L_rr, taken over (``previous`` loses it, so
    a stale factor fails loudly instead of reading overwritten numbers), or None."""
    if previous is None or previous.Lrr is None or q < REUSE_STORAGE_FILL:
        return None
    buf = previous.Lrr.T
    if buf.shape != (q, q) or not buf.flags.c_contiguous:
        return None
    previous.Lrr = previous.Lxr = previous.Bxr = previous.rest_inv = None
    previous.ok = False
    return buf


def update_L(A: Crossprod, structure: ReStructure, theta: np.ndarray,
             previous: BlockedCholesky | None = None) -> BlockedCholesky:
    """The blocked Cholesky factor at θ (never touches the n rows). With ``previous`` (a factor
    of the same model that is no longer needed) its storage of L_rr may be reused."""
    blocks = structure.blocks
    T0 = blocks[0].template(theta)
    M0inv, W, ld0 = _first_block(A.A00, T0)
    m = A.m
    Y = _against_W(A.Ax0, W).reshape(m, -1)
    Sx = A.Axx - Y @ A.Ax0.reshape(m, -1).T
    rest_T = [b.template(theta) for b in blocks[1:]]
    Lrr = Bxr = Lxr = None
    ldr, ok = 0.0, True
    if A.rest:
        Lrr, ok = _chol_lower(_rest_schur(A, W, rest_T, _workspace(previous, A.q_rest)))
        if not ok:
            return BlockedCholesky(T0, M0inv, W, rest_T, None, None, None, Sx, np.inf, False)
        ldr = float(2.0 * np.sum(np.log(np.diag(Lrr))))
        Bxr = A.Axr - A.ar0_times(Y.T).T
        _scale_cols(Bxr, A, rest_T)
        Lxr = _solve_lower(Lrr, np.asfortranarray(Bxr.T)).T
        Sx = Sx - Lxr @ Lxr.T
    Lxx, okx = _chol_lower(np.array(Sx, order="C"), clean=True)
    return BlockedCholesky(T0, M0inv, W, rest_T, Lrr, Bxr, Lxr, Lxx, ld0 + ldr, ok and okx)


# ----------------------------------------------------------------------------------------------
# The criterion's parts at θ with S_r factored in two parts (the derivative check's batch)
# ----------------------------------------------------------------------------------------------

#: Largest share of the rest random effects the last rest block may hold for a batch of
#: evaluations to refactor only its rows (:func:`criterion_parts`).
TRAILING_SHARE = 0.25


@dataclass
class LeadingFactor:
    """The lower Cholesky factor ``L11`` (column-major, q₁×q₁) of S_r's leading rows, those of
    every rest block but the last, and ``ld11`` = 2·Σ log diag L11. It depends on θ only
    through the elements of block 0 and of those blocks, not through the last block's."""

    L11: np.ndarray
    ld11: float


def trailing_split(A: Crossprod) -> int | None:
    """q₁, the rest random effects before the last rest block, when that block is small enough
    (:data:`TRAILING_SHARE`) for a batch to refactor only its rows; else None."""
    if len(A.rest) < 2:
        return None
    q1 = int(A.offsets[-2])
    return q1 if A.q_rest - q1 <= TRAILING_SHARE * A.q_rest else None


def criterion_parts(A: Crossprod, structure: ReStructure, theta: np.ndarray,
                    lead: LeadingFactor | None = None) -> tuple[LeadingFactor | None, tuple[bool, float, float, float]]:
    """(ok, log|L_θ|², r²(θ), log|R̃_X|²) at θ, S_r factored as [[L11, 0], [L21, L22]] with q₁ =
    :func:`trailing_split`: L11 from ``lead`` when given (factored at a θ that differs from this
    one in the last rest block's elements at most), else factored here; then L21 = S21 L11⁻ᵀ,
    L22 = chol(S22 − L21L21ᵀ) and L_xr, L_xx by the same partition. The numbers of
    :func:`update_L` up to rounding; returned with the leading factor, for the next θ of its
    group (None when S_r's leading rows are not positive definite)."""
    q1 = trailing_split(A)
    if q1 is None:
        raise ValueError("criterion_parts needs a last rest block small enough to refactor alone")
    blocks = structure.blocks
    _, W, ld0 = _first_block(A.A00, blocks[0].template(theta))
    m = A.m
    Y = _against_W(A.Ax0, W).reshape(m, -1)
    Sx = A.Axx - Y @ A.Ax0.reshape(m, -1).T
    rest_T = [b.template(theta) for b in blocks[1:]]
    S = _rest_schur(A, W, rest_T)
    failed = (False, np.inf, 0.0, 0.0)
    if lead is None:
        L11, ok = _chol_lower(np.array(S[:q1, :q1]))
        if not ok:
            return None, failed
        lead = LeadingFactor(L11, float(2.0 * np.sum(np.log(np.diag(L11)))))
    L21t = _solve_lower(lead.L11, np.asfortranarray(S[:q1, q1:]))
    S22 = np.array(S[q1:, q1:])
    S22 -= L21t.T @ L21t
    L22, ok = _chol_lower(S22)
    if not ok:
        return lead, failed
    Bxr = A.Axr - A.ar0_times(Y.T).T
    _scale_cols(Bxr, A, rest_T)
    Z1 = _solve_lower(lead.L11, np.asfortranarray(Bxr[:, :q1].T))
    Z2 = _solve_lower(L22, np.asfortranarray((Bxr[:, q1:] - Z1.T @ L21t).T))
    Lxx, okx = _chol_lower(np.array(Sx - Z1.T @ Z1 - Z2.T @ Z2, order="C"), clean=True)
    ldL2 = ld0 + lead.ld11 + float(2.0 * np.sum(np.log(np.diag(L22))))
    ldRX2 = float(2.0 * np.sum(np.log(np.diag(Lxx)[:-1])))
    return lead, (okx, ldL2, float(Lxx[-1, -1] ** 2), ldRX2)
