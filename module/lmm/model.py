"""The linear mixed model: profiled objective, fit and the quantities at θ̂.

Model (Bates et al. 2015): y | B = b ~ N(Xβ + Zb + o, σ²W⁻¹), b = Λ_θ u, u ~ N(0, σ²I).
For fixed θ, β̂ and ũ minimise the penalized weighted RSS r²(θ, β, u); the blocked Cholesky
factor L(θ) of the Λ-scaled [Z X̃ ỹ]ᵀW[Z X̃ ỹ] (:mod:`.blocks`) gives r²(θ), log|L_θ|² and
log|R_X|², and hence the profiled criteria

* ML deviance:    log|L_θ|² − log|W| + n(1 + log(2πr²/n)),
* REML criterion: log|L_θ|² + log|R_X|² − log|W| + (n−p)(1 + log(2πr²/(n−p))).

The cross-products are formed in the basis of :mod:`.basis` (X̃ = XR⁻¹ W-orthonormal, ỹ the
least-squares residual of y − o on X), which keeps them free of cancellation when a column sits
on a large offset; β̂, R_X, V(β̂) and log|R_X|² are mapped back to the user's columns, so every
public quantity is that of X and y.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import ClassVar, NamedTuple

import numpy as np
from scipy.linalg import lapack

from ..design import ReTermData
from .basis import FixedBasis, fixed_basis
from .blocks import (
    BlockedCholesky,
    Crossprod,
    LeadingFactor,
    build_crossprod,
    criterion_parts,
    diagonal_scale,
    trailing_split,
    update_L,
)
from .checks import ConvergenceCheck, check_convergence
from .dense import DenseFactor, DenseSystem, build_dense, wants_dense
from .optimize import minimize_theta, newton_finish
from .optsummary import OptSummary
from .remat import ReStructure, build_structure
from .start import moment_start, wants_moment_start
from .threads import blas_threads

_LOG2PI = float(np.log(2.0 * np.pi))

#: Size of X (n·p) from which a model lets go of the basis's rows X̃ and ỹ once the
#: cross-products are formed and computes them again when read (residuals, Kenward-Roger):
#: 1M rows of y ~ x keep 23 MiB less.
KEEP_BASIS_ROWS_BELOW = 100_000
#: Size of the dense fill-in block from which a batch of evaluations (the derivative check)
#: factors S_r's leading rows once for the θ that differ in the last rest block's elements alone.
GROUPED_FILL = 500


class FactorSummary(NamedTuple):
    """What the criteria and V(β̂) read from the factor at one θ (see :class:`ThetaMemo`):
    ``ok``, ``ldL2``, ``pwrss``, ``ldRX2`` and ``Rinv`` = R_X⁻¹ of the user's columns."""

    ok: bool
    ldL2: float
    pwrss: float
    ldRX2: float
    Rinv: np.ndarray | None


class ThetaMemo(dict):
    """θ (bytes) → :class:`FactorSummary`: numerical derivatives revisit each θ several times
    (with other σ, or for V(β̂) after the deviance), and a θ met again needs no factorization."""


@dataclass
class LinearMixedModel:
    """A linear mixed model and, once fitted, its estimates.

    Fields: ``X`` n×p fixed-effects matrix; ``names`` its column names; ``y`` response; ``weights``
    prior weights w (or None); ``offset`` o (or None); ``reml`` criterion; ``structure`` the
    random-effects terms (:class:`~.remat.ReStructure`: θ layout, Λ templates); ``basis`` the
    fixed-effects basis X̃, ỹ (:class:`~.basis.FixedBasis`); ``A`` the blocked cross-product of
    [Z X̃ ỹ] (:class:`~.blocks.Crossprod`); ``L`` the factor at the current θ (factored on
    first use); ``theta`` the current θ; ``dense`` the small-model system (:mod:`.dense`, or None). After
    :meth:`fit`: ``optsum`` the optimizer record and ``check`` the convergence check.

    Inference uses the public methods (``objective(θ, reml, sigma)``, ``vcov(θ, σ)``,
    ``refit(y)``, ``zlambda(u)``, ``set_theta``, ``beta``, ``sigma``) and the terms in
    ``structure``; ``basis``, ``A``, ``L`` and ``dense`` are the estimator's own. ``has_rows``
    says whether X, y and Z hold the rows (False for a model built from reduced blocks alone).
    """

    has_rows: ClassVar[bool] = True
    X: np.ndarray
    names: list[str]
    y: np.ndarray
    reterms: list[ReTermData]
    weights: np.ndarray | None = None
    offset: np.ndarray | None = None
    reml: bool = True
    structure: ReStructure = field(init=False)
    basis: FixedBasis = field(init=False)
    A: Crossprod = field(init=False)
    theta: np.ndarray = field(init=False)
    _L: BlockedCholesky | None = field(init=False, default=None, repr=False)
    dense: DenseSystem | None = field(init=False, default=None)
    _optsum: OptSummary | None = field(init=False, default=None, repr=False)
    _check: ConvergenceCheck | None = field(init=False, default=None, repr=False)
    _beta_tilde: tuple[BlockedCholesky, np.ndarray] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.X = np.ascontiguousarray(self.X, dtype=float)
        self.y = np.asarray(self.y, dtype=float)
        self.structure = build_structure(self.reterms)
        self.basis = fixed_basis(self.X, self.y, self.weights, self.offset, self.names)
        self.A = build_crossprod(self.structure, self.basis.X, self.basis.y, self.weights, Xy=self.basis.Xy,
                                 gram_map=not wants_dense(self.structure))
        if self.X.size >= KEEP_BASIS_ROWS_BELOW:
            self.basis = self.basis.let_go_rows(partial(_basis_again, self.X, self.y, self.weights,
                                                        self.offset, self.names))
        self.dense = build_dense(self.A, self.structure)
        self.theta = self.structure.theta0  # a new array (concatenated)

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def dof(self) -> int:
        """n − p under REML, n under ML: the divisor of r² in σ̂²."""
        return self.n - self.p if self.reml else self.n

    # -- fit record ----------------------------------------------------------------------------
    @property
    def optsum(self) -> OptSummary:
        """The optimizer record of :meth:`fit` (θ̂, the criterion there, evaluations, restarts)."""
        if self._optsum is None:
            raise RuntimeError("the model has not been fitted: call fit() before reading optsum")
        return self._optsum

    @property
    def check(self) -> ConvergenceCheck:
        """The convergence check of :meth:`fit` (singularity, gradient, Hessian)."""
        if self._check is None:
            raise RuntimeError("the model has not been fitted: call fit() before reading check")
        return self._check

    # -- objective -----------------------------------------------------------------------------
    @property
    def L(self) -> BlockedCholesky:
        """The blocked Cholesky factor at the current θ (factored when first read after
        construction: a fit's first evaluation need not be at lme4's start)."""
        if self._L is None:
            self._L = update_L(self.A, self.structure, self.theta)
        return self._L

    @L.setter
    def L(self, value: BlockedCholesky | None) -> None:
        self._L = value

    def set_theta(self, theta: np.ndarray) -> BlockedCholesky:
        """Update L to θ (and remember θ)."""
        theta = np.asarray(theta, dtype=float)
        if self._L is not None and theta.shape == self.theta.shape and bool((theta == self.theta).all()):
            return self._L  # np.array_equal's verdict without its dispatch (a fit's summary asks at θ̂)
        self.theta = theta.copy()
        previous, self._L = self._L, None
        self._L = update_L(self.A, self.structure, self.theta, previous)
        return self._L

    def _criterion(self, L: BlockedCholesky | DenseFactor | FactorSummary, reml: bool,
                   sigma: float | None = None) -> float:
        """The criterion from a factor at θ: profiled over σ when ``sigma`` is None, else at σ."""
        if not L.ok or not math.isfinite(L.ldL2):
            return math.inf
        pwrss = L.pwrss
        if sigma is not None:
            s2 = float(sigma) ** 2
            val = L.ldL2 - self.A.sum_log_w + pwrss / s2 + self.n * np.log(2.0 * np.pi * s2)
            if reml:
                val += (L.ldRX2 + self.basis.ldR2) - self.p * np.log(2.0 * np.pi * s2)
            return float(val)
        d = self.n - self.p if reml else self.n
        if pwrss <= 0 or d <= 0:
            return math.inf
        return float(self._profiled(L.ldL2, L.ldRX2, pwrss, d, reml))

    def _profiled(self, ldL2: float | np.ndarray, ldRX2: float | np.ndarray, pwrss: float | np.ndarray,
                  d: int, reml: bool) -> float | np.ndarray:
        """The criterion profiled over σ from log|L_θ|², log|R̃_X|² and r² > 0 (numbers, or arrays
        of them: the same operations elementwise) with d = n − p (REML) or n (ML)."""
        val = ldL2 - self.A.sum_log_w + d * (1.0 + _LOG2PI + np.log(pwrss / d))
        if reml:
            val += ldRX2 + self.basis.ldR2
        return val

    def objective(self, theta: np.ndarray, reml: bool | None = None,
                  sigma: float | None = None) -> float:
        """The REML criterion (``reml``, default the model's) or the ML deviance at θ.

        With ``sigma`` None it is profiled over σ (the objective of the fit); small models (see
        :mod:`.dense`) then evaluate it from one dense factorisation and leave L where it was.
        With a ``sigma`` it is the deviance as a function of the variance parameters (θ, σ)
        (lmerTest's ``devfun_vp``): log|L_θ|² − log|W| + r²(θ)/σ² + n·log(2πσ²), and for REML
        + log|R_X|² − p·log(2πσ²); at σ = σ̂ it equals the profiled one. L is then left at θ.
        """
        reml = self.reml if reml is None else reml
        if sigma is None and self.dense is not None:
            compiled = self._compiled_objective(reml)
            if compiled is not None:
                return compiled(np.ascontiguousarray(theta, dtype=float))
            return self._criterion(self.dense.factor(np.asarray(theta, dtype=float)), reml)
        return self._criterion(self.set_theta(np.asarray(theta, dtype=float)), reml, sigma)

    def _fit_objective(self) -> Callable[[np.ndarray], float]:
        """:meth:`objective` at θ (profiled, the model's criterion) as the optimizer calls it: on
        the dense path :meth:`.dense.DenseSystem.profiled`, the factorisation and
        :meth:`_profiled`'s operations in one function with the model's constants read once
        (the same numbers; a fit makes dozens of evaluations of a few microseconds each)."""
        dense = self.dense
        fast = None if dense is None else dense.profiled(self.dof, self.A.sum_log_w,
                                                         self.basis.ldR2 if self.reml else None)
        return self.objective if fast is None else fast

    def _compiled_objective(self, reml: bool) -> Callable[[np.ndarray], float] | None:
        """The dense path's compiled criterion (profiled; REML or ML) where it was built: the
        function the optimizer minimised, so that its minimum is the objective at θ̂."""
        dense = self.dense
        if dense is None or dense.compiled is None:
            return None
        return dense.profiled(self.n - self.p if reml else self.n, self.A.sum_log_w,
                              self.basis.ldR2 if reml else None)

    def objectives(self, thetas: np.ndarray) -> np.ndarray:
        """:meth:`objective` (profiled, the model's criterion) at each row of ``thetas``; small
        models factor them all at once (:meth:`.dense.DenseSystem.factor_many`), large ones
        whose last rest block is small refactor only its rows for the θ that differ from
        another in its elements alone (:meth:`_objectives_grouped`). L is left where it was.
        Where the dense path is compiled, its criterion at each θ (about 1 µs each)."""
        compiled = self._compiled_objective(self.reml)
        if compiled is not None:
            return np.array([compiled(t) for t in np.ascontiguousarray(thetas, dtype=float)])
        if self.dense is not None:
            factors = self.dense.factor_many(thetas)
            d = self.dof
            if factors is not None and d > 0:
                with np.errstate(divide="ignore"):
                    val = np.asarray(self._profiled(*factors, d, self.reml))
                if min(factors.pwrss.tolist(), default=1.0) > 0 and math.isfinite(sum(factors.ldL2.tolist())):
                    return val  # every r² > 0 and every log|L_θ|² finite (else their sum is not)
                return np.where((factors.pwrss > 0) & np.isfinite(factors.ldL2), val, math.inf)
        if len(thetas) > 1 and self.A.q_rest >= GROUPED_FILL and trailing_split(self.A) is not None:
            return self._objectives_grouped(np.asarray(thetas, dtype=float))
        return np.array([self.objective(t) for t in thetas])

    def _objectives_grouped(self, thetas: np.ndarray) -> np.ndarray:
        """The profiled criterion at each θ, the θ grouped by their elements outside the last
        rest block: S_r's leading rows are factored once per group (:func:`.blocks.criterion_parts`;
        lme4's derivative check, 18 points for 3 θ, factors 9 times instead of 18)."""
        last = self.structure.blocks[-1].theta_index
        others = np.setdiff1d(np.arange(thetas.shape[1]), last)
        groups: dict[bytes, list[int]] = {}
        for i, t in enumerate(thetas):
            groups.setdefault(np.ascontiguousarray(t[others]).tobytes(), []).append(i)
        out = np.empty(len(thetas))
        for members in groups.values():
            lead: LeadingFactor | None = None
            for i in members:
                lead, (ok, ldL2, pwrss, ldRX2) = criterion_parts(self.A, self.structure, thetas[i], lead)
                out[i] = self._criterion(FactorSummary(ok, ldL2, pwrss, ldRX2, None), self.reml)
                if lead is None:  # the leading rows are not positive definite: the group fails
                    out[members] = math.inf
                    break
        return out

    def __call__(self, theta: np.ndarray) -> float:
        return self.objective(theta)

    def summary_at(self, theta: np.ndarray, memo: ThetaMemo) -> FactorSummary:
        """The factor's summary at θ, from ``memo`` or from a factorization (L is then left at θ)."""
        theta = np.asarray(theta, dtype=float)
        key = theta.tobytes()
        got = memo.get(key)
        if got is None:
            L = self.set_theta(theta)
            Rinv = self._Rinv() if L.ok else None
            got = memo[key] = FactorSummary(L.ok, L.ldL2, L.pwrss, L.ldRX2, Rinv)
        return got

    def objective_memo(self, theta: np.ndarray, reml: bool, sigma: float, memo: ThetaMemo) -> float:
        """``objective(θ, reml, sigma)`` (the same number), its factorization shared through ``memo``."""
        return self._criterion(self.summary_at(theta, memo), reml, sigma)

    def vcov_memo(self, theta: np.ndarray, sigma: float, memo: ThetaMemo) -> np.ndarray:
        """``vcov(θ, σ)`` (the same numbers), its factorization shared through ``memo``."""
        Rinv = self.summary_at(theta, memo).Rinv
        if Rinv is None:
            return self.vcov(theta, sigma)
        return float(sigma) ** 2 * (Rinv @ Rinv.T)

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, *, theta0: np.ndarray | None = None, polish: bool = False,
            calc_derivs: bool = True, exact: bool = False) -> LinearMixedModel:
        """Minimise the objective over θ (lme4's route), run the checks and stay at θ̂.

        ``theta0`` is the start (raised to the lower bounds); by default lme4's (1 on template
        diagonals and 0 off), or moment estimates when evaluations are expensive (a large dense
        fill-in, see :mod:`.start`). ``polish`` adds a second BOBYQA run from θ̂ (kept if lower); it is
        also run automatically when the gradient check fails. ``exact`` ends with Newton steps to
        the exact optimum (:mod:`.polish`): more evaluations, and two computations of the model
        whose objectives differ by rounding (rows in another order, Dask partitions) agree to 1e-9.
        """
        s = self.structure
        lower = s.lower
        start, step = s.theta0, None
        if theta0 is not None:
            start = np.maximum(np.asarray(theta0, dtype=float), lower)
        elif wants_moment_start(self.A):
            start, step = moment_start(self.A, s)
        optsum = minimize_theta(self._fit_objective(), start, lower, do_polish=polish, initial_step=step,
                                exact=exact)
        check = check_convergence(self.objective, optsum.theta, optsum.fmin, lower, calc_derivs,
                                  self.objectives)
        if not polish and calc_derivs and not check.singular and not check.grad_ok:
            first = optsum
            optsum = minimize_theta(self._fit_objective(), first.theta, lower, do_polish=True, exact=exact)
            optsum.theta0 = first.theta0
            optsum.feval += first.feval
            optsum.restarted = first.restarted + ["rerun after failed gradient check"] + optsum.restarted
            check = check_convergence(self.objective, optsum.theta, optsum.fmin, lower, calc_derivs,
                                  self.objectives)
        finished = newton_finish(self.objective, optsum.theta, optsum.fmin, check.gradient, check.hessian, lower,
                                 eigenvalues=check.hess_eigen)
        if finished is not None and not check.singular:
            optsum.theta, optsum.fmin = finished
            optsum.feval += 1
            optsum.restarted.append("newton step (BOBYQA stopped early by its ftol_abs)")
            check = check_convergence(self.objective, optsum.theta, optsum.fmin, lower, calc_derivs,
                                  self.objectives)
        optsum.fmin = self._criterion(self.set_theta(optsum.theta), self.reml)
        self._optsum, self._check = optsum, check
        return self

    def refit(self, y: np.ndarray, *, reml: bool | None = None,
              theta0: np.ndarray | None = None) -> LinearMixedModel:
        """A new model for the response y with this model's design (X, terms, weights,
        offset), fitted from ``theta0`` (lme4's ``refit``, as ``bootMer`` uses it) without the
        derivative checks; this model is left as it is."""
        m = LinearMixedModel(self.X, list(self.names), y, list(self.reterms), self.weights,
                             self.offset, self.reml if reml is None else reml)
        return m.fit(theta0=theta0, calc_derivs=False)

    # -- quantities at the current θ -------------------------------------------------------------
    @property
    def pwrss(self) -> float:
        """r²(θ) = ‖W^½(y − o − Xβ̂ − ZΛũ)‖² + ‖ũ‖²."""
        return self.L.pwrss

    @property
    def ldL2(self) -> float:
        """log|L_θ|²."""
        return self.L.ldL2

    @property
    def ldRX2(self) -> float:
        """log|R_X|² (of the user's X: log|R̃_X|² + log|R|²)."""
        return self.L.ldRX2 + self.basis.ldR2

    @property
    def RX(self) -> np.ndarray:
        """Upper-triangular R_X (p×p), R_XᵀR_X = XᵀWX − R_ZXᵀR_ZX: R̃_X R from the basis."""
        return self._RX_tilde() @ self.basis.R

    def _RX_tilde(self) -> np.ndarray:
        """R̃_X, the R_X of X̃."""
        return self.L.Lxx[: self.p, : self.p].T.copy()

    @property
    def beta_tilde(self) -> np.ndarray:
        """β̂(θ) in the estimator's basis (the coefficients of X̃ for ỹ); solved once per factor
        (a fit's summary reads it four times at θ̂)."""
        L = self.L
        cached = self._beta_tilde
        if cached is not None and cached[0] is L:
            return cached[1].copy()
        Lxx = L.Lxx
        value = triangular_solve(Lxx[: self.p, : self.p].T, Lxx[self.p, : self.p], lower=False)
        self._beta_tilde = (L, value)
        return value.copy()

    @property
    def beta(self) -> np.ndarray:
        """β̂(θ) of the user's columns, γ + R⁻¹β̃."""
        return self.basis.beta(self.beta_tilde)

    @property
    def sigma(self) -> float:
        """σ̂ = √(r²/(n−p)) under REML, √(r²/n) under ML."""
        return math.sqrt(self.pwrss / self.dof)  # correctly rounded, as np.sqrt

    def vcov(self, theta: np.ndarray | None = None, sigma: float | None = None) -> np.ndarray:
        """σ²R_X⁻¹R_X⁻ᵀ = σ²(R_XᵀR_X)⁻¹ at θ (lmerTest's ``get_covbeta``; L is left at θ) and σ;
        by default at the current θ and σ̂(θ)."""
        if theta is not None:
            self.set_theta(theta)
        s = self.sigma if sigma is None else float(sigma)
        Rinv = self._Rinv()
        return s**2 * (Rinv @ Rinv.T)

    def _Rinv(self) -> np.ndarray:
        """R_X⁻¹ of the user's columns at the current θ."""
        return self.basis.solve(triangular_solve(self._RX_tilde(), np.eye(self.p), lower=False))

    def deviance_ml(self) -> float:
        """The ML deviance formula at the current θ (lme4's ``devCrit(REML = FALSE)``)."""
        return self._criterion(self.L, False)

    def reml_crit(self) -> float:
        """The REML criterion at the current θ."""
        return self._criterion(self.L, True)

    # -- random effects ------------------------------------------------------------------------
    def u_blocks(self) -> list[np.ndarray]:
        """Spherical random effects ũ per factor block (ℓ×p arrays, computational order)."""
        A, L = self.A, self.L
        beta_tilde = self.beta_tilde
        gamma = np.empty(beta_tilde.size + 1)  # np.append(−β̃, 1)'s values without its concatenate
        np.negative(beta_tilde, out=gamma[:-1])
        gamma[-1] = 1.0
        g0 = np.einsum("c,cia->ia", gamma, A.Ax0)
        out_rest: list[np.ndarray] = []
        if A.rest:
            Lrr, Bxr = L.rest_factor()
            rhs = Bxr.T @ gamma
            z = triangular_solve(Lrr, rhs, lower=True)
            ur = triangular_solve(Lrr.T, z, lower=False)
            lam_ur = ur.copy()
            _apply_lambda(lam_ur, A, L.rest_T)
            g0 = g0 - A.ar0_transposed(lam_ur).reshape(A.ell0, A.p0)
            for b, o in zip(A.rest, A.offsets[:-1]):
                out_rest.append(ur[int(o): int(o) + b.q].reshape(b.nlevels, b.p))
        tg = g0 @ L.T0
        u0 = np.einsum("iab,ib->ia", L.M0inv, tg)
        return [u0] + out_rest

    def b_blocks(self) -> list[np.ndarray]:
        """Conditional modes b̃ = Λũ per factor block (ℓ×p arrays, computational order)."""
        Ts = [self.L.T0] + self.L.rest_T
        return [u @ T.T for u, T in zip(self.u_blocks(), Ts)]

    def condvar_blocks(self) -> list[np.ndarray]:
        """Conditional covariance of b given y at θ̂, σ̂²·Λ(ΛᵀZᵀWZΛ + I)⁻¹Λᵀ, diagonal blocks
        per level: (ℓ, p, p) arrays per factor block (computational order); lme4's ``condVar``.

        With L_RE = [[L₀₀, 0], [L_r0, L_rr]], the block-0 blocks of (ΛᵀZᵀWZΛ + I)⁻¹ are
        M₀ᵢ⁻¹ + (T₀M₀ᵢ⁻¹)ᵀA_r0,ᵢᵀ(Λ_rS_r⁻¹Λ_rᵀ)A_r0,ᵢ(T₀M₀ᵢ⁻¹) and the rest blocks those of S_r⁻¹.
        """
        A, L = self.A, self.L
        V0 = L.M0inv.copy()
        rest_V: list[np.ndarray] = []
        if A.rest:
            inv = L.rest_inverse()
            for b, o in zip(A.rest, A.offsets[:-1]):
                idx = int(o) + np.arange(b.q).reshape(b.nlevels, b.p)
                rest_V.append(_symmetric_take(inv, idx[:, :, None], idx[:, None, :]))
            V0 += _first_block_fill(A, L, inv)
        Ts = [L.T0] + L.rest_T
        s2 = self.sigma**2
        return [s2 * (T @ V @ T.T) for V, T in zip([V0] + rest_V, Ts)]

    def zlambda(self, u: np.ndarray, theta: np.ndarray | None = None) -> np.ndarray:
        """ZΛ_θu for spherical random effects u in lme4's order (term, level, column); θ defaults
        to the current one."""
        return self.structure.zlambda(u, self.theta if theta is None else np.asarray(theta, dtype=float))

    def zb(self) -> np.ndarray:
        """Z b̃ (n-vector) at the current θ."""
        return self._z_times(self.b_blocks())

    def _z_times(self, b_blocks: list[np.ndarray]) -> np.ndarray:
        """Z b for b per factor block (ℓ×p arrays, computational order)."""
        out = None
        for blk, b in zip(self.structure.blocks, b_blocks):
            zb = blk.z_times(b)
            if out is None:
                out = zb
                out += 0.0  # as 0 + Z₁b₁ was (−0.0 becomes 0.0)
            else:
                out += zb
        return np.zeros(self.n) if out is None else out

    def fitted(self) -> np.ndarray:
        """Xβ̂ + Zb̃ + o, as y − residuals."""
        return self.y - self.residuals()

    def residuals(self) -> np.ndarray:
        """Raw (response-scale) residuals y − o − Xβ̂ − Zb̃ at the current θ (see
        :meth:`residuals_at`)."""
        return self.residuals_at(self.estimates())

    def residuals_at(self, est: Estimates) -> np.ndarray:
        """Raw residuals at the β̃ and b̃ of ``est`` (:meth:`estimates`, taken at some θ),
        computed in the basis as ỹ − X̃β̃ − Zb̃ (no cancellation when y or X sit on a large
        offset)."""
        basis = self.basis.with_rows()
        r = basis.X @ est.beta_tilde
        np.subtract(basis.y, r, out=r)
        r -= self._z_times(est.b_blocks)
        return r

    def estimates(self) -> Estimates:
        """β̃ and b̃ at the current θ: what :meth:`residuals` needs (a few values per group), to
        compute them later wherever θ has moved."""
        return Estimates(self.beta_tilde, self.b_blocks())


class Estimates(NamedTuple):
    """β̃ (the basis's coefficients) and b̃ per factor block at one θ (see
    :meth:`LinearMixedModel.estimates`)."""

    beta_tilde: np.ndarray
    b_blocks: list[np.ndarray]


def triangular_solve(a: np.ndarray, b: np.ndarray, lower: bool) -> np.ndarray:
    """x with a x = b for a triangular ``a``: the LAPACK call (``dtrtrs``) and argument order of
    ``scipy.linalg.solve_triangular``, so the same numbers, without its per-call validation
    (a few microseconds each, several per small fit)."""
    a = np.asarray(a, dtype=float)
    if a.size == 0:
        return np.array(b, dtype=float)
    if a.flags.f_contiguous:
        x, info = lapack.dtrtrs(a, b, lower=lower)
    else:
        x, info = lapack.dtrtrs(a.T, b, lower=not lower, trans=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"singular triangular matrix (dtrtrs info {info})")
    return x


def _basis_again(X: np.ndarray, y: np.ndarray, weights: np.ndarray | None, offset: np.ndarray | None,
                 names: list[str]) -> FixedBasis:
    """The fixed-effects basis computed again, as the model computed it (one BLAS thread)."""
    with blas_threads(1):
        return fixed_basis(X, y, weights, offset, names)


def _apply_lambda(v: np.ndarray, A: Crossprod, rest_T: list[np.ndarray]) -> None:
    """v ← Λ_r v in place for a q_r-vector."""
    for T, b, o in zip(rest_T, A.rest, A.offsets[:-1]):
        sl = slice(int(o), int(o) + b.q)
        v[sl] = (v[sl].reshape(b.nlevels, b.p) @ T.T).ravel()


def _apply_lambda_rows(M: np.ndarray, A: Crossprod, rest_T: list[np.ndarray]) -> None:
    """M ← Λ_r M in place (rows indexed by the rest random effects)."""
    for T, b, o in zip(rest_T, A.rest, A.offsets[:-1]):
        sl = slice(int(o), int(o) + b.q)
        sub = M[sl].reshape(b.nlevels, b.p, -1)
        M[sl] = np.einsum("ab,lbk->lak", T, sub).reshape(b.q, -1)


def _lambda_sandwich(X: np.ndarray, A: Crossprod, rest_T: list[np.ndarray]) -> np.ndarray:
    """Λ_r X Λ_rᵀ, C-ordered, for a symmetric X (its rows scaled, transposed, scaled again; X
    may be overwritten). When every rest block has one column Λ_r is the diagonal d and the
    result is d_a·(d_b·X_ab) + 0 by two broadcast products: the numbers of the two
    :func:`_apply_lambda_rows` passes (whose one-term einsum sums add the product to 0, so a
    zero is +0), without their per-block einsums and the transposed copy."""
    if all(b.p == 1 for b in A.rest):
        d = diagonal_scale(A, rest_T)
        if d is not None:
            out = d[:, None] * (d * X)
            out += 0.0
            return out
    _apply_lambda_rows(X, A, rest_T)
    X = np.ascontiguousarray(X.T)
    _apply_lambda_rows(X, A, rest_T)
    return X


def _symmetric_take(inv: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Elements (i, j) of the symmetric matrix whose lower triangle is ``inv``'s."""
    return inv[np.maximum(i, j), np.minimum(i, j)]


def _first_block_fill(A: Crossprod, L: BlockedCholesky, inv: np.ndarray) -> np.ndarray:
    """(T₀M₀ᵢ⁻¹)ᵀ A_r0,ᵢᵀ X A_r0,ᵢ (T₀M₀ᵢ⁻¹) per level of block 0, X = Λ_rS_r⁻¹Λ_rᵀ: the
    rest blocks' contribution to the block-0 diagonal blocks of (ΛᵀZᵀWZΛ + I)⁻¹. ``inv`` holds
    S_r⁻¹ in its lower triangle. With a Gram map and a diagonal Λ_r only X's values at the
    map's positions are formed."""
    d = None if A.gram is None else diagonal_scale(A, L.rest_T)
    if A.gram is not None and d is not None:
        g = A.gram
        vals = d[g.rows] * (d[g.cols] * inv[g.rows, g.cols])
    else:
        X = _tril(inv)
        X += _tril(inv, -1).T
        X = _lambda_sandwich(X, A, L.rest_T)
        if A.gram is None:
            return _first_block_product(L, _gram_quadratic_chunked(A, X))
        g = A.gram
        vals = X[g.rows, g.cols]
    c_off = (g.P.T @ np.where(g.off, vals, 0.0)).reshape(A.ell0, A.p0, A.p0)
    c_diag = (g.P.T @ np.where(g.off, 0.0, vals)).reshape(A.ell0, A.p0, A.p0)
    return _first_block_product(L, c_off + np.swapaxes(c_off, 1, 2) + c_diag)


#: Largest matrix whose lower-triangle masks :func:`_tril` keeps (per size: 2 × 256 kB at most).
KEEP_TRIL_MASK = 512


def _tril(M: np.ndarray, k: int = 0) -> np.ndarray:
    """``np.tril(M, k)`` for a square M, its own selection (the same values and layout), the
    mask kept for small sizes (numpy forms it anew at each call)."""
    size = M.shape[0]
    mask = _tril_mask(size, k) if size <= KEEP_TRIL_MASK else np.tri(size, k=k, dtype=bool)
    return np.where(mask, M, np.zeros(1, M.dtype))


@lru_cache(maxsize=16)
def _tril_mask(size: int, k: int) -> np.ndarray:
    """The read-only mask of ``np.tril``: cells on or below the k-th diagonal."""
    mask = np.tri(size, k=k, dtype=bool)
    mask.flags.writeable = False
    return mask


def _first_block_product(L: BlockedCholesky, F: np.ndarray) -> np.ndarray:
    """(T₀M₀ᵢ⁻¹)ᵀ Fᵢ (T₀M₀ᵢ⁻¹) per level of block 0."""
    TM = L.T0 @ L.M0inv
    return np.swapaxes(TM, 1, 2) @ F @ TM


def _gram_quadratic_chunked(A: Crossprod, X: np.ndarray, chunk_entries: int = 4_000_000) -> np.ndarray:
    """A_r0,ᵢᵀ X A_r0,ᵢ per level of block 0, by dense column chunks of A_r0."""
    ell, p = A.ell0, A.p0
    out = np.zeros((ell, p, p))
    per = max(1, chunk_entries // max(1, A.q_rest * p))
    if per >= ell:  # one chunk: the whole of A_r0 (no column slicing of a sparse matrix)
        E = A.ar0_array()
        XE = (X @ E).reshape(A.q_rest, ell, p)
        out[:] = np.einsum("kia,kib->iab", E.reshape(A.q_rest, ell, p), XE)
        return out
    Ar0 = A.Ar0.tocsc()
    for start in range(0, ell, per):
        stop = min(ell, start + per)
        E = Ar0[:, start * p: stop * p].toarray()
        XE = (X @ E).reshape(A.q_rest, stop - start, p)
        out[start:stop] = np.einsum("kia,kib->iab", E.reshape(A.q_rest, stop - start, p), XE)
    return out
