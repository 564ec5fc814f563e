"""Penalized iteratively reweighted least squares (lme4's ``pwrssUpdate``): the conditional
modes ũ (and, in lme4's first stage, β̂ jointly) minimising the penalized deviance
Σ dev(yᵢ, μᵢ) + ‖u‖², μ = g⁻¹(o + Xβ + ZΛu).

Each step solves the reweighted penalized least-squares system (Fisher scoring, Newton's method
for canonical links) and halves the step, up to 10 times, while the penalized deviance rises,
as lme4 does. lme4 stops when the relative change of the penalized deviance is below 1e-7; here
a step stops only when it moves no random effect by more than :data:`STEP_TOL`, and M is then
refactored at the final modes, so that log|L|² belongs to the modes it is reported with (the
finite-difference Hessian of the deviance needs the criterion to about 1e-10).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .family import Family
from .system import Factor, PenalizedSystem, solve_fixed

#: Largest change of any u (or β) in the last PIRLS step at convergence.
STEP_TOL = 1e-7
#: Most PIRLS steps per evaluation.
MAXIT = 100


@dataclass
class Response:
    """The response and its family: ``y`` on the family's scale (proportions for the binomial),
    ``pw`` prior weights (trials for the binomial), ``offset`` o."""

    y: np.ndarray
    pw: np.ndarray
    offset: np.ndarray
    family: Family

    def devres(self, mu: np.ndarray) -> np.ndarray:
        """Squared deviance residuals (R's ``dev.resids``)."""
        return self.family.dev_resids(self.y, mu, self.pw)

    def aic(self, mu: np.ndarray) -> float:
        """R's ``family$aic`` at μ."""
        return self.family.aic(self.y, mu, self.pw)

    def working(self, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Working weights w = pw·(dμ/dη)²/V(μ) and the weighted working residual
        pw·(dμ/dη)(y − μ)/V(μ) = w·(y − μ)/(dμ/dη)."""
        me = self.family.mu_eta(eta)
        v = self.family.variance(mu)
        return self.pw * me * me / v, self.pw * me * (self.y - mu) / v


@dataclass
class Modes:
    """The result of PIRLS: ``u`` (computational order), ``beta``, ``eta``, ``mu``, ``pdev``
    penalized deviance, ``fac`` the factor of M at the modes, ``w`` working weights there,
    ``iterations``, ``converged``."""

    u: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    pdev: float
    fac: Factor
    w: np.ndarray
    iterations: int
    converged: bool


def _state(resp: Response, eta: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, float]:
    with np.errstate(all="ignore"):
        mu = resp.family.linkinv(eta)
        pdev = float(np.sum(resp.devres(mu)) + u @ u)
    return mu, pdev if np.isfinite(pdev) else np.inf


def _accept(new: float, old: float, step: np.ndarray) -> bool:
    """Whether a PIRLS step is kept: the penalized deviance did not rise (beyond rounding), or
    the step is below the convergence tolerance (lme4 checks convergence before step-halving,
    "so small increases don't trigger errors")."""
    if not np.isfinite(new):
        return False
    return new <= old + 1e-12 * abs(old) or bool(np.max(np.abs(step), initial=0.0) < STEP_TOL)


def pirls_u(system: PenalizedSystem, resp: Response, fixed: np.ndarray, u0: np.ndarray) -> Modes:
    """The conditional modes ũ for fixed θ (set in ``system``) and fixed Xβ (``fixed``, the
    n-vector o + Xβ), from the start ``u0``."""
    u = u0.copy()
    eta = fixed + system.zlam(u)
    mu, pdev = _state(resp, eta, u)
    converged, it = False, 0
    while True:
        with np.errstate(all="ignore"):
            w, wres = resp.working(eta, mu)
        fac = system.factor(w)
        if converged or it >= MAXIT or not fac.ok:
            return Modes(u, np.zeros(0), eta, mu, pdev, fac, w, it, converged and fac.ok)
        du = fac.solve(system.zlam_t(wres) - u)
        it += 1
        for _ in range(11):
            un = u + du
            etan = fixed + system.zlam(un)
            mun, pdn = _state(resp, etan, un)
            if _accept(pdn, pdev, du):
                break
            du = du / 2.0
        else:
            return Modes(u, np.zeros(0), eta, mu, pdev, fac, w, it, False)
        converged = bool(np.max(np.abs(du), initial=0.0) < STEP_TOL)
        u, eta, mu, pdev = un, etan, mun, pdn


def pirls_joint(system: PenalizedSystem, resp: Response, X: np.ndarray, eta0: np.ndarray,
                u0: np.ndarray, beta0: np.ndarray) -> Modes:
    """The joint modes (β̂, ũ) for fixed θ (lme4's first stage, nAGQ = 0), from the linear
    predictor ``eta0`` (with its β₀, u₀): the first step is taken in full, as in lme4."""
    u, beta, eta = u0.copy(), beta0.copy(), eta0.copy()
    with np.errstate(all="ignore"):
        mu = resp.family.linkinv(eta)
    pdev = np.inf
    converged, it = False, 0
    while True:
        with np.errstate(all="ignore"):
            w, wres = resp.working(eta, mu)
        fac = system.factor(w)
        if converged or it >= MAXIT or not fac.ok:
            return Modes(u, beta, eta, mu, pdev, fac, w, it, converged and fac.ok)
        z = (eta - resp.offset) * w + wres
        wX = X * w[:, None]
        try:
            un, bn, _ = solve_fixed(fac, system.zlam_t_matrix(wX), X.T @ wX, system.zlam_t(z), X.T @ z)
        except np.linalg.LinAlgError:
            return Modes(u, beta, eta, mu, pdev, fac, w, it, False)
        du, db = un - u, bn - beta
        it += 1
        for _ in range(11):
            un, bn = u + du, beta + db
            etan = resp.offset + X @ bn + system.zlam(un)
            mun, pdn = _state(resp, etan, un)
            if _accept(pdn, pdev, np.concatenate([du, db])):
                break
            du, db = du / 2.0, db / 2.0
        else:
            return Modes(u, beta, eta, mu, pdev, fac, w, it, False)
        step = max(np.max(np.abs(du), initial=0.0), np.max(np.abs(db), initial=0.0))
        converged = bool(step < STEP_TOL)
        u, beta, eta, mu, pdev = un, bn, etan, mun, pdn


def fixed_information(system: PenalizedSystem, X: np.ndarray, w: np.ndarray, fac: Factor) -> np.ndarray:
    """R_XᵀR_X = XᵀWX − CᵀM⁻¹C (C = ŨᵀWX) at the weights w: the inverse of lme4's ``unsc()``."""
    wX = X * w[:, None]
    C = system.zlam_t_matrix(wX)
    return X.T @ wX - C.T @ fac.solve(C)
