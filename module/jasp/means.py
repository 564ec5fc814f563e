"""JASP's marginal-means and trends options as ``emmeans`` requests of the spec
(``schemas/emmeans.schema.json``), with custom contrasts checked against the grid."""
from __future__ import annotations

import itertools
import math

from ..emmeans.refgrid import MAX_GRID_ROWS
from .errors import JaspOptionError
from .model import Model
from .options import DF_METHODS, EMMEANS_DF_LIMIT, MEANS, TRENDS, Estimates, contrast_weights


def requests(opts: dict, model: Model) -> list[dict]:
    """The requests the options ask for: marginal means, then trends."""
    return [r for r in (_request(opts, model, MEANS), _request(opts, model, TRENDS)) if r]


def _request(opts: dict, model: Model, kind: Estimates) -> dict | None:
    """One kind's request, or None when its variables are not chosen."""
    variables = opts[kind.variables]
    _check_variables(opts, kind, variables)
    if not _asked(opts, model, kind, variables):
        return None
    sd = float(opts[kind.option("Sd")])
    _check_spread(model, kind, variables, sd)
    if kind is TRENDS and trends_error(opts, model):
        return None
    label = model.variables.label
    req = {"specs": [label(v) for v in variables], "level": float(opts[kind.option("CiLevel")]),
           "df": df_method(opts, kind, model.frame.nobs)}
    req.update(_covariates(model, variables, sd))
    if model.analysis == "lm":
        req["df"] = "satterthwaite"
    if opts[kind.option("Comparison")]:
        req["null"] = float(opts[kind.option("ComparisonWith")])
    if kind is TRENDS:
        req["trend"] = label(opts["trendsTrendVariable"])
    if opts[kind.option("Contrast")]:
        req.update(_contrasts(opts, model, kind, variables, sd))
    return req


def df_method(opts: dict, kind: Estimates, nobs: int) -> str:
    """The df emmeans computes for the chosen method, as JASP runs it: emmeans's
    ``pbkrtest.limit`` and ``lmerTest.limit`` (3,000 rows) apply, and ``<kind>DfEstimated``
    lifts only the first (JASP sets ``pbkrtest.limit = Inf``). Beyond 3,000 rows Satterthwaite
    falls back to Kenward-Roger when that is lifted, and both fall back to asymptotic df when
    it is not."""
    chosen = DF_METHODS[opts[kind.option("Df")]]
    if chosen == "asymptotic" or nobs <= EMMEANS_DF_LIMIT:
        return chosen
    return "kenward-roger" if opts[kind.option("DfEstimated")] else "asymptotic"


def _fixed_variables(opts: dict) -> set[str]:
    return {v for t in opts["fixedEffects"] for v in t}


def _check_variables(opts: dict, kind: Estimates, variables: list[str]) -> None:
    fixed_vars = _fixed_variables(opts)
    for v in variables:
        if v not in fixed_vars:
            raise JaspOptionError(kind.variables, f"option '{kind.variables}': {v!r} is not a variable of the fixed "
                                  f"effects ({', '.join(sorted(fixed_vars)) or 'none'})", f"/{kind.variables}")


def _asked(opts: dict, model: Model, kind: Estimates, variables: list[str]) -> bool:
    """Whether the kind is asked for; trends need a scale trend variable of the fixed effects."""
    if kind is MEANS or not variables:
        return bool(variables)
    tv = opts["trendsTrendVariable"]
    if not tv:
        return False
    if tv not in _fixed_variables(opts) or tv in model.factors:
        raise JaspOptionError("trendsTrendVariable", f"option 'trendsTrendVariable': {tv!r} must be a scale "
                              "variable of the fixed effects", "/trendsTrendVariable")
    return True


def _check_spread(model: Model, kind: Estimates, variables: list[str], sd: float) -> None:
    """``marginalMeansSd`` 0 with a covariate among the variables: JASP's ``at`` holds three
    equal values, emmeans refuses the grid and the analysis stops (JASP's ``.mmMarginalMeans``
    does not catch it); so does this one, with the reason."""
    covariates = [v for v in variables if v not in model.factors]
    if kind is MEANS and covariates and sd == 0:
        option = kind.option("Sd")
        raise JaspOptionError(option, f"option '{option}': 0 puts {', '.join(repr(v) for v in covariates)} at three "
                              "equal values (JASP sets emmeans's at to mean + c(-1, 0, 1) × SD multiplier × SD), and "
                              "emmeans refuses that grid (\"Irregular reference grid: Marginal means cannot be "
                              "determined\"); use a positive multiplier", f"/{option}")


def trends_error(opts: dict, model: Model) -> str | None:
    """The message of a trends table that cannot be computed: ``trendsSd`` 0 with a covariate
    among ``trendsVariables`` gives emtrends an irregular grid, and JASP (whose ``.mmTrends``
    catches it) fails only that table; None otherwise."""
    variables = opts[TRENDS.variables]
    if not _asked(opts, model, TRENDS, variables) or float(opts[TRENDS.option("Sd")]) != 0:
        return None
    covariates = [v for v in variables if v not in model.factors]
    if not covariates:
        return None
    return (f"Irregular reference grid: Marginal means cannot be determined ({', '.join(covariates)} at three equal "
            "values: trendsSd is 0).")


def _covariates(model: Model, variables: list[str], sd: float) -> dict:
    """Where the grid's covariates are, as JASP sets emmeans's ``at``: each scale variable of
    ``variables`` at mean − sd·SD, mean, mean + sd·SD (three values even when ``sd`` is 0, or
    when the variable has two distinct values); covariates not chosen keep emmeans's default."""
    at = {model.variables.label(v): _covariate_values(model, v, sd) for v in variables if v not in model.factors}
    return {"at": at} if at else {}


def _covariate_values(model: Model, v: str, sd: float) -> list[float]:
    """JASP's ``mean(x) + c(-1, 0, 1) * sd * sd(x)`` over the rows used."""
    x = model.column(v).to_numpy(dtype=float)
    m, s = float(x.mean()), float(x.std(ddof=1))
    return [m + k * sd * s for k in (-1, 0, 1)]


def _grid(model: Model, variables: list[str], sd: float, option: str) -> list[dict]:
    """The rows of the grid, in emmeans's order (first variable fastest); refused beyond
    emmeans's ``rg.limit`` before it is built."""
    axes: list[list] = []
    for v in variables:
        if v in model.factors:
            axes.append(model.levels[v])
        else:
            axes.append(_covariate_values(model, v, sd))
    rows = math.prod(len(a) for a in axes)
    if rows > MAX_GRID_ROWS:
        raise JaspOptionError(option, f"option '{option}': the grid of {', '.join(variables)} would have {rows:,} "
                              f"rows, more than the {MAX_GRID_ROWS:,} emmeans allows; choose fewer variables",
                              f"/{option}")
    return [dict(zip(variables, reversed(combo))) for combo in itertools.product(*reversed(axes))]


def _contrasts(opts: dict, model: Model, kind: Estimates, variables: list[str], sd: float) -> dict:
    """The custom contrasts (``contrasts``, ``adjust``), checked against the grid. As in JASP
    (``emmeans::contrast(emm, list(...))``), the k-th weight applies to the k-th row of the
    grid, whatever level labels the table's grid columns show."""
    option = kind.contrasts
    _, contrasts = contrast_weights(opts[option], option)
    rows = _grid(model, variables, sd, option)
    if _misfit(contrasts, rows, variables):
        return {}
    out = [{"name": name, "weights": w} for name, w in contrasts]
    return {"contrasts": out, "adjust": opts[kind.option("PAdjustment")]} if out else {}


def _misfit(contrasts: list[tuple[str, list[float]]], rows: list[dict], variables: list[str]) -> str | None:
    """Why the custom contrasts do not fit the grid (emmeans's ``contrast`` fails), or None."""
    for name, w in contrasts:
        if len(w) != len(rows):
            return (f"Nonconforming number of contrast coefficients: contrast {name!r} has {len(w)} weight(s) but "
                    f"the grid of {', '.join(variables) or '(none)'} has {len(rows)} row(s).")
    return None


def contrast_error(opts: dict, model: Model, kind: Estimates) -> str | None:
    """The message of a contrasts table that cannot be computed because its weights do not fit
    the grid (JASP fails only that table, as emmeans's ``contrast`` fails), or None."""
    variables = opts[kind.variables]
    if not opts[kind.option("Contrast")] or not _asked(opts, model, kind, variables):
        return None
    option = kind.contrasts
    _, contrasts = contrast_weights(opts[option], option)
    rows = _grid(model, variables, float(opts[kind.option("Sd")]), option)
    return _misfit(contrasts, rows, variables)
