"""PIRLS and the criteria for a single scalar random-effects term with a canonical link
(binomial–logit, Poisson–log), vectorized over the levels and over several (θ, β) at once.

With one scalar term, M = ŨᵀWŨ + I is diagonal: the conditional modes of the levels are
independent, and a PIRLS step is one Newton step per level, uⱼ ← uⱼ + (sΣᵢ xᵢrᵢ − uⱼ)/dⱼ with
dⱼ = 1 + s²Σᵢ xᵢ²wᵢ (sums over the level's rows, s = θ, x the term's column), formed with
``bincount``; no factorisation is needed. With the canonical link the log-likelihood kernel is
pw(yη − b(η)) (b = log(1 + eᶯ) or eᶯ), so μ, the penalized deviance and the quadrature nodes'
deviances need one exponential per row and node.

The steps, step-halving and stopping rules are those of :func:`~.pirls.pirls_u` (the same modes
to rounding), and the criteria those of :meth:`~.model.GeneralizedLinearMixedModel.deviance` and
:func:`~.quadrature.agq_deviance`: the numbers agree with the general path to about 1e-12.
Rows of the arrays are parameter points (one for the optimizer, all points of the
finite-difference Hessian at once). Where a linear predictor leaves the range in which R's
inverse link is not clamped, the caller falls back to the general path (None).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from ..lmm.remat import ReTerm
from .pirls import MAXIT, STEP_TOL, Modes, Response
from .quadrature import gh_rule
from .system import Factor, PenalizedSystem

#: R's logit clamp: within it μ = eᶯ/(1 + eᶯ) exactly.
LOGIT_RANGE = (-30.0, 30.0)
#: Within it R's log-link μ = max(eᶯ, ε) is eᶯ (e⁻³⁶ > ε) and finite.
LOG_RANGE = (-36.0, 700.0)


@dataclass
class ScalarState:
    """PIRLS at B points: modes ``U`` (B, ℓ), ``ETA``/``MU`` (B, n) linear predictor and mean,
    ``Bk`` (B, n) b(η), ``pdev`` (B,) penalized deviance, ``D`` (B, ℓ) the diagonal of M at the modes, ``W`` (B, n)
    working weights there, ``iterations``, ``ok`` (B,) converged with M positive definite."""

    U: np.ndarray
    ETA: np.ndarray
    MU: np.ndarray
    Bk: np.ndarray
    pdev: np.ndarray
    D: np.ndarray
    W: np.ndarray
    iterations: int
    ok: np.ndarray


class ScalarTerm:
    """One scalar term (block ``block``) and a canonical-link response: the vectorized PIRLS
    (:meth:`pirls`), the Laplace and adaptive Gauss-Hermite criteria (:meth:`deviance`)."""

    def __init__(self, block: ReTerm, resp: Response) -> None:
        self.codes, self.ell = block.codes, block.nlevels
        x = np.asarray(block.X[:, 0], dtype=float)
        self.x = None if bool(np.all(x == 1.0)) else x
        self.theta_index = int(block.theta_index[0])
        self.resp = resp
        y, pw = resp.y, resp.pw
        self.pw, self.pwy = pw, pw * y
        self.binomial = resp.family.name == "binomial"
        self.lo, self.hi = LOGIT_RANGE if self.binomial else LOG_RANGE
        # Σ dev.resids = const − 2Σ pw(yη − b(η)), the constant 2Σ pw·(y log y + (1−y)log(1−y))
        # (binomial) or 2Σ pw·(y log y − y) (Poisson)
        c = special.xlogy(y, y) + (special.xlogy(1.0 - y, 1.0 - y) if self.binomial else -y)
        self.const = float(np.sum(2.0 * pw * c))
        self._index: dict[int, np.ndarray] = {}

    @staticmethod
    def make(system: PenalizedSystem, resp: Response) -> ScalarTerm | None:
        """The term when the model has one scalar term and a canonical link, else None."""
        if len(system.blocks) != 1 or system.blocks[0].p != 1 or not resp.canonical:
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

    def _eta(self, F: np.ndarray, SX: np.ndarray, U: np.ndarray) -> np.ndarray:
        return F + SX * U[..., self.codes]

    # -- PIRLS ---------------------------------------------------------------------------------
    def pirls(self, s: np.ndarray, F: np.ndarray, U: np.ndarray,
              step_tol: float = STEP_TOL, rel_tol: float = 0.0) -> ScalarState | None:
        """The conditional modes at B points: scales ``s`` (B,), fixed parts o + Xβ ``F`` (B, n),
        from ``U`` (B, ℓ); None where a linear predictor leaves the unclamped range."""
        S = s[:, None]
        SX = S if self.x is None else S * self.x
        S2X2 = S * S if self.x is None else (S * S) * (self.x * self.x)
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
            D = self._sums(S2X2 * W) + 1.0
            if it >= MAXIT or done.all():
                return ScalarState(U, ETA, MU, Bk, PD, D, W, it, done & (D > 0.0).all(axis=-1))
            DU = (S * self._sums(R if self.x is None else R * self.x) - U) / D
            it += 1
            step = self._step(SX, F, U, PD, DU)
            if step is None:
                return None
            Un, ETAn, En, Bn, PDn, DU, good = step
            conv = (np.abs(DU).max(axis=-1) < step_tol) | (np.abs(PD - PDn) < rel_tol * np.abs(PDn))
            if len(s) > 1 or not good[0]:
                keep = done | ~good
                Un, ETAn, En, Bn = (np.where(keep[:, None], a, b) for a, b in
                                    ((U, Un), (ETA, ETAn), (E, En), (Bk, Bn)))
                PDn = np.where(keep, PD, PDn)
                if not good.any():
                    it = MAXIT
            done |= conv & good
            U, ETA, E, Bk, PD = Un, ETAn, En, Bn, PDn

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

    # -- criteria ------------------------------------------------------------------------------
    def deviance(self, st: ScalarState, s: np.ndarray, F: np.ndarray, nagq: int,
                 aic_constant: float) -> np.ndarray | None:
        """The criterion at each point: Laplace (nAGQ ≤ 1, ``aic_constant`` the family's aic
        less Σ dev.resids) or nAGQ-point adaptive Gauss-Hermite quadrature."""
        ld = np.log(st.D).sum(axis=-1)
        if nagq <= 1:
            return ld + st.pdev + aic_constant
        return self._agq(st, s, F, nagq, ld)

    def _agq(self, st: ScalarState, s: np.ndarray, F: np.ndarray, nagq: int,
             ld: np.ndarray) -> np.ndarray | None:
        """:func:`~.quadrature.agq_deviance` at each point, all nodes at once: deviances at the
        nodes relative to the modes are −2 times the kernel's change."""
        z, w, ldn = gh_rule(nagq)
        SD = np.sqrt(1.0 / st.D)
        UN = st.U[:, None, :] + z[None, :, None] * SD[:, None, :]
        S = s[:, None, None]
        SX = S if self.x is None else S * self.x
        ETA = self._eta(F[:, None, :], SX, UN)
        nodes = self._kernel(ETA)
        if nodes is None:
            return None
        ll0 = self._sums(self.pwy * st.ETA - self.pw * st.Bk)
        g = self._sums(self.pwy * ETA - self.pw * nodes[1]) - ll0[:, None, :]
        dc = UN * UN - (st.U * st.U)[:, None, :] - 2.0 * g
        terms = np.exp(-0.5 * dc - ldn[None, :, None]) * (w / np.sqrt(2.0 * np.pi))[None, :, None]
        center = int(np.argmin(np.abs(z)))
        if z[center] == 0.0:
            terms[:, center, :] = w[center]
        return st.pdev + ld - 2.0 * np.log(terms.sum(axis=1)).sum(axis=-1)

    def modes(self, st: ScalarState, row: int = 0) -> Modes:
        """One point's state as the general path's :class:`~.pirls.Modes` (for the fit's
        quantities at the optimum)."""
        d = st.D[row]
        fac = Factor((1.0 / d)[:, None, None], None, None, float(np.sum(np.log(d))), bool(np.all(d > 0)))
        R = self.pwy - self.pw * st.MU[row]
        return Modes(st.U[row], np.zeros(0), st.ETA[row], st.MU[row], float(st.pdev[row]), fac,
                     st.W[row], st.iterations, bool(st.ok[row]), R)
