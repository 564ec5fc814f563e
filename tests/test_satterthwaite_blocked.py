"""Satterthwaite's exact derivatives from the blocked factor
(:func:`~mixedbridge.inference.blockedderivatives.blocked_derivatives`), the route of models
above 300 random effects: it equals the dense exact route (the same formulas with M = ZᵀPZ
formed densely, itself checked against numDeriv in test_satterthwaite_exact.py) on small models
of every block layout, REML and ML, with prior weights and on a singular fit, and agrees with
numDeriv's differences as lmerTest takes them on fhch2010 and InstEval. lmerTest's df
themselves are checked in test_crosscheck.py and test_lmm_lme4.py."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedbridge
from mixedbridge.datasets import load
from mixedbridge.engines import native_model
from mixedbridge.inference import satterthwaite as sat
from mixedbridge.inference.blockedderivatives import blocked_applies, blocked_derivatives, dense_derivatives
from mixedbridge.inference.blockedinverse import invertible


def _model(dataset: str, formula: str, reml: bool = True, data: pd.DataFrame | None = None, **options):
    spec = {"analysis": "lmm", "data": {"dataset": dataset}, "formula": formula,
            "options": {"reml": reml, "df_method": "asymptotic", **options}}
    res = mixedbridge.run(spec, data=data) if data is not None else mixedbridge.run(spec)
    assert res.outcome is not None
    model = native_model(res.outcome.lead.fit)
    model.set_theta(np.asarray(model.optsum.theta, dtype=float))
    return model


def _sleep_with_extra_factor() -> pd.DataFrame:
    df, _ = load("sleepstudy")
    return df.assign(w=1.0 + (df["Days"] % 3) / 2.0, g2=(df["Days"] % 4).astype(str))


SMALL = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", True, {}),
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", False, {}),
    ("sleepstudy", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", True, {}),
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", True, {}),
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", False, {}),
    ("Pastes", "strength ~ 1 + (1 | batch/cask)", True, {}),
    ("extra", "Reaction ~ Days + (Days | Subject) + (1 | g2)", True, {"weights": "w"}),
    ("extra", "Reaction ~ Days + (1 | g2) + (Days | g2:Subject)", False, {}),
]


@pytest.mark.parametrize(("dataset", "formula", "reml", "options"), SMALL)
def test_blocked_equals_dense_exact_route(dataset, formula, reml, options):
    data = _sleep_with_extra_factor() if dataset == "extra" else None
    model = _model(dataset, formula, reml, data, **options)
    H_dense, J_dense = dense_derivatives(model)
    H, J = blocked_derivatives(model)
    assert np.allclose(H, H_dense, rtol=1e-10, atol=1e-11 * np.abs(H_dense).max())
    assert np.allclose(J, J_dense, rtol=1e-10, atol=1e-11 * np.abs(J_dense).max())


@pytest.mark.parametrize(("dataset", "formula", "reml", "options"), SMALL[:7])
def test_inverse_and_low_rank_forms_agree(dataset, formula, reml, options):
    """Both ways to the traces (Q = Ω⁻¹ when the templates are invertible, M's low-rank form
    otherwise) give the same derivatives where both apply."""
    data = _sleep_with_extra_factor() if dataset == "extra" else None
    model = _model(dataset, formula, reml, data, **options)
    assert invertible(model.structure, model.theta)
    H_inv, J_inv = blocked_derivatives(model, inverse=True)
    H_low, J_low = blocked_derivatives(model, inverse=False)
    assert np.allclose(H_inv, H_low, rtol=1e-10, atol=1e-11 * np.abs(H_low).max())
    assert np.allclose(J_inv, J_low, rtol=1e-10, atol=1e-11 * np.abs(J_low).max())


def test_blocked_route_at_a_singular_fit():
    """At a fit with a zero variance (θ on its bound, Λ singular) the blocked route takes M's
    low-rank form, which needs no Λ⁻¹, and still equals the dense route."""
    rng = np.random.default_rng(0)
    df, _ = load("sleepstudy")
    df = df.assign(g2=rng.integers(0, 5, len(df)).astype(str))
    model = _model("x", "Reaction ~ Days + (Days | Subject) + (1 | g2)", True, df)
    assert np.min(np.abs(model.theta)) < 1e-8 and not invertible(model.structure, model.theta)
    H_dense, J_dense = dense_derivatives(model)
    H, J = blocked_derivatives(model)
    assert np.allclose(H, H_dense, rtol=1e-9, atol=1e-10 * np.abs(H_dense).max())
    assert np.allclose(J, J_dense, rtol=1e-9, atol=1e-10 * np.abs(J_dense).max())


def _lmertest_differences(model) -> tuple[np.ndarray, np.ndarray]:
    theta = model.theta.copy()
    H, J = sat.numeric_derivatives(model, np.append(theta, model.sigma), bool(model.reml),
                                   sat.LMERTEST_DIFFERENCES)
    model.set_theta(theta)
    return H, J


@pytest.mark.parametrize("reml", [True, False])
def test_fhch2010_takes_the_blocked_route_and_agrees_with_numderiv(reml):
    model = _model("fhch2010", "log_rt ~ task * stimulus + (1 + stimulus | id) + (1 | item)", reml)
    assert not sat.analytic_applies(model) and blocked_applies(model)
    H_num, J_num = _lmertest_differences(model)
    H, J = blocked_derivatives(model)
    assert np.allclose(H, H_num, rtol=1e-6, atol=1e-7 * np.abs(H_num).max())
    assert np.allclose(J, J_num, rtol=1e-6, atol=1e-7 * np.abs(J_num).max())


@pytest.mark.slow
def test_insteval_blocked_agrees_with_numderiv():
    model = _model("InstEval", "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)")
    assert blocked_applies(model)
    H_num, J_num = _lmertest_differences(model)
    H, J = blocked_derivatives(model)
    assert np.allclose(H, H_num, rtol=1e-6, atol=1e-7 * np.abs(H_num).max())
    assert np.allclose(J, J_num, rtol=1e-6, atol=1e-7 * np.abs(J_num).max())


def test_a_large_fill_in_block_keeps_the_numerical_route(monkeypatch):
    """Above ``BLOCKED_MAX_M`` rest effects + fixed effects the blocked algebra (q·m²) is left
    to differences; the df are those of the differences."""
    from mixedbridge.inference import blockedderivatives

    model = _model("fhch2010", "log_rt ~ task * stimulus + (1 + stimulus | id) + (1 | item)")
    monkeypatch.setattr(blockedderivatives, "BLOCKED_MAX_M", model.A.q_rest + model.p - 1)
    assert not blocked_applies(model)
    called = []
    inner = sat.numeric_derivatives
    monkeypatch.setattr(sat, "numeric_derivatives", lambda *a, **k: called.append(1) or inner(*a, **k))
    sat.varpar_covariance(model, tol=1e-7)
    assert called


@pytest.mark.parametrize("with_x", [True, False])
@pytest.mark.parametrize(("dataset", "formula"), [
    ("extra", "Reaction ~ Days + (Days | Subject) + (1 | g2)"),
    ("fhch2010", "log_rt ~ task * stimulus + (1 + stimulus | id) + (1 | item)"),
])
def test_k_from_the_kept_rest_inverse_equals_the_direct_inverse(dataset, formula, with_x):
    """K = (L_mmL_mmᵀ)⁻¹ assembled from S_r⁻¹ (the factor's kept inverse, O(p·q_r²) beside it)
    equals LAPACK's inverse of the whole L_mm, with and without the X columns."""
    from mixedbridge.inference.blockedderivatives import _Blocks, _chol_inverse
    from mixedbridge.inference.blockedinverse import _k_matrix

    data = _sleep_with_extra_factor() if dataset == "extra" else None
    blk = _Blocks(_model(dataset, formula, data=data))
    assert blk.qr > 0
    direct = _chol_inverse(blk._l_mm(with_x))
    assert np.allclose(_k_matrix(blk, with_x), direct, rtol=1e-11, atol=1e-13 * np.abs(direct).max())


def test_the_rest_inverse_is_kept_by_the_factor_and_shared_with_condvar(monkeypatch):
    """S_r⁻¹ is formed once per factor: condVar (at the fit) forms it, the Satterthwaite
    derivatives read the same array; it is (L_rrL_rrᵀ)⁻¹ in its lower triangle."""
    from scipy.linalg import lapack

    model = _model("fhch2010", "log_rt ~ task * stimulus + (1 + stimulus | id) + (1 | item)")
    L = model.L
    inv = L.rest_inverse()
    Lrr = np.tril(L.rest_factor()[0])
    assert np.allclose(np.tril(inv), np.tril(np.linalg.inv(Lrr @ Lrr.T)), rtol=1e-10, atol=1e-14)
    calls = []
    inner = lapack.dpotri
    monkeypatch.setattr(lapack, "dpotri", lambda *a, **k: calls.append(1) or inner(*a, **k))
    assert L.rest_inverse() is inv
    model.condvar_blocks()
    blocked_derivatives(model)
    assert not calls


@pytest.mark.parametrize("n", [1, 255, 256, 600])
def test_fill_symmetric_in_row_blocks(n):
    """K's rest part is written in row blocks (``FILL_ROWS``) from S_r⁻¹'s upper triangle plus
    ZᵀZ: the same matrix as forming it whole, whatever lies below the given triangle."""
    from mixedbridge.inference.blockedinverse import FILL_ROWS, _fill_symmetric

    assert FILL_ROWS < 600
    rng = np.random.default_rng(n)
    A = rng.standard_normal((n, n))
    S = A + A.T
    upper = np.triu(S) + np.tril(rng.standard_normal((n, n)), -1) * 1e6
    Z = rng.standard_normal((2, n))
    out = np.full((n, n), np.nan)
    _fill_symmetric(out, upper, Z)
    assert np.allclose(out, S + Z.T @ Z, rtol=1e-13, atol=1e-12)
    _fill_symmetric(out, upper, np.zeros((0, n)))
    assert np.array_equal(out, S)
