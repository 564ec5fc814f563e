"""JASP's Generalized Linear Mixed Models analysis (``MixedModelsGLMM``), as jaspMixedModels
runs it: afex ``mixed(..., family = <family>(<link>), method = "LRT" | "PB")`` with the
aggregated binomial's trials as weights, emmeans ``type = "response"`` for the marginal means
and contrasts of the regridded means (``contrast(regrid(emm), ...)``), trends on the link scale.

The GLMM's options (``family``, ``link``, ``dependentAggregation``, ``marginalMeansResponse``)
are read here; the data are checked and the response recoded as JASP's ``.mmCheckData`` does
(Bernoulli: the second of the two sorted values is a success; aggregated binomial: counts of
successes become proportions of the trials); the model, its random-effects pruning and most
tables are the LMM's (:mod:`.model`, :mod:`.elements`), built on a view of the options and the
model, and then given the GLMM's columns and footnotes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..frame import RESERVED
from ..table import Table
from . import elements as jt
from .errors import JaspOptionError
from .jaspresults import JTable, document, vovk_sellke
from .model import Model, build, ready
from .options import normalize

#: JASP's family names → R's.
FAMILIES = {"bernoulli": "binomial", "binomial": "binomial", "gaussian": "gaussian", "gamma": "Gamma",
            "inverseGaussian": "inverse.gaussian", "poisson": "poisson"}
#: The links JASP offers per family, its default first.
LINKS = {"bernoulli": ("logit", "probit", "cauchit", "cloglog", "log"),
         "binomial": ("logit", "probit", "cauchit", "cloglog", "log"),
         "gaussian": ("identity", "log", "inverse"), "gamma": ("log", "identity", "inverse"),
         "inverseGaussian": ("log", "identity", "inverse"), "poisson": ("log", "identity", "sqrt")}
#: The family's name in JASP's messages.
FAMILY_WORDS = {"bernoulli": "binomial", "binomial": "binomial", "gaussian": "gaussian", "gamma": "gamma",
                "inverseGaussian": "inverseGaussian", "poisson": "poisson"}
GLMM_KEYS = ("family", "link", "dependentAggregation", "marginalMeansResponse")
GLMM_TESTS = ("likelihoodRatioTest", "parametricBootstrap")
RESPONSE_NOTE = "Results are on the response scale."
NOT_RESPONSE_NOTE = "Results are not on the response scale and might be misleading."
TITLE = "Generalized Linear Mixed Models"


@dataclass(frozen=True)
class GlmmOptions:
    """The GLMM's own options: JASP's ``family``, R's ``r_family``, ``link``, the trials
    column (``dependentAggregation``, "" when none) and ``response`` (marginal means on the
    response scale)."""

    family: str
    link: str
    trials: str
    response: bool

    @property
    def r_family(self) -> str:
        return FAMILIES[self.family]

    @property
    def words(self) -> str:
        return f"Generalized linear mixed model with {FAMILY_WORDS[self.family]} family and {self.link} link function"


def _value(x) -> str:
    """A single-variable option's name (JASP's ``{"value": ...}`` object or a plain string)."""
    if isinstance(x, dict):
        x = x.get("value", "")
    if isinstance(x, list):
        x = x[0] if x else ""
    return x if isinstance(x, str) else ""


def split_options(options: dict) -> tuple[dict, GlmmOptions]:
    """The LMM options (``testMethod`` defaulting to the likelihood-ratio test) and the GLMM's."""
    if not isinstance(options, dict):
        raise JaspOptionError("", "the options must be a JSON object")
    rest = {k: v for k, v in options.items() if k not in GLMM_KEYS}
    family = options.get("family", "bernoulli")
    if family not in FAMILIES:
        raise JaspOptionError("family", f"option 'family': {family!r} is not one of JASP's GLMM families ("
                              + ", ".join(repr(f) for f in FAMILIES) + ")", "/family")
    link = options.get("link", LINKS[family][0])
    if link not in LINKS[family]:
        raise JaspOptionError("link", f"option 'link': the {family} family takes the links "
                              + ", ".join(repr(k) for k in LINKS[family]) + f", not {link!r}", "/link")
    if family == "gaussian" and link == "identity":
        raise JaspOptionError("link", "option 'link': a gaussian model with the identity link is a linear mixed "
                              "model; use the Linear Mixed Models analysis, or the log or inverse link", "/link")
    rest.setdefault("testMethod", "likelihoodRatioTest")
    if rest["testMethod"] not in GLMM_TESTS:
        raise JaspOptionError("testMethod", f"option 'testMethod': {rest['testMethod']!r} is for linear mixed models; "
                              "a GLMM's terms are tested with 'likelihoodRatioTest' or 'parametricBootstrap'",
                              "/testMethod")
    return rest, GlmmOptions(family, link, _value(options.get("dependentAggregation", "")),
                             bool(options.get("marginalMeansResponse", True)))


# ------------------------------------------------------------------------------ data
def _whole(x: np.ndarray) -> bool:
    return bool(np.all(np.abs(x - np.round(x)) < 1e-7))


def prepare_data(opts: dict, g: GlmmOptions, data: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The data with the response as glmer takes it and the trials column checked, as JASP's
    ``.mmCheckData``: rows missing a value in any variable read (the trials included) are left
    for the model to remove; the checks run on the complete rows. Returns the data and the
    ANOVA's footnotes (the level coded as success)."""
    dep = opts["dependent"]
    used = list(dict.fromkeys([dep, *opts["fixedVariables"], *opts["randomVariables"]]
                              + ([g.trials] if g.trials else [])))
    for name in used:
        if name not in data.columns:
            option = "dependentAggregation" if name == g.trials else "dependent"
            raise JaspOptionError(option, f"column {name!r} is not in the data", f"/{option}")
    out = data.copy()
    complete = out[used].notna().all(axis=1).to_numpy()
    y = out[dep]
    if g.family == "bernoulli":
        out[dep], success = _bernoulli(y, complete, g)
        opts["types"][dep] = "scale"
        notes = [f"'{success}' level coded as success."]
    else:
        out[dep] = _numeric(y, dep)
        notes = []
    if g.family == "binomial":
        out[dep] = _proportions(out[dep].to_numpy(dtype=float), _numeric(out[g.trials], g.trials).to_numpy(),
                                complete, g)
    else:
        _check_values(out[dep].to_numpy(dtype=float)[complete], g)
    out.loc[~complete, dep] = np.nan  # JASP's na.omit reads every variable, the trials too
    return out, notes


def _numeric(col: pd.Series, name: str) -> pd.Series:
    values = pd.to_numeric(col, errors="coerce")
    if (values.isna() & col.notna()).any():
        raise JaspOptionError("dependent", f"option 'dependent': {name!r} must be numeric for this family; it "
                              "holds text", "/dependent")
    return values.astype(float)


def _bernoulli(y: pd.Series, complete: np.ndarray, g: GlmmOptions) -> tuple[pd.Series, str]:
    """0/1 with the second of the two sorted values (levels for a factor) as success."""
    values = y[complete]
    uniq = list(values.cat.categories[np.unique(values.cat.codes)]) if isinstance(y.dtype, pd.CategoricalDtype) \
        else sorted(pd.unique(values))
    if len(uniq) != 2:
        raise JaspOptionError("dependent", f"{g.words} requires that the dependent variable contains only two "
                              f"levels; it has {len(uniq)}", "/dependent")
    success = uniq[1]
    coded = pd.Series(np.where(y.astype(object) == success, 1.0, 0.0), index=y.index)
    return coded.where(y.notna()), str(success)


def _proportions(y: np.ndarray, n: np.ndarray, complete: np.ndarray, g: GlmmOptions) -> np.ndarray:
    """Successes (or proportions) of ``n`` trials as proportions, checked as JASP checks them."""
    yc, nc = y[complete], n[complete]
    if np.any(nc < 0) or not _whole(nc):
        raise JaspOptionError("dependentAggregation", f"{g.words} requires that the number of trials variable is "
                              "an integer", "/dependentAggregation")
    if _whole(yc):
        if np.any(yc > nc):
            raise JaspOptionError("dependent", f"{g.words} requires that the number of successes is not larger "
                                  "than the number of trials", "/dependent")
        with np.errstate(all="ignore"):
            y = y / n
            yc = yc / nc
    if np.any((yc < 0) | (yc > 1)):
        raise JaspOptionError("dependent", f"{g.words} requires that the dependent variable is between 0 and 1",
                              "/dependent")
    if not _whole(yc * nc):
        raise JaspOptionError("dependent", f"{g.words} requires that the dependent variable is either the number or "
                              "the proportion of successes out of the number of trials", "/dependent")
    return y


def _check_values(y: np.ndarray, g: GlmmOptions) -> None:
    if g.family in ("gamma", "inverseGaussian") and np.any(y <= 0):
        raise JaspOptionError("dependent", f"{g.words} requires that the dependent variable is positive",
                              "/dependent")
    if g.family == "poisson" and (np.any(y < 0) or not _whole(y)):
        raise JaspOptionError("dependent", f"{g.words} requires that the dependent variable is a non-negative "
                              "integer", "/dependent")


# ----------------------------------------------------------------------------- model
def glmm_model(opts: dict, g: GlmmOptions, data: pd.DataFrame) -> Model:
    """JASP's model (the LMM's formula and random-slope pruning) as a GLMM: fitted by maximum
    likelihood, the aggregated binomial's trials as prior weights."""
    model = build(opts, data, "lmm")
    frame = model.frame
    if g.family == "binomial":
        trials = pd.to_numeric(data[g.trials], errors="coerce").to_numpy(dtype=float)
        fdata = frame.data.assign(**{"(weights)": trials[frame.data.index.to_numpy()]})
        frame = replace(frame, data=fdata)
    return replace(model, analysis="glmm", reml=False, frame=frame)


def spec_options(opts: dict, g: GlmmOptions, model: Model) -> dict:
    """The spec's options: coding, family and link, the terms' tests, marginal means."""
    from .analysis import _inference_options

    options: dict = {"contrasts": opts["factorContrast"], "family": g.r_family, "link": g.link}
    anova = _inference_options(opts, "lmm")["anova"]
    if opts["fixedEffects"] or not opts["includeIntercept"]:
        options["anova"] = anova  # an intercept-only model gets no table (JASP fits glmer directly)
    else:
        options["anova"] = False
    emm = emmeans_requests(opts, g, model)
    if emm:
        options["emmeans"] = emm
    return options


def _link_view(opts: dict) -> dict:
    """The options as the LMM's builders should read them for a GLMM: asymptotic df (z tests,
    no df column in the means tables)."""
    return {**opts, "marginalMeansDf": "asymptotic", "trendsDf": "asymptotic"}


def emmeans_requests(opts: dict, g: GlmmOptions, model: Model) -> list[dict]:
    """The LMM's requests on the link scale; with ``marginalMeansResponse``, the means
    back-transformed (``type = "response"``) and their contrasts asked of the regridded
    means in a request of their own (marked ``regrid``)."""
    from .means import requests

    out = []
    for req in requests(_link_view(opts), replace(model, analysis="lmm")):
        if "trend" in req or not g.response:
            out.append(req)
            continue
        means = {k: v for k, v in req.items() if k not in ("contrasts", "adjust")}
        out.append({**means, "type": "response"})
        if "contrasts" in req:
            out.append({**req, "regrid": True})
    return out


# ------------------------------------------------------------------------------- run
def run_glmm(options: dict, data: pd.DataFrame, engine: str = "native", title: str = TITLE,
             column_types: dict | None = None) -> dict:
    """A ``MixedModelsGLMM`` option document and its data → the JASP results document
    (``column_types`` as for the LMM: JASP's column types for documents that carry none)."""
    from .analysis import _fit

    rest, g = split_options(options)
    opts, notes = normalize(rest, column_types)
    missing = ready(opts, "lmm") or _trials_missing(opts, g)
    if missing:
        return document([jt.not_ready(_link_view(opts), "lmm", missing[1], notes)], title)
    model, coding = _model(opts, g, data)
    spec = glmm_spec(opts, g, model, engine)
    results, outcome = _fit(spec, model)
    emm_notes = {n for out in outcome.emmeans for n in out.notes}
    notes = notes + [n for n in results.notes if n not in outcome.problem.frame.notes and n not in emm_notes]
    elements = _elements(opts, g, model, outcome, notes, coding)
    extra = {".mixedbridge": {"formula": model.formula, "engine": engine, "analysis": "glmm",
                              "family": g.r_family, "link": g.link,
                              "notes": notes + sorted(emm_notes),
                              "warnings": list(results.warnings),
                              "spec_options": spec["options"]}}
    return document([e for e in elements if e is not None], title, extra)


def _model(opts: dict, g: GlmmOptions, data: pd.DataFrame) -> tuple[Model, list[str]]:
    """The checked data's model and the ANOVA's coding footnotes."""
    if g.family == "binomial" and not opts["fixedEffects"]:
        raise JaspOptionError("fixedEffects", "Mixed-effects models with a fixed intercept only are not supported "
                              "for the aggregated binomial family.", "/fixedEffects")
    data, coding = prepare_data(opts, g, data)
    return glmm_model(opts, g, data), coding


def glmm_spec(opts: dict, g: GlmmOptions, model: Model, engine: str) -> dict:
    """The spec of the GLMM (its rows come separately)."""
    return {"analysis": "glmm", "engine": engine, "formula": model.formula, "data": {"records": [{}]},
            "levels": model.levels, "options": spec_options(opts, g, model)}


def translate_glmm(options: dict, data: pd.DataFrame, engine: str = "native",
                   column_types: dict | None = None) -> tuple[dict, list[str], pd.DataFrame]:
    """A ``MixedModelsGLMM`` option document and its data → ``(spec, notes, rows)``, for
    :func:`mixedbridge.jasp.translate`: ``rows`` those the model uses, with the response as glmer
    takes it (a Bernoulli response as 0/1, an aggregated binomial's as proportions with the
    trials column named in ``options.weights``); the family, link and tests in ``options``."""
    rest, g = split_options(options)
    opts, notes = normalize(rest, column_types)
    missing = ready(opts, "lmm") or _trials_missing(opts, g)
    if missing:
        raise JaspOptionError(*missing)
    model, coding = _model(opts, g, data)
    spec = glmm_spec(opts, g, model, engine)
    rows = model.rows()
    if g.family == "binomial":
        spec["options"]["weights"] = g.trials
        rows[g.trials] = model.frame.data[RESERVED["weights"]].to_numpy()
    return spec, notes + coding + [f.text for f in model.footnotes], rows


def _trials_missing(opts: dict, g: GlmmOptions) -> tuple[str, str] | None:
    if g.family == "binomial" and not g.trials:
        return ("dependentAggregation", "The 'Binomial (aggregated)' family requires the 'Number of trials' to be "
                "specified to run.")
    return None


def _elements(opts: dict, g: GlmmOptions, model: Model, outcome, notes: list[str], coding: list[str]) -> list:
    """JASP's elements of a GLMM: the LMM's builders on the link view, then the GLMM's parts."""
    lopts, view = _link_view(opts), replace(model, analysis="lmm")
    lead = outcome.lead
    fit, inference = lead.fit, lead.inference
    anova = jt.anova_summary(lopts, view, fit, inference, notes)
    anova.note(g.words + ".")
    for n in coding:
        anova.note(n)
    plot = jt.plots_element(lopts, view, outcome.problem, fit)
    return [anova, _fit_summary(lopts, view, fit), fixed_effects(opts, fit, inference),
            jt.variance_components(lopts, view, fit), jt.random_effect_estimates(lopts, view, fit),
            jt.plot_estimates(lopts, view, outcome.problem, fit, plot), plot,
            *_estimates(lopts, g, view, outcome.emmeans)]


def _fit_summary(opts: dict, model: Model, fit):
    """The LMM's fit statistics with a GLMM's deviance (lme4's ``deviance()``: the sum of the
    squared deviance residuals) and ``logLik``'s df (no σ for a family without a scale)."""
    from ..families import has_scale

    c = jt.fit_summary(opts, model, fit)
    if c is None:
        return None
    stats_table = c.children[0][1]
    row = stats_table.rows[0]
    dev = fit.optinfo.get("residual_deviance")
    row["deviance"] = float(dev) if dev is not None else float(fit.deviance)
    row["df"] = len(fit.beta) + (len(fit.theta) if fit.theta is not None else 0) + (1 if has_scale(fit.family) else 0)
    return c


def fixed_effects(opts: dict, fit, inference) -> JTable | None:
    """``FEsummary`` of a GLMM: estimates with Wald z tests (t for a family with a scale, as
    ``summary(glmer)`` labels them; normal p-values either way)."""
    from ..families import has_scale

    if not opts["fixedEffectEstimate"]:
        return None
    t = JTable("FEsummary", "Fixed Effects Estimates", jt.MODEL_DEPS + ["fixedEffectEstimate", "vovkSellke"])
    t.col("term", "Term", "string").col("estimate", "Estimate").col("se", "SE")
    t.col("stat", "t" if has_scale(fit.family) else "z").col("pval", "p", "pvalue")
    if opts["vovkSellke"]:
        t.col("vovkSellke", "VS-MPR")
        t.note(jt.VS_NOTE, "*", ["vovkSellke"])
    for r in jt.coefficients(fit, inference):
        cells = {"term": jt.term_label(r["term"], opts["fixedVariables"]), "estimate": r["estimate"],
                 "se": r["std.error"], "stat": r["statistic"], "pval": r["p.value"]}
        if opts["vovkSellke"]:
            cells["vovkSellke"] = vovk_sellke(r["p.value"])
        t.add(**cells)
    t.note(jt._interpretability(opts["factorContrast"]))
    return t


def _estimates(opts: dict, g: GlmmOptions, model: Model, outputs: list) -> list[JTable]:
    """The marginal-means and trends tables: response-scale means joined with the contrasts
    of their regridded request, the scale said in a footnote."""
    tables: list[JTable] = []
    i = 0
    while i < len(outputs):
        out = outputs[i]
        trends = "trend" in out.request
        if out.request.get("type") == "response":
            nxt = outputs[i + 1] if i + 1 < len(outputs) and outputs[i + 1].request.get("regrid") else None
            out = _joined(out, nxt)
            i += 1 if nxt is None else 2
        else:
            i += 1
        built = jt.estimates(opts, model, out)
        for t in built:
            t.note(RESPONSE_NOTE if (g.response and not trends) else NOT_RESPONSE_NOTE)
        tables += built
    return tables


def _joined(means, regridded):
    """The response-scale means output with its estimate column named as the LMM's
    (``emmean``) and, when asked, the regridded request's contrasts."""
    from ..analysis import EmmeansOutput

    table = means.estimates
    cols = [c.name for c in table.columns]
    est = cols[cols.index("SE") - 1]
    renamed = Table(table.name, table.title, table.columns, [{**r, "emmean": r.get(est)} for r in table.rows],
                    list(table.footnotes))
    tables = [renamed] + ([regridded.contrasts] if regridded is not None and regridded.contrasts is not None else [])
    request = regridded.request if regridded is not None else means.request
    return EmmeansOutput(means.path, request, tables, list(means.notes))
