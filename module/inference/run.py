"""The native inference step: from a prepared problem and its native fit to an
:class:`~mixedbridge.fit.Inference` (coefficient tests, anova, intervals)."""
from __future__ import annotations

import time

import numpy as np

from .. import distributions as dist
from ..engines import native_model
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


class _Derived:
    """The variance-parameter quantities the tests share, computed once on first use:
    Satterthwaite's covariance of (θ, σ) and Kenward-Roger's adjusted covariance."""

    def __init__(self, fit: Fit) -> None:
        self.fit = fit
        self._vp: sat.VarparCovariance | None = None
        self._kr: kr.KRAdjusted | None = None

    def varpar(self) -> sat.VarparCovariance:
        if self._vp is None:
            self._vp = sat.varpar_covariance(native_model(self.fit, "Satterthwaite's df"), self.fit.theta,
                                             estimates=(self.fit.beta, self.fit.vcov))
        return self._vp

    def adjusted(self) -> kr.KRAdjusted:
        if self._kr is None:
            self._kr = kr.vcov_adjusted(native_model(self.fit, "Kenward-Roger's df"))
        return self._kr

    @property
    def warnings(self) -> list[str]:
        return list(self._vp.warnings) if self._vp is not None else []


def infer_native(problem: Problem, fit: Fit, s: Settings, terms: list[str] | None = None) -> Inference:
    """Everything ``s`` asks for, computed in Python."""
    derived = _Derived(fit)
    timing: dict = {}
    t0 = time.perf_counter()
    coef = _coef_tests(fit, s, derived)
    timing["coef_s"] = time.perf_counter() - t0
    anova: list[dict] | None = None
    anova_info: dict = {}
    if s.anova_method is not None:
        t1 = time.perf_counter()
        anova, anova_info = _anova(problem, fit, s, derived, anova_terms(problem, s, terms))
        timing["anova_s"] = time.perf_counter() - t1
    confint_rows: list[dict] | None = None
    confint_info: dict = {}
    if s.confint_method is not None:
        t2 = time.perf_counter()
        from .confint import confint
        confint_rows = confint(problem, fit, s)
        confint_info = {"method": s.confint_method, "level": s.confint_level}
        if s.confint_method == "bootstrap":
            confint_info.update({"nsim": s.confint_nsim, "seed": s.confint_seed})
        timing["confint_s"] = time.perf_counter() - t2
    return Inference(df_method=s.df_method, coef=coef, anova=anova, anova_info=anova_info,
                     confint=confint_rows, confint_info=confint_info, warnings=derived.warnings,
                     timing=timing)


def _coef_tests(fit: Fit, s: Settings, derived: _Derived) -> dict[str, dict]:
    """SE, statistic, df and p of each fixed effect under ``s.df_method``."""
    p = len(fit.coef_names)
    if fit.analysis == "glmm":  # Wald z (t with a scale; normal p either way), as summary(glmer)
        rows = [t_row(fit.beta[i], fit.se[i], np.inf) for i in range(p)]
    elif fit.analysis == "lm" or s.df_method == "residual":
        rows = [t_row(fit.beta[i], fit.se[i], fit.df_residual) for i in range(p)]
    elif s.df_method == "asymptotic":
        rows = [t_row(fit.beta[i], fit.se[i], np.inf) for i in range(p)]
    elif s.df_method == "satterthwaite":
        rows = [sat.coef_test(derived.varpar(), i) for i in range(p)]
    else:
        E = np.eye(p)
        rows = [kr.contest1d(derived.adjusted(), E[i]) for i in range(p)]
    return {name: {k: r[k] for k in ("std.error", "statistic", "df", "p.value")}
            for name, r in zip(fit.coef_names, rows)}


def _anova(problem: Problem, fit: Fit, s: Settings, derived: _Derived,
           labels: list[str]) -> tuple[list[dict], dict]:
    """The anova rows and their description (type, method, bootstrap settings)."""
    lay = ctr.layout(problem)
    info: dict = {"type": s.anova_type, "method": s.anova_method}
    if s.anova_method in ("lrt", "bootstrap"):
        cols = {}
        if s.anova_intercept and problem.desc.intercept:
            cols["(Intercept)"] = lay.columns("(Intercept)")
        for t in labels:
            cols[t] = lay.columns(t)
        if fit.analysis == "glmm":
            from .glmm_tests import term_tests as glmm_tests
            boot = s.anova_method == "bootstrap"
            if boot:
                info.update({"nsim": s.anova_nsim, "seed": s.anova_seed})
            return glmm_tests(fit, cols, s.anova_nsim if boot else None, s.anova_seed), info
        if s.anova_method == "lrt":
            return lrt.term_tests(problem, fit, cols)[0], info
        from .bootstrap import term_tests as pb_tests
        info.update({"nsim": s.anova_nsim, "seed": s.anova_seed})
        return pb_tests(problem, fit, cols, s.anova_nsim, s.anova_seed), info
    Ls = ctr.contrasts(lay, s.anova_type)
    rows = []
    for t in labels:
        if s.anova_method == "residual":
            r = f_residual(fit, Ls[t])
        elif s.anova_method == "asymptotic":
            r = f_wald(fit, Ls[t])
        elif s.anova_method == "satterthwaite":
            r = sat.contest_md(derived.varpar(), Ls[t])
        else:
            r = kr.contest_md(derived.adjusted(), Ls[t])
        rows.append({"term": t, **r})
    return rows, info


def t_row(est: float, se: float, df: float) -> dict:
    """Estimate, SE, t (z when df is infinite) and two-sided p of one coefficient."""
    t = est / se if se > 0 else np.nan
    p = float(2.0 * (dist.norm.sf(abs(t)) if np.isinf(df) else dist.t.sf(abs(t), df)))
    return {"estimate": est, "std.error": se, "statistic": t, "df": None if np.isinf(df) else df,
            "p.value": p}


def f_wald(fit: Fit, L: np.ndarray) -> dict:
    """Wald test of Lβ = 0 with infinite denominator df (``df_method`` asymptotic): F is the Wald
    chi-square over NumDF and p its chi-square(NumDF) tail (the F's with Inf df); no DenDF.
    Nothing of the variance-parameter (Satterthwaite) machinery runs."""
    L = np.atleast_2d(L)
    if not L.size:
        return {"sumsq": None, "meansq": None, "NumDF": 0, "DenDF": None, "statistic": None, "p.value": None}
    w, U = np.linalg.eigh(L @ fit.vcov @ L.T)
    pos = w > 1e-8 * max(float(w.max()), 0.0)
    q = int(pos.sum())
    if q == 0:
        return {"sumsq": None, "meansq": None, "NumDF": 0, "DenDF": None, "statistic": None, "p.value": None}
    Lb = U[:, pos].T @ (L @ fit.beta)
    F = float(np.sum(Lb**2 / w[pos])) / q
    ms = F * fit.sigma**2
    return {"sumsq": ms * q, "meansq": ms, "NumDF": q, "DenDF": None, "statistic": F,
            "p.value": float(dist.chi2.sf(F * q, q))}


def f_residual(fit: Fit, L: np.ndarray) -> dict:
    """Exact F test of Lβ = 0 for an ``lm`` (residual df)."""
    L = np.atleast_2d(L)
    q = int(np.linalg.matrix_rank(L)) if L.size else 0
    if q == 0:
        return {"sumsq": None, "meansq": None, "NumDF": 0, "DenDF": None, "statistic": None, "p.value": None}
    Lb = L @ fit.beta
    F = float(Lb @ np.linalg.solve(L @ fit.vcov @ L.T, Lb)) / q
    ms = F * fit.sigma**2
    return {"sumsq": ms * q, "meansq": ms, "NumDF": q, "DenDF": fit.df_residual, "statistic": F,
            "p.value": float(dist.f.sf(F, q, fit.df_residual))}
