"""PIRLS and adaptive Gauss-Hermite quadrature (nAGQ > 1) for a single scalar random-effects
term with a canonical link (binomial–logit, Poisson–log), vectorized over the levels and over
several (θ, β) at once.

With one scalar term, M = ŨᵀWŨ + I is diagonal: the conditional modes of the levels are
independent, and a PIRLS step is one Newton step per level, uⱼ ← uⱼ + (sΣᵢ xᵢrᵢ − uⱼ)/dⱼ with
dⱼ = 1 + s²Σᵢ xᵢ²wᵢ (sums over the level's rows, s = θ, x the term's column), formed with
``bincount``; no factorisation is needed. With the canonical link the log-likelihood kernel is
pw(yη − b(η)) (b = log(1 + eᶯ) or eᶯ), so μ, the penalized deviance and the quadrature nodes'
deviances need one exponential per row and node.

The steps, step-halving and stopping rules are those of :func:`~.pirls.pirls_u` and
:func:`~.pirls.pirls_joint` (the same modes to rounding), and the criterion that of
:func:`~.quadrature.agq_deviance`: the numbers agree with the general path to about 1e-12
relative. They are not the same to the last bit, and an optimizer's path along a flat optimum
follows the last bits, so this path serves only nAGQ > 1 (lme4's quadrature exists only for a
single scalar term); the Laplace and nAGQ = 0 fits keep the general path's arithmetic.
Rows of the arrays are parameter points (one for the optimizer, all points of the
finite-difference Hessian at once). Where a linear predictor leaves the range in which R's
inverse link is not clamped, the caller falls back to the general path (None).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import special
from scipy.linalg import lapack

from ..lmm.remat import ReTerm
from .pirls import MAXIT, STEP_TOL, Modes, Response
from .quadrature import gh_rule
from .system import Factor, PenalizedSystem

#: R's logit clamp: within it μ = eᶯ/(1 + eᶯ) exactly.
LOGIT_RANGE = (-30.0, 30.0)
#: Within it R's log-link μ = max(eᶯ, ε) is eᶯ (e⁻³⁶ > ε) and finite.
LOG_RANGE = (-36.0, 700.0)
#: Largest n·ℓ for which per-level sums of matrices (stage 1's weighted X, the quadrature's
#: nodes) are dense matrix products; larger designs use ``bincount``.
DENSE_LEVELS = 2_000_000


@dataclass
class ScalarState:
    """PIRLS at B points: modes ``U`` (B, ℓ), ``ETA``/``MU`` (B, n) linear predictor and mean,
    ``Bk`` (B, n) b(η), ``pdev`` (B,) penalized deviance, ``D`` (B, ℓ) the diagonal of M at the
    modes, ``W`` (B, n) working weights there, ``iterations``, ``ok`` (B,) converged with M
    positive definite. For one point (:meth:`ScalarTerm.pirls_one`) vectors and scalars."""

    U: np.ndarray
    ETA: np.ndarray
    MU: np.ndarray
    Bk: np.ndarray
    pdev: np.ndarray | float
    D: np.ndarray
    W: np.ndarray
    iterations: int
    ok: np.ndarray | bool


class ScalarTerm:
    """One scalar term (block ``block``) and a canonical-link response: the vectorized PIRLS
    (:meth:`pirls`, :meth:`pirls_one`, :meth:`pirls_joint`) and the adaptive Gauss-Hermite
    criterion (:meth:`agq`)."""

    def __init__(self, block: ReTerm, resp: Response) -> None:
        self.codes, self.ell = block.codes, block.nlevels
        x = np.asarray(block.X[:, 0], dtype=float)
        self.x = None if bool(np.all(x == 1.0)) else x
        self.theta_index = int(block.theta_index[0])
        y, pw = resp.y, resp.pw
        self.pw, self.pwy = pw, pw * y
        self.binomial = resp.family.name == "binomial"
        self.lo, self.hi = LOGIT_RANGE if self.binomial else LOG_RANGE
        # Σ dev.resids = const − 2Σ pw(yη − b(η)), the constant 2Σ pw·(y log y + (1−y)log(1−y))
        # (binomial) or 2Σ pw·(y log y − y) (Poisson)
        c = special.xlogy(y, y) + (special.xlogy(1.0 - y, 1.0 - y) if self.binomial else -y)
        self.const = float(np.sum(2.0 * pw * c))
        self._index: dict[int, np.ndarray] = {}
        self._levels: np.ndarray | None = None
        self._dense: np.ndarray | None = None
        #: Σ pw·y·x per level (the quadrature's linear part).
        self._ysum = np.bincount(self.codes, weights=self.pwy if self.x is None else self.pwy * self.x,
                                 minlength=self.ell)

    def _indicator(self) -> np.ndarray | None:
        """The n × ℓ indicator of each row's level (dense, for per-level sums of matrices as one
        product), or None for large designs (n·ℓ > :data:`DENSE_LEVELS`)."""
        if self._dense is None and self.codes.size * self.ell <= DENSE_LEVELS:
            Z = np.zeros((self.codes.size, self.ell))
            Z[np.arange(self.codes.size), self.codes] = 1.0
            self._dense = Z
        return self._dense

    def _level_weights(self) -> np.ndarray | None:
        """The n × ℓ matrix of pw at (row, level of the row), for the nodes' per-level sums as one
        matrix product; None for large designs (n·ℓ > :data:`DENSE_LEVELS`), which use ``bincount``."""
        if self._levels is None and self.codes.size * self.ell <= DENSE_LEVELS:
            P = np.zeros((self.codes.size, self.ell))
            P[np.arange(self.codes.size), self.codes] = self.pw
            self._levels = P
        return self._levels

    @staticmethod
    def make(system: PenalizedSystem, resp: Response, nagq: int) -> ScalarTerm | None:
        """The term when the model has one scalar term, a canonical link and nAGQ > 1, else None."""
        if nagq <= 1 or len(system.blocks) != 1 or system.blocks[0].p != 1 or not resp.canonical:
            return None
        return ScalarTerm(system.blocks[0], resp)

    # -- per-level sums ----------------------------------------------------------------------
    def _sums(self, A: np.ndarray) -> np.ndarray:
        """Σ over each level's rows of A (…, n) → (…, ℓ), one ``bincount`` for all leading rows
        (each row's sum in the same order as a ``bincount`` of that row alone)."""
        rows = A.size // self.codes.size
        idx = self._index.get(rows)
        if idx is None:
            idx = (np.arange(rows)[:, None] * self.ell + self.codes[None, :]).ravel()
            self._index[rows] = idx
        out = np.bincount(idx, weights=A.ravel(), minlength=rows * self.ell)
        return out.reshape(A.shape[:-1] + (self.ell,))

    def _kernel(self, ETA: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """eᶯ and b(η) (log(1 + eᶯ) or eᶯ) at ETA, or None outside the unclamped range."""
        if not (self.lo <= ETA.min() and ETA.max() <= self.hi):
            return None
        E = np.exp(ETA)
        return E, (np.log1p(E) if self.binomial else E)

    def _pdev(self, ETA: np.ndarray, B: np.ndarray, U: np.ndarray) -> np.ndarray:
        """The penalized deviance const − 2Σ pw(yη − b(η)) + ‖u‖² per row."""
        return self.const - 2.0 * (ETA @ self.pwy - B @ self.pw) + (U * U).sum(axis=-1)

    def _weights(self, E: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """μ, working weights pw·V(μ) and residuals pw·(y − μ) from eᶯ (canonical link)."""
        if self.binomial:
            MU = E / (1.0 + E)
            return MU, self.pw * (MU * (1.0 - MU)), self.pwy - self.pw * MU
        return E, self.pw * E, self.pwy - self.pw * E

    def _eta(self, F: np.ndarray, SX: np.ndarray | float, U: np.ndarray) -> np.ndarray:
        return F + SX * U[..., self.codes]

    # -- PIRLS ---------------------------------------------------------------------------------
    def pirls(self, s: np.ndarray, F: np.ndarray, U: np.ndarray,
              step_tol: float = STEP_TOL, rel_tol: float = 0.0) -> ScalarState | None:
        """The conditional modes at B points: scales ``s`` (B,), fixed parts o + Xβ ``F`` (B, n),
        from ``U`` (B, ℓ); None where a linear predictor leaves the unclamped range. The steps
        of :meth:`pirls_one` at each point (a point's arrays stay as they are once it has
        converged)."""
        S = s[:, None]
        SX = S if self.x is None else S * self.x
        ETA = self._eta(F, SX, U)
        kern = self._kernel(ETA)
        if kern is None:
            return None
        E, Bk = kern
        PD = self._pdev(ETA, Bk, U)
        done = np.zeros(len(s), dtype=bool)
        it = 0
        while True:
            MU, W, R = self._weights(E)
            D = (S * S) * self._sums(W if self.x is None else W * (self.x * self.x)) + 1.0
            if it >= MAXIT or done.all():
                return ScalarState(U, ETA, MU, Bk, PD, D, W, it, done & (D > 0.0).all(axis=-1))
            DU = (S * self._sums(R if self.x is None else R * self.x) - U) / D
            it += 1
            step = self._step(SX, F, U, PD, DU)
            if step is None:
                return None
            Un, ETAn, En, Bn, PDn, DU, good = step
            conv = (np.abs(DU).max(axis=-1) < step_tol) | (np.abs(PD - PDn) < rel_tol * np.abs(PDn))
            keep = done | ~good
            Un, ETAn, En, Bn = (np.where(keep[:, None], a, b) for a, b in
                                ((U, Un), (ETA, ETAn), (E, En), (Bk, Bn)))
            PDn = np.where(keep, PD, PDn)
            if not good.any():
                it = MAXIT
            done |= conv & good
            U, ETA, E, Bk, PD = Un, ETAn, En, Bn, PDn

    def pirls_one(self, s: float, f: np.ndarray, u: np.ndarray, step_tol: float = STEP_TOL,
                  rel_tol: float = 0.0) -> ScalarState | None:
        """:meth:`pirls` at one point, on vectors (the optimizer's evaluations; ``pdev`` a float,
        ``ok`` a bool): :func:`~.pirls.pirls_u`'s steps, the range of the linear predictor
        checked at the modes."""
        codes, ell, x = self.codes, self.ell, self.x
        sx = s if x is None else s * x
        x2 = None if x is None else x * x
        eta = f + sx * u[codes]
        e = np.exp(eta)
        b = np.log1p(e) if self.binomial else e
        pdev = self.const - 2.0 * float(eta @ self.pwy - b @ self.pw) + float(u @ u)
        it, state = 0, "running"
        while True:
            mu, w, r = self._weights(e)
            d = (s * s) * np.bincount(codes, weights=w if x2 is None else w * x2, minlength=ell) + 1.0
            if state != "running" or it >= MAXIT:
                if not (self.lo <= eta.min() and eta.max() <= self.hi):
                    return None
                ok = state == "converged" and bool((d > 0.0).all())
                return ScalarState(u, eta, mu, b, pdev, d, w, it, ok)
            g = s * np.bincount(codes, weights=r if x is None else r * x, minlength=ell)
            du = (g - u) / d
            it += 1
            for _ in range(11):
                un = u + du
                etan = f + sx * un[codes]
                en = np.exp(etan)
                bn = np.log1p(en) if self.binomial else en
                pdn = self.const - 2.0 * float(etan @ self.pwy - bn @ self.pw) + float(un @ un)
                big = float(np.abs(du).max())
                if pdn <= pdev + 1e-12 * abs(pdev) or (big < STEP_TOL and np.isfinite(pdn)):
                    break
                du = du / 2.0
            else:
                state = "failed"
                continue
            if big < step_tol or abs(pdev - pdn) < rel_tol * abs(pdn):
                state = "converged"
            u, eta, e, b, pdev = un, etan, en, bn, pdn

    def predict(self, old: ScalarState, s_old: float, f_old: np.ndarray, s: float | np.ndarray,
                f: np.ndarray) -> np.ndarray:
        """The modes at (s, o + Xβ = f) to first order from the converged state ``old`` at
        (s_old, f_old): one chord step with the old weights, ũ + D⁻¹(Δs·Σxr − s·Σxw(Δf + Δs·xũ)).
        PIRLS from there needs a step fewer; it converges to the same modes. Several points:
        ``s`` (B, 1), ``f`` (B, n)."""
        ds = s - s_old
        x = self.x
        xu = old.U[self.codes] if x is None else x * old.U[self.codes]
        r = self.pwy - self.pw * old.MU
        moved = old.W * ((f - f_old) + ds * xu)
        g = ds * self._sums(r if x is None else r * x) - s * self._sums(moved if x is None else moved * x)
        return old.U + g / old.D

    def _step(self, SX: np.ndarray, F: np.ndarray, U: np.ndarray, PD: np.ndarray,
              DU: np.ndarray) -> tuple | None:
        """The step U + DU, halved (per point, up to 10 times) while the penalized deviance rises,
        as :func:`~.pirls.pirls_u` does; ``good`` marks the points whose step was accepted."""
        for _ in range(11):
            Un = U + DU
            ETAn = self._eta(F, SX, Un)
            kern = self._kernel(ETAn)
            if kern is None:
                return None
            En, Bn = kern
            PDn = self._pdev(ETAn, Bn, Un)
            good = (PDn <= PD + 1e-12 * np.abs(PD)) | (np.abs(DU).max(axis=-1) < STEP_TOL)
            good &= np.isfinite(PDn)
            if good.all():
                break
            DU = np.where(good[:, None], DU, DU / 2.0)
        return Un, ETAn, En, Bn, PDn, DU, good

    def pirls_joint(self, s: float, X: np.ndarray, offset: np.ndarray, eta: np.ndarray,
                    u: np.ndarray, beta: np.ndarray, step_tol: float = STEP_TOL) -> Modes | None:
        """The joint modes (β̂, ũ) at the scale s (lme4's first stage), from the linear predictor
        ``eta`` (with its u, β), the steps of :func:`~.pirls.pirls_joint`: M is diagonal, so
        the fixed effects' Schur complement is XᵀWX − CᵀD⁻¹C (C = ŨᵀWX). None where a linear
        predictor leaves the unclamped range."""
        SX = s if self.x is None else s * self.x
        kern = self._kernel(eta)
        if kern is None:
            return None
        E, _ = kern
        pdev, it, converged = np.inf, 0, False
        while True:
            MU, W, R = self._weights(E)
            d = self._sums(SX * SX * W) + 1.0
            if converged or it >= MAXIT:
                return self._joint_modes(u, beta, eta, MU, pdev, d, W, R, it, converged)
            step = self._joint_step(SX, X, offset, eta, W, R, d)
            if step is None:
                return self._joint_modes(u, beta, eta, MU, pdev, d, W, R, it, False)
            du, db = step[0] - u, step[1] - beta
            it += 1
            for _ in range(11):
                un, bn = u + du, beta + db
                etan = self._eta(offset + X @ bn, SX, un)
                kern = self._kernel(etan)
                if kern is None:
                    return None
                pdn = float(self._pdev(etan, kern[1], un))
                big = max(float(np.abs(du).max(initial=0.0)), float(np.abs(db).max(initial=0.0)))
                if np.isfinite(pdn) and (pdn <= pdev + 1e-12 * abs(pdev) or big < STEP_TOL):
                    break
                du, db = du / 2.0, db / 2.0
            else:
                return self._joint_modes(u, beta, eta, MU, pdev, d, W, R, it, False)
            converged = big < step_tol
            u, beta, eta, E, pdev = un, bn, etan, kern[0], pdn

    def _joint_step(self, SX: np.ndarray | float, X: np.ndarray, offset: np.ndarray,
                    eta: np.ndarray, W: np.ndarray, R: np.ndarray,
                    d: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The solution (u, β) of the joint reweighted system (:func:`~.system.solve_fixed`
        with M = diag(d)), or None when the fixed effects' Schur complement is not positive
        definite."""
        z = (eta - offset) * W + R
        wX = X * W[:, None]
        sX = wX * SX if np.ndim(SX) == 0 else wX * np.asarray(SX)[:, None]
        ind = self._indicator()
        C = self._sums(sX.T).T if ind is None else ind.T @ sX
        Y, yr = C / d[:, None], self._sums(SX * z) / d
        _, beta, info = lapack.dposv(X.T @ wX - C.T @ Y, X.T @ z - C.T @ yr, lower=1)
        if info != 0:
            return None
        return yr - Y @ beta, beta

    def _joint_modes(self, u: np.ndarray, beta: np.ndarray, eta: np.ndarray, mu: np.ndarray,
                     pdev: float, d: np.ndarray, W: np.ndarray, R: np.ndarray, it: int,
                     converged: bool) -> Modes:
        ok = bool(np.all(d > 0))
        fac = Factor((1.0 / d)[:, None, None], None, None, float(np.sum(np.log(d))), ok)
        return Modes(u, beta, eta, mu, pdev, fac, W, it, converged and ok, R)

    # -- criteria ------------------------------------------------------------------------------
    def agq(self, st: ScalarState, s: np.ndarray | float, nagq: int) -> np.ndarray | float | None:
        """The nAGQ-point criterion at the state's points (``s`` their scales; one point:
        floats), as :func:`~.quadrature.agq_deviance`."""
        ld = np.log(st.D).sum(axis=-1)
        return self._agq(st, s if np.ndim(s) == 0 else np.asarray(s)[:, None], nagq, ld)

    def _agq(self, st: ScalarState, S: np.ndarray | float, nagq: int,
             ld: np.ndarray) -> np.ndarray | None:
        """:func:`~.quadrature.agq_deviance` at each point, all nodes at once. At node zₖ of level
        j (u = ũⱼ + zₖσⱼ, σⱼ = dⱼ^(−1/2)) the linear predictor is η̃ + zₖσⱼ·s·x, so the level's
        deviance less the one at the mode is zₖσⱼ(2ũⱼ + zₖσⱼ − 2sΣpw·y·x) + 2Σpw(b(η) − b(η̃))."""
        z, reach_z, lnw, center, w_center = node_rule(nagq)
        SD = np.sqrt(1.0 / st.D)
        H = S * SD[..., self.codes] if self.x is None else (S * self.x) * SD[..., self.codes]
        reach = np.abs(H) * reach_z  # the nodes' η lie within η̃ ± reach
        if not (self.lo <= (st.ETA - reach).min() and (st.ETA + reach).max() <= self.hi):
            return None
        E = np.exp(st.ETA[..., None, :] + z * H[..., None, :])
        Bn = np.log1p(E) if self.binomial else E
        P = self._level_weights()
        if P is None:
            G = self._sums(self.pw * (Bn - st.Bk[..., None, :]))
        else:
            G = Bn @ P - (st.Bk @ P)[..., None, :]
        ZS = z * SD[..., None, :]
        dc = ZS * ((2.0 * st.U - 2.0 * S * self._ysum)[..., None, :] + ZS) + 2.0 * G
        terms = np.exp(lnw - 0.5 * dc)
        if center >= 0:
            terms[..., center, :] = w_center
        return st.pdev + ld - 2.0 * np.log(terms.sum(axis=-2)).sum(axis=-1)


@lru_cache(maxsize=32)
def node_rule(nagq: int) -> tuple[np.ndarray, float, np.ndarray, int, float]:
    """The nagq-point rule as :meth:`ScalarTerm._agq` uses it: nodes z as a column, max|z|,
    log(wₖ/√(2π)) − log φ(zₖ) as a column, the index of the node at 0 (−1 if none) and its
    weight (that node's term is its weight exactly, as in :func:`~.quadrature.agq_deviance`)."""
    z, w, ldn = gh_rule(nagq)
    center = int(np.argmin(np.abs(z)))
    lnw = np.log(w / np.sqrt(2.0 * np.pi)) - ldn
    if z[center] != 0.0:
        center = -1
    return z[:, None], float(np.abs(z).max()), lnw[:, None], center, float(w[max(center, 0)])
