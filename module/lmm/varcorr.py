"""Variance components from θ and σ (lme4's ``VarCorr``)."""
from __future__ import annotations

import numpy as np

from ..fit import VarComp
from .remat import ReTerm


def varcorr(terms: list[ReTerm], theta: np.ndarray, sigma: float) -> list[VarComp]:
    """One :class:`~mixedbridge.fit.VarComp` per term, in lme4's term order; a correlation
    involving a zero sd is NaN, as in lme4's ``VarCorr`` (:meth:`~.remat.ReTerm.sd_corr`)."""
    out = []
    for t in terms:
        sd, corr = t.sd_corr(theta, sigma)
        out.append(VarComp(t.group, list(t.names), sd, corr))
    return out
