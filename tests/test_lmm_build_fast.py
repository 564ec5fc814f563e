"""The shortcuts of the native LMM's build and of its work at θ̂ give, bit for bit, the numbers of
the numpy routes they replace: ``np.tril`` with a kept mask, a one-column term's VarCorr without
matrix operations, Λ_r's diagonal without tests for one-column blocks, the offsets and lme4's term
order from Python's sums and sort, log|R_X|² formed once per factor, the basis's R without
``np.triu``, A_rr without the cells no Gram map reads, and the dense path's coefficients placed by
flat positions. Whole fits are pinned by ``test_lmm_small_speed.py`` (routes, evaluation counts)
and agree with lme4 in ``test_lmm_lme4.py``."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import lapack

from mixedbridge.errors import ModelError
from mixedbridge.lmm import blocks
from mixedbridge.lmm import dense as dense_path
from mixedbridge.lmm import model as model_module
from mixedbridge.lmm.basis import fixed_basis
from mixedbridge.lmm.remat import ReTerm, lower_triangle

from .lmm_models import dataset_model as _model


def _same(a: np.ndarray, b: np.ndarray) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("k", [0, -1])
@pytest.mark.parametrize("keep", [True, False])
def test_tril_is_numpys(monkeypatch, order, k, keep):
    if not keep:
        monkeypatch.setattr(model_module, "KEEP_TRIL_MASK", 0)
    M = np.asarray(np.random.default_rng(1).normal(size=(7, 7)), order=order)
    M[2, 1] = -0.0
    ours, ref = model_module._tril(M, k), np.tril(M, k)
    _same(ours, ref)
    assert ours.flags.c_contiguous == ref.flags.c_contiguous
    assert ours.flags.f_contiguous == ref.flags.f_contiguous


def _sd_corr_by_matrices(term: ReTerm, theta: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """ReTerm.sd_corr's matrix route (the route of every width)."""
    cov = term.covariance(theta, sigma)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    np.fill_diagonal(corr, 1.0)
    return sd, corr


@pytest.mark.parametrize("t", [0.0, 1e-300, 0.37, 2.5e7, -0.6, np.nan])
@pytest.mark.parametrize("p", [1, 2])
def test_sd_corr_is_the_matrix_route(t, p):
    rows, cols = lower_triangle(p)
    term = ReTerm("g", ["a", "b"], np.array([0, 1]), np.ones((2, p)), [f"x{j}" for j in range(p)], rows, cols,
                  1 + np.arange(rows.size))
    theta = np.r_[9.0, np.full(rows.size, t)]
    for sigma in (1.3, np.float64(0.02), 0.0):
        for ours, ref in zip(term.sd_corr(theta, sigma), _sd_corr_by_matrices(term, theta, sigma)):
            _same(ours, ref)


def _diagonal_by_tiles(A: blocks.Crossprod, rest_T: list[np.ndarray]) -> np.ndarray | None:
    if any(np.count_nonzero(T - np.diag(np.diag(T))) for T in rest_T):
        return None
    return np.concatenate([np.tile(np.diag(T), b.nlevels) for T, b in zip(rest_T, A.rest)])


@pytest.mark.parametrize("formula", [
    "strength ~ 1 + (1 | batch) + (1 | batch:cask)",
    "diameter ~ 1 + (1 | plate) + (1 | sample)",
    "log_rt ~ stimulus + (1 | item) + (1 + stimulus | id) + (1 | task)",
    "log_rt ~ stimulus + (1 | item) + (1 + stimulus || id)",
])
def test_diagonal_scale_and_offsets_are_numpys(formula):
    ds = {"s": "Pastes", "d": "Penicillin", "l": "fhch2010"}[formula[0]]
    model = _model(ds, formula)
    A = model.A
    np.testing.assert_array_equal(A.offsets, np.cumsum([0] + [b.q for b in A.rest]).astype(np.int64))
    assert A.offsets.dtype == np.int64
    s = model.structure
    for theta in (s.theta0, s.theta0 * 0.3 + np.where(s.lower == 0, 0.0, 0.4), s.theta0 * 0.0):
        rest_T = [b.template(theta) for b in s.blocks[1:]]
        ours, ref = blocks.diagonal_scale(A, rest_T), _diagonal_by_tiles(A, rest_T)
        assert (ours is None) == (ref is None)
        if ours is not None:
            _same(ours, ref)


def test_rest_rest_without_upper_cells_is_the_same_matrix():
    model = _model("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)")
    A = model.A
    with_cells = blocks._rest_rest(A.rest, A.offsets, None)
    without = blocks._rest_rest(A.rest, A.offsets, None, upper_cells=False)
    _same(without[0], with_cells[0])
    assert without[1] is None and with_cells[1] is not None
    assert A.arr_upper is None  # a densely evaluated model has no Gram map to read them


def test_ldrx2_once_per_factor():
    model = _model("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    L = model.set_theta(np.array([0.9, 0.1, 0.3]))
    first = L.ldRX2
    assert first == float(2.0 * np.sum(np.log(np.diag(L.Lxx)[:-1])))
    assert L.ldRX2 == first
    L2 = model.set_theta(np.array([0.8, 0.1, 0.3]))
    assert L2.ldRX2 == float(2.0 * np.sum(np.log(np.diag(L2.Lxx)[:-1])))


@pytest.mark.parametrize("p", [1, 2, 4])
def test_basis_r_is_numpys_triu(p):
    rng = np.random.default_rng(p)
    X = np.column_stack([np.ones(40)] + [rng.normal(size=40) for _ in range(p - 1)])
    basis = fixed_basis(X, rng.normal(size=40))
    qr, _, _, _ = lapack.dgeqrf(np.asfortranarray(X))
    ref = np.triu(qr[:p, :])
    signs = np.where(ref.diagonal() < 0, -1.0, 1.0)
    ref *= signs[:, None]
    _same(basis.R, ref)
    assert basis.R.flags.c_contiguous


def test_rank_check_names_the_column():
    X = np.column_stack([np.ones(30), np.arange(30.0), 2.0 * np.arange(30.0)])
    with pytest.raises(ModelError, match="'c'"):
        fixed_basis(X, np.random.default_rng(0).normal(size=30), names=["a", "b", "c"])


@pytest.mark.parametrize("ds,formula", [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("Pastes", "strength ~ 1 + (1 | batch) + (1 | batch:cask)"),
    ("Orthodont", "distance ~ age * Sex + (age | Subject)"),
])
def test_quadratic_form_by_flat_positions_is_the_2d_selection(ds, formula):
    """The dense path's C from flat positions: the coefficients the row and column selections
    (``C[off] += …``, ``C[-1, diag] += 1``, ``out[:, cells] = C``) give; the C over all cells
    the LAPACK route forms on first use (``DenseSystem._quadratic``) is the same scatter."""
    system = _model(ds, formula).dense
    assert system is not None
    ntheta = int(system.index.max()) + 1
    first, second, spread, cells, coef = dense_path._quadratic_form(system, ntheta)
    size = system.full.shape[0]
    as_bytes = (np.asarray(a, dtype=np.intp).tobytes() for a in (system.rows, system.cols, system.index))
    plan = dense_path._quadratic_plan(size, system.q, system.q0, system.p0, *as_bytes)
    ncells = len(plan.cells)
    padded = np.zeros((size + 1, size + 1))
    padded[:size, :size] = system.full
    flat = padded.reshape(-1)
    ref = flat.take(plan.direct)
    ref[np.unique(plan.off // ncells)] += flat.take(plan.mirrored)
    ref[-1, plan.diag - (len(first) - 1) * ncells] += 1.0
    full = np.zeros((len(first), size * size))
    full[:, plan.cells] = ref
    _same(coef, ref)
    assert system._quadratic is not None
    _same(system._quadratic[2], full)
