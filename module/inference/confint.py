"""Confidence intervals: Wald (β̂ ± z·SE, t for ``lm``; lme4's confint(method = "Wald")),
profile likelihood (:mod:`.profile`) and parametric bootstrap (:mod:`.bootstrap`).
Variance parameters are named as lme4's ``oldNames`` (.sig01, ..., .sigma)."""
from __future__ import annotations

from .. import distributions as dist
from ..families import has_scale
from ..fit import Fit
from ..lmm.remat import sig_names
from ..problem import Problem
from .options import Settings


def wald(fit: Fit, level: float) -> list[dict]:
    a = (1.0 + level) / 2.0
    mixed = fit.analysis in ("lmm", "glmm")
    q = dist.norm.ppf(a) if mixed else dist.t.ppf(a, fit.df_residual)
    rows: list[dict] = []
    if mixed:
        ntheta = 0 if fit.theta is None else len(fit.theta)
        names = sig_names(ntheta)
        if fit.analysis == "glmm" and not has_scale(fit.family):
            names = names[:-1]  # no .sigma: the family has no scale (as lme4's confint)
        rows += [{"parameter": n, "lower": None, "upper": None} for n in names]
    se = fit.se
    rows += [{"parameter": n, "lower": float(fit.beta[i] - q * se[i]), "upper": float(fit.beta[i] + q * se[i])}
             for i, n in enumerate(fit.coef_names)]
    return rows


def confint(problem: Problem, fit: Fit, s: Settings) -> list[dict]:
    if s.confint_method == "wald":
        return wald(fit, s.confint_level)
    if s.confint_method == "bootstrap":
        from .bootstrap import confint as boot
        return boot(problem, fit, s.confint_level, s.confint_nsim, s.confint_seed)
    if fit.analysis == "glmm":
        from .glmm_profile import confint as glmm_prof
        return glmm_prof(fit, s.confint_level)
    from .profile import confint as prof
    return prof(problem, fit, s.confint_level)
