"""Variance components from θ and σ (lme4's ``VarCorr``)."""
from __future__ import annotations

import numpy as np

from ..fit import VarComp
from .remat import ReTerm


def term_covariance(term: ReTerm, theta: np.ndarray, sigma: float) -> np.ndarray:
    """Σᵢ = σ²TᵢTᵢᵀ, the covariance of one level's random effects."""
    T = term.template(theta)
    return sigma**2 * (T @ T.T)


def cov_to_corr(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standard deviations and correlation matrix; correlations involving a zero sd are NaN
    (as R's ``cov2cor``), the diagonal is 1."""
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    np.fill_diagonal(corr, 1.0)
    return sd, corr


def varcorr(terms: list[ReTerm], theta: np.ndarray, sigma: float) -> list[VarComp]:
    """One :class:`~mixedbridge.fit.VarComp` per term, in lme4's term order."""
    out = []
    for t in terms:
        sd, corr = cov_to_corr(term_covariance(t, theta, sigma))
        out.append(VarComp(t.group, list(t.names), sd, corr))
    return out
