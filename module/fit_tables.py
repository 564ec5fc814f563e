"""The one table layer: reads an engine-independent :class:`~mixedbridge.fit.Fit` and builds the
``parameters``, ``fit``, ``random_effects`` and ``groups`` tables (broom / broom.mixed names)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import distributions as dist
from .families import has_scale
from .fit import Fit, Inference
from .kept import KeptByOwners
from .lmm.remat import sdcor_layout, sig_names
from .table import Column, Table

_DF_NOTE = {
    "satterthwaite": "t tests with Satterthwaite's degrees of freedom (as lmerTest).",
    "kenward-roger": "t tests with Kenward-Roger's degrees of freedom and adjusted standard errors "
                     "(as lmerTest with pbkrtest).",
    "asymptotic": "Wald z tests (asymptotic, infinite degrees of freedom).",
}


def _statistic_title(fit: Fit) -> str:
    """The test statistic's name as ``summary`` prints it: z for a glmm without a scale."""
    return "z" if fit.analysis == "glmm" and not has_scale(fit.family) else "t"


def parameters_table(fit: Fit, inf: Inference | None = None) -> Table:
    """Fixed effects and, for mixed models, the random-effects sds and correlations."""
    table = Table("parameters", "Parameter estimates", [
        Column("effect", "Effect", "string"),
        Column("group", "Group", "string"),
        Column("term", "Term", "string"),
        Column("estimate", "Estimate"),
        Column("std.error", "SE"),
        Column("statistic", _statistic_title(fit)),
        Column("df", "df"),
        Column("p.value", "p", "pvalue"),
    ])
    se = np.array(fit.se, dtype=float)
    df, p = _fixed_df_p(fit, inf)
    for i, name in enumerate(fit.coef_names):
        t = fit.beta[i] / se[i] if se[i] > 0 else np.nan
        got = inf.coef.get(name, {}) if inf is not None else {}
        if got.get("std.error") is not None:  # Kenward-Roger adjusts the SE
            se[i], t = got["std.error"], got.get("statistic", t)
        table.add_row(effect="fixed", term=name, estimate=fit.beta[i], **{"std.error": se[i]},
                      statistic=t, df=df[i], **{"p.value": p[i]})
    if fit.analysis == "glmm":
        _add_ran_pars(table, fit)
        table.footnotes.append(_glmm_test_note(fit))
    elif fit.analysis == "lmm":
        _add_ran_pars(table, fit)
        if inf is not None and inf.coef:
            table.footnotes.append(_DF_NOTE.get(inf.df_method, ""))
        elif all(v is None for v in df):
            table.footnotes.append("lme4 reports no df or p-values for mixed models; "
                                   "see the inference options for Satterthwaite or Kenward-Roger.")
    elif inf is not None and inf.df_method == "asymptotic":
        table.footnotes.append(_DF_NOTE["asymptotic"])
    else:
        table.footnotes.append(f"t tests with {fit.df_residual:g} residual degrees of freedom.")
    if fit.dropped:
        table.footnotes.append("Dropped as linear combinations of other columns (aliased): "
                               + ", ".join(fit.dropped) + ".")
    return table


def _fixed_df_p(fit: Fit, inf: Inference | None) -> tuple[list[float | None], list[float | None]]:
    """df and two-sided p for each fixed effect: from the inference step when it has run;
    otherwise the residual df for ``lm`` and none for mixed models."""
    k = len(fit.coef_names)
    if inf is not None and inf.coef:
        rows = [inf.coef.get(n, {}) for n in fit.coef_names]
        return [r.get("df") for r in rows], [r.get("p.value") for r in rows]
    df: list[float | None]
    if fit.analysis == "lm":
        df = [fit.df_residual] * k
    else:
        df = [None] * k
    t = fit.beta / np.where(fit.se > 0, fit.se, np.nan)
    if fit.analysis == "glmm":  # Wald tests with normal p-values, as summary(glmer)
        return df, [float(2 * dist.norm.sf(abs(ti))) for ti in t]
    p = [None if d is None else float(2 * dist.t.sf(abs(ti), d)) for ti, d in zip(t, df)]
    return df, p


def _glmm_test_note(fit: Fit) -> str:
    if has_scale(fit.family):
        return ("Wald t statistics with p-values from the normal distribution (as summary(glmer) for a family "
                "with a scale); SEs from the Hessian of the deviance.")
    return "Wald z tests (as summary(glmer)); SEs from the Hessian of the deviance."


def _add_ran_pars(table: Table, fit: Fit) -> None:
    """sds, then correlations, per term (broom.mixed's ``tidy`` order, lme4's names)."""
    for vc in fit.varcorr:
        layout = sdcor_layout(vc.terms)
        for r, c, name in [e for e in layout if e[0] == e[1]] + [e for e in layout if e[0] != e[1]]:
            est = vc.sd[r] if r == c else vc.corr[c, r]
            table.add_row(effect="ran_pars", group=vc.group, term=name, estimate=est)
    if fit.analysis != "glmm" or has_scale(fit.family):
        table.add_row(effect="ran_pars", group="Residual", term="sd__Observation", estimate=fit.sigma)


def fit_table(fit: Fit) -> Table:
    """Model summary, one row, as broom's glance."""
    if fit.analysis == "glmm":
        return glmm_fit_table(fit)
    cols = [Column("nobs", "Observations", "integer"), Column("sigma", "σ"),
            Column("logLik", "Log-likelihood"), Column("AIC", "AIC"), Column("BIC", "BIC"),
            Column("deviance", "Deviance")]
    row: dict[str, float | None] = {"nobs": fit.nobs, "sigma": fit.sigma, "logLik": fit.loglik,
                                    "AIC": fit.aic, "BIC": fit.bic, "deviance": fit.deviance}
    if fit.analysis == "lmm" and fit.reml:
        cols.append(Column("REMLcrit", "REML criterion"))
        row["REMLcrit"] = fit.reml_crit
    cols.append(Column("df.residual", "Residual df"))
    row["df.residual"] = fit.df_residual
    if fit.analysis == "lm":
        cols += [Column("r.squared", "R²"), Column("adj.r.squared", "Adjusted R²")]
        row["r.squared"] = fit.r_squared
        row["adj.r.squared"] = fit.adj_r_squared
    table = Table("fit", "Model summary", cols)
    table.add_row(**row)
    if fit.analysis == "lmm":
        table.footnotes.append("Fitted by REML." if fit.reml else "Fitted by maximum likelihood.")
    return table


def glmm_fit_table(fit: Fit) -> Table:
    """A glmm's summary, one row, as ``summary(glmer)`` gives it (σ only for a family with a
    scale; deviance −2 log-likelihood), with the family, link and (negative binomial) θ. The
    warnings and notes on the fit (convergence, singularity, separation, overdispersion) come
    with the fit itself."""
    cols = [Column("nobs", "Observations", "integer")]
    row: dict[str, float | str | None] = {"nobs": fit.nobs}
    if has_scale(fit.family):
        cols.append(Column("sigma", "σ"))
        row["sigma"] = fit.sigma
    cols += [Column("logLik", "Log-likelihood"), Column("AIC", "AIC"), Column("BIC", "BIC"),
             Column("deviance", "Deviance"), Column("df.residual", "Residual df"),
             Column("family", "Family", "string"), Column("link", "Link", "string")]
    row.update({"logLik": fit.loglik, "AIC": fit.aic, "BIC": fit.bic, "deviance": fit.deviance,
                "df.residual": fit.df_residual, "family": fit.family, "link": fit.link})
    nb_theta = (fit.optinfo or {}).get("nb_theta")
    if nb_theta is not None:
        cols.append(Column("theta", "Negative binomial θ"))
        row["theta"] = nb_theta
    table = Table("fit", "Model summary", cols)
    table.add_row(**row)
    table.footnotes.append(_approximation_note((fit.optinfo or {}).get("nAGQ", 1)))
    return table


def _approximation_note(nagq: int) -> str:
    if nagq == 0:
        return ("Fitted by maximum likelihood with nAGQ = 0 (lme4's first stage only: the fixed effects "
                "estimated in the penalized iteratively reweighted least squares, not by the Laplace "
                "approximation).")
    if nagq == 1:
        return "Fitted by maximum likelihood (Laplace approximation); deviance = −2 log-likelihood, as summary(glmer)."
    return (f"Fitted by maximum likelihood (adaptive Gauss-Hermite quadrature with {nagq} points); deviance = "
            "−2 log-likelihood, as summary(glmer).")


def random_effects_table(fit: Fit) -> Table:
    """Conditional modes of the random effects with their conditional sds (broom.mixed ran_vals)."""
    table = Table("random_effects", "Random effects (conditional modes)", [
        Column("group", "Group", "string"), Column("level", "Level", "string"),
        Column("term", "Term", "string"), Column("estimate", "Estimate"),
        Column("std.error", "Conditional SD"),
    ])
    for block in fit.ranef:
        modes, condsd = np.asarray(block.modes, dtype=float), np.asarray(block.condsd, dtype=float)
        for j, term in enumerate(block.terms):
            table.add_columns(group=block.group, level=list(block.levels), term=term, estimate=modes[:, j],
                              **{"std.error": condsd[:, j]})
    return table


def groups_table(fit: Fit) -> Table:
    """Levels per grouping factor, with the number of observations."""
    table = Table("groups", "Grouping factors", [
        Column("group", "Group", "string"), Column("levels", "Levels", "integer"),
        Column("nobs", "Observations", "integer"),
    ])
    for group, n in fit.ngroups.items():
        table.add_row(group=group, levels=n, nobs=fit.nobs)
    return table


_ANOVA_TITLE = {"satterthwaite": "with Satterthwaite's method", "kenward-roger": "with Kenward-Roger's method",
                "residual": "", "asymptotic": "(Wald tests, infinite denominator df)",
                "lrt": "(likelihood-ratio tests)", "bootstrap": "(parametric bootstrap tests)"}


def anova_table(fit: Fit, inf: Inference | None) -> Table | None:
    """F tests per model term (type I/II/III; lmerTest's columns), or likelihood-ratio /
    parametric bootstrap tests per term."""
    if inf is None or inf.anova is None:
        return None
    method = inf.anova_info.get("method", "")
    kind = inf.anova_info.get("type", "III")
    if method in ("lrt", "bootstrap"):
        cols = [Column("term", "Term", "string"), Column("npar", "npar", "integer"),
                Column("logLik", "Log-likelihood"), Column("deviance", "Deviance"),
                Column("Chisq", "χ²"), Column("Df", "df", "integer"), Column("p.value", "p", "pvalue")]
        if method == "bootstrap":
            cols.append(Column("p.value.pb", "p (bootstrap)", "pvalue"))
        title = f"Tests of model terms {_ANOVA_TITLE[method]}"
    else:
        cols = [Column("term", "Term", "string"), Column("sumsq", "Sum Sq"), Column("meansq", "Mean Sq"),
                Column("NumDF", "NumDF"), Column("DenDF", "DenDF"), Column("statistic", "F"),
                Column("p.value", "p", "pvalue")]
        title = f"Type {kind} analysis of variance table {_ANOVA_TITLE.get(method, '')}".rstrip()
    table = Table("anova", title, cols)
    for r in inf.anova:
        table.add_row(**{c.name: r.get(c.name) for c in cols})
    if method in ("lrt", "bootstrap"):
        table.footnotes.append("Each term's columns are dropped from the full model and both models are fitted "
                               "by maximum likelihood (afex's method 'LRT'); with treatment contrasts the test of "
                               "a lower-order term depends on the coding (use contrasts 'sum').")
    if method == "bootstrap":
        table.footnotes.append(f"Parametric bootstrap p-values from {inf.anova_info.get('nsim')} samples "
                               f"simulated from the reduced model (seed {inf.anova_info.get('seed')}).")
    return table


def _sig_labels(fit: Fit) -> dict[str, tuple[str, str, float]]:
    """lme4's ``oldNames`` of the variance parameters (.sig01, ..., .sigma) -> group, term, estimate."""
    params = [(vc.group, name, float(vc.sd[r] if r == c else vc.corr[r, c]))
              for vc in fit.varcorr for r, c, name in sdcor_layout(vc.terms)]
    params.append(("Residual", "sd__Observation", float(fit.sigma)))
    return dict(zip(sig_names(len(params) - 1), params))


def confint_table(fit: Fit, inf: Inference | None) -> Table | None:
    """Confidence intervals (Wald, profile likelihood or parametric bootstrap)."""
    if inf is None or inf.confint is None:
        return None
    method = inf.confint_info.get("method", "wald")
    level = inf.confint_info.get("level", 0.95)
    pct = f"{100 * level:g}%"
    table = Table("confint", f"{pct} confidence intervals ({method})", [
        Column("parameter", "Parameter", "string"), Column("group", "Group", "string"),
        Column("term", "Term", "string"), Column("estimate", "Estimate"),
        Column("lower", "Lower"), Column("upper", "Upper")])
    beta = dict(zip(fit.coef_names, fit.beta))
    sig = _sig_labels(fit) if fit.analysis in ("lmm", "glmm") else {}
    for r in inf.confint:
        name = r["parameter"]
        if name in sig:
            g, t, est = sig[name]
            table.add_row(parameter=name, group=g, term=t, estimate=est, lower=r.get("lower"), upper=r.get("upper"))
        else:
            table.add_row(parameter=name, term=name, estimate=beta.get(name), lower=r.get("lower"),
                          upper=r.get("upper"))
    if method == "wald" and fit.analysis in ("lmm", "glmm"):
        table.footnotes.append("Wald intervals β ± z·SE for the fixed effects (lme4's confint method 'Wald'); "
                               "use method 'profile' or 'bootstrap' for the variance components.")
    if method == "profile":
        table.footnotes.append("Profile-likelihood intervals (lme4's confint method 'profile'); variance "
                               "components on the standard-deviation / correlation scale.")
    if method == "bootstrap":
        table.footnotes.append(f"Percentile intervals from {inf.confint_info.get('nsim')} parametric bootstrap "
                               f"samples (seed {inf.confint_info.get('seed')}).")
    return table


def model_comparison_table(fit: Fit, inf: Inference | None) -> Table | None:
    """Likelihood-ratio comparison of models fitted to the same rows (lme4's ``anova``)."""
    if inf is None or inf.comparison is None:
        return None
    table = Table("model_comparison", "Model comparison (likelihood-ratio tests)", [
        Column("model", "Model", "string"), Column("formula", "Formula", "string"),
        Column("npar", "npar", "integer"), Column("AIC", "AIC"), Column("BIC", "BIC"),
        Column("logLik", "Log-likelihood"), Column("deviance", "Deviance"), Column("Chisq", "χ²"),
        Column("Df", "df", "integer"), Column("p.value", "p", "pvalue")])
    for r in inf.comparison:
        table.add_row(**{c.name: r.get(c.name) for c in table.columns})
    table.footnotes.append("Models ordered by their number of parameters, each tested against the one "
                           "before it; REML fits were refitted by maximum likelihood (as lme4's anova).")
    return table


def tables_for(fit: Fit, inf: Inference | None = None) -> list[Table]:
    """Every table an analysis yields from its fit and, when it has run, its inference.

    A fit and inference kept for later requests (:mod:`.fitcache`) give the same tables every
    time, so the last :data:`MAX_KEPT_TABLES` sets are kept by fit and inference (a random-effects
    table of 700 rows took a fifth of a reused request; a set goes when its fit does) and each
    call gets copies of them (rows, columns and footnotes its caller may change)."""
    owners = (fit,) if inf is None else (fit, inf)
    kept = _KEPT_TABLES.get(owners, "tables")
    if kept is None:
        kept = _tables(fit, inf)
        _KEPT_TABLES.put(owners, "tables", kept)
    return [Table(t.name, t.title, [replace(c) for c in t.columns], [dict(r) for r in t.rows], list(t.footnotes))
            for t in kept]


#: Table sets kept by :func:`tables_for` (the newest; a fit's tables are a few hundred kB at most).
MAX_KEPT_TABLES = 8
_KEPT_TABLES: KeptByOwners[list[Table]] = KeptByOwners(MAX_KEPT_TABLES)


def _tables(fit: Fit, inf: Inference | None) -> list[Table]:
    """:func:`tables_for`, built."""
    tables = [parameters_table(fit, inf), fit_table(fit)]
    if fit.analysis in ("lmm", "glmm"):
        tables += [random_effects_table(fit), groups_table(fit)]
    for builder in (anova_table, confint_table, model_comparison_table):
        t = builder(fit, inf)
        if t is not None:
            tables.append(t)
    return tables
