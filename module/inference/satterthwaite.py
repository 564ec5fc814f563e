"""Satterthwaite denominator degrees of freedom for linear mixed models, as lmerTest 3.1.

Variance parameters φ = (θ, σ), σ the residual *sd*. lmerTest's ``devfun_vp`` is the
unprofiled deviance (the model's ``objective(θ, reml, sigma=σ)``)

    d(φ) = log|L_θ|² − log|W| + r²(θ)/σ² + n·log(2πσ²)             (ML)
    d(φ) += log|R_X|² − p·log(2πσ²)                                  (REML)

with r²(θ) the penalized weighted RSS at β̂(θ) (log|W| of prior weights is a constant). Then

* A = Var(φ̂) = 2·H⁺, H = numDeriv::hessian(d, φ̂) (Moore-Penrose inverse over eigenvalues > 1e-8);
* J_j = ∂C/∂φ_j, C(φ) = σ²(R_XᵀR_X)⁻¹(θ), by numDeriv::jacobian;

(here H and J exactly, from dense algebra for small models or from the blocked factor for large
ones, :mod:`.blockedderivatives`; where the fill-in block is too large for that, by cheaper
Richardson differences than lmerTest's, :data:`DIFFERENCES`, agreeing with its to about 1e-8
relative in the df)
* for a contrast l: v = lᵀCl, g_j = lᵀJ_jl, **df = 2v²/(gᵀAg)**;
* for a q-row L: LCLᵀ = PDPᵀ (eigenvalues > √ε·d₁ kept), ν_m from the rows of PᵀL,
  E = Σ ν_m/(ν_m − 2), **ddf = 2E/(E − q)** (2 if some ν_m ≤ 2; the mean if all ν_m agree);
  F = Σ (PᵀLβ)_m²/d_m / q.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import numpy as np

from .. import distributions as dist
from ..lmm import gufuncs
from ..lmm.api import auto_threads
from ..lmm.threads import blas_threads
from . import numderiv
from .blockedderivatives import blocked_applies, blocked_derivatives, dense_derivatives
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

    @cached_property
    def coef_tests(self) -> dict[int, dict]:
        """:func:`coef_test`'s rows (β_i = 0) by i, filled as computed: the anova's row of a
        one-column term whose contrast is e_i (a covariate's, in type I and III) is the
        coefficient table's. (Not a field: a copy made by ``dataclasses.replace`` starts empty.)"""
        return {}

    @cached_property
    def unit_gradients(self) -> np.ndarray | None:
        """p×k, row i the gradient g of the contrast e_i: ((∂C/∂φ_j)_ii)_j (:func:`coef_test`);
        None when β̂, C or some ∂C/∂φ_j is not finite (then e_i's products are not read off)."""
        J = np.array(self.jac)
        if not math.isfinite(float(J.sum() + self.vcov.sum() + self.beta.sum())):
            return None  # a nan or inf (or a sum overflowing: then the products, to be safe)
        return np.add(J.diagonal(axis1=1, axis2=2).T, 0.0, order="C")


def devfun_vp(model, phi: np.ndarray, reml: bool) -> float:
    """lmerTest's ``devfun_vp``: the model's deviance at φ = (θ, σ), not profiled over σ."""
    return model.objective(phi[:-1], reml, sigma=phi[-1])


def covbeta(model, phi: np.ndarray) -> np.ndarray:
    """C(φ) = σ²(R_XᵀR_X)⁻¹ at θ (lmerTest's ``get_covbeta``), flattened column-major."""
    return model.vcov(phi[:-1], phi[-1]).ravel(order="F")


def varpar_covariance(model, theta: np.ndarray | None = None, tol: float = 1e-8,
                      estimates: tuple[np.ndarray, np.ndarray] | None = None) -> VarparCovariance:
    """A = 2H⁺ and the Jacobian of C at φ̂ = (θ̂, σ̂) for a fitted native model (left at θ̂);
    computed once per model and θ̂ (:mod:`.permodel`). ``estimates``: (β̂, C(φ̂)) as the fit
    computed them from the model at this θ, when the caller has them (else computed again)."""
    theta_hat = np.asarray(model.theta if theta is None else theta, dtype=float).copy()
    key = ("satterthwaite", theta_hat.tobytes(), bool(model.reml), tol)
    vp = remembered(model, key, lambda: _varpar_covariance(model, theta_hat, tol, estimates))
    model.set_theta(theta_hat)
    return vp


def _varpar_covariance(model, theta_hat: np.ndarray, tol: float,
                       estimates: tuple[np.ndarray, np.ndarray] | None = None) -> VarparCovariance:
    """:func:`varpar_covariance` computed: analytically, by the dense algebra of
    :func:`.blockedderivatives.dense_derivatives` for small q, else from the blocked factor
    (:func:`.blockedderivatives.blocked_derivatives`) while its fill-in block is moderate, else
    by Richardson differences (:func:`numeric_derivatives`). One BLAS thread for the exact
    routes (a few mid-sized products, where threads spin more than they give on a shared
    machine); as in the fit's evaluations for the differences."""
    analytic = analytic_applies(model)
    blocked = not analytic and blocked_applies(model)
    with blas_threads(1 if analytic or blocked else auto_threads(model.A.q_rest)):
        model.set_theta(theta_hat)
        sigma = model.sigma
        beta, vcov = estimates if estimates is not None else (model.beta, model.vcov())
        phi = np.concatenate([theta_hat, [sigma]])
        p = model.p
        if analytic:
            H, J = dense_derivatives(model)
        elif blocked:
            H, J = blocked_derivatives(model)
        else:
            H, J = numeric_derivatives(model, phi, bool(model.reml))
    evals, evecs = gufuncs.eigh(H)
    evals, evecs = evals[::-1], evecs[:, ::-1]
    warnings = _hessian_warnings(evals.tolist(), tol)
    pos = evals > tol
    V = evecs[:, pos]
    Hinv = (V / evals[pos]) @ V.T
    jac = [J[:, j].reshape(p, p, order="F") for j in range(J.shape[1])]
    return VarparCovariance(phi, 2.0 * Hinv, jac, vcov, beta, sigma, evals, warnings)


def _hessian_warnings(evals: list[float], tol: float) -> list[str]:
    """lmerTest's warnings on the eigenvalues of H (descending, as Python floats): negative ones
    (a model that may not have converged), ones near zero (unreliable df)."""
    warnings = []
    neg = [v for v in evals if v < -tol]
    zero = sum(1 for v in evals if -tol < v < tol)
    if neg:
        warnings.append(f"Satterthwaite: the deviance Hessian of the variance parameters has {len(neg)} "
                        f"negative eigenvalue(s) ({', '.join(f'{v:.1e}' for v in neg)}); "
                        "the model may not have converged")
    if zero:
        warnings.append(f"Satterthwaite: {zero} eigenvalue(s) of the variance-parameter Hessian "
                        "are close to zero; the degrees of freedom may be unreliable")
    return warnings


class Differences(NamedTuple):
    """numDeriv's Richardson settings: relative step ``d`` and ``levels`` (its ``r``) for the
    Hessian; the Jacobian's relative step ``jac_d`` (None: the Hessian's, so that the Jacobian's
    points are the Hessian's diagonal points and cost no factorization of their own)."""

    d: float
    levels: int
    jac_d: float | None


#: lmerTest's settings (numDeriv's defaults: hessian d = 0.1, r = 4; jacobian d = 1e-4, r = 4).
LMERTEST_DIFFERENCES = Differences(0.1, 4, 1e-4)
#: The settings used: one Richardson step from h = 0.01·|x| and h/2 (error O(h⁴), about 1e-8
#: relative in the df against :data:`LMERTEST_DIFFERENCES` on fhch2010 and InstEval), the
#: Jacobian at the same points. InstEval (k = 3): 25 factorizations instead of 73; fhch2010
#: (k = 4): 41 instead of 113.
DIFFERENCES = Differences(0.01, 2, None)


def numeric_derivatives(model, phi: np.ndarray, reml: bool,
                        scheme: Differences = DIFFERENCES) -> tuple[np.ndarray, np.ndarray]:
    """Richardson differences (numDeriv's ``genD`` and ``jacobian``, lmerTest's route) for the
    Hessian of :func:`devfun_vp` and the Jacobian of :func:`covbeta` at φ; the model is left at θ.

    Points that share θ share one factorization (the model's ``ThetaMemo``): those differing only
    in σ, and with ``scheme.jac_d`` None the Jacobian's points, which are then the Hessian's
    diagonal ones: 2rk + r·k(k−1) + 1 factorizations for k parameters in θ and r levels."""
    from ..lmm.model import ThetaMemo

    memo = ThetaMemo()
    jac_d = scheme.d if scheme.jac_d is None else scheme.jac_d
    try:
        H = numderiv.hessian(lambda x: model.objective_memo(x[:-1], reml, x[-1], memo), phi,
                             d=scheme.d, r=scheme.levels)
        J = numderiv.jacobian(lambda x: model.vcov_memo(x[:-1], x[-1], memo).ravel(order="F"), phi,
                              d=jac_d, r=scheme.levels)
    finally:
        model.set_theta(phi[:-1])
    return H, J


#: Largest number of random effects for which :func:`.blockedderivatives.dense_derivatives` is
#: used (its algebra is dense q×q: above this, the blocked factor's pieces are cheaper).
ANALYTIC_MAX_Q = 300


def analytic_applies(model) -> bool:
    """Whether :func:`.blockedderivatives.dense_derivatives` serves this model: q small (it needs
    only the cross-products, so a model reduced to them over Dask, or with prior weights, is
    served)."""
    return model.structure.q <= ANALYTIC_MAX_Q


def _qform(x: np.ndarray, A: np.ndarray) -> float:
    return float(x @ A @ x)


def _unit_index(L: np.ndarray) -> int | None:
    """i when the contrast is e_i (one entry 1, the others ±0), else None."""
    nz = np.flatnonzero(L)
    return int(nz[0]) if nz.size == 1 and L[nz[0]] == 1.0 else None


def contest1d(vp: VarparCovariance, L: np.ndarray, rhs: float = 0.0) -> dict:
    """t test of lᵀβ = rhs with Satterthwaite df (lmerTest ``contest1D``); l = e_i is
    :func:`coef_test`."""
    L = np.ravel(L)
    i = _unit_index(L) if vp.unit_gradients is not None else None
    if i is not None:
        return coef_test(vp, i, rhs)
    g = np.array([_qform(L, J) for J in vp.jac])
    return _t_test(vp, float(L @ vp.beta), _qform(L, vp.vcov), g, rhs)


def coef_test(vp: VarparCovariance, i: int, rhs: float = 0.0) -> dict:
    """:func:`contest1d` of l = e_i (β_i = rhs), its lᵀβ, lᵀCl and g read off β̂, C and
    :attr:`VarparCovariance.unit_gradients` instead of ~2 µs products each.

    Exactly the products' values when everything is finite: each sum has one term x·1 (exact)
    and otherwise ±0 terms (0·finite), so the sum is x, bar a -0 that a sum starting from +0
    turns to +0 (hence ``+ 0.0``). Otherwise the products. Tests of β_i = 0 are computed once
    per covariance (:attr:`VarparCovariance.coef_tests`)."""
    G = vp.unit_gradients
    if G is None:
        return contest1d(vp, np.eye(len(vp.beta))[i], rhs)
    if rhs != 0.0:
        return _t_test(vp, float(vp.beta[i]) + 0.0, float(vp.vcov[i, i]) + 0.0, G[i], rhs)
    if i not in vp.coef_tests:
        vp.coef_tests[i] = _t_test(vp, float(vp.beta[i]) + 0.0, float(vp.vcov[i, i]) + 0.0, G[i], 0.0)
    return dict(vp.coef_tests[i])


def _t_test(vp: VarparCovariance, est: float, v: float, g: np.ndarray, rhs: float) -> dict:
    """The t test from lᵀβ, v = lᵀCl and g_j = lᵀJ_jl: df = 2v²/(gᵀAg)."""
    df = 2.0 * v**2 / _qform(g, vp.A)
    se = np.float64(math.sqrt(v)) if v >= 0.0 else np.sqrt(v)  # the same root, without a ufunc call
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
    p = float(dist.f.sf(Fs, ndf, ddf)) if ndf > 0 and math.isfinite(Fs) else np.nan
    return {"sumsq": ms * ndf, "meansq": ms, "NumDF": ndf, "DenDF": ddf, "statistic": Fs, "p.value": p}
