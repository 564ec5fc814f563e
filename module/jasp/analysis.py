"""JASP option document + data → the JASP model → :func:`mixedbridge.analysis.run_prepared` →
JASP results document.

:func:`_run` reads as the analysis's outputs, one line each (as jaspMixedModels'
``MixedModelsLMM``): read the data and build the model, fit, ANOVA summary, fit statistics,
fixed effects, variance components, random effects, plot, marginal means and trends with
their contrasts. The tables read the analysis object (fits, inference, emmeans outputs);
whether an element is shown is decided by its builder.
"""
from __future__ import annotations

import pandas as pd

from .. import datasets
from ..analysis import Analysis, run_prepared
from ..engines import spec_engines
from ..errors import MixedBridgeError
from ..problem import Problem
from ..results import Results
from ..spec import validate
from . import elements as jt
from .errors import JaspOptionError, error_document
from .jaspresults import document
from .means import requests
from .model import Model, build, ready
from .options import SS_TYPES, TEST_METHODS, normalize

TITLES = {"lmm": "Linear Mixed Models", "lm": "Linear Model"}


def _inference_options(opts: dict, analysis: str) -> dict:
    """The spec's ``df_method`` and ``anova`` (JASP's test, sums of squares, bootstrap)."""
    anova: dict = {"type": SS_TYPES[opts["type"]]}
    if analysis == "lm":
        return {"anova": anova}
    method = TEST_METHODS[opts["testMethod"]].anova
    anova["method"] = method
    if method in ("lrt", "bootstrap"):
        anova["intercept"] = bool(opts["interceptTest"])
    if method == "bootstrap":
        anova["nsim"] = int(opts["bootstrapSamples"])
        anova["seed"] = int(opts["seed"]) if opts["setSeed"] else 1
    return {"df_method": "satterthwaite", "anova": anova}


def _spec(opts: dict, model: Model, engine: str) -> dict:
    """The spec of the model: formula, factor levels and options (the rows come separately)."""
    options = {"reml": model.reml, "contrasts": opts["factorContrast"], **_inference_options(opts, model.analysis)}
    emm = requests(opts, model)
    if emm:
        options["emmeans"] = emm if len(emm) > 1 else emm[0]
    return {"analysis": model.analysis, "engine": engine, "formula": model.formula,
            "data": {"records": [{}]}, "levels": model.levels, "options": options}


def translate(options: dict, data: pd.DataFrame, analysis: str = "lmm",
              engine: str = "native") -> tuple[dict, list[str]]:
    """JASP options and data → ``(spec, notes)``.

    The spec is self-contained: ``data.records`` holds the rows the model uses (listwise
    complete, expanded uncorrelated slope columns included), ``levels`` the factor orders, and
    ``formula`` the lme4 formula JASP's ``.mmModelFormula`` would build. ``notes`` lists options
    not acted on and the random-effects terms removed or added. Raises
    :class:`~mixedbridge.jasp.JaspOptionError` naming the option at fault, or when the analysis
    is not ready (no dependent variable, grouping factor or fixed effect).
    """
    opts, notes = normalize(options)
    missing = ready(opts, analysis)
    if missing:
        raise JaspOptionError(*missing)
    model = build(opts, data, analysis)
    spec = _spec(opts, model, engine)
    spec["data"] = {"records": _records(model.rows())}
    return spec, notes + [f.text for f in model.footnotes]


def _records(df: pd.DataFrame) -> list[dict]:
    out = df.astype(object).where(df.notna(), None).to_dict("records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in out]


def _load(data, dataset):
    if data is not None:
        if not isinstance(data, pd.DataFrame):
            raise JaspOptionError("", "data must be a pandas DataFrame")
        return data
    if dataset is None:
        raise JaspOptionError("", "no data: pass a DataFrame or the name of a bundled data set")
    df, _ = datasets.load(dataset)
    return df


def run_jasp(options: dict, data: pd.DataFrame | None = None, dataset: str | None = None,
             engine: str = "native", analysis: str = "lmm") -> dict:
    """Run a JASP option document and return a JASP results document (never raises for bad
    input: errors come back as ``{"status": "error", "error": {"type", "errorMessage", "option",
    "path"}}``)."""
    title = TITLES.get(analysis, "Linear Mixed Models")
    try:
        if analysis not in TITLES:
            raise JaspOptionError("", f"unknown analysis {analysis!r}; expected 'lmm' or 'lm'")
        if engine not in spec_engines():
            raise JaspOptionError("", f"unknown engine {engine!r}; expected " + ", ".join(spec_engines()))
        df = _load(data, dataset)
        return _run(options, df, engine, analysis, title)
    except JaspOptionError as exc:
        return error_document(exc.message, exc.option, exc.path, "validationError", title)
    except MixedBridgeError as exc:
        return error_document(exc.message, "", exc.path, "fatalError", title)


def _fit(spec: dict, model: Model) -> tuple[Results, Analysis]:
    """The analysis of the model built here (its description and rows, never formula text)."""
    normalized = validate(spec)
    problem = Problem.build(model.analysis, model.desc, model.frame, normalized["options"])
    results = run_prepared(normalized, problem)
    assert results.outcome is not None  # run_prepared always keeps the analysis
    return results, results.outcome


def _run(options: dict, df: pd.DataFrame, engine: str, analysis: str, title: str) -> dict:
    opts, notes = normalize(options)
    missing = ready(opts, analysis)
    if missing:
        return document([jt.not_ready(opts, analysis, missing[1], notes)], title)
    model = build(opts, df, analysis)
    spec = _spec(opts, model, engine)
    results, outcome = _fit(spec, model)
    lead = outcome.lead
    notes = notes + [n for n in results.notes if n not in outcome.problem.frame.notes]
    plot = jt.plots_element(opts, model, outcome.problem, lead.fit)
    elements = [
        jt.anova_summary(opts, model, lead.fit, lead.inference, notes),
        jt.fit_summary(opts, model, lead.fit),
        jt.fixed_effects(opts, model, lead.fit, lead.inference),
        jt.variance_components(opts, model, lead.fit),
        jt.random_effect_estimates(opts, model, lead.fit),
        plot,
        *(table for out in outcome.emmeans for table in jt.estimates(opts, model, out)),
    ]
    extra = {".mixedbridge": {"formula": model.formula, "engine": engine, "analysis": analysis,
                              "notes": notes + (plot.notes if plot else []), "warnings": list(results.warnings),
                              "spec_options": spec["options"]}}
    return document([e for e in elements if e is not None], title, extra)
