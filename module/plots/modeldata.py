"""What the plots read from a problem and a fit: residuals, clusters, a covariate, per-cluster
lines (no pooling and partial pooling), all as plain numpy arrays."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import MixedBridgeError
from ..fit import Fit, RanefBlock
from ..problem import Problem


class PlotNote(MixedBridgeError):
    """A plot that cannot be drawn, with the reason in words; the caller adds it to the notes."""

    def __init__(self, message: str, path: str = "/options/plots") -> None:
        super().__init__("plot", message, path)


def standardized_residuals(problem: Problem, fit: Fit) -> np.ndarray:
    """Residuals divided by σ̂ (times √weight for weighted fits): Pearson residuals on the scale
    of the residual standard deviation."""
    if fit.residuals is None or fit.fitted is None:
        raise PlotNote("the fit has no residuals or fitted values to plot")
    if not np.isfinite(fit.sigma) or fit.sigma <= 0:
        raise PlotNote("the residual standard deviation is zero or undefined; residuals cannot be standardized")
    r = np.asarray(fit.residuals, dtype=float) / fit.sigma
    if fit.analysis == "glmm":  # deviance residuals carry the prior weights already
        return r
    w = problem.frame.weights
    return r * np.sqrt(w) if w is not None else r


def population_prediction(problem: Problem, fit: Fit) -> np.ndarray:
    """The fixed-effects prediction Xβ̂ (plus any offset) for each row."""
    X = problem.fixed.X
    if X.shape[1] != len(fit.beta):
        raise PlotNote("the fit's fixed effects do not match the model's design matrix")
    pred = X @ np.asarray(fit.beta, dtype=float)
    offset = problem.frame.offset
    return pred + offset if offset is not None else pred


def ranef_blocks(fit: Fit, group: str | None = None) -> list[RanefBlock]:
    """The fit's conditional-mode blocks, optionally of one grouping factor."""
    if not fit.ranef:
        raise PlotNote("the model has no random effects (conditional modes) to plot")
    blocks = [b for b in fit.ranef if group is None or b.group == group]
    if not blocks:
        have = ", ".join(sorted({b.group for b in fit.ranef}))
        raise PlotNote(f"no random effects for grouping factor {group!r}; the model has {have}")
    return blocks


def merged_by_group(blocks: list[RanefBlock]) -> dict[str, list[tuple[str, list[str], np.ndarray, np.ndarray]]]:
    """Per grouping factor (in first-seen order), its (term, levels, modes, condsds) columns."""
    out: dict[str, list] = {}
    for b in blocks:
        for j, term in enumerate(b.terms):
            out.setdefault(b.group, []).append((term, list(b.levels), np.asarray(b.modes)[:, j],
                                                np.asarray(b.condsd)[:, j]))
    return out


@dataclass
class Clusters:
    """A grouping factor's ``name``, level ``labels`` and 0-based ``codes`` per row."""

    name: str
    labels: list[str]
    codes: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def clusters(problem: Problem, group: str | None = None) -> Clusters:
    """The rows' clusters: the named grouping factor, or the first random-effects term's."""
    if not problem.reterms:
        raise PlotNote("the model has no grouping factor (random-effects term); this plot shows clusters")
    for rt in problem.reterms:
        if group is None or rt.group == group:
            return Clusters(rt.group, list(rt.levels), np.asarray(rt.codes))
    have = ", ".join(dict.fromkeys(rt.group for rt in problem.reterms))
    raise PlotNote(f"{group!r} is not a grouping factor of the model; grouping factors: {have}")


def covariate(problem: Problem, name: str) -> np.ndarray:
    """A numeric model variable's values per row; a note if it is missing or a factor."""
    data = problem.frame.data
    fixed_vars = {v.label for t in problem.desc.fixed for v in t.variables}
    if name not in data.columns or name == problem.desc.response.label:
        have = ", ".join(sorted(fixed_vars)) or "none"
        raise PlotNote(f"{name!r} is not a predictor of the model; predictors: {have}")
    if isinstance(data[name].dtype, pd.CategoricalDtype):
        raise PlotNote(f"{name!r} is a factor; this plot needs a numeric covariate")
    return data[name].to_numpy(dtype=float)


def line_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """Least-squares intercept and slope of y on x, or None with fewer than 2 distinct x."""
    if len(x) < 2 or np.ptp(x) == 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


@dataclass
class PopulationCells:
    """The population (fixed-effects) lines of the clusters: one per cell of the factors that are
    constant within clusters (between-cluster factors such as sex), so that a panel of a female
    participant shows the female population line.

    ``lines`` m×2 (intercept, slope) per cell; ``labels`` the cells in words (``sex = female``;
    ``""`` when there is one line); ``of_cluster`` each cluster's cell (−1 where its line cannot be
    fitted); ``factors`` the between-cluster factors; ``averaged`` whether the fixed-effects
    predictions of a cluster's rows are not one straight line in the covariate (terms that vary
    within clusters, averaged by the least-squares line through them).
    """

    lines: np.ndarray
    labels: list[str]
    of_cluster: np.ndarray
    factors: list[str]
    averaged: bool

    def line_of(self, cluster: int) -> np.ndarray | None:
        """The population line of a cluster's cell, or None."""
        c = int(self.of_cluster[cluster])
        return None if c < 0 else self.lines[c]


def _between_factors(problem: Problem, cl: Clusters) -> list[str]:
    """Fixed-effect factors that take one level in every cluster."""
    data = problem.frame.data
    grouping = set(problem.desc.grouping_columns)
    out = []
    for v in problem.desc.variables:
        if v.label in problem.frame.factors and v.label not in grouping and v.label in data and v.label not in out:
            codes = data[v.label].cat.codes.to_numpy()
            pairs = np.unique(np.column_stack([cl.codes, codes]), axis=0)
            if len(pairs) == len(np.unique(cl.codes)):
                out.append(v.label)
    return out


def population_cells(problem: Problem, cl: Clusters, x: np.ndarray, pop: np.ndarray) -> PopulationCells:
    """The population line of each cluster's cell (see :class:`PopulationCells`)."""
    factors = _between_factors(problem, cl)
    data = problem.frame.data
    keys: dict[tuple, int] = {}
    lines: list[tuple[float, float]] = []
    labels: list[str] = []
    of_cluster = np.full(len(cl), -1, dtype=np.int64)
    averaged = False
    scale = 1.0 + float(np.max(np.abs(pop)))
    for k in range(len(cl)):
        rows = cl.codes == k
        line = line_fit(x[rows], pop[rows])
        if line is None:
            continue
        averaged |= bool(np.max(np.abs(pop[rows] - (line[0] + line[1] * x[rows]))) > 1e-8 * scale)
        key = tuple(round(v / scale, 9) for v in line)
        if key not in keys:
            keys[key] = len(lines)
            lines.append(line)
            first = np.flatnonzero(rows)[0]
            labels.append(", ".join(f"{f} = {data[f].iloc[first]}" for f in factors))
        of_cluster[k] = keys[key]
    if len(lines) == 1:
        labels = [""]
    return PopulationCells(np.array(lines).reshape(-1, 2), labels, of_cluster, factors, averaged)


@dataclass
class ClusterLines:
    """Per-cluster straight lines in a covariate.

    ``clusters``; ``x`` the covariate and ``y`` the response per row; ``own`` no-pooling lines
    (separate least squares per cluster, NaN where a cluster has < 2 distinct x); ``mixed``
    partial-pooling lines (the mixed model's per-cluster predictions); ``population`` the
    fixed-effects line through all rows; ``cells`` the population lines per between-cluster cell
    (:class:`PopulationCells`); ``curved`` whether the model's per-cluster predictions depart from
    a straight line (other terms vary within clusters).
    """

    clusters: Clusters
    covariate: str
    x: np.ndarray
    y: np.ndarray
    own: np.ndarray
    mixed: np.ndarray
    population: tuple[float, float]
    curved: bool
    cells: PopulationCells

    @property
    def usable(self) -> np.ndarray:
        """Clusters with a no-pooling line."""
        return np.isfinite(self.own).all(axis=1)


def cluster_lines(problem: Problem, fit: Fit, name: str, group: str | None = None) -> ClusterLines:
    """No-pooling and partial-pooling lines of the response on covariate ``name`` per cluster.

    The partial-pooling line of a cluster is the least-squares line through the mixed model's
    fitted values (Xβ̂ + Zb̃) of its rows; for ``y ~ x + (x | g)`` that is exactly
    (β̂₀ + b̃₀ᵢ, β̂₁ + b̃₁ᵢ). The population line runs through the fixed-effects predictions Xβ̂.
    """
    cl = clusters(problem, group)
    x = covariate(problem, name)
    y = problem.y
    if fit.fitted is None:
        raise PlotNote("the fit has no fitted values")
    fitted = np.asarray(fit.fitted, dtype=float)
    prediction = population_prediction(problem, fit)
    pop = line_fit(x, prediction)
    if pop is None:
        raise PlotNote(f"{name!r} takes a single value; no line can be drawn against it")
    own = np.full((len(cl), 2), np.nan)
    mixed = np.full((len(cl), 2), np.nan)
    curved = False
    for k in range(len(cl)):
        rows = cl.codes == k
        o = line_fit(x[rows], y[rows])
        m = line_fit(x[rows], fitted[rows])
        if o is not None:
            own[k] = o
        if m is not None:
            mixed[k] = m
            dev = fitted[rows] - (m[0] + m[1] * x[rows])
            curved |= bool(np.max(np.abs(dev)) > 1e-6 * (1 + np.max(np.abs(fitted[rows]))))
    return ClusterLines(cl, name, x, y, own, mixed, pop, curved, population_cells(problem, cl, x, prediction))


def population_notes(lines: ClusterLines, plot: str) -> list[str]:
    """What the population lines show, in words: per cell, and where they average."""
    cells = lines.cells
    notes = []
    if len(cells.labels) > 1:
        by = ", ".join(cells.factors) or "the fixed effects that are constant within clusters"
        notes.append(f"{plot}: population (fixed-effects) lines are drawn per between-{lines.clusters.name} "
                     f"cell of {by} ({len(cells.labels)} lines).")
    if cells.averaged:
        notes.append(f"{plot}: the fixed-effects predictions vary within a {lines.clusters.name} beyond "
                     f"{lines.covariate!r} (other terms); the population line is the least-squares line through "
                     "them, averaging over those terms.")
    return notes


def first_covariate(problem: Problem) -> str | None:
    """The first numeric fixed-effects variable, if any (a default for covariate plots)."""
    data = problem.frame.data
    for t in problem.desc.fixed:
        for v in t.variables:
            if v.label in data and not isinstance(data[v.label].dtype, pd.CategoricalDtype):
                return v.label
    return None
