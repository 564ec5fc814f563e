"""The shortcuts of :func:`~mixedbridge.inference.blockedderivatives.dense_derivatives` give the
numbers of the route they replace bit for bit: the fit's dense A permuted to lme4's order instead
of :func:`~mixedbridge.inference.crossproducts.dense_gram`, Λ and the unit patterns Λ_i from the
kept :func:`~mixedbridge.inference.denselayout.dense_layout`, the unit traces one gather per term,
Ω⁻¹ mirrored by a mask. The reference below is the replaced code; the models cover one and
several grouping factors, an amalgamated block (whose lme4 order is not the block order), REML
and ML, prior weights, θ̂, another θ and a singular θ."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import lapack

from mixedbridge.inference import blockedderivatives as B
from mixedbridge.inference.crossproducts import dense_gram
from mixedbridge.inference.denselayout import dense_layout

from .lmm_models import dataset_model

MODELS = [("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
          ("sleepstudy", "Reaction ~ Days + (Days || Subject)"),
          ("sleepstudy", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"),
          ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
          ("Pastes", "strength ~ 1 + (1 | batch/cask)"),
          ("Orthodont", "distance ~ age * Sex + (age | Subject)"),
          ("cake", "angle ~ recipe * temperature + (1 | recipe:replicate)"),
          ("Dyestuff", "Yield ~ 1 + (1 | Batch)")]


# -- the replaced code ---------------------------------------------------------------------------
def _ref_dense_derivatives(model):
    G = dense_gram(model)
    q, p = G.q, G.p
    theta = np.asarray(model.theta, dtype=float)
    Lam = model.structure.lambda_dense(theta)
    ZtZ, ZtX = G.ZtZ, G.ZtX
    ZtZL = ZtZ @ Lam
    chol = B._cholesky(_ref_omega(Lam, ZtZL, ZtX, G.XtX))
    Oinv = _ref_chol_inverse(chol)
    ZW = np.hstack([ZtZL, ZtX])
    M_P = ZtZ - ZW @ Oinv @ ZW.T
    M = M_P if model.reml else ZtZ - ZtZL @ _ref_chol_inverse(chol[:q, :q]) @ ZtZL.T
    y = G.A[: q + p, q + p]
    v = y[:q] - ZW @ (Oinv @ np.concatenate([Lam.T @ y[:q], y[q:]]))
    units = _ref_unit_positions(model.structure)
    D = np.zeros((len(units), q, q))
    for i, (rows, cols, _) in enumerate(units):
        D[i, rows] = Lam[:, cols].T
    D += D.transpose(0, 2, 1)
    MD = M @ D
    traces = 2.0 * _ref_unit_traces(M, units) - np.einsum("iab,jba->ij", MD, MD)
    Dv = D @ v
    Uv = np.stack([_ref_unit_t(v, u) for u in units])
    H = B._hessian(model, traces, Dv @ M_P @ Dv.T, Dv @ v, 2.0 * (Uv @ Uv.T))
    N = ZtX - ZtZL @ lapack.dpotrs(chol[:q, :q], Lam.T @ ZtX, lower=1)[0]
    return H, B._vcov_jacobian(model, Oinv[q:, q:], N.T @ D @ N)


def _ref_omega(Lam, ZtZL, ZtX, XtX):
    q, p = ZtX.shape
    out = np.empty((q + p, q + p))
    out[:q, :q] = Lam.T @ ZtZL
    out[np.arange(q), np.arange(q)] += 1.0
    out[q:, :q] = ZtX.T @ Lam
    out[:q, q:] = out[q:, :q].T
    out[q:, q:] = XtX
    return out


def _ref_unit_traces(M, units):
    k = len(units)
    out = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            if units[i][2] == units[j][2]:
                out[i, j] = out[j, i] = float(M[units[j][0], units[i][0]].sum())
    return out


def _ref_chol_inverse(c):
    inv, info = lapack.dpotri(c, lower=1)
    assert not info
    return np.tril(inv) + np.tril(inv, -1).T


def _ref_unit_positions(structure):
    out = []
    for k, (t, off) in enumerate(zip(structure.terms, structure.Gp[:-1])):
        base = int(off) + np.arange(t.nlevels) * t.p
        out += [(base + r, base + c, (k, int(c))) for r, c in zip(t.rows, t.cols)]
    return out


def _ref_unit_t(v, unit):
    out = np.zeros_like(v)
    out[unit[1]] = v[unit[0]]
    return out


# -- the pins ------------------------------------------------------------------------------------
def _thetas(model) -> dict[str, np.ndarray]:
    """θ̂, a θ away from it, and a singular θ (the first template diagonal at its bound 0)."""
    hat = np.asarray(model.theta, dtype=float).copy()
    singular = hat.copy()
    singular[0] = 0.0
    return {"hat": hat, "other": 1.3 * hat + 0.05 * (model.structure.lower == 0), "singular": singular}


def _assert_same(model, theta: np.ndarray) -> None:
    model.set_theta(theta)
    H, J = B.dense_derivatives(model)
    H_ref, J_ref = _ref_dense_derivatives(model)
    assert np.array_equal(H, H_ref)
    assert np.array_equal(J, J_ref)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize(("ds", "formula"), MODELS)
def test_dense_derivatives_equal_replaced_route(ds, formula, reml):
    model = dataset_model(ds, formula, reml=reml).fit()
    for theta in _thetas(model).values():
        _assert_same(model, theta)


@pytest.mark.parametrize(("ds", "formula"), [MODELS[0], MODELS[1], MODELS[3], MODELS[4], MODELS[5]])
def test_dense_derivatives_with_prior_weights_equal_replaced_route(ds, formula):
    from mixedbridge.datasets import load

    df, _ = load(ds)
    w = 1.0 + (np.arange(len(df)) % 3) / 2.0
    model = dataset_model(ds, formula, weights=w).fit()
    for theta in _thetas(model).values():
        _assert_same(model, theta)


@pytest.mark.parametrize(("ds", "formula"), MODELS[:5])
def test_dense_derivatives_without_the_fits_dense_system(ds, formula):
    """A model without the fit's dense system (q above its limit) reads dense_gram: same numbers."""
    model = dataset_model(ds, formula).fit()
    expected = B.dense_derivatives(model)
    model.dense = None
    H, J = B.dense_derivatives(model)
    assert np.array_equal(H, expected[0]) and np.array_equal(J, expected[1])


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("ds", "formula"), MODELS)
def test_lme4_gram_is_dense_gram(ds, formula, weighted):
    """Also with prior weights, where the blocks' two triangles may differ in the last bit."""
    from mixedbridge.datasets import load

    w = None
    if weighted:
        df, _ = load(ds)
        w = 1.0 + (np.arange(len(df)) % 3) / 2.0
    model = dataset_model(ds, formula, weights=w).fit()
    layout = dense_layout(model.structure, model.A.m)
    assert np.array_equal(B.lme4_gram(model, layout), dense_gram(model).A)
    Lam = np.zeros((model.structure.q,) * 2)
    Lam[layout.lam_rows, layout.lam_cols] = model.theta[layout.lam_index]
    assert np.array_equal(Lam, model.structure.lambda_dense(model.theta))
    ref = _ref_unit_positions(model.structure)
    assert len(layout.units) == len(ref)
    for ours, theirs in zip(layout.units, ref):
        assert np.array_equal(ours[0], theirs[0]) and np.array_equal(ours[1], theirs[1]) and ours[2] == theirs[2]


# -- the rest of _varpar_covariance --------------------------------------------------------------
def _ref_warnings(evals, tol):
    warnings = []
    neg = evals < -tol
    zero = (evals > -tol) & (evals < tol)
    if neg.any():
        warnings.append(f"Satterthwaite: the deviance Hessian of the variance parameters has {int(neg.sum())} "
                        f"negative eigenvalue(s) ({', '.join(f'{v:.1e}' for v in evals[neg])}); "
                        "the model may not have converged")
    if zero.any():
        warnings.append(f"Satterthwaite: {int(zero.sum())} eigenvalue(s) of the variance-parameter Hessian "
                        "are close to zero; the degrees of freedom may be unreliable")
    return warnings


@pytest.mark.parametrize(("ds", "formula"), MODELS[:6])
def test_eigh_and_warnings_equal_numpys(ds, formula):
    """The direct eigh gives np.linalg.eigh's numbers; the warnings read from Python floats are
    the numpy masks' (also with negative and near-zero eigenvalues)."""
    from mixedbridge.inference.satterthwaite import _hessian_warnings
    from mixedbridge.lmm.gufuncs import eigh as _eigh

    H = B.dense_derivatives(dataset_model(ds, formula).fit())[0]
    for ours, theirs in zip(_eigh(H), np.linalg.eigh(H)):
        assert np.array_equal(ours, theirs)
    for evals in (np.linalg.eigh(H)[0][::-1], np.array([3.0, 1e-9, -1e-12, -2.5, np.nan, -1e-8])):
        assert _hessian_warnings(evals.tolist(), 1e-8) == _ref_warnings(evals, 1e-8)
    bad = np.full((2, 2), np.nan)
    for ours, theirs in zip(_eigh(bad), np.linalg.eigh(bad)):
        assert np.array_equal(ours, theirs, equal_nan=True)
