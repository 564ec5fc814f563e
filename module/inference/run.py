"""The native inference step: from a prepared problem and its native fit to an
:class:`~mixedbridge.fit.Inference` (coefficient tests, anova, intervals)."""
from __future__ import annotations

import time

import numpy as np
from scipy import stats

from ..errors import SpecError
from ..fit import Fit, Inference
from ..problem import Problem
from . import contrasts as ctr
from . import kenwardroger as kr
from . import lrt
from . import satterthwaite as sat
from .options import Settings


def anova_terms(problem: Problem, s: Settings, wanted: list[str] | None = None) -> list[str]:
    """Model terms to test (all by default), checking requested ones exist."""
    labels = [t.label for t in problem.desc.fixed]
    if wanted is None:
        return labels
    for i, t in enumerate(wanted):
        if t not in labels:
            raise SpecError(f"/options/anova/terms/{i}: {t!r} is not a term of the model; terms are "
                            + (", ".join(repr(x) for x in labels) or "(none)"), f"/options/anova/terms/{i}")
    return [t for t in labels if t in wanted]


def infer_native(problem: Problem, fit: Fit, s: Settings, terms: list[str] | None = None) -> Inference:
    """Everything ``s`` asks for, computed in Python."""
    inf = Inference(df_method=s.df_method)
    t0 = time.perf_counter()
    p = len(fit.coef_names)
    E = np.eye(p)
    cache: dict = {}

    def vp():
        if "vp" not in cache:
            cache["vp"] = sat.varpar_covariance(fit.extra["model"], fit.theta)
            inf.warnings += cache["vp"].warnings
        return cache["vp"]

    def kra():
        if "kr" not in cache:
            cache["kr"] = kr.vcov_adjusted(fit.extra["model"])
        return cache["kr"]

    if fit.analysis == "lm" or s.df_method == "residual":
        rows = [_t_row(fit.beta[i], fit.se[i], fit.df_residual) for i in range(p)]
    elif s.df_method == "asymptotic":
        rows = [_t_row(fit.beta[i], fit.se[i], np.inf) for i in range(p)]
    elif s.df_method == "satterthwaite":
        rows = [sat.contest1d(vp(), E[i]) for i in range(p)]
    else:
        rows = [kr.contest1d(kra(), E[i]) for i in range(p)]
    inf.coef = {name: {k: r[k] for k in ("std.error", "statistic", "df", "p.value")}
                for name, r in zip(fit.coef_names, rows)}
    inf.timing["coef_s"] = time.perf_counter() - t0

    if s.anova_method is not None:
        t1 = time.perf_counter()
        labels = anova_terms(problem, s, terms)
        lay = ctr.layout(problem)
        inf.anova_info = {"type": s.anova_type, "method": s.anova_method}
        if s.anova_method in ("lrt", "bootstrap"):
            cols = {}
            if s.anova_intercept and problem.desc.intercept:
                cols["(Intercept)"] = lay.columns("(Intercept)")
            for t in labels:
                cols[t] = lay.columns(t)
            if s.anova_method == "lrt":
                inf.anova, _ = lrt.term_tests(problem, fit, cols)
            else:
                from .bootstrap import term_tests as pb_tests
                inf.anova = pb_tests(problem, fit, cols, s.anova_nsim, s.anova_seed)
                inf.anova_info.update({"nsim": s.anova_nsim, "seed": s.anova_seed})
        else:
            Ls = ctr.contrasts(lay, s.anova_type)
            rows = []
            for t in labels:
                L = Ls[t]
                if s.anova_method == "residual":
                    r = _f_residual(fit, L)
                elif s.anova_method == "satterthwaite":
                    r = sat.contest_md(vp(), L)
                else:
                    r = kr.contest_md(kra(), L)
                rows.append({"term": t, **r})
            inf.anova = rows
        inf.timing["anova_s"] = time.perf_counter() - t1

    if s.confint_method is not None:
        t2 = time.perf_counter()
        from .confint import confint
        inf.confint = confint(problem, fit, s)
        inf.confint_info = {"method": s.confint_method, "level": s.confint_level}
        if s.confint_method == "bootstrap":
            inf.confint_info.update({"nsim": s.confint_nsim, "seed": s.confint_seed})
        inf.timing["confint_s"] = time.perf_counter() - t2
    return inf


def _t_row(est: float, se: float, df: float) -> dict:
    t = est / se if se > 0 else np.nan
    p = float(2.0 * (stats.norm.sf(abs(t)) if np.isinf(df) else stats.t.sf(abs(t), df)))
    return {"estimate": est, "std.error": se, "statistic": t, "df": None if np.isinf(df) else df,
            "p.value": p}


def _f_residual(fit: Fit, L: np.ndarray) -> dict:
    """Exact F test of Lβ = 0 for an ``lm`` (residual df)."""
    L = np.atleast_2d(L)
    q = int(np.linalg.matrix_rank(L)) if L.size else 0
    if q == 0:
        return {"sumsq": None, "meansq": None, "NumDF": 0, "DenDF": None, "statistic": None, "p.value": None}
    Lb = L @ fit.beta
    F = float(Lb @ np.linalg.solve(L @ fit.vcov @ L.T, Lb)) / q
    ms = F * fit.sigma**2
    return {"sumsq": ms * q, "meansq": ms, "NumDF": q, "DenDF": fit.df_residual, "statistic": F,
            "p.value": float(stats.f.sf(F, q, fit.df_residual))}
