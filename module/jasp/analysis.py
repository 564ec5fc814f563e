"""JASP option document + data → our spec → :func:`mixedbridge.run` → JASP results document."""
from __future__ import annotations

import itertools

import pandas as pd

from .. import datasets
from ..engines import spec_engines
from ..errors import MixedBridgeError
from ..spec import schema as spec_schema
from . import sources
from . import tables as jt
from .errors import JaspOptionError, error_document
from .jaspresults import JTable, document
from .model import Plan, prepare, ready
from .options import contrast_weights, normalize

TITLES = {"lmm": "Linear Mixed Models", "lm": "Linear Model"}
TEST_METHODS = {"satterthwaite": "satterthwaite", "kenwardRoger": "kenward-roger",
                "likelihoodRatioTest": "lrt", "parametricBootstrap": "bootstrap"}
EMM_DF = {"asymptotic": "asymptotic", "satterthwaite": "satterthwaite", "kenwardRoger": "kenward-roger"}


def _accepted_options() -> set[str]:
    return set(spec_schema("spec")["$defs"]["options"].get("properties", {}))


def _inference_options(opts: dict, analysis: str) -> dict:
    """What the inference layer needs (``options.anova``, ``options.df_method``)."""
    out = {"reml": analysis == "lm" or opts["testMethod"] in ("satterthwaite", "kenwardRoger")}
    if analysis == "lmm":
        out["df_method"] = "satterthwaite"
        method = TEST_METHODS[opts["testMethod"]]
        anova = {"type": "III" if opts["type"] == "3" else "II", "method": method}
        if method in ("lrt", "bootstrap"):
            anova["intercept"] = bool(opts["interceptTest"])
        if method == "bootstrap":
            anova["nsim"] = int(opts["bootstrapSamples"])
            anova["seed"] = int(opts["seed"]) if opts["setSeed"] else 1
        out["anova"] = anova
    else:
        out["anova"] = {"type": "III" if opts["type"] == "3" else "II"}
    return out


def _grid(opts: dict, plan: Plan, variables: list[str], sd: float) -> list[dict]:
    """The rows of the EMM grid, in emmeans's order (first variable fastest)."""
    axes = []
    for v in variables:
        if v in plan.factors:
            axes.append(list(plan.levels[v]))
        else:
            x = plan.data[v].to_numpy(dtype=float)
            axes.append([float(x.mean() + k * sd * x.std(ddof=1)) for k in (-1, 0, 1)])
    rows = []
    for combo in itertools.product(*reversed(axes)):
        rows.append(dict(zip(variables, reversed(combo))))
    return rows


def _match_contrasts(opts: dict, plan: Plan, option: str, variables: list[str], sd: float):
    """Custom contrasts checked against the grid; weights reordered to our row order when the
    table's grid columns list the factor levels in another order."""
    grid_cols, contrasts = contrast_weights(opts[option], option)
    rows = _grid(opts, plan, variables, sd)
    out = []
    by_name = {c.get("name"): c for c in grid_cols}
    perm = None
    if variables and all(v in by_name for v in variables) and all(v in plan.factors for v in variables):
        keys = [tuple(str(x) for x in by_name[v]["values"]) for v in variables]
        theirs = list(zip(*keys))
        ours = [tuple(r[v] for v in variables) for r in rows]
        if len(theirs) == len(ours) and sorted(theirs) == sorted(ours) and theirs != ours:
            perm = [theirs.index(o) for o in ours]
    for j, (name, w) in enumerate(contrasts):
        if len(w) != len(rows):
            raise JaspOptionError(option, f"option '{option}': contrast {name!r} has {len(w)} weight(s) but the "
                                  f"grid of {', '.join(variables) or '(none)'} has {len(rows)} row(s)", f"/{option}")
        out.append((name, [w[k] for k in perm] if perm else w))
    return out


def _emm_request(opts: dict, plan: Plan, what: str) -> dict | None:
    means = what == "Means"
    pre = "marginalMeans" if means else "trends"
    variables = opts["marginalMeansTerms"] if means else opts["trendsVariables"]
    fixed_vars = {v for t in opts["fixedEffects"] for v in t}
    for v in variables:
        if v not in fixed_vars:
            option = "marginalMeansTerms" if means else "trendsVariables"
            raise JaspOptionError(option, f"option '{option}': {v!r} is not a variable of the fixed effects "
                                  f"({', '.join(sorted(fixed_vars)) or 'none'})", f"/{option}")
    if means and not variables:
        return None
    if not means:
        tv = opts["trendsTrendVariable"]
        if not tv or not variables:
            return None
        if tv not in fixed_vars or tv in plan.factors:
            raise JaspOptionError("trendsTrendVariable", f"option 'trendsTrendVariable': {tv!r} must be a scale "
                                  "variable of the fixed effects", "/trendsTrendVariable")
    sd = float(opts[f"{pre}Sd"])
    req = {"specs": list(variables), "level": float(opts[f"{pre}CiLevel"]), "df": EMM_DF[opts[f"{pre}Df"]]}
    if any(v not in plan.factors for v in variables):
        if sd > 0:
            req["sd_steps"] = sd
        else:
            req["at"] = {v: [float(plan.data[v].mean())] for v in variables if v not in plan.factors}
    if plan.analysis == "lm":
        req["df"] = "satterthwaite"
    if opts[f"{pre}Comparison"]:
        req["null"] = float(opts[f"{pre}ComparisonWith"])
    if not means:
        req["trend"] = opts["trendsTrendVariable"]
    if opts[f"{pre}Contrast"]:
        custom = _match_contrasts(opts, plan, "contrasts" if means else "trendsContrasts", variables, sd)
        if custom:
            req["contrasts"] = [{"name": n, "weights": w} for n, w in custom]
            req["adjust"] = opts[f"{pre}PAdjustment"]
    return req


def _translate(options: dict, data: pd.DataFrame, analysis: str, engine: str):
    opts, notes = normalize(options)
    why = ready(opts, analysis)
    if why:
        return opts, None, None, notes, why
    plan = prepare(opts, data, analysis)
    spec_opts = {"reml": plan.reml if analysis == "lmm" else True, "contrasts": opts["factorContrast"]}
    accepted = _accepted_options()
    for k, v in _inference_options(opts, analysis).items():
        if k in accepted and k != "reml":
            spec_opts[k] = v
    spec = {"analysis": analysis, "engine": engine, "formula": plan.formula,
            "data": {"records": [{}]}, "levels": plan.levels, "options": spec_opts}
    requests = [r for r in (_emm_request(opts, plan, "Means"), _emm_request(opts, plan, "Trends")) if r]
    plan.requests = requests
    if requests and "emmeans" in accepted:
        spec_opts["emmeans"] = requests if len(requests) > 1 else requests[0]
    return opts, plan, spec, notes, None


def translate(options: dict, data: pd.DataFrame, analysis: str = "lmm", engine: str = "native") -> tuple[dict, list[str]]:
    """JASP options and data → ``(spec, notes)``.

    The spec is self-contained: ``data.records`` holds the rows the model uses (listwise
    complete, expanded uncorrelated slope columns included), ``levels`` the factor orders, and
    ``formula`` the lme4 formula JASP's ``.mmModelFormula`` would build. ``notes`` lists options
    not acted on and the random-effects terms removed or added. Raises
    :class:`~mixedbridge.jasp.JaspOptionError` naming the option at fault, or when the analysis
    is not ready (no dependent variable / grouping factor).
    """
    opts, plan, spec, notes, why = _translate(options, data, analysis, engine)
    if why:
        raise JaspOptionError("dependent" if "dependent" in why else "randomVariables", why)
    spec["data"] = {"records": _records(plan.data)}
    return spec, notes + [f.text for f in plan.footnotes]


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


def _run(options: dict, df: pd.DataFrame, engine: str, analysis: str, title: str) -> dict:
    from ..analysis import prepare as prepare_problem, run  # noqa: PLC0415
    from ..spec import validate  # noqa: PLC0415

    opts, plan, spec, notes, why = _translate(options, df, analysis, engine)
    if why:
        t = jt.anova_summary(opts, None, [], None, notes, None, analysis)
        t.footnotes = []
        t.note(why)
        for n in notes:
            t.note(n)
        return document([t], title)
    results = run(spec, data=plan.data)
    fit = results.fit
    params = sources.table_rows(results, "parameters")
    anova_rows = sources.table_rows(results, "anova")
    anova_error = None
    problem = None

    def get_problem():
        nonlocal problem
        if problem is None:
            problem = prepare_problem(validate(spec), None, plan.data)
        return problem

    need_df = all(r.get("df") is None for r in params if r.get("effect") == "fixed")
    if anova_rows is None or (need_df and analysis == "lmm"):
        coef, rows, anova_error = sources.inference(get_problem(), fit, _inference_options(opts, analysis), analysis)
        anova_rows = anova_rows if anova_rows is not None else rows
        if coef and need_df:
            for r in params:
                c = coef.get(r["term"]) if r.get("effect") == "fixed" else None
                if c:
                    r.update(df=c.get("df"), **{"p.value": c.get("p.value")})
    notes = notes + [n for n in results.notes if "listwise" not in n]
    elements = [jt.anova_summary(opts, plan, anova_rows, fit, notes, anova_error, analysis)]
    if opts["modelSummary"]:
        elements.append(jt.fit_summary(opts, plan, fit, analysis))
    if opts["fixedEffectEstimate"]:
        elements.append(jt.fixed_effects(opts, plan, params, analysis))
    if analysis == "lmm" and opts["varianceCorrelationEstimate"]:
        elements.append(jt.variance_components(opts, plan, fit))
    if analysis == "lmm" and opts["randomEffectEstimate"]:
        elements.append(jt.random_effect_estimates(opts, plan, fit))
    if opts["plotHorizontalAxis"]:
        plot = jt.plots_element(opts, get_problem(), fit)
        notes += plot.notes
        elements.append(plot)
    k = 0
    for req in plan.requests:
        what = "Trends" if "trend" in req else "Means"
        k += 1 if req.get("contrasts") else 0
        cname = "contrasts" if k <= 1 else f"contrasts_{k}"
        elements += _emm_elements(opts, plan, results, req, what, get_problem, fit, cname)
    extra = {".mixedbridge": {"formula": plan.formula, "engine": engine, "analysis": analysis,
                              "notes": notes, "warnings": list(results.warnings), "spec_options": spec["options"]}}
    return document(elements, title, extra)


def _emm_elements(opts, plan, results, req, what, get_problem, fit, cname: str) -> list[JTable]:
    means = what == "Means"
    name = "trends" if not means else "emmeans"
    rows = sources.table_rows(results, name)
    crow = sources.table_rows(results, cname)
    error, notes = None, []
    if rows is None:
        tables, notes, error = sources.emmeans(get_problem(), fit, req)
        if tables is not None:
            rows = tables.get(name)
            crow = tables.get("contrasts")
    est_col = f"{req['trend']}.trend" if not means else "emmean"
    main = jt.means_table(opts, plan, _labels(rows, plan), error, what, est_col)
    for n in notes:
        if "average" in n.lower():
            main.note(n)
    out = [main]
    pre = "marginalMeans" if means else "trends"
    if opts[f"{pre}Contrast"] and req.get("contrasts"):
        names = [c["name"] for c in req["contrasts"]]
        out.append(jt.contrasts_table(opts, crow if rows is not None else None, error, what, names))
    return out


def _labels(rows, plan: Plan):
    """Factor cells as text (JASP shows level labels)."""
    if rows is None:
        return None
    for r in rows:
        for k, v in list(r.items()):
            if k in plan.factors and v is not None:
                r[k] = str(v)
    return rows
