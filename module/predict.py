"""Predictions and simulations of a fitted model on its own rows or on new data, as lme4's
``predict.merMod`` and ``simulate.merMod`` give them; read from the engine-independent
:class:`~mixedbridge.fit.Fit`, so they work for every engine's fit.

New data are coded as the fitted rows were: the fitted rows and the new rows are put through the
same model frame (so factor levels, contrasts and grouping factors are the model's), and only the
new rows are kept.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .design import ReTermData, fixed_design, random_designs
from .errors import DataError, ModelError
from .fit import Fit
from .frame import RESERVED, model_frame
from .problem import Problem

#: Transformations whose values depend on all the rows they see (a centre, quantile knots, an
#: orthogonal basis): R carries their parameters into predictions (``makepredictcall``); we do not
#: yet, so new data are refused for them.
_DATA_DEPENDENT = re.compile(r"\b(scale|poly|ns|bs|cut)\s*\(")


@dataclass(frozen=True)
class Design:
    """What a prediction needs of some rows: ``index`` the rows kept (complete in the model's
    variables), ``X`` their fixed-effects columns in the fit's coefficient order, ``offset``,
    ``reterms`` their random-effects terms (levels of the grouping factors as found)."""

    index: pd.Index
    X: np.ndarray
    offset: np.ndarray
    reterms: list[ReTermData]


def own_design(problem: Problem, fit: Fit) -> Design:
    """The fitted rows' design."""
    X = _columns(problem.fixed.X, problem.fixed.names, fit)
    off = problem.frame.offset
    return Design(problem.frame.data.index, X, np.zeros(len(X)) if off is None else off, problem.reterms)


def new_design(problem: Problem, fit: Fit, newdata: pd.DataFrame, population: bool) -> Design:
    """The design of ``newdata``'s rows, coded as the fitted rows were (see the module's text).

    Raises
    ------
    ModelError
        When the formula has a transformation whose parameters come from the data, or ``newdata``
        has a level of a fixed-effect factor that the model has no coefficient for.
    DataError
        When ``newdata`` lacks a column the prediction needs.
    """
    if not isinstance(newdata, pd.DataFrame):
        raise DataError(f"newdata must be a pandas DataFrame, not {type(newdata).__name__}", "newdata")
    desc = problem.desc
    dependent = [v.label for v in desc.variables if _DATA_DEPENDENT.search(v.label)]
    if dependent:
        raise ModelError(f"predictions for new data are not available for formulas with {', '.join(dependent)}: "
                         "their parameters come from the fitted rows; transform the column before fitting")
    new = _completed(problem, newdata, population)
    _check_levels(problem, new)
    source = problem.frame.source
    stacked = pd.concat([source[new.columns.intersection(source.columns)].reset_index(drop=True),
                         new.reset_index(drop=True)], ignore_index=True)
    kept = ("weights", "offset", "family", "link")
    spec = {"analysis": problem.analysis, "levels": _fixed_levels(problem),
            "options": {k: problem.options.get(k) for k in kept if problem.options.get(k)}}
    frame = model_frame(stacked, desc, spec)
    keep = frame.data.index >= len(source)
    rows = np.flatnonzero(keep)
    fixed = fixed_design(desc, frame, problem.options.get("contrasts", "treatment"))
    X = _columns(fixed.X, fixed.names, fit, fixed.dropped)[rows]
    off = frame.offset
    reterms = [] if population else [_rows_of(t, rows) for t in random_designs(desc, frame, problem.options.get(
        "contrasts", "treatment"))]
    index = newdata.index[frame.data.index[keep] - len(source)]
    return Design(index, X, np.zeros(len(rows)) if off is None else off[rows], reterms)


def _completed(problem: Problem, newdata: pd.DataFrame, population: bool) -> pd.DataFrame:
    """``newdata`` with what a prediction does not read filled in: the response (and the prior
    weights), and for population predictions the grouping columns."""
    desc, frame = problem.desc, problem.frame
    fill: dict[str, object] = {c: _placeholder(frame.source[c]) for c in desc.response.columns
                               if c not in newdata.columns}
    weights = problem.options.get("weights")
    if weights and weights not in newdata.columns:
        fill[weights] = 1.0
    grouping = set(desc.grouping_columns) - {c for v in desc.variables for c in v.columns}
    for g in grouping:
        if g not in newdata.columns and population:
            fill[g] = frame.source[g].iloc[0]
    missing = [c for c in desc.columns + [problem.options.get("offset") or ""] if c and c not in newdata.columns
               and c not in fill]
    if missing:
        what = " (a grouping factor: use re_form='~0' for population predictions)" if set(missing) & grouping else ""
        raise DataError(f"newdata lacks the column(s) {', '.join(repr(c) for c in missing)}{what}", "newdata")
    return newdata.assign(**fill) if fill else newdata


def _placeholder(column: pd.Series) -> object:
    """A value of the response column that the model frame accepts (a prediction never reads it):
    its first non-missing value, so that a factor response stays a factor."""
    present = column.dropna()
    return present.iloc[0] if len(present) else 1.0


def _fixed_levels(problem: Problem) -> dict[str, list[str]]:
    """The fitted levels of each factor of the fixed part that is a data column."""
    data = problem.frame.data
    grouping = set(problem.desc.grouping_columns)
    out = {}
    for v in problem.desc.variables:
        if v.is_column and v.label in problem.frame.factors and v.label not in grouping:
            out[v.label] = [str(c) for c in data[v.label].cat.categories]
    return out


def _check_levels(problem: Problem, new: pd.DataFrame) -> None:
    """Every level of a fixed-effect factor in ``new`` is one the model was fitted with."""
    for column, levels in _fixed_levels(problem).items():
        values = {str(v) if not isinstance(v, float) or not v.is_integer() else str(int(v))
                  for v in new[column].dropna().unique()}
        extra = sorted(values - set(levels))
        if extra:
            raise ModelError(f"newdata: column {column!r} has level(s) {', '.join(repr(x) for x in extra)} that the "
                             f"model was not fitted with; its levels are {', '.join(repr(x) for x in levels)}")


def _columns(X: np.ndarray, names: list[str], fit: Fit, dropped: list[str] | None = None) -> np.ndarray:
    """X's columns in the fit's coefficient order."""
    extra = set(names) - set(fit.coef_names) - set(fit.dropped)
    if extra:
        raise ModelError("newdata give the fixed part column(s) " + ", ".join(sorted(extra))
                         + " that the model has no coefficient for (a new level of a factor)")
    position = {n: j for j, n in enumerate(names)}
    return X[:, [position[n] for n in fit.coef_names]]


def _rows_of(term: ReTermData, rows: np.ndarray) -> ReTermData:
    return ReTermData(term.group, term.levels, term.codes[rows], term.X[rows], term.names)


def linear_predictor(fit: Fit, design: Design, conditional: bool, allow_new_levels: bool = False) -> np.ndarray:
    """Xβ + offset, plus Zb̃ (the conditional modes) when ``conditional``; a level the model has
    no mode for contributes 0 when ``allow_new_levels``, else ModelError naming it."""
    eta = design.X @ fit.beta + design.offset
    if conditional:
        for term in design.reterms:
            eta = eta + _term_contribution(fit, term, allow_new_levels)
    return eta


def _block_columns(fit: Fit, term: ReTermData):
    """The ranef block of ``term`` and the columns of its names there."""
    for block in fit.ranef:
        if block.group == term.group and set(term.names) <= set(block.terms):
            return block, [block.terms.index(n) for n in term.names]
    raise ModelError(f"the fit has no conditional modes for the term ({' + '.join(term.names)} | {term.group})")


def _term_contribution(fit: Fit, term: ReTermData, allow_new_levels: bool) -> np.ndarray:
    block, cols = _block_columns(fit, term)
    position = {lev: i for i, lev in enumerate(block.levels)}
    at = np.array([position.get(lev, -1) for lev in term.levels], dtype=np.int64)[term.codes]
    if (at < 0).any() and not allow_new_levels:
        new = sorted({term.levels[c] for c in term.codes[at < 0]})
        raise ModelError(f"newdata: level(s) {', '.join(repr(x) for x in new[:10])} of the grouping factor "
                         f"{term.group!r} are not in the fitted model; pass allow_new_levels=True to predict "
                         "them at the population level (random effects 0), as lme4 does")
    modes = np.vstack([block.modes[:, cols], np.zeros((1, len(cols)))])
    return np.einsum("ij,ij->i", term.X, modes[at])


def simulate_responses(fit: Fit, design: Design, weights: np.ndarray | None, nsim: int,
                       rng: np.random.Generator) -> np.ndarray:
    """``nsim`` responses drawn as lme4's ``simulate`` draws them (n × nsim): Xβ + offset, new
    random effects b ~ N(0, Σ) per level of each term (Σ from the fit's variance components),
    and residuals σε/√w."""
    n = len(design.X)
    out = random_part(fit, design, nsim, rng)
    scale = fit.sigma / (np.sqrt(weights) if weights is not None else np.ones(n))
    return out + rng.standard_normal((n, nsim)) * scale[:, None]


def random_part(fit: Fit, design: Design, nsim: int, rng: np.random.Generator) -> np.ndarray:
    """Xβ + offset plus new random effects b ~ N(0, Σ) per level of each term (n × nsim), as
    lme4's ``simulate`` draws them (Σ from the fit's variance components)."""
    out = np.repeat((design.X @ fit.beta + design.offset)[:, None], nsim, axis=1)
    for term in design.reterms:
        cov = term_covariance(fit, term)
        chol = np.linalg.cholesky(cov + 1e-300 * np.eye(len(cov))) if np.any(cov) else np.zeros_like(cov)
        b = np.einsum("jk,lks->ljs", chol, rng.standard_normal((term.nlevels, len(cov), nsim)))
        out += np.einsum("ij,ijs->is", term.X, b[term.codes])
    return out


def inverse_link(fit: Fit, eta: np.ndarray) -> np.ndarray:
    """μ = g⁻¹(η) by the fit's link (the identity for a linear model)."""
    if fit.link is None or fit.link == "identity":
        return np.asarray(eta, dtype=float)
    from .glmm.family import LINKS

    return np.asarray(LINKS[fit.link].linkinv(np.asarray(eta, dtype=float)), dtype=float)


def link_derivative(fit: Fit, eta: np.ndarray) -> np.ndarray:
    """dμ/dη at η by the fit's link (1 for a linear model)."""
    if fit.link is None:
        return np.ones_like(np.asarray(eta, dtype=float))
    from .glmm.family import LINKS

    return np.asarray(LINKS[fit.link].mu_eta(np.asarray(eta, dtype=float)), dtype=float)


#: The families whose responses :func:`simulate_glmm` draws (lme4's ``simulate`` draws more).
SIMULATED_FAMILIES = ("binomial", "poisson")


def simulate_glmm(fit: Fit, design: Design, weights: np.ndarray | None, nsim: int,
                  rng: np.random.Generator) -> np.ndarray:
    """``nsim`` responses of a GLMM as lme4's ``simulate`` draws them (n × nsim): new random
    effects, μ = g⁻¹(η), then binomial successes of the trials (as proportions of the trials, the
    response's scale here) or Poisson counts."""
    if fit.family not in SIMULATED_FAMILIES:
        raise ModelError(f"simulate: responses of the {fit.family} family are not simulated here; "
                         "simulate takes " + " and ".join(SIMULATED_FAMILIES) + " models")
    mu = inverse_link(fit, random_part(fit, design, nsim, rng))
    if fit.family == "poisson":
        return rng.poisson(mu).astype(float)
    trials = np.ones(len(mu)) if weights is None else np.asarray(weights, dtype=float)
    size = np.round(trials).astype(np.int64)
    return rng.binomial(size[:, None], np.clip(mu, 0.0, 1.0)) / np.where(trials > 0, trials, 1.0)[:, None]


def term_covariance(fit: Fit, term: ReTermData) -> np.ndarray:
    """Σ of ``term``'s random effects (variances and covariances, in its columns' order)."""
    for vc in fit.varcorr:
        if vc.group == term.group and set(term.names) <= set(vc.terms):
            idx = [vc.terms.index(n) for n in term.names]
            sd = np.asarray(vc.sd, dtype=float)[idx]
            corr = np.asarray(vc.corr, dtype=float)[np.ix_(idx, idx)]
            return corr * np.outer(sd, sd)
    raise ModelError(f"the fit has no variance components for the term ({' + '.join(term.names)} | {term.group})")


def prior_weights(problem: Problem) -> np.ndarray | None:
    """The fitted rows' prior weights (R's ``(weights)``), or None."""
    label = RESERVED["weights"]
    data = problem.frame.data
    return data[label].to_numpy(dtype=float) if label in data else None
