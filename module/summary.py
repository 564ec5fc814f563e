"""The text of a model's ``summary()``, laid out as lme4/lmerTest's and R's ``summary.lm`` print
theirs (the numbers are the model's tables')."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .families import has_scale
from .table import Column, printable

if TYPE_CHECKING:
    from .model import Model

_DF_WORDS = {"satterthwaite": "t-tests use Satterthwaite's method",
             "kenward-roger": "t-tests use Kenward-Roger's method",
             "asymptotic": "Wald z tests (asymptotic)"}


def _aligned(rows: list[list[str]], right: list[bool]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [" ".join(c.rjust(w) if ri else c.ljust(w) for c, w, ri in zip(r, widths, right)).rstrip() for r in rows]


def _p(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return ""
    return "< 2e-16" if value < 2e-16 else f"{value:.3g}"


def _stars(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return ""
    return next(s for cut, s in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."), (1.01, " ")) if value < cut)


def _quantiles(values: np.ndarray) -> list[str]:
    q = np.quantile(values, [0, 0.25, 0.5, 0.75, 1])
    return _aligned([["Min", "1Q", "Median", "3Q", "Max"], [f"{v:.4f}" for v in q]], [True] * 5)


def _formatted(name: str, values: list) -> list[str]:
    """A column's numbers with one number of decimals (:meth:`Column.decimals`)."""
    col = Column(name)
    decimals = col.decimals(values)
    return [col.render(v, decimals) for v in values]


def _coefficients(model: Model) -> list[str]:
    frame = model.table("parameters")
    fixed = frame[frame["effect"] == "fixed"]
    with_df = bool(fixed["df"].notna().any()) and model.is_mixed and not model.is_glmm
    names = ["estimate", "std.error"] + (["df"] if with_df else []) + ["statistic"]
    columns = [_formatted(n, [None if pd.isna(v) else float(v) for v in fixed[n]]) for n in names]
    z = model.is_glmm and not has_scale(model.fit.family)
    stat = ["z value", "Pr(>|z|)"] if z else ["t value", "Pr(>|t|)"]
    head = ["", "Estimate", "Std. Error"] + (["df"] if with_df else []) + [*stat, ""]
    rows = [head]
    for i, (_, r) in enumerate(fixed.iterrows()):
        rows.append([printable(str(r["term"]))] + [c[i] for c in columns] + [_p(r["p.value"]), _stars(r["p.value"])])
    return _aligned(rows, [False] + [True] * (len(head) - 2) + [False]) + [
        "---", "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"]


def _random_effects(model: Model) -> list[str]:
    entries = [(printable(vc.group) if i == 0 else "", printable(term), float(vc.sd[i]),
                " ".join(f"{vc.corr[i, j]:.2f}" for j in range(i)))
               for vc in model.fit.varcorr for i, term in enumerate(vc.terms)]
    if not model.is_glmm or has_scale(model.fit.family):
        entries.append(("Residual", "", model.sigma, ""))
    variances = _formatted("variance", [e[2] ** 2 for e in entries])
    sds = _formatted("sd", [e[2] for e in entries])
    corr = any(len(vc.terms) > 1 for vc in model.fit.varcorr)  # R prints Corr only when there is one
    rows = [["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] if corr else [])]
    rows += [[g, t, v, s] + ([c] if corr else []) for (g, t, _, c), v, s in zip(entries, variances, sds)]
    groups = ", ".join(f"{printable(g)}, {n}" for g, n in model.fit.ngroups.items())
    return [" " + line for line in _aligned(rows, [False, False, True, True, False][:len(rows[0])])] + [
        f"Number of obs: {model.nobs}, groups:  {groups}"]


def _approximation(nagq: int) -> str:
    if nagq == 0:
        return "nAGQ = 0: fixed effects in the penalized iteratively reweighted least squares"
    if nagq == 1:
        return "Laplace Approximation"
    return f"Adaptive Gauss-Hermite Quadrature, nAGQ = {nagq}"


def glmm_summary(model: Model) -> str:
    """``summary(glmer)``'s text: family and link, information criteria, scaled (Pearson)
    residuals, random effects, Wald z (or t) tests of the fixed effects."""
    fit = model.fit
    resid = model.residuals(type="pearson", scaled=True).dropna().to_numpy()
    nagq = int(fit.optinfo.get("nAGQ", model.problem.nagq))
    crit = _aligned([["AIC", "BIC", "logLik", "deviance", "df.resid"],
                     [f"{fit.aic:.1f}", f"{fit.bic:.1f}", f"{fit.loglik:.1f}", f"{fit.deviance:.1f}",
                      f"{fit.df_residual:.0f}"]], [True] * 5)
    lines = [f"Generalized linear mixed model fit by maximum likelihood ({_approximation(nagq)}) "
             f"(engine {fit.engine})", f" Family: {model.family}  ( {model.link} )",
             f"Formula: {printable(model.formula)}", "", *crit, "", "Scaled residuals:", *_quantiles(resid), "",
             "Random effects:", *_random_effects(model), "", "Fixed effects:", *_coefficients(model)]
    lines += [f"Note: {printable(n)}" for n in model.results.notes]
    lines += [f"Warning: {printable(w)}" for w in model.results.warnings]
    return "\n".join(lines) + "\n"


def model_summary(model: Model) -> str:
    """lme4/lmerTest's ``summary`` for a mixed model, ``summary.lm``'s for a regression."""
    if model.is_glmm:
        return glmm_summary(model)
    fit = model.fit
    resid = model.residuals(scaled=model.is_mixed).dropna().to_numpy()
    if not model.is_mixed:
        lines = [f"Linear model (engine {fit.engine})", f"Formula: {printable(model.formula)}", "",
                 "Residuals:", *_quantiles(resid), "", "Coefficients:", *_coefficients(model), "",
                 f"Residual standard error: {fit.sigma:.4g} on {fit.df_residual:.0f} degrees of freedom",
                 f"Multiple R-squared: {fit.r_squared:.4f}, Adjusted R-squared: {fit.adj_r_squared:.4f}"]
        return "\n".join(lines) + "\n"
    how = "REML" if fit.reml else "maximum likelihood"
    tests = _DF_WORDS.get(model.inference.df_method, "")
    crit = (f"REML criterion at convergence: {fit.reml_crit:.1f}" if fit.reml and fit.reml_crit is not None else
            f"     AIC      BIC   logLik deviance\n{fit.aic:8.1f} {fit.bic:8.1f} {fit.loglik:8.1f} {fit.deviance:8.1f}")
    lines = [f"Linear mixed model fit by {how}" + (f". {tests}" if tests else "") + f" (engine {fit.engine})",
             f"Formula: {printable(model.formula)}", "", crit, "", "Scaled residuals:", *_quantiles(resid), "",
             "Random effects:", *_random_effects(model), "", "Fixed effects:", *_coefficients(model)]
    lines += [f"Note: {printable(n)}" for n in model.results.notes]
    lines += [f"Warning: {printable(w)}" for w in model.results.warnings]
    return "\n".join(lines) + "\n"
