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
from .means import requests, trends_error
from .model import Model, build, ready
from .options import SS_TYPES, TEST_METHODS, normalize

TITLES = {"lmm": "Linear Mixed Models", "lm": "Linear Model"}
#: JASP's analysis names (its ``Description.qml`` functions) → ours.
ANALYSIS_NAMES = {"MixedModelsLMM": "lmm", "MixedModelsLM": "lm"}
#: Analyses JASP names that are not available here (never fitted as another analysis).
UNAVAILABLE: dict[str, str] = {}
#: The generalized linear mixed model, by JASP's name and ours (run by :mod:`.glmm`).
GLMM_NAMES = {"MixedModelsGLMM": "Generalized Linear Mixed Models", "glmm": "Generalized Linear Mixed Models"}


def analysis_name(name: str) -> str:
    """Our name of an analysis given by our name or JASP's (``MixedModelsLMM`` → ``lmm``);
    JaspOptionError for an analysis that is not available (the GLMM) or unknown."""
    if name in UNAVAILABLE:
        raise JaspOptionError("", f"{UNAVAILABLE[name]} ({name!r}) are not available yet: only linear mixed models "
                              "('lmm', 'MixedModelsLMM') and linear models ('lm', 'MixedModelsLM') can be run")
    ours = ANALYSIS_NAMES.get(name, name)
    if ours not in TITLES:
        raise JaspOptionError("", f"unknown analysis {name!r}; expected one of "
                              + ", ".join(repr(n) for n in [*TITLES, *ANALYSIS_NAMES]))
    return ours


def title_for(name) -> str:
    """The title of the analysis a name gives (ours or JASP's; Linear Mixed Models otherwise)."""
    if not isinstance(name, str):
        return TITLES["lmm"]
    return GLMM_NAMES.get(name) or UNAVAILABLE.get(name) or TITLES.get(ANALYSIS_NAMES.get(name, name), TITLES["lmm"])


def _inference_options(opts: dict, analysis: str) -> dict:
    """The spec's ``df_method`` and ``anova`` (JASP's test, sums of squares, bootstrap)."""
    anova: dict = {"type": SS_TYPES[opts["type"]]}
    if analysis == "lm":
        return {"anova": anova}
    method = TEST_METHODS[opts["testMethod"]].anova
    anova["method"] = method
    if method in ("lrt", "bootstrap"):
        # afex tests the intercept in type III tables only (type II: no Intercept row)
        anova["intercept"] = bool(opts["interceptTest"]) and anova["type"] == "III"
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
              engine: str = "native", column_types: dict | None = None) -> tuple[dict, list[str]]:
    """JASP options and data → ``(spec, notes)``.

    The spec is self-contained: ``data.records`` holds the rows the model uses (listwise
    complete), ``levels`` the factor orders, and
    ``formula`` the lme4 formula JASP's ``.mmModelFormula`` would build. ``notes`` lists options
    not acted on and the random-effects terms removed or added. Raises
    :class:`~mixedbridge.jasp.JaspOptionError` naming the option at fault, or when the analysis
    is not ready (no dependent variable, grouping factor or fixed effect). ``column_types``
    as for :func:`run_jasp`. ``analysis`` is ours or JASP's name; a GLMM document
    (``MixedModelsGLMM``) gives an ``analysis: glmm`` spec (:func:`.glmm.translate_glmm`).
    """
    if analysis in GLMM_NAMES:
        from .glmm import translate_glmm

        spec, notes, rows = translate_glmm(options, data, engine, column_types)
        spec["data"] = {"records": _records(rows)}
        return spec, notes
    analysis = analysis_name(analysis)
    opts, notes = normalize(options, column_types)
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
             engine: str = "native", analysis: str = "lmm", column_types: dict | None = None) -> dict:
    """Run a JASP option document and return a JASP results document (never raises for bad
    input). ``analysis`` is ours (``lmm``, ``lm``) or JASP's name (``MixedModelsLMM``,
    ``MixedModelsLM``, ``MixedModelsGLMM``: :func:`.glmm.run_glmm`). ``column_types`` maps
    columns to JASP's column types (``$defs/columnTypes`` of the options schema) for documents
    whose variable lists carry none. Errors come back as
    ``{"status": "error", "error": {"type", "errorMessage", "option", "path"}}``."""
    title = title_for(analysis)
    try:
        if engine not in spec_engines():
            raise JaspOptionError("", f"unknown engine {engine!r}; expected " + ", ".join(spec_engines()))
        if analysis in GLMM_NAMES:
            from .glmm import run_glmm
            return run_glmm(options, _load(data, dataset), engine, title, column_types)
        analysis = analysis_name(analysis)
        df = _load(data, dataset)
        return _run(options, df, engine, analysis, title, column_types)
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


def _run(options: dict, df: pd.DataFrame, engine: str, analysis: str, title: str,
         column_types: dict | None = None) -> dict:
    opts, notes = normalize(options, column_types)
    missing = ready(opts, analysis)
    if missing:
        return document([jt.not_ready(opts, analysis, missing[1], notes)], title)
    model = build(opts, df, analysis)
    spec = _spec(opts, model, engine)
    results, outcome = _fit(spec, model)
    lead = outcome.lead
    emm_notes = {n for out in outcome.emmeans for n in out.notes}
    notes = notes + [n for n in results.notes if n not in outcome.problem.frame.notes and n not in emm_notes]
    plot = jt.plots_element(opts, model, outcome.problem, lead.fit)
    elements = [
        jt.anova_summary(opts, model, lead.fit, lead.inference, notes),
        jt.fit_summary(opts, model, lead.fit),
        jt.fixed_effects(opts, model, lead.fit, lead.inference),
        jt.variance_components(opts, model, lead.fit),
        jt.random_effect_estimates(opts, model, lead.fit),
        jt.plot_estimates(opts, model, outcome.problem, lead.fit, plot),
        plot,
        *(table for out in outcome.emmeans for table in jt.estimates(opts, model, out)),
        jt.failed_trends(opts, model, trends_error(opts, model)),
    ]
    extra = {".mixedbridge": {"formula": model.formula, "engine": engine, "analysis": analysis,
                              "notes": notes + sorted(emm_notes) + (plot.notes if plot else []),
                              "warnings": list(results.warnings),
                              "spec_options": spec["options"]}}
    return document([e for e in elements if e is not None], title, extra)
