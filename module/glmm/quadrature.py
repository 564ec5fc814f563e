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

from functools import lru_cache

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from ..lmm.remat import ReTerm
from .pirls import Modes, Response

#: lme4's largest number of quadrature points.
MAX_NAGQ = 25


@lru_cache(maxsize=32)
def gh_rule(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes z, weights w (summing to 1) and log φ(z) of the k-point rule for N(0, 1)."""
    z, w = hermegauss(k)
    w = w / np.sqrt(2.0 * np.pi)
    z = np.where(np.abs(z) < 1e-14, 0.0, z)
    return z, w, -0.5 * np.log(2.0 * np.pi) - 0.5 * z * z


_NODE_INDEX: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}


def _node_index(codes: np.ndarray, ell: int, k: int) -> np.ndarray:
    """For the k × n array of (node, observation) values, the index of its (node, level) cell
    (formed once per codes and k: the same at every evaluation)."""
    key = (id(codes), ell, k)
    hit = _NODE_INDEX.get(key)
    if hit is None or hit[0] is not codes:
        if len(_NODE_INDEX) > 32:
            _NODE_INDEX.clear()
        hit = (codes, (np.arange(k)[:, None] * ell + codes[None, :]).ravel())
        _NODE_INDEX[key] = hit
    return hit[1]


def agq_deviance(term: ReTerm, Ut: np.ndarray, resp: Response, fixed: np.ndarray, modes: Modes,
                 nagq: int) -> float:
    """The nAGQ-point deviance at the modes of one scalar term (Ũ column ``Ut``, n×1), all
    nodes at once."""
    codes, ell = term.codes, term.nlevels
    u0 = modes.u
    sd = np.sqrt(modes.fac.D0inv[:, 0, 0])
    z, w, ldn = gh_rule(nagq)
    U = u0[None, :] + z[:, None] * sd[None, :]
    mu = resp.linkinv(fixed[None, :] + Ut[:, 0][None, :] * U[:, codes])
    dev = resp.family.dev_resids(resp.y[None, :], mu, resp.pw[None, :])
    k = len(z)
    devc = U * U + np.bincount(_node_index(codes, ell, k), weights=dev.ravel(),
                               minlength=k * ell).reshape(k, ell)
    center = int(np.argmin(np.abs(z)))
    devc0 = (u0 * u0 + np.bincount(codes, weights=resp.devres(modes.mu), minlength=ell))
    terms = np.exp(-0.5 * (devc - devc0[None, :]) - ldn[:, None]) * (w / np.sqrt(2.0 * np.pi))[:, None]
    if z[center] == 0.0:
        terms[center] = w[center]
    mult = np.sum(terms, axis=0)
    return float(np.sum(devc0) + modes.fac.ldL2 - 2.0 * np.sum(np.log(mult)))
