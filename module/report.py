"""The one table layer: reads an engine-independent :class:`~mixedbridge.fit.Fit` and builds the
``parameters``, ``fit``, ``random_effects`` and ``groups`` tables (broom / broom.mixed names)."""
from __future__ import annotations

import numpy as np
from scipy import stats

from .fit import Fit
from .tables import Column, Table


def parameters_table(fit: Fit) -> Table:
    """Fixed effects and, for mixed models, the random-effects sds and correlations."""
    table = Table("parameters", "Parameter estimates", [
        Column("effect", "Effect", "string"),
        Column("group", "Group", "string"),
        Column("term", "Term", "string"),
        Column("estimate", "Estimate"),
        Column("std.error", "SE"),
        Column("statistic", "t"),
        Column("df", "df"),
        Column("p.value", "p", "pvalue"),
    ])
    se = fit.se
    df, p = _fixed_df_p(fit)
    for i, name in enumerate(fit.coef_names):
        t = fit.beta[i] / se[i] if se[i] > 0 else np.nan
        table.add_row(effect="fixed", term=name, estimate=fit.beta[i], **{"std.error": se[i]},
                      statistic=t, df=df[i], **{"p.value": p[i]})
    if fit.analysis == "lmm":
        _add_ran_pars(table, fit)
        if all(v is None for v in df):
            table.footnotes.append("lme4 reports no df or p-values for mixed models; "
                                   "see the inference options for Satterthwaite or Kenward-Roger.")
    else:
        table.footnotes.append(f"t tests with {fit.df_residual:g} residual degrees of freedom.")
    if fit.dropped:
        table.footnotes.append("Dropped as linear combinations of other columns (aliased): "
                               + ", ".join(fit.dropped) + ".")
    return table


def _fixed_df_p(fit: Fit) -> tuple[list, list]:
    """df and two-sided p for each fixed effect: the residual df for ``lm``; from the inference
    layer (``fit.extra['df']``) for mixed models when it has been computed."""
    k = len(fit.coef_names)
    if fit.analysis == "lm":
        df = [fit.df_residual] * k
    else:
        df = list(fit.extra.get("df", [None] * k))
    t = fit.beta / np.where(fit.se > 0, fit.se, np.nan)
    p = [None if d is None else float(2 * stats.t.sf(abs(ti), d)) for ti, d in zip(t, df)]
    return df, p


def _add_ran_pars(table: Table, fit: Fit) -> None:
    for vc in fit.varcorr:
        for j, term in enumerate(vc.terms):
            table.add_row(effect="ran_pars", group=vc.group, term=f"sd__{term}", estimate=vc.sd[j])
        for a in range(len(vc.terms)):
            for b in range(a + 1, len(vc.terms)):
                table.add_row(effect="ran_pars", group=vc.group,
                              term=f"cor__{vc.terms[a]}.{vc.terms[b]}", estimate=vc.corr[a, b])
    table.add_row(effect="ran_pars", group="Residual", term="sd__Observation", estimate=fit.sigma)


def fit_table(fit: Fit) -> Table:
    """Model summary, one row, as broom's glance."""
    cols = [Column("nobs", "Observations", "integer"), Column("sigma", "σ"),
            Column("logLik", "Log-likelihood"), Column("AIC", "AIC"), Column("BIC", "BIC"),
            Column("deviance", "Deviance")]
    row = {"nobs": fit.nobs, "sigma": fit.sigma, "logLik": fit.loglik, "AIC": fit.aic,
           "BIC": fit.bic, "deviance": fit.deviance}
    if fit.analysis == "lmm" and fit.reml:
        cols.append(Column("REMLcrit", "REML criterion"))
        row["REMLcrit"] = fit.reml_crit
    cols.append(Column("df.residual", "Residual df"))
    row["df.residual"] = fit.df_residual
    if fit.analysis == "lm":
        cols += [Column("r.squared", "R²"), Column("adj.r.squared", "Adjusted R²")]
        row["r.squared"] = fit.extra.get("r.squared")
        row["adj.r.squared"] = fit.extra.get("adj.r.squared")
    table = Table("fit", "Model summary", cols)
    table.add_row(**row)
    if fit.analysis == "lmm":
        table.footnotes.append("Fitted by REML." if fit.reml else "Fitted by maximum likelihood.")
    return table


def random_effects_table(fit: Fit) -> Table:
    """Conditional modes of the random effects with their conditional sds (broom.mixed ran_vals)."""
    table = Table("random_effects", "Random effects (conditional modes)", [
        Column("group", "Group", "string"), Column("level", "Level", "string"),
        Column("term", "Term", "string"), Column("estimate", "Estimate"),
        Column("std.error", "Conditional SD"),
    ])
    for block in fit.ranef:
        for j, term in enumerate(block.terms):
            for i, level in enumerate(block.levels):
                table.add_row(group=block.group, level=level, term=term, estimate=block.modes[i, j],
                              **{"std.error": block.condsd[i, j]})
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


def tables_for(fit: Fit) -> list[Table]:
    """Every table an analysis yields from its fit."""
    tables = [parameters_table(fit), fit_table(fit)]
    if fit.analysis == "lmm":
        tables += [random_effects_table(fit), groups_table(fit)]
    return tables
