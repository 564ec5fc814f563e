"""The analysis as JASP's tables (``ANOVAsummary``, ``fitSummary``, ``FEsummary``, ``REsummary``,
``REEstimatesSummary``, ``EMMsummary``, ``contrastsMeans``, ``trendsSummary``,
``contrastsTrends``, ``plots``), with JASP's keys, column names, term labels and footnotes.

Sources: the leading engine's :class:`~mixedbridge.fit.Fit` (estimates, variance components,
conditional modes, sample sizes) and :class:`~mixedbridge.fit.Inference` (coefficient tests,
the ANOVA rows); each answered emmeans request
(:class:`~mixedbridge.analysis.EmmeansOutput`); the JASP model (:class:`.model.Model`: grouping
factors, rows removed, slopes removed or added). Each element builder returns None when its
option is off.
"""
from __future__ import annotations

import math

from .. import distributions as dist
from ..analysis import EmmeansOutput
from ..fit import Fit, Inference
from ..table import Table
from .jaspresults import JContainer, JPlot, JTable, vovk_sellke
from .means import contrast_error
from .model import INTERACTION, Model
from .options import (
    CI_TYPES,
    DF_METHODS,
    EMMEANS_DF_LIMIT,
    MEANS,
    P_ADJUSTMENTS,
    SS_TYPES,
    TEST_METHODS,
    TRENDS,
    Estimates,
)

#: Dependencies of every element on the model (JASP's .mmDependenciesLMM).
MODEL_DEPS = ["dependent", "dependent.types", "fixedEffects", "fixedVariables", "includeIntercept",
              "randomEffects", "randomVariables", "testMethod", "factorContrast", "bootstrapSamples",
              "interceptTest", "type"]
VS_NOTE = ("Vovk-Sellke Maximum <em>p</em>-Ratio: Based on the <em>p</em>-value, the maximum possible odds in "
           "favor of H\u2081 over H\u2080 equals 1/(-e <em>p</em> log(<em>p</em>)) for <em>p</em> \u2264 .37 "
           "(Sellke, Bayarri, & Berger, 2001).")


# ---------------------------------------------------------------------------------- labels
def term_label(name: str, variables: list[str]) -> str:
    """JASP's label of a coefficient: ``(Intercept)`` → ``Intercept``, ``facGender1`` →
    ``facGender (1)``, ``a1:b2`` → ``a (1) ✻ b (2)``."""
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


def _finite(x):
    """A number as the result tables hold it: plain Python, None when missing or not finite."""
    if x is None:
        return None
    x = x.item() if hasattr(x, "item") else x
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _pct(level: float) -> str:
    return f"{100 * level:g}"


# ------------------------------------------------------------------------------ ANOVA
def _nice_df(num, den) -> str:
    num = round(num) if num is not None else None
    if den is None or (isinstance(den, float) and math.isinf(den)):
        return f"{num}, ∞"
    return f"{num}, {den:.2f}"


def _method(opts: dict, analysis: str) -> str:
    """The ANOVA's test: JASP's ``testMethod`` (``residual`` for the linear model)."""
    return opts["testMethod"] if analysis == "lmm" else "residual"


def _f_test(method: str) -> bool:
    """Whether the method's tests are F tests (otherwise chi-square tests)."""
    return method in ("satterthwaite", "kenwardRoger", "residual")


def _anova_table(opts: dict, analysis: str) -> JTable:
    """The ANOVA table's columns: F tests (with df "num, den") or chi-square tests."""
    method = _method(opts, analysis)
    t = JTable("ANOVAsummary", "ANOVA Summary", MODEL_DEPS + ["vovkSellke"])
    t.col("effect", "Effect", "string")
    t.col("df", "df", "string" if _f_test(method) else "integer")
    t.col("stat", "F" if _f_test(method) else "ChiSq")
    t.col("pval", "p", "pvalue")
    pb = method == "parametricBootstrap"
    if pb:
        t.col("pvalBoot", "p (bootstrap)", "pvalue")
    if opts["vovkSellke"]:
        t.col("vovkSellke", "VS-MPR")
        if pb:
            t.col("pvalBootVS", "VS-MPR (bootstrap)")
        t.note(VS_NOTE, "*", ["vovkSellke", "pvalBootVS"] if pb else ["vovkSellke"])
    return t


def _anova_cells(r: dict, f_test: bool, pb: bool, vs: bool) -> dict:
    """One ANOVA row's cells from an inference row."""
    cells = {"effect": effect_label(_strip_quotes(r["term"]))}
    if f_test:
        cells.update(df=_nice_df(_finite(r.get("NumDF")), _finite(r.get("DenDF"))),
                     stat=_finite(r.get("statistic")), pval=_finite(r.get("p.value")))
    else:
        cells.update(df=_finite(r.get("Df")), stat=_finite(r.get("Chisq")), pval=_finite(r.get("p.value")))
    if pb:
        cells["pvalBoot"] = _finite(r.get("p.value.pb"))
    if vs:
        cells["vovkSellke"] = vovk_sellke(cells["pval"])
        if pb:
            cells["pvalBootVS"] = vovk_sellke(cells.get("pvalBoot"))
    return cells


def anova_summary(opts: dict, model: Model, fit: Fit, inference: Inference, notes: list[str]) -> JTable:
    """``ANOVAsummary``: the model terms' tests with the analysis's footnotes."""
    t = _anova_table(opts, model.analysis)
    method = _method(opts, model.analysis)
    for r in inference.anova or []:
        t.add(**_anova_cells(r, _f_test(method), method == "parametricBootstrap", opts["vovkSellke"]))
    if model.analysis == "lmm":
        g = model.groups
        t.note(f"The following variable{'s are' if len(g) > 1 else ' is'} used as random effects grouping "
               f"factor{'s' if len(g) > 1 else ''}: {', '.join(repr(x) for x in g)}.")
    for w in fit.warnings:
        t.note(w, "Warning:")
    if model.n_missing:
        t.note(f"{model.n_missing} observation{'s were' if model.n_missing != 1 else ' was'} removed due to "
               "missing values.")
    for fn in model.footnotes:
        t.note(fn.text, fn.symbol)
    _method_notes(t, opts, model.analysis)
    for n in notes:
        t.note(n)
    return t


def _method_notes(t: JTable, opts: dict, analysis: str) -> None:
    ss = SS_TYPES[opts["type"]]
    if analysis == "lmm":
        t.note(f"Type {ss} Sum of Squares")
        t.note(f"Model terms tested with {TEST_METHODS[opts['testMethod']].title} method.")
    else:
        t.note(f"Type {ss} Sum of Squares; F tests with the residual degrees of freedom.")


def not_ready(opts: dict, analysis: str, why: str, notes: list[str]) -> JTable:
    """The empty ANOVA table of an analysis that cannot run yet, saying why."""
    t = _anova_table(opts, analysis)
    t.footnotes = []
    t.note(why)
    for n in notes:
        t.note(n)
    return t


# ----------------------------------------------------------------------- fit summary
def fit_summary(opts: dict, model: Model, fit: Fit) -> JContainer | None:
    """``fitSummary``: fit statistics and sample sizes."""
    if not opts["modelSummary"]:
        return None
    c = JContainer("fitSummary", "Model summary", MODEL_DEPS + ["modelSummary"])
    _fit_statistics(c.add("modelSummary", JTable("modelSummary", "Fit statistics")), fit, model.analysis)
    s = c.add("fitSizes", JTable("fitSizes", "Sample sizes"))
    s.col("observations", "Observations", "integer")
    cells = {"observations": fit.nobs}
    for g, n in fit.ngroups.items():
        s.col(g, g, "integer", "Levels of RE grouping factors")
        cells[g] = n
    s.add(**cells)
    return c


def _fit_statistics(m: JTable, fit: Fit, analysis: str) -> None:
    reml = analysis == "lmm" and fit.reml
    m.col("devianceREML" if reml else "deviance", "Deviance (REML)" if reml else "Deviance")
    m.col("loglik", "log Lik.").col("df", "df", "integer").col("aic", "AIC").col("bic", "BIC")
    npar = len(fit.beta) + (len(fit.theta) if fit.theta is not None else 0) + 1
    row: dict[str, float | None] = {"loglik": fit.loglik, "df": npar, "aic": fit.aic, "bic": fit.bic}
    if reml:
        row["devianceREML"] = fit.reml_crit
    else:
        row["deviance"] = -2.0 * fit.loglik if analysis == "lmm" else fit.deviance
    if analysis == "lm":
        m.col("r2", "R\u00b2").col("adjR2", "Adjusted R\u00b2")
        row.update(r2=fit.r_squared, adjR2=fit.adj_r_squared)
    m.add(**row)
    if analysis == "lmm":
        m.note("Model fitted with restricted maximum likelihood (REML); fit statistics of REML fits cannot compare "
               "models with different fixed effects." if reml else "Model fitted with maximum likelihood.")


# ------------------------------------------------------------------- fixed effects
def coefficients(fit: Fit, inference: Inference) -> list[dict]:
    """Each fixed effect's estimate, SE, t, df and p (``term``, ``estimate``, ``std.error``,
    ``statistic``, ``df``, ``p.value``): the inference's tests, whose SE is Kenward-Roger's
    adjusted SE under that method, else the fit's."""
    out = []
    for i, name in enumerate(fit.coef_names):
        se = float(fit.se[i])
        t = fit.beta[i] / se if se > 0 else math.nan
        got = inference.coef.get(name, {})
        if got.get("std.error") is not None:
            se, t = got["std.error"], got.get("statistic", t)
        out.append({"term": name, "estimate": _finite(fit.beta[i]), "std.error": _finite(se),
                    "statistic": _finite(t), "df": _finite(got.get("df")), "p.value": _finite(got.get("p.value"))})
    return out


def fixed_effects(opts: dict, model: Model, fit: Fit, inference: Inference) -> JTable | None:
    """``FEsummary``: the fixed-effects estimates with their tests."""
    if not opts["fixedEffectEstimate"]:
        return None
    t = JTable("FEsummary", "Fixed Effects Estimates", MODEL_DEPS + ["fixedEffectEstimate", "vovkSellke"])
    rows = coefficients(fit, inference)
    has_df = any(r["df"] is not None for r in rows)
    vs = has_df and opts["vovkSellke"]
    t.col("term", "Term", "string").col("estimate", "Estimate").col("se", "SE")
    if has_df:
        t.col("df", "df")
    t.col("stat", "t")
    if has_df:
        t.col("pval", "p", "pvalue")
    if vs:
        t.col("vovkSellke", "VS-MPR")
        t.note(VS_NOTE, "*", ["vovkSellke"])
    for r in rows:
        cells = {"term": term_label(r["term"], opts["fixedVariables"]), "estimate": r["estimate"],
                 "se": r["std.error"], "stat": r["statistic"]}
        if has_df:
            cells.update(df=r["df"], pval=r["p.value"])
        if vs:
            cells["vovkSellke"] = vovk_sellke(r["p.value"])
        t.add(**cells)
    _df_note(t, model.analysis, has_df)
    t.note(_interpretability(opts["factorContrast"]))
    return t


def _df_note(t: JTable, analysis: str, has_df: bool) -> None:
    if analysis != "lmm":
        return
    if has_df:
        t.note("Degrees of freedom and p-values by Satterthwaite's method (as lmerTest's summary).")
    else:
        t.note("Satterthwaite degrees of freedom and p-values could not be computed for this fit.", "Warning:")


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


def variance_components(opts: dict, model: Model, fit: Fit) -> JContainer | None:
    """``REsummary``: each grouping factor's SDs and correlations, and the residual's."""
    if model.analysis != "lmm" or not opts["varianceCorrelationEstimate"]:
        return None
    c = JContainer("REsummary", "Variance/Correlation Estimates", MODEL_DEPS + ["varianceCorrelationEstimate"])
    names = _unique_names([vc.group for vc in fit.varcorr])
    labels = {t: term_label(t, opts["fixedVariables"]) for vc in fit.varcorr for t in vc.terms}
    interp = _interpretability(opts["factorContrast"])
    for i, (vc, name) in enumerate(zip(fit.varcorr, names), start=1):
        ve = c.add(f"VE{i}", JTable("", f"{name}: Variance Estimates"))
        ve.col("variable", "Term", "string").col("std", "Std. Deviation").col("var", "Variance")
        for term, sd in zip(vc.terms, vc.sd):
            ve.add(variable=labels[term], std=float(sd), var=float(sd) ** 2)
        ve.note(interp)
        if len(vc.terms) > 1:
            ce = c.add(f"CE{i}", JTable("", f"{name}: Correlation Estimates"))
            _correlations(ce, vc, labels)
            ce.note(interp)
    res = c.add(f"RES{len(fit.varcorr)}", JTable("", "Residual Variance Estimates"))
    res.col("std", "Std. Deviation").col("var", "Variance")
    res.add(std=fit.sigma, var=fit.sigma ** 2)
    return c


def _correlations(ce: JTable, vc, labels: dict[str, str]) -> None:
    ce.col("variable", "Term", "string")
    for j, term in enumerate(vc.terms, start=1):
        ce.col(f"v{j}", labels[term])
    for a, term in enumerate(vc.terms):
        ce.add(variable=labels[term], **{f"v{b + 1}": float(vc.corr[a, b]) for b in range(a + 1)})


def random_effect_estimates(opts: dict, model: Model, fit: Fit) -> JContainer | None:
    """``REEstimatesSummary``: the conditional modes, one table per grouping factor."""
    if model.analysis != "lmm" or not opts["randomEffectEstimate"]:
        return None
    c = JContainer("REEstimatesSummary", "Random Effect Estimates", MODEL_DEPS + ["randomEffectEstimate"])
    groups: dict[str, list] = {}
    for block in fit.ranef:
        groups.setdefault(block.group, []).append(block)
    for i, (g, blocks) in enumerate(groups.items(), start=1):
        t = c.add(f"REEstimates{i}", JTable("", f"{g}: Random Effect Estimates"))
        t.col("level", g, "string")
        cols = [(b, j) for b in blocks for j in range(len(b.terms))]
        for n, (b, j) in enumerate(cols, start=1):
            t.col(f"col{n}", b.terms[j])
        index = [{lv: k for k, lv in enumerate(b.levels)} for b in blocks]
        for lv in blocks[0].levels:
            cells = {"level": lv}
            for n, (b, j) in enumerate(cols, start=1):
                k = index[blocks.index(b)].get(lv)
                cells[f"col{n}"] = float(b.modes[k, j]) if k is not None else None
            t.add(**cells)
    return c


# --------------------------------------------------------------- marginal means
#: The one emmeans note JASP shows (on the estimates table); the others stay in
#: ``.mixedbridge.notes``.
AVERAGED = "Results are averaged over the levels of:"


def estimates(opts: dict, model: Model, out: EmmeansOutput) -> list[JTable]:
    """The tables of one answered request: ``EMMsummary`` or ``trendsSummary``, and its
    contrasts when asked."""
    kind = TRENDS if "trend" in out.request else MEANS
    est_col = f"{out.request['trend']}.trend" if kind is TRENDS else "emmean"
    tables = [_estimates_table(opts, model, kind, out.estimates, est_col)]
    for note in out.notes:
        if note.startswith(AVERAGED):
            tables[0].note(note + ".")
    if model.analysis == "lmm" and out.request.get("df") != DF_METHODS[opts[kind.option("Df")]]:
        tables[0].note(f"Degrees of freedom were computed as {out.request.get('df')} (emmeans computes the chosen ones "
                       f"for at most {EMMEANS_DF_LIMIT:,} observations unless the option to estimate them is set).",
                       "Warning:")
    if out.contrasts is not None:
        names = [c["name"] for c in out.request["contrasts"]]
        tables.append(_contrasts_table(opts, kind, out.contrasts, names))
    else:
        misfit = contrast_error(opts, model, kind)
        if misfit:
            tables.append(failed_contrasts(opts, kind, misfit))
    return tables


def failed_trends(opts: dict, model: Model, message: str | None) -> JTable | None:
    """A trends table that could not be computed (JASP's ``setError`` on ``trendsSummary``)."""
    if message is None:
        return None
    t = JTable("trendsSummary", "Estimated Trends", _estimates_depends(TRENDS))
    _estimates_columns(t, opts, model, TRENDS)
    t.fail(message)
    return t


def _estimates_depends(kind: Estimates) -> list[str]:
    trend = ["trendsTrendVariable"] if kind is TRENDS else []
    return (MODEL_DEPS + [kind.variables] + trend + [kind.option(s) for s in ("Sd", "Comparison", "ComparisonWith",
                                                                             "CiLevel")]
            + ["vovkSellke"] + [kind.option(s) for s in ("Contrast", "Df", "DfEstimated")])


def _estimates_columns(t: JTable, opts: dict, model: Model, kind: Estimates) -> None:
    if opts[kind.option("Contrast")]:
        t.col("number", "Row", "integer")
    for v in opts[kind.variables]:
        t.col(v, v, "string" if v in model.factors else "number")
    if kind is MEANS:
        t.col("estimate", "Estimate")
    else:
        t.col("slope", f"{opts['trendsTrendVariable']} (slope)")
    t.col("se", "SE")
    asym = opts[kind.option("Df")] == "asymptotic"
    if not asym:
        t.col("df", "df")
    ci = f"{_pct(opts[kind.option('CiLevel')])}% CI"
    t.col("lowerCI", "Lower", overtitle=ci).col("upperCI", "Upper", overtitle=ci)
    if opts[kind.option("Comparison")]:
        t.col("stat", "z" if asym else "t").col("pval", "p", "pvalue")
        t.note(f"P-values correspond to test of null hypothesis against {opts[kind.option('ComparisonWith')]:g}.",
               "\u2020", ["pval"])
        if opts["vovkSellke"]:
            t.col("vovkSellke", "VS-MPR")
            t.note(VS_NOTE, "*", ["vovkSellke"])


def _estimates_table(opts: dict, model: Model, kind: Estimates, table: Table, est_col: str) -> JTable:
    """``EMMsummary`` or ``trendsSummary`` from the emmeans (or trends) table."""
    t = JTable("EMMsummary" if kind is MEANS else "trendsSummary",
               "Estimated Marginal Means" if kind is MEANS else "Estimated Trends", _estimates_depends(kind))
    _estimates_columns(t, opts, model, kind)
    for i, r in enumerate(table.rows, start=1):
        cells: dict = {"number": i} if t.has("number") else {}
        cells.update({v: r.get(model.variables.label(v)) for v in opts[kind.variables]})
        cells["estimate" if kind is MEANS else "slope"] = r.get(est_col)
        cells["se"] = r.get("SE")
        if t.has("df"):
            cells["df"] = r.get("df")
        cells.update(lowerCI=r.get("lower.CL"), upperCI=r.get("upper.CL"))
        if t.has("pval"):
            cells.update(stat=r.get("t.ratio", r.get("z.ratio")), pval=r.get("p.value"))
        if t.has("vovkSellke"):
            cells["vovkSellke"] = vovk_sellke(cells["pval"])
        t.add(**cells)
    return t


def _contrasts_columns(opts: dict, kind: Estimates) -> JTable:
    """The empty ``contrastsMeans`` or ``contrastsTrends`` table with its columns."""
    t = JTable(f"contrasts{kind.what}", "contrasts",
               MODEL_DEPS + [kind.variables, kind.contrasts, kind.option("PAdjustment"), kind.option("CiLevel"),
                             kind.option("Df"), "vovkSellke"])
    ci = f"{_pct(opts[kind.option('CiLevel')])}% CI"
    t.col("contrast", "", "string").col("estimate", "Estimate").col("se", "SE").col("df", "df")
    t.col("lowerCI", "Lower", overtitle=ci).col("upperCI", "Upper", overtitle=ci)
    t.col("stat", "z" if opts[kind.option("Df")] == "asymptotic" else "t").col("pval", "p", "pvalue")
    if opts["vovkSellke"]:
        t.col("vovkSellke", "VS-MPR")
        t.note(VS_NOTE, "*", ["vovkSellke"])
    return t


def failed_contrasts(opts: dict, kind: Estimates, message: str) -> JTable:
    """A contrasts table that could not be computed (JASP's ``setError`` on that table only)."""
    t = _contrasts_columns(opts, kind)
    t.fail(message)
    return t


def _contrasts_table(opts: dict, kind: Estimates, table: Table, names: list[str]) -> JTable:
    """``contrastsMeans`` or ``contrastsTrends`` from the contrasts table, with intervals at
    the chosen level."""
    t = _contrasts_columns(opts, kind)
    for name, r in zip(names, table.rows):
        cells = {"contrast": name, **_contrast_cells(r, opts[kind.option("CiLevel")])}
        if opts["vovkSellke"]:
            cells["vovkSellke"] = vovk_sellke(cells["pval"])
        t.add(**cells)
    adj = P_ADJUSTMENTS.get(opts[kind.option("PAdjustment")])
    t.note(f"P-values are adjusted using {adj} adjustment." if adj else "P-values are not adjusted.", "\u2020",
           ["pval"])
    return t


def _contrast_cells(r: dict, level: float) -> dict:
    """A contrast's estimate, SE, df, unadjusted interval at ``level``, statistic and p."""
    est, se, df = r.get("estimate"), r.get("SE"), r.get("df")
    dfv = math.inf if df is None else df
    q = dist.t.ppf(1 - (1 - level) / 2, dfv) if not math.isinf(dfv) else dist.norm.ppf(1 - (1 - level) / 2)
    known = est is not None and se is not None
    return {"estimate": est, "se": se, "df": dfv, "lowerCI": est - q * se if known else None,
            "upperCI": est + q * se if known else None, "stat": r.get("t.ratio", r.get("z.ratio")),
            "pval": r.get("p.value")}


# --------------------------------------------------------------------------- plots
#: JASP's background elements our plot draws as another, with the note saying so.
BACKGROUND_AS = {"count": ("jitter", "The 'count' background is drawn as jittered points.")}


def plot_request(opts: dict, nobs: int, label=str) -> tuple[dict, list[str]]:
    """Our ``emmeans`` plot request from JASP's plot options, and notes on what was changed;
    ``label`` gives a variable's label in the model frame (``my var`` → ```my var```)."""
    notes = []
    ci = opts["plotCiType"]
    if ci in ("within", "between"):
        notes.append(f"Confidence intervals of type '{ci}' are drawn as '{CI_TYPES[ci]}' intervals.")
    background = opts["plotBackgroundElement"]
    if background in BACKGROUND_AS:
        background, note = BACKGROUND_AS[background]
        notes.append(note)
    def first(option: str) -> str | None:
        return label(opts[option][0]) if opts[option] else None

    request = {"type": "emmeans", "horizontal": first("plotHorizontalAxis"),
               "lines": first("plotSeparateLines"), "panels": first("plotSeparatePlots"),
               "background": background, "background_by": first("plotBackgroundData"),
               "ci_type": CI_TYPES.get(ci, "model"), "ci_level": float(opts["plotCiLevel"]),
               "df": "kenward-roger" if nobs <= 3000 else "asymptotic",
               "seed": int(opts["seed"]) if opts.get("setSeed") else 1}
    return request, notes


def plot_estimates(opts: dict, model: Model, problem, fit: Fit, plot: JPlot | None) -> JTable | None:
    """JASP's ``EstimatesTable`` (``plotEstimatesTable``): the means the plot draws and their
    intervals (afex_plot's ``return = "data"`` means), by the horizontal axis, separate lines
    and separate plots, in emmeans's row order; shown when the plot could be drawn."""
    if plot is None or plot.error or not opts["plotEstimatesTable"]:
        return None
    from ..plots.means import marginal_means

    request, _ = plot_request(opts, problem.frame.nobs, model.variables.label)
    ci = request["ci_type"]
    t = JTable("EstimatesTable", "Estimated Means" if ci == "none" else "Estimated Means and Confidence Intervals",
               plot.depends + ["plotEstimatesTable"])
    shown = [opts[o][0] for o in ("plotHorizontalAxis", "plotSeparateLines", "plotSeparatePlots") if opts[o]]
    for v in shown:
        t.col(v, v, "string")
    t.col("mean", "Mean")
    if ci != "none":
        overtitle = f"{_pct(opts['plotCiLevel'])}% CI"
        t.col("lowerCI", "Lower", overtitle=overtitle).col("upperCI", "Upper", overtitle=overtitle)
    if ci not in ("none", "model"):
        t.fail(f"Intervals of type '{opts['plotCiType']}' are drawn from the data; the table gives model-based "
               "intervals only ('model' or 'within').")
        return t
    means = marginal_means(problem, fit, request["horizontal"], request["lines"], request["panels"],
                           request["ci_level"], request["df"])
    for _, r in means.table.iterrows():
        cells: dict[str, str | float] = {v: str(r[model.variables.label(v)]) for v in shown}
        cells["mean"] = float(r["mean"])
        if ci != "none":
            cells.update(lowerCI=float(r["lower"]), upperCI=float(r["upper"]))
        t.add(**cells)
    return t


def plots_element(opts: dict, model: Model, problem, fit: Fit) -> JPlot | None:
    """JASP's ``plots`` element: the estimated means plot (as afex_plot draws it), or its error."""
    if not opts["plotHorizontalAxis"]:
        return None
    from ..plots import make_plots

    p = JPlot("plots", "Plot", ["plotHorizontalAxis", "plotSeparateLines", "plotSeparatePlots", "plotBackgroundData",
                               "plotBackgroundElement", "plotCiType", "plotCiLevel"])
    request, notes = plot_request(opts, problem.frame.nobs, model.variables.label)
    plots, plot_notes = make_plots(problem, fit, [request])
    if plots:
        p.image = plots[0]
    else:
        p.fail(" ".join(plot_notes) or "the plot could not be drawn")
    p.notes = notes + [n for n in plot_notes if plots]
    return p
