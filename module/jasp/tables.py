"""Our results reshaped into JASP's tables (``ANOVAsummary``, ``fitSummary``, ``FEsummary``,
``REsummary``, ``REEstimatesSummary``, ``EMMsummary``, ``contrastsMeans``, ``trendsSummary``,
``contrastsTrends``, ``plots``), with JASP's keys, column names, term labels and footnotes.

Sources: the ``parameters`` table and the fit (estimates, variance components, conditional
modes, sample sizes); the ``anova``, ``emmeans``, ``contrasts`` and ``trends`` tables or rows
when the inference and emmeans layers supply them (see :mod:`mixedbridge.jasp.sources`); an
element whose source is missing is shown with an error saying so.
"""
from __future__ import annotations

import math

from scipy import stats

from .jaspresults import JContainer, JPlot, JTable, vovk_sellke
from .model import INTERACTION, Plan

#: Dependencies of every element on the model (JASP's .mmDependenciesLMM).
MODEL_DEPS = ["dependent", "dependent.types", "fixedEffects", "fixedVariables", "includeIntercept",
              "randomEffects", "randomVariables", "testMethod", "factorContrast", "bootstrapSamples",
              "interceptTest", "type"]
TEST_NAMES = {"satterthwaite": "Satterthwaite", "kenwardRoger": "Kenward-Roger",
              "likelihoodRatioTest": "likelihood ratio tests", "parametricBootstrap": "parametric bootstrap"}


# ---------------------------------------------------------------------------------- labels
def term_label(name: str, variables: list[str], re_labels: dict | None = None) -> str:
    """JASP's label of a coefficient: ``(Intercept)`` → ``Intercept``, ``facGender1`` →
    ``facGender (1)``, ``a1:b2`` → ``a (1) ✻ b (2)``."""
    if re_labels and name in re_labels:
        name = re_labels[name]
    if name == "(Intercept)":
        return "Intercept"
    pieces = []
    for piece in name.split(":"):
        if piece in variables:
            pieces.append(piece)
            continue
        match = max((v for v in variables if piece.startswith(v)), key=len, default=None)
        pieces.append(f"{match} ({piece[len(match):]})" if match else piece)
    return INTERACTION.join(pieces)


def effect_label(term: str) -> str:
    """An ANOVA row label: ``(Intercept)`` → ``Intercept``, ``a:b`` → ``a ✻ b``."""
    return "Intercept" if term == "(Intercept)" else INTERACTION.join(term.split(":"))


def _strip_quotes(s: str) -> str:
    return s.replace("`", "")


def _interpretability(contrast: str) -> str:
    if contrast == "sum":
        return ("Factors are sum-to-zero coded (contr.sum): the intercept is the grand mean and the estimates "
                "of a factor are deviations of its levels (all but the last) from it.")
    return ("Factors are treatment (dummy) coded: the estimates of a factor are differences from its first "
            "level, and lower-order terms are effects at the first level of the other factors.")


# ------------------------------------------------------------------------------ ANOVA
def _nice_df(num, den) -> str:
    num = int(round(num)) if num is not None else None
    if den is None or (isinstance(den, float) and math.isinf(den)):
        return f"{num}, ∞"
    return f"{num}, {den:.2f}"


def anova_summary(opts: dict, plan: Plan | None, rows: list[dict] | None, fit, notes: list[str],
                  source_error: str | None, analysis: str) -> JTable:
    method = opts["testMethod"] if analysis == "lmm" else "residual"
    t = JTable("ANOVAsummary", "ANOVA Summary", MODEL_DEPS + ["vovkSellke"])
    t.col("effect", "Effect", "string")
    f_test = method in ("satterthwaite", "kenwardRoger", "residual")
    t.col("df", "df", "string" if f_test else "integer")
    t.col("stat", "F" if f_test else "ChiSq")
    t.col("pval", "p", "pvalue")
    pb = method == "parametricBootstrap"
    if pb:
        t.col("pvalBoot", "p (bootstrap)", "pvalue")
    if opts["vovkSellke"]:
        t.col("vovkSellke", "VS-MPR")
        if pb:
            t.col("pvalBootVS", "VS-MPR (bootstrap)")
        t.note(VS_NOTE, "*", ["vovkSellke", "pvalBootVS"] if pb else ["vovkSellke"])
    if rows is not None:
        for r in rows:
            cells = {"effect": effect_label(_strip_quotes(r["term"]))}
            if f_test:
                cells.update(df=_nice_df(r.get("NumDF"), r.get("DenDF")), stat=r.get("statistic"),
                             pval=r.get("p.value"))
            else:
                cells.update(df=r.get("Df"), stat=r.get("Chisq"), pval=r.get("p.value"))
                if pb:
                    cells["pvalBoot"] = r.get("p.value.pb", r.get("p.value.boot"))
            if opts["vovkSellke"]:
                cells["vovkSellke"] = vovk_sellke(cells["pval"])
                if pb:
                    cells["pvalBootVS"] = vovk_sellke(cells.get("pvalBoot"))
            t.add(**cells)
    elif source_error:
        t.fail(source_error)
    if plan is not None and analysis == "lmm":
        g = plan.groups
        t.note(f"The following variable{'s are' if len(g) > 1 else ' is'} used as random effects grouping "
               f"factor{'s' if len(g) > 1 else ''}: {', '.join(repr(x) for x in g)}.")
    if fit is not None:
        for w in fit.warnings:
            t.note(w, "Warning:")
    if plan is not None and plan.n_missing:
        t.note(f"{plan.n_missing} observation{'s were' if plan.n_missing != 1 else ' was'} removed due to "
               "missing values.")
    if plan is not None:
        for fn in plan.footnotes:
            t.note(fn.text, fn.symbol)
    if analysis == "lmm":
        t.note(f"Type {'III' if opts['type'] == '3' else 'II'} Sum of Squares")
        t.note(f"Model terms tested with {TEST_NAMES[method]} method.")
    else:
        t.note(f"Type {'III' if opts['type'] == '3' else 'II'} Sum of Squares; F tests with the residual "
               "degrees of freedom.")
    for n in notes:
        t.note(n)
    return t


VS_NOTE = ("Vovk-Sellke Maximum <em>p</em>-Ratio: Based on the <em>p</em>-value, the maximum possible odds in "
           "favor of H\u2081 over H\u2080 equals 1/(-e <em>p</em> log(<em>p</em>)) for <em>p</em> \u2264 .37 "
           "(Sellke, Bayarri, & Berger, 2001).")


# ----------------------------------------------------------------------- fit summary
def fit_summary(opts: dict, plan: Plan, fit, analysis: str) -> JContainer:
    c = JContainer("fitSummary", "Model summary", MODEL_DEPS + ["modelSummary"])
    m = c.add("modelSummary", JTable("modelSummary", "Fit statistics"))
    reml = analysis == "lmm" and fit.reml
    m.col("devianceREML" if reml else "deviance", "Deviance (REML)" if reml else "Deviance")
    m.col("loglik", "log Lik.").col("df", "df", "integer").col("aic", "AIC").col("bic", "BIC")
    if analysis == "lm":
        m.col("r2", "R\u00b2").col("adjR2", "Adjusted R\u00b2")
    npar = len(fit.beta) + (len(fit.theta) if fit.theta is not None else 0) + 1
    row = {"loglik": fit.loglik, "df": npar, "aic": fit.aic, "bic": fit.bic}
    if reml:
        row["devianceREML"] = fit.reml_crit
    else:
        row["deviance"] = -2.0 * fit.loglik if analysis == "lmm" else fit.deviance
    if analysis == "lm":
        row["r2"] = fit.r_squared
        row["adjR2"] = fit.adj_r_squared
    m.add(**row)
    if analysis == "lmm":
        m.note("Model fitted with restricted maximum likelihood (REML); fit statistics of REML fits cannot compare "
               "models with different fixed effects." if reml else "Model fitted with maximum likelihood.")
    s = c.add("fitSizes", JTable("fitSizes", "Sample sizes"))
    s.col("observations", "Observations", "integer")
    cells = {"observations": fit.nobs}
    for g, n in fit.ngroups.items():
        s.col(g, g, "integer", "Levels of RE grouping factors")
        cells[g] = n
    s.add(**cells)
    return c


# ------------------------------------------------------------------- fixed effects
def fixed_effects(opts: dict, plan: Plan, params: list[dict], analysis: str) -> JTable:
    t = JTable("FEsummary", "Fixed Effects Estimates", MODEL_DEPS + ["fixedEffectEstimate", "vovkSellke"])
    fixed = [r for r in params if r.get("effect") == "fixed"]
    has_df = any(r.get("df") is not None for r in fixed)
    t.col("term", "Term", "string").col("estimate", "Estimate").col("se", "SE")
    if has_df:
        t.col("df", "df")
    t.col("stat", "t")
    if has_df:
        t.col("pval", "p", "pvalue")
        if opts["vovkSellke"]:
            t.col("vovkSellke", "VS-MPR")
            t.note(VS_NOTE, "*", ["vovkSellke"])
    for r in fixed:
        cells = {"term": term_label(r["term"], opts["fixedVariables"]), "estimate": r["estimate"],
                 "se": r["std.error"], "stat": r["statistic"]}
        if has_df:
            cells.update(df=r.get("df"), pval=r.get("p.value"))
            if opts["vovkSellke"]:
                cells["vovkSellke"] = vovk_sellke(r.get("p.value"))
        t.add(**cells)
    if not has_df and analysis == "lmm":
        t.note("Satterthwaite degrees of freedom and p-values could not be computed for this fit.", "Warning:")
    elif analysis == "lmm":
        t.note("Degrees of freedom and p-values by Satterthwaite's method (as lmerTest's summary).")
    t.note(_interpretability(opts["factorContrast"]))
    return t


# ----------------------------------------------------------------- random effects
def _unique_names(groups: list[str]) -> list[str]:
    """R's names of VarCorr elements: a repeated grouping factor gets ``.1``, ``.2``, ..."""
    seen: dict[str, int] = {}
    out = []
    for g in groups:
        k = seen.get(g, 0)
        out.append(g if k == 0 else f"{g}.{k}")
        seen[g] = k + 1
    return out


def variance_components(opts: dict, plan: Plan, fit) -> JContainer:
    c = JContainer("REsummary", "Variance/Correlation Estimates", MODEL_DEPS + ["varianceCorrelationEstimate"])
    names = _unique_names([vc.group for vc in fit.varcorr])
    lab = lambda term: term_label(term, opts["fixedVariables"], plan.re_labels)  # noqa: E731
    interp = _interpretability(opts["factorContrast"])
    for i, (vc, name) in enumerate(zip(fit.varcorr, names), start=1):
        ve = c.add(f"VE{i}", JTable("", f"{name}: Variance Estimates"))
        ve.col("variable", "Term", "string").col("std", "Std. Deviation").col("var", "Variance")
        for term, sd in zip(vc.terms, vc.sd):
            ve.add(variable=lab(term), std=float(sd), var=float(sd) ** 2)
        ve.note(interp)
        if len(vc.terms) > 1:
            ce = c.add(f"CE{i}", JTable("", f"{name}: Correlation Estimates"))
            ce.col("variable", "Term", "string")
            for j, term in enumerate(vc.terms, start=1):
                ce.col(f"v{j}", lab(term))
            for a, term in enumerate(vc.terms):
                ce.add(variable=lab(term), **{f"v{b + 1}": float(vc.corr[a, b]) for b in range(a + 1)})
            ce.note(interp)
    res = c.add(f"RES{len(fit.varcorr)}", JTable("", "Residual Variance Estimates"))
    res.col("std", "Std. Deviation").col("var", "Variance")
    res.add(std=fit.sigma, var=fit.sigma ** 2)
    return c


def random_effect_estimates(opts: dict, plan: Plan, fit) -> JContainer:
    c = JContainer("REEstimatesSummary", "Random Effect Estimates", MODEL_DEPS + ["randomEffectEstimate"])
    groups: dict[str, list] = {}
    for block in fit.ranef:
        groups.setdefault(block.group, []).append(block)
    for i, (g, blocks) in enumerate(groups.items(), start=1):
        t = c.add(f"REEstimates{i}", JTable("", f"{g}: Random Effect Estimates"))
        t.col("level", g, "string")
        cols = []
        for b in blocks:
            for j, term in enumerate(b.terms):
                cols.append((b, j))
                t.col(f"col{len(cols)}", plan.re_labels.get(term, term))
        levels = blocks[0].levels
        index = [{lv: k for k, lv in enumerate(b.levels)} for b in blocks]
        for lv in levels:
            cells = {"level": lv}
            for n, (b, j) in enumerate(cols, start=1):
                k = index[blocks.index(b)].get(lv)
                cells[f"col{n}"] = float(b.modes[k, j]) if k is not None else None
            t.add(**cells)
    return c


# --------------------------------------------------------------- marginal means
def means_table(opts: dict, plan: Plan, rows: list[dict] | None, error: str | None, what: str,
                est_col: str | None = None) -> JTable:
    """``EMMsummary`` (what = "Means") or ``trendsSummary`` (what = "Trends")."""
    means = what == "Means"
    pre = "marginalMeans" if means else "trends"
    t = JTable("EMMsummary" if means else "trendsSummary", "Estimated Marginal Means" if means else "Estimated Trends",
               MODEL_DEPS + ([f"{pre}Terms", f"{pre}Sd", f"{pre}Comparison", f"{pre}ComparisonWith", f"{pre}CiLevel",
                              "vovkSellke", f"{pre}Contrast", f"{pre}Df", f"{pre}DfEstimated"] if means else
                             ["trendsVariables", "trendsTrendVariable", "trendsSd", "trendsComparison",
                              "trendsComparisonWith", "trendsCiLevel", "vovkSellke", "trendsContrast", "trendsDf",
                              "trendsDfEstimated"]))
    variables = opts["marginalMeansTerms"] if means else opts["trendsVariables"]
    if opts[f"{pre}Contrast"]:
        t.col("number", "Row", "integer")
    for v in variables:
        t.col(v, v, "string" if v in plan.factors else "number")
    if means:
        t.col("estimate", "Estimate")
    else:
        t.col("slope", f"{opts['trendsTrendVariable']} (slope)")
    t.col("se", "SE")
    asym = opts[f"{pre}Df"] == "asymptotic"
    if not asym:
        t.col("df", "df")
    ci = f"{_pct(opts[f'{pre}CiLevel'])}% CI"
    t.col("lowerCI", "Lower", overtitle=ci).col("upperCI", "Upper", overtitle=ci)
    comparison = opts[f"{pre}Comparison"]
    if comparison:
        t.col("stat", "z" if asym else "t").col("pval", "p", "pvalue")
        t.note(f"P-values correspond to test of null hypothesis against {opts[f'{pre}ComparisonWith']:g}.", "\u2020",
               ["pval"])
        if opts["vovkSellke"]:
            t.col("vovkSellke", "VS-MPR")
            t.note(VS_NOTE, "*", ["vovkSellke"])
    if rows is None:
        t.fail(error or f"Estimated marginal {'means' if means else 'trends'} could not be computed.")
        return t
    for i, r in enumerate(rows, start=1):
        cells = {}
        if opts[f"{pre}Contrast"]:
            cells["number"] = i
        for v in variables:
            cells[v] = r.get(v)
        est = r.get(est_col) if est_col else r.get("emmean", r.get("estimate"))
        cells["estimate" if means else "slope"] = est
        cells["se"] = r.get("SE")
        if not asym:
            cells["df"] = r.get("df")
        cells["lowerCI"], cells["upperCI"] = r.get("lower.CL"), r.get("upper.CL")
        if comparison:
            cells["stat"], cells["pval"] = r.get("t.ratio", r.get("z.ratio")), r.get("p.value")
            if opts["vovkSellke"]:
                cells["vovkSellke"] = vovk_sellke(cells["pval"])
        t.add(**cells)
    return t


def _pct(level: float) -> str:
    return f"{100 * level:g}"


ADJUST_NAMES = {"holm": "Holm", "bonferroni": "Bonferroni", "hommel": "Hommel", "tukey": "Tukey",
                "scheffe": "Scheffé", "mvt": "multivariate-t", "none": None}


def contrasts_table(opts: dict, rows: list[dict] | None, error: str | None, what: str,
                    names: list[str]) -> JTable:
    means = what == "Means"
    pre = "marginalMeans" if means else "trends"
    t = JTable(f"contrasts{what}", "contrasts",
               MODEL_DEPS + ([f"{pre}Terms", "contrasts"] if means else ["trendsVariables", "trendsContrasts"])
               + [f"{pre}PAdjustment", f"{pre}CiLevel", f"{pre}Df", "vovkSellke"])
    ci = f"{_pct(opts[f'{pre}CiLevel'])}% CI"
    t.col("contrast", "", "string").col("estimate", "Estimate").col("se", "SE").col("df", "df")
    t.col("lowerCI", "Lower", overtitle=ci).col("upperCI", "Upper", overtitle=ci)
    asym = opts[f"{pre}Df"] == "asymptotic"
    t.col("stat", "z" if asym else "t").col("pval", "p", "pvalue")
    if opts["vovkSellke"]:
        t.col("vovkSellke", "VS-MPR")
        t.note(VS_NOTE, "*", ["vovkSellke"])
    if rows is None:
        t.fail(error or "Contrasts could not be computed.")
        return t
    level = opts[f"{pre}CiLevel"]
    for name, r in zip(names, rows):
        est, se, df = r.get("estimate"), r.get("SE"), r.get("df")
        dfv = math.inf if df is None else df
        q = stats.t.ppf(1 - (1 - level) / 2, dfv) if not math.isinf(dfv) else stats.norm.ppf(1 - (1 - level) / 2)
        cells = {"contrast": name, "estimate": est, "se": se, "df": dfv,
                 "lowerCI": est - q * se if est is not None and se is not None else None,
                 "upperCI": est + q * se if est is not None and se is not None else None,
                 "stat": r.get("t.ratio", r.get("z.ratio")), "pval": r.get("p.value")}
        if opts["vovkSellke"]:
            cells["vovkSellke"] = vovk_sellke(cells["pval"])
        t.add(**cells)
    adj = ADJUST_NAMES.get(opts[f"{pre}PAdjustment"])
    t.note(f"P-values are adjusted using {adj} adjustment." if adj else "P-values are not adjusted.", "\u2020", ["pval"])
    return t


#: JASP's plotCiType values the plot draws, and what stands in for the others.
CI_TYPES = {"model": "model", "mean": "mean", "none": "none", "within": "model", "between": "mean"}


def plot_request(opts: dict, nobs: int) -> tuple[dict, list[str]]:
    """Our ``emmeans`` plot request from JASP's plot options, and notes on what was changed."""
    notes = []
    ci = opts["plotCiType"]
    if ci in ("within", "between"):
        notes.append(f"Confidence intervals of type '{ci}' are drawn as '{CI_TYPES[ci]}' intervals.")
    background = opts["plotBackgroundElement"]
    if background == "count":
        notes.append("The 'count' background is drawn as jittered points.")
        background = "jitter"
    request = {"type": "emmeans", "horizontal": opts["plotHorizontalAxis"][0],
               "lines": (opts["plotSeparateLines"] or [None])[0], "panels": (opts["plotSeparatePlots"] or [None])[0],
               "background": background, "background_by": (opts["plotBackgroundData"] or [None])[0],
               "ci_type": CI_TYPES.get(ci, "model"), "ci_level": float(opts["plotCiLevel"]),
               "df": "kenward-roger" if nobs <= 3000 else "asymptotic",
               "seed": int(opts["seed"]) if opts.get("setSeed") else 1}
    return request, notes


def plots_element(opts: dict, problem, fit) -> JPlot:
    """JASP's ``plots`` element: the estimated means plot (as afex_plot draws it), or its error."""
    from ..plots import make_plots

    p = JPlot("plots", "Plot", ["plotHorizontalAxis", "plotSeparateLines", "plotSeparatePlots", "plotBackgroundData",
                               "plotBackgroundElement", "plotCiType", "plotCiLevel"])
    request, notes = plot_request(opts, problem.frame.nobs)
    plots, plot_notes = make_plots(problem, fit, [request])
    if plots:
        p.image = plots[0]
    else:
        p.fail(" ".join(plot_notes) or "the plot could not be drawn")
    p.notes = notes + [n for n in plot_notes if plots]
    return p
