"""The cross-product blocks of a small model formed by bincounts give scipy's numbers: A_r0 from
one bincount (against scipy's COO → CSR sums), A_rr's per-cell sums over all cells or over the
distinct ones, A_r0ᵀv (against scipy's product), and the dense path's layout formed once per
structure (two models of one layout share it and factor as a fresh one does). Agreement with lme4
itself is checked by ``test_lmm_lme4.py`` and ``test_crosscheck.py``."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from mixedbridge import datasets
from mixedbridge.design import fixed_design, random_designs
from mixedbridge.formula import parse_formula
from mixedbridge.frame import model_frame
from mixedbridge.lmm import LinearMixedModel, blocks
from mixedbridge.lmm import dense as dense_path
from mixedbridge.lmm.remat import ReTerm


def _model(ds: str, formula: str, weights: bool = False) -> LinearMixedModel:
    df, factors = datasets.load(ds)
    desc = parse_formula(formula)
    frame = model_frame(df, desc, {}, factors)
    fd = fixed_design(desc, frame)
    w = np.random.default_rng(1).uniform(0.5, 2.0, frame.nobs) if weights else None
    return LinearMixedModel(fd.X, fd.names, frame.response(desc), random_designs(desc, frame), w)


def _term(group: str, codes: np.ndarray, X: np.ndarray, start: int) -> ReTerm:
    p = X.shape[1]
    rows, cols = np.tril_indices(p)
    return ReTerm(group, [str(i) for i in range(int(codes.max()) + 1)], codes.astype(np.int64),
                  np.ascontiguousarray(X), [f"x{j}" for j in range(p)], rows, cols,
                  start + np.arange(rows.size))


def _scipy_rest_first(rest, offsets, b0, w):
    rows, cols, vals = [], [], []
    for j, bj in enumerate(rest):
        for a in range(bj.p):
            xa = bj.X[:, a] if w is None else bj.X[:, a] * w
            for b in range(b0.p):
                rows.append(bj.codes * bj.p + a + offsets[j])
                cols.append(b0.codes * b0.p + b)
                vals.append(xa * b0.X[:, b])
    A = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(int(offsets[-1]), b0.q)).tocsr()
    A.sum_duplicates()
    A.eliminate_zeros()
    return A


def _design(seed: int, n: int, ell0: int, ell1: int, p0: int, p1: int, zeros: bool = False):
    rng = np.random.default_rng(seed)
    X0 = np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(p0 - 1)])
    X1 = np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(p1 - 1)])
    if zeros:
        X1[: n // 4, -1] = 0.0
    b0 = _term("g0", rng.integers(0, ell0, n), X0, 0)
    b1 = _term("g1", rng.integers(0, ell1, n), X1, b0.ntheta)
    offsets = np.array([0, b1.q], dtype=np.int64)
    w = rng.uniform(0.5, 2.0, n)
    return b0, [b1], offsets, w


@pytest.mark.parametrize("dense_cells", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_rest_first_is_scipys_sum(monkeypatch, dense_cells, weighted):
    """At most two products per cell (sums that do not depend on their order): bit for bit
    scipy's COO → CSR matrix (sorted indices, no stored zeros), on both summing routes."""
    if not dense_cells:
        monkeypatch.setattr(blocks, "DENSE_CELLS_PER_PRODUCT", 0)
    rng = np.random.default_rng(5)
    ell0, ell1 = 30, 7
    codes0 = np.repeat(np.arange(ell0), 2)  # each level of g0 twice, both in one level of g1
    codes1 = np.repeat(rng.integers(0, ell1, ell0), 2)
    n = codes0.size
    X0 = np.column_stack([np.ones(n), rng.normal(size=n)])
    X1 = np.column_stack([np.ones(n), rng.normal(size=n)])
    X1[:6, 1] = 0.0  # some cells sum to zero
    b0, b1 = _term("g0", codes0, X0, 0), _term("g1", codes1, X1, 3)
    offsets = np.array([0, b1.q], dtype=np.int64)
    w = rng.uniform(0.5, 2.0, n) if weighted else None
    ours = blocks._rest_first([b1], offsets, b0, w).tocsr()
    ref = _scipy_rest_first([b1], offsets, b0, w)
    assert ours.has_sorted_indices and ours.shape == ref.shape
    np.testing.assert_array_equal(ours.indptr, ref.indptr)
    np.testing.assert_array_equal(ours.indices, ref.indices)
    np.testing.assert_array_equal(ours.data, ref.data)
    assert np.all(ours.data != 0)


def test_rest_first_many_products_per_cell():
    """Many products per cell: scipy's sums to rounding (its order there is its sort's)."""
    b0, rest, offsets, w = _design(2, 600, 12, 5, 2, 2, zeros=True)
    ours = blocks._rest_first(rest, offsets, b0, w).tocsr()
    ref = _scipy_rest_first(rest, offsets, b0, w)
    np.testing.assert_array_equal(ours.indices, ref.indices)
    np.testing.assert_allclose(ours.toarray(), ref.toarray(), rtol=1e-13, atol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_rest_rest_routes_agree(monkeypatch, weighted):
    """A_rr and its cells from bincounts over all cells are those over the distinct cells, bit
    for bit (the same sums in the same order), including cells whose sum is zero."""
    b0, rest, offsets, w = _design(3, 400, 20, 6, 1, 2, zeros=True)
    rest = rest + [_term("g2", np.random.default_rng(4).integers(0, 4, 400), np.ones((400, 1)), 9)]
    offsets = np.cumsum([0] + [b.q for b in rest]).astype(np.int64)
    w = w if weighted else None
    dense_sums = blocks._rest_rest(rest, offsets, w)
    monkeypatch.setattr(blocks, "DENSE_CELLS_PER_PRODUCT", 0)
    sorted_sums = blocks._rest_rest(rest, offsets, w)
    np.testing.assert_array_equal(dense_sums[0], sorted_sums[0])
    np.testing.assert_array_equal(dense_sums[1], sorted_sums[1])


def test_transposed_product_is_scipys():
    """A_r0ᵀv by a bincount over the stored entries: bit for bit scipy's product."""
    b0, rest, offsets, w = _design(6, 500, 25, 8, 2, 2)
    Ar0 = blocks._rest_first(rest, offsets, b0, w).tocsr()
    v = np.random.default_rng(7).normal(size=Ar0.shape[0])
    np.testing.assert_array_equal(blocks.transposed_product(Ar0, v), Ar0.T @ v)


def _crossprod(seed: int, n: int, ell0: int, ell1: int, p0: int, p1: int) -> blocks.Crossprod:
    b0, rest, offsets, w = _design(seed, n, ell0, ell1, p0, p1)
    X = np.ones((n, 1))
    y = np.random.default_rng(seed).normal(size=n)
    from mixedbridge.lmm.remat import ReStructure
    return blocks.build_crossprod(ReStructure([b0] + rest, [b0] + rest, [(0, 0), (1, 0)]), X, y, w,
                                  gram_map=False)


@pytest.mark.parametrize("entries", [0, 10**9])
@pytest.mark.parametrize("made", [False, True])
def test_ar0_products_are_scipys(monkeypatch, entries, made):
    """A_r0 Yᵀ, A_r0ᵀv and the dense A_r0 from the CSR arrays (before scipy's matrix is made, or
    after): bit for bit scipy's products and ``toarray``, by the bincount and by scipy's route."""
    A = _crossprod(6, 500, 25, 8, 2, 2)
    assert isinstance(A.ar0, blocks.SparseRows)
    ref = A.ar0.tocsr()
    if made:
        assert isinstance(A.Ar0, sp.csr_matrix)
    monkeypatch.setattr(blocks, "ROWS_PRODUCT_ENTRIES", entries)
    rng = np.random.default_rng(8)
    Yt = rng.normal(size=(ref.shape[1], 3))
    v = rng.normal(size=ref.shape[0])
    np.testing.assert_array_equal(A.ar0_times(Yt), ref @ Yt)
    np.testing.assert_array_equal(A.ar0_times(np.asfortranarray(Yt)), ref @ Yt)
    np.testing.assert_array_equal(A.ar0_transposed(v), ref.T @ v)
    np.testing.assert_array_equal(A.ar0_array(), ref.toarray())
    assert isinstance(A.ar0, sp.csr_matrix) == (made or entries == 0)


def test_dense_model_never_makes_scipys_ar0():
    """A model evaluated densely fits, and yields its estimates, without scipy's A_r0 matrix;
    read, it is the matrix of the arrays (sorted indices)."""
    model = _model("Pastes", "strength ~ 1 + (1 | batch) + (1 | batch:cask)")
    assert model.dense is not None
    model.fit()
    model.condvar_blocks()
    model.b_blocks()
    assert isinstance(model.A.ar0, blocks.SparseRows)
    rows = model.A.ar0
    Ar0 = model.A.Ar0
    assert isinstance(Ar0, sp.csr_matrix) and Ar0.has_sorted_indices and model.A.Ar0 is Ar0
    np.testing.assert_array_equal(Ar0.toarray(), model.A.ar0_array())
    np.testing.assert_array_equal(model.A.ar0_rows(), rows.rows)


def test_dense_layout_shared_and_read_only():
    """Two models of one layout share the dense path's Λ cells and gather plan (formed once,
    read-only) and factor as the products ΛᵀAΛ + I do."""
    formula = "strength ~ 1 + (1 | batch) + (1 | batch:cask)"
    one, two = _model("Pastes", formula).dense, _model("Pastes", formula, weights=True).dense
    assert one is not None and two is not None
    assert one.rows is two.rows and one.index is two.index
    assert not one.rows.flags.writeable
    with pytest.raises(ValueError):
        one.rows[0] = 1
    theta = np.array([0.7, 1.3])
    size = two.full.shape[0]
    lam = np.eye(size)
    lam[two.rows, two.cols] = theta[two.index]
    M = lam.T @ two.full @ lam + np.diag(np.r_[np.ones(two.q), np.zeros(size - two.q)])
    L = np.linalg.cholesky(M)
    d = np.diag(L)
    np.testing.assert_allclose(two.factor(theta)[:3], [2 * np.log(d[:two.q]).sum(),
                               2 * np.log(d[two.q:-1]).sum(), d[-1] ** 2], rtol=1e-11)
    assert dense_path._quadratic_plan.cache_info().hits >= 1


def test_gram_model_keeps_the_matrix_its_map_was_built_from():
    """A model with a Gram map makes scipy's A_r0 once, for the map, and keeps that one."""
    b0, rest, offsets, w = _design(6, 500, 25, 8, 1, 1)
    from mixedbridge.lmm.remat import ReStructure
    structure = ReStructure([b0] + rest, [b0] + rest, [(0, 0), (1, 0)])
    A = blocks.build_crossprod(structure, np.ones((500, 1)), np.random.default_rng(6).normal(size=500), w)
    assert A.gram is not None and isinstance(A.ar0, sp.csr_matrix) and A.Ar0 is A.ar0
    np.testing.assert_array_equal(A.Ar0.toarray(), blocks._rest_first(rest, offsets, b0, w).tocsr().toarray())
