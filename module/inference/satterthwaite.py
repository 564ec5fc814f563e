"""Satterthwaite denominator degrees of freedom for linear mixed models, as lmerTest 3.1.

Variance parameters φ = (θ, σ), σ the residual *sd*. lmerTest's ``devfun_vp`` is the
unprofiled deviance (the model's ``objective(θ, reml, sigma=σ)``)

    d(φ) = log|L_θ|² − log|W| + r²(θ)/σ² + n·log(2πσ²)             (ML)
    d(φ) += log|R_X|² − p·log(2πσ²)                                  (REML)

with r²(θ) the penalized weighted RSS at β̂(θ) (log|W| of prior weights is a constant). Then

* A = Var(φ̂) = 2·H⁺, H = numDeriv::hessian(d, φ̂) (Moore-Penrose inverse over eigenvalues > 1e-8);
* J_j = ∂C/∂φ_j, C(φ) = σ²(R_XᵀR_X)⁻¹(θ), by numDeriv::jacobian;
* for a contrast l: v = lᵀCl, g_j = lᵀJ_jl, **df = 2v²/(gᵀAg)**;
* for a q-row L: LCLᵀ = PDPᵀ (eigenvalues > √ε·d₁ kept), ν_m from the rows of PᵀL,
  E = Σ ν_m/(ν_m − 2), **ddf = 2E/(E − q)** (2 if some ν_m ≤ 2; the mean if all ν_m agree);
  F = Σ (PᵀLβ)_m²/d_m / q.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import distributions as dist
from . import numderiv
from .permodel import remembered


@dataclass
class VarparCovariance:
    """lmerTest's cached pieces: ``phi`` = (θ̂, σ̂), ``A`` = 2H⁺, ``jac`` list of p×p ∂C/∂φ_j,
    ``vcov`` C(φ̂), ``beta`` β̂, ``sigma``, ``eigen`` eigenvalues of H, ``warnings``."""

    phi: np.ndarray
    A: np.ndarray
    jac: list[np.ndarray]
    vcov: np.ndarray
    beta: np.ndarray
    sigma: float
    eigen: np.ndarray
    warnings: list[str] = field(default_factory=list)


def devfun_vp(model, phi: np.ndarray, reml: bool) -> float:
    """lmerTest's ``devfun_vp``: the model's deviance at φ = (θ, σ), not profiled over σ."""
    return model.objective(phi[:-1], reml, sigma=phi[-1])


def covbeta(model, phi: np.ndarray) -> np.ndarray:
    """C(φ) = σ²(R_XᵀR_X)⁻¹ at θ (lmerTest's ``get_covbeta``), flattened column-major."""
    return model.vcov(phi[:-1], phi[-1]).ravel(order="F")


def varpar_covariance(model, theta: np.ndarray | None = None, tol: float = 1e-8) -> VarparCovariance:
    """A = 2H⁺ and the Jacobian of C at φ̂ = (θ̂, σ̂) for a fitted native model (left at θ̂);
    computed once per model and θ̂ (:mod:`.permodel`)."""
    theta_hat = np.asarray(model.theta if theta is None else theta, dtype=float).copy()
    key = ("satterthwaite", theta_hat.tobytes(), bool(model.reml), tol)
    vp = remembered(model, key, lambda: _varpar_covariance(model, theta_hat, tol))
    model.set_theta(theta_hat)
    return vp


def _varpar_covariance(model, theta_hat: np.ndarray, tol: float) -> VarparCovariance:
    """:func:`varpar_covariance` computed."""
    model.set_theta(theta_hat)
    sigma = model.sigma
    beta = model.beta
    vcov = model.vcov()
    phi = np.append(theta_hat, sigma)
    reml = bool(model.reml)
    try:
        H = numderiv.hessian(lambda x: devfun_vp(model, x, reml), phi)
        p = model.p
        J = numderiv.jacobian(lambda x: covbeta(model, x), phi)
    finally:
        model.set_theta(theta_hat)
    evals, evecs = np.linalg.eigh(H)
    evals, evecs = evals[::-1], evecs[:, ::-1]
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
    pos = evals > tol
    Hinv = (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T
    jac = [J[:, j].reshape(p, p, order="F") for j in range(J.shape[1])]
    return VarparCovariance(phi, 2.0 * Hinv, jac, vcov, beta, sigma, evals, warnings)


def _qform(x: np.ndarray, A: np.ndarray) -> float:
    return float(x @ A @ x)


def contest1d(vp: VarparCovariance, L: np.ndarray, rhs: float = 0.0) -> dict:
    """t test of lᵀβ = rhs with Satterthwaite df (lmerTest ``contest1D``)."""
    L = np.ravel(L)
    est = float(L @ vp.beta)
    v = _qform(L, vp.vcov)
    g = np.array([_qform(L, J) for J in vp.jac])
    df = 2.0 * v**2 / _qform(g, vp.A)
    se = np.sqrt(v)
    t = (est - rhs) / se
    return {"estimate": est, "std.error": se, "df": df, "statistic": t,
            "p.value": float(2.0 * dist.t.sf(abs(t), df))}


def fstat_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """lmerTest's ``get_Fstat_ddf``."""
    nu = np.asarray(nu, dtype=float)
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * E / (E - nu.size)


def contest_md(vp: VarparCovariance, L: np.ndarray, eps: float = float(np.sqrt(np.finfo(float).eps))) -> dict:
    """F test of Lβ = 0 with Satterthwaite ddf (lmerTest ``contestMD``); sums of squares as
    lmerTest reports them (MS = F·σ̂², SS = MS·NumDF)."""
    L = np.atleast_2d(np.asarray(L, dtype=float))
    if L.shape[0] == 0:
        return _ftable(np.nan, np.nan, np.nan, vp.sigma)
    if L.shape[0] == 1:
        r = contest1d(vp, L[0])
        return _ftable(r["statistic"] ** 2, 1, r["df"], vp.sigma)
    VL = L @ vp.vcov @ L.T
    d, P = np.linalg.eigh(VL)
    d, P = d[::-1], P[:, ::-1]
    tol = max(eps * d[0], 0.0)
    pos = d > tol
    q = int(pos.sum())
    if q <= 0:
        return _ftable(np.nan, 0, np.nan, vp.sigma)
    PtL = (P.T @ L)[:q]
    if q == 1:
        r = contest1d(vp, PtL[0])
        return _ftable(r["statistic"] ** 2, 1, r["df"], vp.sigma)
    t2 = (PtL @ vp.beta) ** 2 / d[:q]
    F = float(t2.sum() / q)
    nu = np.array([2.0 * d[m] ** 2 / _qform(np.array([_qform(PtL[m], J) for J in vp.jac]), vp.A)
                   for m in range(q)])
    return _ftable(F, q, fstat_ddf(nu), vp.sigma)


def _ftable(F: float, ndf: float, ddf: float, sigma: float, fscale: float = 1.0) -> dict:
    ms = F * sigma**2
    Fs = F * fscale
    p = float(dist.f.sf(Fs, ndf, ddf)) if ndf > 0 and np.isfinite(Fs) else np.nan
    return {"sumsq": ms * ndf, "meansq": ms, "NumDF": ndf, "DenDF": ddf, "statistic": Fs, "p.value": p}
