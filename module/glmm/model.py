"""The generalized linear mixed model: lme4's criteria, glmer's two optimizer stages and the
quantities at the optimum.

Model (Bates et al. 2015, sec. 5 of lme4's GLMM vignette): yᵢ | B = b ~ family(μᵢ),
g(μ) = o + Xβ + Zb, b = Λ_θu, u ~ N(0, I). For given (θ, β), PIRLS (:mod:`.pirls`) finds the
conditional modes ũ; lme4's criteria are

* Laplace (nAGQ = 1): log|L_θ|² + ‖ũ‖² + aic(y, μ̃), aic the family's −2 log-likelihood;
* nAGQ = 0 (stage 1): the same with β̂ found jointly with ũ by PIRLS, optimised over θ only;
* nAGQ > 1: adaptive Gauss-Hermite quadrature (:mod:`.quadrature`).

The criterion is lme4's ``deviance`` of the fit (−2 logLik).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..design import ReTermData
from ..lmm.remat import ReStructure, build_structure
from .checks import check_convergence
from .family import Family
from .optimize import StageResult, bobyqa, check_boundary, gradient, hessian_central, newton_step
from .pirls import (
    NEWTON_STEP_TOL,
    STEP_TOL,
    Lme4Start,
    Modes,
    Response,
    first_step,
    fixed_information,
    laplace_as_lme4,
    lme4_start,
    pirls_joint,
    pirls_u,
)
from .quadrature import agq_deviance
from .scalar import ScalarState, ScalarTerm
from .system import PenalizedSystem, solve_fixed

#: lme4's ``tolPwrss``: PIRLS stops when the penalized deviance changes by less (relative).
LME4_PWRSS_TOL = 1e-7
#: BOBYQA's stopping tolerances in stage 2 (absolute, criterion and parameters): glmer's own
#: optimum is only determined to its PIRLS tolerance, far above these.
STAGE2_FTOL, STAGE2_XTOL = 1e-8, 1e-7
#: Stage 2's initial BOBYQA steps relative to lme4's when the fit's derivatives are computed:
#: a Newton step with them ends the optimization (:func:`~.optimize.newton_step`), so BOBYQA
#: need not resolve the last digits itself; from half of lme4's steps it stops in well under
#: half the evaluations (VerbAgg 76 instead of 192) and the Newton step reaches the same optimum.
POLISHED_STEP_SCALE = 0.5
#: How many θs' first lme4 iterates :meth:`GeneralizedLinearMixedModel.deviance_as_lme4` keeps
#: (a Hessian with 3 θs visits 13; the dict is emptied when full, so memory stays bounded).
LME4_STARTS_KEPT = 32


def start_mu(family: Family, y: np.ndarray, pw: np.ndarray) -> np.ndarray:
    """R's ``mustart`` of the family's ``initialize``."""
    if family.name == "binomial":
        return (pw * y + 0.5) / (pw + 1.0)
    if family.name == "poisson":
        return y + 0.1
    if family.name == "negative.binomial":
        return y + (y == 0) / 6.0
    return y.astype(float)


def restarts(family: Family) -> bool:
    """Whether PIRLS restarts at every evaluation from glmer's starting linear predictors
    instead of the last modes: for the sqrt link μ = η² fits at negative η too, so the modes
    (and the optimum) found depend on where PIRLS starts, and glmer's are those reached from its
    starts (see :meth:`GeneralizedLinearMixedModel.fit`)."""
    return family.link.name == "sqrt"


def lme4_criterion(family: Family) -> bool:
    """Whether stage 2 minimises the Laplace criterion as lme4 evaluates it (PIRLS from stage 1's
    linear predictor, stopped at a relative change of 1e-7, log|L|² of the step before) rather
    than converged: for the cauchit link, whose Fisher scoring oscillates in log|L|² (glmer's
    optimum of bacteria's cauchit model is 0.0025 below the converged criterion's, its fixed
    effects 1.5e-3 away), and the sqrt link (:func:`restarts`)."""
    return family.link.name in ("sqrt", "cauchit")


@dataclass
class FitRecord:
    """What the fit did: ``stage1`` and ``stage2`` optimizer runs (``stage2`` None for
    nAGQ = 0), ``snapped`` θ set to their bound by ``check.boundary``, ``gradient`` of the converged
    criterion and ``hessian`` of the criterion as lme4 evaluates it (:meth:`deviance_as_lme4`),
    in (θ, β) by central differences with step 1e-4 (:func:`~.optimize.hessian_central`; None
    for nAGQ = 0) at BOBYQA's stopping point, before the closing Newton step (the gradient where
    that step lands when the stopping point's fails lme4's check)."""

    stage1: StageResult
    stage2: StageResult | None
    snapped: list[int] = field(default_factory=list)
    gradient: np.ndarray | None = None
    hessian: np.ndarray | None = None


class GeneralizedLinearMixedModel:
    """A GLMM and, once fitted, its estimates.

    Fields: ``X`` n×p, ``names``; ``resp`` the :class:`~.pirls.Response` (y, prior weights,
    offset, family); ``structure`` the random-effects terms (θ layout, lme4's order);
    ``system`` the penalized system of PIRLS; ``nagq``; after :meth:`fit`: ``theta``, ``beta``,
    ``modes`` (PIRLS at the optimum), ``fval`` the criterion, ``record``.
    Public methods: :meth:`deviance` (the stage-2 criterion at (θ, β)), :meth:`deviance0` (the
    stage-1 criterion at θ), :meth:`u`, :meth:`b`, :meth:`condvar_blocks`, :meth:`unscaled_vcov`.
    """

    def __init__(self, X: np.ndarray, names: list[str], y: np.ndarray, reterms: list[ReTermData],
                 family: Family, weights: np.ndarray | None = None,
                 offset: np.ndarray | None = None, nagq: int = 1,
                 system: PenalizedSystem | None = None) -> None:
        self.X = np.ascontiguousarray(X, dtype=float)
        self.names = list(names)
        n = self.X.shape[0]
        pw = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        o = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
        self.resp = Response(np.asarray(y, dtype=float), pw, o, family)
        self.reterms = list(reterms)
        if system is None:
            system = PenalizedSystem(build_structure(self.reterms))
        self.structure: ReStructure = system.structure
        self.system = system
        self.nagq = int(nagq)
        self._u = np.zeros(self.system.q)
        #: (scales, β, modes) of the last converged stage-2 PIRLS, for :meth:`_predicted_modes`.
        self._anchor: tuple[np.ndarray, np.ndarray, Modes] | None = None
        #: (scales, joint modes) of the last converged stage-1 PIRLS.
        self._joint_anchor: tuple[np.ndarray, Modes] | None = None
        self._beta0 = np.zeros(self.p)
        self._eta0 = family.linkfun(start_mu(family, self.resp.y, pw))
        self._to_lme4 = self._lme4_order()
        self.theta = self.structure.theta0
        self.beta = np.zeros(self.p)
        self.modes: Modes | None = None
        self._lp0: np.ndarray | None = None
        #: (θ, lme4's first PIRLS iterate from lp0 there), shared by the Hessian's points at θ̂.
        #: lme4's first PIRLS iterate per θ (:meth:`deviance_as_lme4`), for the current lp0.
        self._lme4_start: dict[bytes, Lme4Start] = {}
        self._step_tol = NEWTON_STEP_TOL if self.resp.canonical and self.nagq <= 1 else STEP_TOL
        self._restart = restarts(family)
        self._lme4_crit = lme4_criterion(family)
        #: The single-scalar-term quadrature path (:mod:`.scalar`; nAGQ > 1), or None.
        self._scalar = ScalarTerm.make(self.system, self.resp, self.nagq)
        #: (scale, o + Xβ, state) of the scalar path's last converged evaluation, for its next start.
        self._scalar_last: tuple[float, np.ndarray, ScalarState] | None = None
        self._lp_init: np.ndarray | None = None
        self.fval = np.inf
        self.record: FitRecord | None = None

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def ntheta(self) -> int:
        return self.structure.ntheta

    @property
    def family(self) -> Family:
        return self.resp.family

    def _lme4_order(self) -> np.ndarray:
        """Index of each lme4-ordered random effect (term, level, column) in computational
        order (block, level, column)."""
        s = self.structure
        starts = np.cumsum([0] + [b.q for b in s.blocks])
        parts = []
        for t, (blk, off) in zip(s.terms, s.placement):
            pb = s.blocks[blk].p
            lev = np.arange(t.nlevels)[:, None]
            col = np.arange(t.p)[None, :]
            parts.append((starts[blk] + lev * pb + off + col).ravel())
        return np.concatenate(parts).astype(np.int64)

    # -- criteria --------------------------------------------------------------------------------
    def _set_theta(self, theta: np.ndarray) -> None:
        self.system.set_theta(theta)

    def modes_at(self, theta: np.ndarray, beta: np.ndarray) -> Modes:
        """PIRLS for ũ at (θ, β), warm-started from the last modes (from 0 if that fails), moved
        to first order to (θ, β) where :meth:`_predicted_modes` can."""
        self._set_theta(np.asarray(theta, dtype=float))
        fixed = self.resp.offset + self.X @ beta
        u0, rel_tol = self._u, 0.0
        if self._restart and self._lp0 is not None:
            u0, rel_tol = first_step(self.system, self.resp, fixed, self._lp0), LME4_PWRSS_TOL
        elif self._anchor is not None:
            u0 = self._predicted_modes(beta)
        m = pirls_u(self.system, self.resp, fixed, u0, self._step_tol, rel_tol)
        if not m.converged:
            m = pirls_u(self.system, self.resp, fixed, np.zeros(self.system.q))
        if m.converged:
            self._u = m.u
            self._set_anchor(beta, m)
        return m

    def _predicts(self) -> bool:
        """Whether PIRLS starts from first-order predicted modes (:meth:`_predicted_modes`):
        canonical links and two or more scalar intercept terms. With one term a PIRLS step costs
        little more than the prediction, and the optimizer's path (so its stopping point, within
        its tolerance) is left as it was: JASP's p-values for larks_owls are matched to 5e-4."""
        return (self.resp.canonical and not self._restart and len(self.system.blocks) > 1
                and all(self.system.const))

    def _set_anchor(self, beta: np.ndarray, m: Modes) -> None:
        """Remember converged modes and where they are (the scales s, β) for the next start."""
        s = self.system.effect_scales() if self._predicts() else None
        self._anchor = None if s is None else (s, np.array(beta, dtype=float), m)

    def _predicted_modes(self, beta: np.ndarray) -> np.ndarray:
        """The modes at the current θ and ``beta`` to first order from the anchor's (a chord step
        with its factor): ũ + M⁻¹(ΔŨᵀr − ŨᵀW(XΔβ + ΔŨũ)), r the working residual there (scalar
        intercept terms, canonical link: PIRLS is Newton's method). PIRLS then needs fewer steps;
        the modes it converges to are the same."""
        assert self._anchor is not None
        s_old, beta_old, m = self._anchor
        s_new = self.system.effect_scales()
        if s_new is None:
            return self._u
        ds = s_new - s_old
        r = m.wres if m.wres is not None else self.resp.working(m.eta, m.mu)[1]
        deta = self.X @ (beta - beta_old) + self.system.z_times(ds * m.u)
        rhs = ds * self.system.zt_times(r) - s_old * self.system.zt_times(m.w * deta)
        u0 = m.u + m.fac.solve(rhs)
        return u0 if np.all(np.isfinite(u0)) else self._u

    def reset_modes(self) -> None:
        """Warm-start PIRLS from the fitted modes ũ again (other evaluations move its start), so a
        computation on the fit (a profile) gives the same numbers whatever ran before it."""
        if self.modes is not None:
            self._u = np.array(self.modes.u, copy=True)
            self._set_theta(self.theta)
            self._set_anchor(self.beta, self.modes)

    def deviance(self, pars: np.ndarray) -> float:
        """The stage-2 criterion at (θ, β) = ``pars``: Laplace for nAGQ ≤ 1, else AGQ."""
        pars = np.asarray(pars, dtype=float)
        fast = self.scalar_deviances(pars[None, :])
        if fast is not None:
            return float(fast[0])
        theta, beta = pars[: self.ntheta], pars[self.ntheta:]
        m = self.modes_at(theta, beta)
        if not m.converged or not np.isfinite(m.fac.ldL2):
            return np.inf
        if self.nagq > 1:
            fixed = self.resp.offset + self.X @ beta
            return agq_deviance(self.system.blocks[0], self.system.Ut[0], self.resp, fixed, m, self.nagq)
        return float(m.fac.ldL2 + m.u @ m.u + self.resp.aic(m.mu, m.pdev - m.u @ m.u))

    def deviances(self, P: np.ndarray) -> np.ndarray:
        """:meth:`deviance` at each row of P (all at once on the single-scalar-term path)."""
        P = np.atleast_2d(np.asarray(P, dtype=float))
        fast = self.scalar_deviances(P)
        return fast if fast is not None else np.array([self.deviance(p) for p in P])

    def scalar_deviances(self, P: np.ndarray) -> np.ndarray | None:
        """The nAGQ > 1 criterion at the rows of P by :mod:`.scalar` (one scalar term, canonical
        link), PIRLS from the last modes; None where that path does not apply. One point's
        modes become the next start, as in :meth:`modes_at`."""
        sc = self._scalar
        if sc is None or self._restart:
            return None
        beta = P[:, self.ntheta:]
        with np.errstate(all="ignore"):
            if len(P) == 1:
                return self._scalar_deviance(sc, float(P[0, sc.theta_index]), beta[0])
            scales = P[:, sc.theta_index]
            F = self.resp.offset + beta @ self.X.T
            U0, last = np.broadcast_to(self._u, (len(P), self.system.q)), self._scalar_last
            if last is not None and last[2].U is self._u:
                U0 = sc.predict(last[2], last[0], last[1], scales[:, None], F)
                U0 = np.where(np.isfinite(U0), U0, self._u[None, :])
            st = sc.pirls(scales, F, U0, self._step_tol)
            vals = None if st is None else sc.agq(st, scales, self.nagq)
        if st is None or vals is None:
            return None
        return np.where(st.ok & np.isfinite(vals), vals, np.inf)

    def _scalar_deviance(self, sc: ScalarTerm, scale: float, beta: np.ndarray) -> np.ndarray | None:
        """:meth:`scalar_deviances` at one point, its modes kept as the next start."""
        f = self.resp.offset + self.X @ beta
        u0, last = self._u, self._scalar_last
        if last is not None and last[2].U is self._u:  # the last modes are still the start
            u0 = sc.predict(last[2], last[0], last[1], scale, f)
            if not np.all(np.isfinite(u0)):
                u0 = self._u
        st = sc.pirls_one(scale, f, u0, self._step_tol)
        val = None if st is None or not st.ok else sc.agq(st, scale, self.nagq)
        if st is None or val is None:
            return None
        self._u, self._scalar_last = st.U, (scale, f, st)
        return np.array([val if np.isfinite(val) else np.inf])

    def objective(self, pars: np.ndarray) -> float:
        """The criterion stage 2 minimises and the fit reports: :meth:`deviance_as_lme4` where
        :func:`lme4_criterion` says so (nAGQ = 1), else :meth:`deviance`."""
        if self.nagq == 1 and self._lme4_crit and self._lp0 is not None:
            return self.deviance_as_lme4(pars)
        return self.deviance(pars)

    def deviance_as_lme4(self, pars: np.ndarray) -> float:
        """The stage-2 criterion as lme4's ``devfun`` computes it (PIRLS restarted from stage 1's
        linear predictor, tolerance 1e-7; :func:`~.pirls.laplace_as_lme4`), for glmer's
        finite-difference derivatives. Only for nAGQ = 1; otherwise :meth:`deviance`. lme4's
        first iterate at a θ is kept for later evaluations there (the Hessian's points return to
        each θ in turn); it is a function of θ and lp0 only, so the values are unchanged."""
        if self.nagq != 1 or self._lp0 is None:
            return self.deviance(pars)
        pars = np.asarray(pars, dtype=float)
        theta, beta = pars[: self.ntheta], pars[self.ntheta:]
        self._set_theta(theta)
        start = self._lme4_start.get(theta.tobytes())
        if start is None:  # a Hessian visits 1 + 2k + 2k(k-1)/2 θs for k θ's, each many times
            if len(self._lme4_start) >= LME4_STARTS_KEPT:
                self._lme4_start.clear()
            start = self._lme4_start[theta.tobytes()] = lme4_start(self.system, self.resp, self._lp0)
        return laplace_as_lme4(self.system, self.resp, self.resp.offset + self.X @ beta, self._lp0,
                               start=start)

    def joint_modes(self, theta: np.ndarray) -> Modes:
        """PIRLS for (β̂, ũ) at θ (lme4's stage 1), warm-started."""
        self._set_theta(np.asarray(theta, dtype=float))
        u0, beta0 = self._u, self._beta0
        if self._joint_anchor is not None:
            u0, beta0 = self._predicted_joint_modes()
        eta0 = self.resp.offset + self.X @ beta0 + self.system.zlam(u0)
        if not np.any(beta0) and not np.any(u0):
            eta0 = self._eta0
        if self._restart and self._lp_init is not None:
            eta0 = self.resp.offset + self._lp_init
        m = None
        if self._scalar is not None and not self._restart:
            # canonical link (Newton's method): a last step below 1e-5 leaves an error of order
            # 1e-10, far inside stage 1's tolerance (ftol 1e-6), as for nAGQ ≤ 1
            m = self._scalar.pirls_joint(float(self.system.scale[0]), self.X, self.resp.offset, eta0, u0,
                                         beta0, NEWTON_STEP_TOL)
        if m is None:
            m = pirls_joint(self.system, self.resp, self.X, eta0, u0, beta0, self._step_tol,
                            LME4_PWRSS_TOL if self._restart else 0.0)
        if not m.converged:
            m = pirls_joint(self.system, self.resp, self.X, self._eta0, np.zeros(self.system.q),
                            np.zeros(self.p))
        if m.converged:
            self._u, self._beta0 = m.u, m.beta
            s = self.system.effect_scales() if self._predicts() else None
            if s is not None:
                self._joint_anchor = (s, m)
        return m

    def _predicted_joint_modes(self) -> tuple[np.ndarray, np.ndarray]:
        """The joint modes (ũ, β̂) at the current θ to first order from the last ones (a chord
        step with their factor, as :meth:`_predicted_modes` with β free)."""
        assert self._joint_anchor is not None
        s_old, m = self._joint_anchor
        s_new = self.system.effect_scales()
        if s_new is None:
            return self._u, self._beta0
        ds = s_new - s_old
        r = m.wres if m.wres is not None else self.resp.working(m.eta, m.mu)[1]
        dz = self.system.z_times(ds * m.u)
        wX = self.X * m.w[:, None]
        C = s_old[:, None] * self.system.zt_times(wX)
        rhs_u = ds * self.system.zt_times(r) - s_old * self.system.zt_times(m.w * dz)
        try:
            du, db, _ = solve_fixed(m.fac, C, self.X.T @ wX, rhs_u, -(wX.T @ dz))
        except np.linalg.LinAlgError:
            return self._u, self._beta0
        u0, b0 = m.u + du, m.beta + db
        ok = np.all(np.isfinite(u0)) and np.all(np.isfinite(b0))
        return (u0, b0) if ok else (self._u, self._beta0)

    def deviance0(self, theta: np.ndarray) -> float:
        """The stage-1 (nAGQ = 0) criterion at θ: log|L|² + ‖ũ‖² + aic at the joint modes."""
        m = self.joint_modes(theta)
        if not m.converged or not np.isfinite(m.fac.ldL2):
            return np.inf
        return float(m.fac.ldL2 + m.u @ m.u + self.resp.aic(m.mu))

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, calc_derivs: bool = True, start: np.ndarray | None = None) -> GeneralizedLinearMixedModel:
        """glmer's route: stage 1 over θ, then (nAGQ ≥ 1) stage 2 over (θ, β), check.boundary
        and the finite-difference derivatives, with which one Newton step ends stage 2
        (:meth:`_derivatives`; only when the derivatives are computed). With ``start`` (θ, β), stage 2
        only, from there (lme4's ``refit``, as ``glmer.nb`` uses it). For the sqrt link
        (:func:`restarts`) PIRLS restarts as glmer's: stage 1 from a first PIRLS at θ₀, stage 2
        from stage 1's linear predictor, with lme4's stopping rule, and the stage-2 criterion
        is lme4's evaluation of it (:meth:`deviance_as_lme4`)."""
        s = self.structure
        lower = s.lower
        if start is not None:
            st1 = StageResult(np.asarray(start[: self.ntheta], dtype=float), np.nan, 0, "SKIPPED")
            return self._stage2(st1, np.asarray(start[self.ntheta:], dtype=float), calc_derivs)
        if self._restart:
            self._glmer_start()
        tight = self.nagq == 0
        st1 = bobyqa(self.deviance0, s.theta0, lower, np.full(self.ntheta, 0.2),
                     ftol_abs=1e-10 if tight else 1e-6, xtol_abs=1e-9 if tight else 1e-5)
        if self.nagq == 0:
            theta, _, snapped = check_boundary(self.deviance0, st1.x, st1.fval, lower, self.ntheta)
            m = self.joint_modes(theta)
            self.theta, self.beta, self.modes = theta, m.beta, m
            self.fval = self.deviance0(theta)
            self.record = FitRecord(st1, None, snapped)
            return self
        return self._stage2(st1, None, calc_derivs)

    def _glmer_start(self) -> None:
        """glmer's starting linear predictor for stage 1 (``mkGlmerDevfun``): PIRLS for (β, u) at
        θ₀ from η = o + linkfun(mustart) (``updateMu`` adds the offset), stopped by lme4's rule."""
        self._set_theta(self.structure.theta0)
        m = pirls_joint(self.system, self.resp, self.X, self.resp.offset + self._eta0,
                        np.zeros(self.system.q), np.zeros(self.p), self._step_tol, LME4_PWRSS_TOL)
        self._lp_init = m.eta - self.resp.offset

    def _stage2(self, st1: StageResult, beta0: np.ndarray | None, calc_derivs: bool) -> GeneralizedLinearMixedModel:
        """Stage 2 from stage 1's θ (and its joint β̂, or ``beta0``), lme4's steps."""
        m1 = self.joint_modes(st1.x)
        self._lp0 = m1.eta - self.resp.offset
        self._lme4_start = {}
        self._set_anchor(m1.beta, m1)
        beta_sd = np.sqrt(np.diag(np.linalg.inv(fixed_information(self.system, self.X, m1.w, m1.fac))))
        step = 0.2 * np.concatenate([np.full(self.ntheta, 0.1), np.minimum(beta_sd, 10.0)])
        if calc_derivs:
            step = POLISHED_STEP_SCALE * step
        start = np.concatenate([st1.x, m1.beta if beta0 is None else beta0])
        lower2 = np.concatenate([self.structure.lower, np.full(self.p, -np.inf)])
        st2 = bobyqa(self.objective, start, lower2, step, ftol_abs=STAGE2_FTOL, xtol_abs=STAGE2_XTOL)
        x, fx, snapped = check_boundary(self.objective, st2.x, st2.fval, lower2, self.ntheta)
        grad = hess = None
        if calc_derivs:
            x, grad, hess = self._derivatives(x, fx, lower2)
        self.fval = self.objective(x)
        self.theta, self.beta = x[: self.ntheta].copy(), x[self.ntheta:].copy()
        self.modes = self.modes_at(self.theta, self.beta)
        self.record = FitRecord(st1, st2, snapped, grad, hess)
        return self

    def _derivatives(self, x: np.ndarray, fx: float,
                     lower: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The finite-difference gradient and Hessian at stage 2's stopping point x (the Hessian
        of the criterion as lme4 evaluates it for nAGQ = 1, of the quadrature deviance
        otherwise) and one Newton step with them (:func:`~.optimize.newton_step`): returns (the
        optimum, the gradient, the Hessian at x). The step moves the parameters by about 1e-4
        of their standard errors, so the Hessian at x serves for theirs. The gradient is x's
        when it passes lme4's check there (the step only lowers the criterion), else it is taken
        again where the step lands (2 evaluations per parameter)."""
        if self.nagq > 1:
            grad, hess = hessian_central(self.deviance, x, fx, many=self.deviances)
        else:
            _, hess = hessian_central(self.deviance_as_lme4, x, self.deviance_as_lme4(x))
            grad = gradient(self.objective, x)
        stepped = newton_step(self.objective, x, fx, grad, hess, lower, self.ntheta)
        if stepped is not None:
            passes = check_convergence(x[: self.ntheta], self.structure.is_sd, grad, hess).grad_ok
            x = stepped[0]
            if not passes:
                grad = gradient(self.objective, x)
        return x, grad, hess

    def refit(self, y: np.ndarray, *, calc_derivs: bool = False,
              start: np.ndarray | None = None) -> GeneralizedLinearMixedModel:
        """A new model for the response y with this model's design, family, weights and offset,
        fitted by stage 2 from ``start`` (default this fit's (θ̂, β̂)), as lme4's ``refit`` does
        for ``bootMer``; this model is left as it is."""
        r = self.resp
        m = GeneralizedLinearMixedModel(self.X, self.names, y, self.reterms, r.family, r.pw,
                                        r.offset, self.nagq, self.system)
        if self.nagq == 0:
            return m.fit(calc_derivs=False)
        x0 = np.concatenate([self.theta, self.beta]) if start is None else start
        return m.fit(calc_derivs=calc_derivs, start=x0)

    def set_family(self, family: Family) -> None:
        """Use another family (same data and design), e.g. a new negative binomial θ."""
        r = self.resp
        self.resp = Response(r.y, r.pw, r.offset, family)
        self._step_tol = NEWTON_STEP_TOL if self.resp.canonical and self.nagq <= 1 else STEP_TOL
        self._restart, self._lme4_crit = restarts(family), lme4_criterion(family)
        self._eta0 = family.linkfun(start_mu(family, r.y, r.pw))
        self._scalar = ScalarTerm.make(self.system, self.resp, self.nagq)

    # -- quantities at the optimum ---------------------------------------------------------------
    def _at_optimum(self) -> Modes:
        if self.modes is None:
            raise RuntimeError("the model has not been fitted: call fit() first")
        self._set_theta(self.theta)  # the system may be shared with refits at other θ
        return self.modes

    def u(self) -> np.ndarray:
        """Spherical conditional modes ũ in lme4's order (term, level, column)."""
        return self._at_optimum().u[self._to_lme4]

    def b_terms(self) -> list[np.ndarray]:
        """Conditional modes b̃ = Λũ per term (ℓ×p arrays, lme4's term order)."""
        u = self.u()
        out = []
        for t, start in zip(self.structure.terms, self.structure.Gp):
            ut = u[start: start + t.q].reshape(t.nlevels, t.p)
            out.append(ut @ t.template(self.theta).T)
        return out

    def condvar_terms(self, sigma: float = 1.0) -> list[np.ndarray]:
        """lme4's ``condVar`` per term: σ²·Λ(ΛᵀZᵀWZΛ + I)⁻¹Λᵀ diagonal blocks, (ℓ, p, p)."""
        m = self._at_optimum()
        Vb = m.fac.diag_blocks_inverse()
        if len(Vb) > 1:
            Sinv = Vb[1]
            Vb = [Vb[0]]
            for b, o in zip(self.system.blocks[1:], self.system.offsets[:-1]):
                idx = int(o) + np.arange(b.q).reshape(b.nlevels, b.p)
                Vb.append(Sinv[idx[:, :, None], idx[:, None, :]])
        out = []
        for t, (blk, off) in zip(self.structure.terms, self.structure.placement):
            V = Vb[blk][:, off: off + t.p, off: off + t.p]
            T = t.template(self.theta)
            out.append(sigma**2 * (T @ V @ T.T))
        return out

    def unscaled_vcov(self) -> np.ndarray:
        """lme4's ``unsc()``: (R_XᵀR_X)⁻¹ at the working weights of the modes."""
        m = self._at_optimum()
        return np.linalg.inv(fixed_information(self.system, self.X, m.w, m.fac))

    def eta(self) -> np.ndarray:
        """The linear predictor o + Xβ̂ + ZΛũ at the optimum."""
        return self._at_optimum().eta

    def mu(self) -> np.ndarray:
        """Fitted values on the response scale."""
        return self._at_optimum().mu
