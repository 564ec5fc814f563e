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
from .system import AnyFactor, PenalizedSystem, solve_fixed

#: Largest change of any u (or β) in the last PIRLS step at convergence.
STEP_TOL = 1e-7
#: The same for a canonical link (Newton's method, quadratic convergence: the error left after
#: a step of 1e-5 is of order 1e-10) when no quadrature needs the criterion to 1e-12.
NEWTON_STEP_TOL = 1e-5
#: Most PIRLS steps per evaluation.
MAXIT = 100


class Response:
    """The response and its family: ``y`` on the family's scale (proportions for the binomial),
    ``pw`` prior weights (trials for the binomial), ``offset`` o.

    For the binomial, Poisson and negative binomial families the family's aic is the summed
    deviance residuals plus a constant of the data (the log-likelihood of the saturated model);
    that constant is found once (and checked at two μ), so that the criterion needs no separate
    aic pass. Binary responses use one logarithm per observation for their deviance residuals.
    """

    def __init__(self, y: np.ndarray, pw: np.ndarray, offset: np.ndarray, family: Family) -> None:
        self.y, self.pw, self.offset, self.family = y, pw, offset, family
        self.binary = family.name == "binomial" and bool(np.all((y == 0.0) | (y == 1.0)))
        #: Prior weights all 1 (products with them are skipped; the numbers are the same).
        self.unit_weights = bool(np.all(pw == 1.0))
        self._success = y == 1.0
        self.aic_constant = self._aic_constant()
        self.canonical = (family.name, family.link.name) in (("binomial", "logit"), ("poisson", "log"))
        self._logit = family.link.name == "logit"
        self._binomial = family.name == "binomial"
        #: The last η checked against the logit clamp and the outcome, and the last μ with its
        #: 1 − μ, so that a PIRLS step's working weights reuse them (the same numbers).
        self._range: tuple[np.ndarray | None, bool] = (None, False)
        self._complement: tuple[np.ndarray | None, np.ndarray | None] = (None, None)

    def _aic_constant(self) -> float | None:
        if self.family.name not in ("binomial", "poisson", "negative.binomial"):
            return None
        consts = []
        for shrink in (0.5, 0.8):
            if self.family.name == "binomial":
                mu = shrink * self.y + (1.0 - shrink) * 0.5
            else:
                mu = shrink * self.y + (1.0 - shrink) * (np.mean(self.y) + 0.5)
            consts.append(self.family.aic(self.y, mu, self.pw) - float(np.sum(self.devres(mu))))
        if abs(consts[0] - consts[1]) <= 1e-9 * (1.0 + abs(consts[0])):
            return consts[0]
        return None

    def devres(self, mu: np.ndarray) -> np.ndarray:
        """Squared deviance residuals (R's ``dev.resids``)."""
        if self.binary:
            return -2.0 * self.pw * np.log(np.where(self._success, mu, 1.0 - mu))
        return self.family.dev_resids(self.y, mu, self.pw)

    def sum_devres(self, mu: np.ndarray) -> float:
        """Σ dev.resids at μ (for binary data with unit weights without forming the vector: the
        factor −2 is a power of two, so the sum is the same number)."""
        if self.binary and self.unit_weights:
            om = 1.0 - mu
            self._complement = (mu, om)
            return -2.0 * float(np.sum(np.log(np.where(self._success, mu, om))))
        return float(np.sum(self.devres(mu)))

    def _in_clamp(self, eta: np.ndarray) -> bool:
        """Whether every |η| ≤ 30 (R's logit clamp), remembered for the last η."""
        if self._range[0] is not eta:
            self._range = (eta, bool(-30.0 <= eta.min(initial=0.0) and eta.max(initial=0.0) <= 30.0))
        return self._range[1]

    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        """μ = g⁻¹(η); for the logit link within R's clamp (|η| ≤ 30) without the clamping
        passes (the same numbers)."""
        if self._logit and self._in_clamp(eta):
            e = np.exp(eta)
            return e / (1.0 + e)
        return self.family.linkinv(eta)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """V(μ), for the binomial from the 1 − μ of :meth:`sum_devres` when it was this μ."""
        mu_c, om = self._complement
        if self._binomial and mu_c is mu and om is not None:
            return mu * om
        return self.family.variance(mu)

    def aic(self, mu: np.ndarray, sum_devres: float | None = None) -> float:
        """R's ``family$aic`` at μ (from Σ dev.resids when that is given and the family allows)."""
        if self.aic_constant is not None:
            dev = self.sum_devres(mu) if sum_devres is None else sum_devres
            return dev + self.aic_constant
        return self.family.aic(self.y, mu, self.pw)

    def working(self, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Working weights w = pw·(dμ/dη)²/V(μ) and the weighted working residual
        pw·(dμ/dη)(y − μ)/V(μ) = w·(y − μ)/(dμ/dη)."""
        if self.canonical and (not self._logit or self._in_clamp(eta)):
            # canonical link: dμ/dη = V(μ), so w = pw·V(μ) and the residual is pw·(y − μ)
            # (for the log link dμ/dη and V(μ) are the same clamped exp(η) everywhere)
            v = self.variance(mu)
            if self.unit_weights:
                return (v.copy() if v is mu else v), self.y - mu
            return self.pw * v, self.pw * (self.y - mu)
        me = self.family.mu_eta(eta)
        v = self.family.variance(mu)
        pmv = self.pw * me / v
        return pmv * me, pmv * (self.y - mu)


@dataclass
class Modes:
    """The result of PIRLS: ``u`` (computational order), ``beta``, ``eta``, ``mu``, ``pdev``
    penalized deviance, ``fac`` the factor of M at the modes, ``w`` working weights there,
    ``iterations``, ``converged``, ``wres`` the weighted working residual there."""

    u: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    pdev: float
    fac: AnyFactor
    w: np.ndarray
    iterations: int
    converged: bool
    #: The weighted working residual at the modes (None where not kept).
    wres: np.ndarray | None = None


def _state(resp: Response, eta: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, float]:
    """μ and the penalized deviance at η (callers ignore floating-point warnings)."""
    mu = resp.linkinv(eta)
    pdev = resp.sum_devres(mu) + float(u @ u)
    return mu, pdev if np.isfinite(pdev) else np.inf


def _accept(new: float, old: float, step: np.ndarray) -> bool:
    """Whether a PIRLS step is kept: the penalized deviance did not rise (beyond rounding), or
    the step is below the convergence tolerance (lme4 checks convergence before step-halving,
    "so small increases don't trigger errors")."""
    if not np.isfinite(new):
        return False
    return new <= old + 1e-12 * abs(old) or bool(np.max(np.abs(step), initial=0.0) < STEP_TOL)


def _largest(step: np.ndarray) -> float:
    return float(np.abs(step).max()) if step.size else 0.0


def pirls_u(system: PenalizedSystem, resp: Response, fixed: np.ndarray, u0: np.ndarray,
            step_tol: float = STEP_TOL, rel_tol: float = 0.0) -> Modes:
    """The conditional modes ũ for fixed θ (set in ``system``) and fixed Xβ (``fixed``, the
    n-vector o + Xβ), from the start ``u0`` (``rel_tol`` as in :func:`pirls_joint`)."""
    with np.errstate(all="ignore"):
        return _pirls_u(system, resp, fixed, u0.copy(), step_tol, rel_tol)


def _pirls_u(system: PenalizedSystem, resp: Response, fixed: np.ndarray, u: np.ndarray,
             step_tol: float, rel_tol: float) -> Modes:
    eta = fixed + system.zlam(u)
    mu, pdev = _state(resp, eta, u)
    converged, it = False, 0
    while True:
        w, wres = resp.working(eta, mu)
        fac = system.factor(w)
        if converged or it >= MAXIT or not fac.ok:
            return Modes(u, np.zeros(0), eta, mu, pdev, fac, w, it, converged and fac.ok, wres)
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
        converged = _largest(du) < step_tol or abs(pdev - pdn) < rel_tol * abs(pdn)
        u, eta, mu, pdev = un, etan, mun, pdn


def pirls_joint(system: PenalizedSystem, resp: Response, X: np.ndarray, eta0: np.ndarray,
                u0: np.ndarray, beta0: np.ndarray, step_tol: float = STEP_TOL,
                rel_tol: float = 0.0) -> Modes:
    """The joint modes (β̂, ũ) for fixed θ (lme4's first stage, nAGQ = 0), from the linear
    predictor ``eta0`` (with its β₀, u₀): the first step is taken in full, as in lme4. With
    ``rel_tol``, also converged when the penalized deviance changes by less than that
    (relative), lme4's own rule."""
    with np.errstate(all="ignore"):
        return _pirls_joint(system, resp, X, eta0.copy(), u0.copy(), beta0.copy(), step_tol, rel_tol)


def _pirls_joint(system: PenalizedSystem, resp: Response, X: np.ndarray, eta: np.ndarray,
                 u: np.ndarray, beta: np.ndarray, step_tol: float, rel_tol: float) -> Modes:
    mu = resp.linkinv(eta)
    pdev = np.inf
    converged, it = False, 0
    while True:
        w, wres = resp.working(eta, mu)
        fac = system.factor(w)
        if converged or it >= MAXIT or not fac.ok:
            return Modes(u, beta, eta, mu, pdev, fac, w, it, converged and fac.ok, wres)
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
        converged = max(_largest(du), _largest(db)) < step_tol or abs(pdev - pdn) < rel_tol * abs(pdn)
        u, beta, eta, mu, pdev = un, bn, etan, mun, pdn


def fixed_information(system: PenalizedSystem, X: np.ndarray, w: np.ndarray, fac: AnyFactor) -> np.ndarray:
    """R_XᵀR_X = XᵀWX − CᵀM⁻¹C (C = ŨᵀWX) at the weights w: the inverse of lme4's ``unsc()``."""
    wX = X * w[:, None]
    C = system.zlam_t_matrix(wX)
    return X.T @ wX - C.T @ fac.solve(C)


def first_step(system: PenalizedSystem, resp: Response, fixed: np.ndarray, lp0: np.ndarray) -> np.ndarray:
    """The modes after lme4's first PIRLS step at (θ, β) from the linear predictor ``lp0``
    (working weights and residuals at η = o + lp0, u solved for directly, not as an increment)."""
    eta = resp.offset + lp0
    with np.errstate(all="ignore"):
        mu = resp.family.linkinv(eta)
        w, wres = resp.working(eta, mu)
    fac = system.factor(w)
    if not fac.ok:
        return np.zeros(system.q)
    return fac.solve(system.zlam_t(w * (eta - fixed) + wres))


@dataclass
class Lme4Start:
    """lme4's first PIRLS iterate from the linear predictor lp0 at one θ: μ, the working weights
    and residuals there and the factor of M at those weights (they do not depend on β)."""

    mu: np.ndarray
    w: np.ndarray
    wres: np.ndarray
    fac: AnyFactor


def lme4_start(system: PenalizedSystem, resp: Response, lp0: np.ndarray) -> Lme4Start:
    """:class:`Lme4Start` at the θ set in ``system``."""
    with np.errstate(all="ignore"):
        eta = resp.offset + lp0
        mu = resp.linkinv(eta)
        w, wres = resp.working(eta, mu)
        return Lme4Start(mu, w, wres, system.factor(w))


def laplace_as_lme4(system: PenalizedSystem, resp: Response, fixed: np.ndarray,
                    lp0: np.ndarray, tol: float = 1e-7, start: Lme4Start | None = None) -> float:
    """The Laplace criterion at (θ, β) exactly as lme4 1.1-31's stage-2 ``devfun`` evaluates it.

    lme4 restarts PIRLS at every evaluation from the linear predictor ``lp0`` left by stage 1,
    stops when the penalized deviance changes by less than ``tol`` (1e-7) relative, and adds
    log|L|² from the factorisation made *before* the last step to ‖u‖² and aic after it. The
    result differs from the converged criterion by up to about 1e-6 relative, smoothly in
    (θ, β) near the optimum, and that difference enters the finite-difference Hessian lme4
    inverts for ``vcov`` (by about 1% in cbpp's standard errors). This evaluation is used only
    for those derivatives, so that the standard errors and convergence checks are glmer's; the
    optimum is found with the converged criterion (:func:`pirls_u`). ``start``, lme4's first
    iterate at this θ (:func:`lme4_start`), is shared by evaluations at the same θ.
    """
    with np.errstate(all="ignore"):
        return _laplace_as_lme4(system, resp, fixed, resp.offset + lp0, tol,
                                start or lme4_start(system, resp, lp0))


def _laplace_as_lme4(system: PenalizedSystem, resp: Response, fixed: np.ndarray, eta: np.ndarray,
                     tol: float, start: Lme4Start) -> float:
    mu = start.mu
    u = np.zeros(system.q)
    old = float(np.finfo(float).max)
    for it in range(MAXIT):
        if it == 0:
            w, wres, fac = start.w, start.wres, start.fac
        else:
            w, wres = resp.working(eta, mu)
            fac = system.factor(w)
        if not fac.ok:
            return np.inf
        un = fac.solve(system.zlam_t(w * (eta - fixed) + wres))
        etan = fixed + system.zlam(un)
        mun, pdev = _state(resp, etan, un)
        if abs((old - pdev) / pdev) < tol:
            return float(fac.ldL2 + pdev + resp.aic(mun, pdev - un @ un) - (pdev - un @ un))
        k = 0
        while pdev > old and k < MAXIT:
            un = (u + un) / 2.0
            etan = fixed + system.zlam(un)
            mun, pdev = _state(resp, etan, un)
            k += 1
        if pdev > old:
            return np.inf
        u, eta, mu, old = un, etan, mun, pdev
    return np.inf
