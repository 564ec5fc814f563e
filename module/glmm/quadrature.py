"""Adaptive Gauss-Hermite quadrature for a single scalar random-effects term (lme4's
``glmerAGQ``, nAGQ > 1).

With one scalar term the levels are conditionally independent and M is diagonal, so each
level's integral is one-dimensional: centred at the conditional mode ũⱼ and scaled by
sⱼ = 1/Lⱼⱼ, the deviance is

    Σⱼ devcⱼ(ũ) + log|L|² − 2 Σⱼ log Σₖ wₖ exp(−(devcⱼ(ũ + zₖsⱼ) − devcⱼ(ũ))/2 − log φ(zₖ))/√(2π),

devcⱼ(u) = uⱼ² + Σ_{i in level j} dev.residᵢ, with (zₖ, wₖ) the Gauss-Hermite rule for the
standard normal density (lme4's ``GHrule``). As in lme4 1.1-31 it is built on deviance residuals,
not on the family's ``aic``, so for nAGQ > 1 the criterion differs from the Laplace one by the
family's constant (lme4 documents that deviances for different nAGQ are not comparable).
"""
from __future__ import annotations

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from ..lmm.remat import ReTerm
from .pirls import Modes, Response

#: lme4's largest number of quadrature points.
MAX_NAGQ = 25


def gh_rule(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes z, weights w (summing to 1) and log φ(z) of the k-point rule for N(0, 1)."""
    z, w = hermegauss(k)
    w = w / np.sqrt(2.0 * np.pi)
    z = np.where(np.abs(z) < 1e-14, 0.0, z)
    return z, w, -0.5 * np.log(2.0 * np.pi) - 0.5 * z * z


def agq_deviance(term: ReTerm, Ut: np.ndarray, resp: Response, fixed: np.ndarray, modes: Modes,
                 nagq: int) -> float:
    """The nAGQ-point deviance at the modes of one scalar term (Ũ column ``Ut``, n×1)."""
    codes, ell = term.codes, term.nlevels
    u0 = modes.u
    sd = np.sqrt(modes.fac.D0inv[:, 0, 0])
    x = Ut[:, 0]

    def devc(u: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            mu = resp.family.linkinv(fixed + x * u[codes])
        return u * u + np.bincount(codes, weights=resp.devres(mu), minlength=ell)

    devc0 = devc(u0)
    mult = np.zeros(ell)
    z, w, ldn = gh_rule(nagq)
    for zk, wk, lk in zip(z, w, ldn):
        if zk == 0.0:
            mult += wk
        else:
            mult += np.exp(-0.5 * (devc(u0 + zk * sd) - devc0) - lk) * wk / np.sqrt(2.0 * np.pi)
    return float(np.sum(devc0) + modes.fac.ldL2 - 2.0 * np.sum(np.log(mult)))
