"""Shrinkage (partial pooling), the chapter's Figures 12.5 and 12.6.

No pooling: a separate least-squares line of the response on the covariate in each cluster.
Partial pooling: the mixed model's line for the cluster (fixed effects + conditional modes).
Figure 12.6 draws one arrow per cluster from its own (intercept, slope) to the mixed model's,
with the population estimate marked; Figure 12.5 draws both lines over each cluster's data.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch

from ..fit import Fit
from ..problem import Problem
from .modeldata import ClusterLines, PlotNote, cluster_lines, first_covariate, population_notes
from .render import new_figure, safe_name, suptitle, tag
from .types import Drawn

OWN_COLOR = "#e67e22"
MIXED_COLOR = "#2471a3"
POP_COLOR = "#2c3e50"


def _lines(problem: Problem, fit: Fit, request: dict) -> ClusterLines:
    name = request.get("covariate") or first_covariate(problem)
    if name is None:
        raise PlotNote("the model has no numeric covariate; shrinkage and per-cluster lines need one "
                       "(set \"covariate\")")
    return cluster_lines(problem, fit, name, request.get("group"))


def _common_notes(lines: ClusterLines) -> list[str]:
    notes = []
    dropped = int((~lines.usable).sum())
    if dropped:
        notes.append(f"{dropped} {lines.clusters.name} cluster(s) with fewer than 2 distinct values of "
                     f"{lines.covariate!r} have no separate (no-pooling) line and are left out.")
    if lines.curved:
        notes.append(f"The model's per-cluster predictions are not straight lines in {lines.covariate!r} "
                     "(other terms vary within clusters); the least-squares line through them is shown.")
    return notes


def shrinkage_plot(problem: Problem, fit: Fit, request: dict) -> list[Drawn]:
    """Figure 12.6: per-cluster (intercept, slope) without pooling → with partial pooling."""
    lines = _lines(problem, fit, request)
    ok = lines.usable
    if not ok.any():
        raise PlotNote(f"no {lines.clusters.name} cluster has 2 distinct values of {lines.covariate!r}; "
                       "a separate line per cluster cannot be fitted")
    own, mixed = lines.own[ok], lines.mixed[ok]
    fig, ax = new_figure(7, 6)
    assert isinstance(ax, Axes)  # new_figure's default 1×1 grid is a single Axes
    tag(ax.scatter(own[:, 0], own[:, 1], s=30, color=OWN_COLOR, label="No pooling (separate lm per cluster)",
                   zorder=3), "no-pooling")
    tag(ax.scatter(mixed[:, 0], mixed[:, 1], s=30, color=MIXED_COLOR, label="Partial pooling (mixed model)",
                   zorder=3), "partial-pooling")
    for (x0, y0), (x1, y1) in zip(own, mixed):
        arrow = FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=10, color="#7f8c8d",
                                lw=0.9, shrinkA=2, shrinkB=4, zorder=2)
        tag(ax.add_patch(arrow), "arrow")
    cells = lines.cells
    many = len(cells.labels) > 1
    pops = cells.lines if many else np.array([lines.population])
    for (b0, b1), label in zip(pops, cells.labels if many else [""]):
        tag(ax.scatter([b0], [b1], s=140, marker="P", color=POP_COLOR, zorder=4,
                       label="Population (fixed effects)" + (f": {label}" if label else "")), "population")
        if many:
            ax.annotate(label, (b0, b1), textcoords="offset points", xytext=(6, 6), fontsize=8, color=POP_COLOR)
    ax.set_xlabel("Intercept")
    ax.set_ylabel(f"Slope of {lines.covariate}")
    ax.set_title(f"Shrinkage of {lines.clusters.name}-level estimates "
                 f"({int(ok.sum())} clusters)")
    fig.legend(loc="outside lower center", ncols=2, frameon=False)
    name = f"shrinkage-{safe_name(lines.covariate)}"
    return [Drawn(name, f"Shrinkage of per-{lines.clusters.name} intercepts and slopes of {lines.covariate}",
                  fig, _common_notes(lines) + population_notes(lines, "shrinkage"))]


def cluster_fits_plot(problem: Problem, fit: Fit, request: dict) -> list[Drawn]:
    """Figure 12.5: one panel per cluster with its data, its no-pooling and partial-pooling
    lines, and the population line."""
    lines = _lines(problem, fit, request)
    k = len(lines.clusters)
    shown = min(k, int(request["max_panels"]))
    ncols = min(6, math.ceil(math.sqrt(shown)))
    nrows = math.ceil(shown / ncols)
    fig, axes = new_figure(2.3 * ncols + 0.6, 2.1 * nrows + 1.0, nrows, ncols, squeeze=False,
                           sharex=True, sharey=True)
    assert isinstance(axes, np.ndarray)  # squeeze=False: always a 2-d array of Axes
    grid = np.linspace(lines.x.min(), lines.x.max(), 2)
    for j in range(shown):
        _cluster_panel(axes.flat[j], lines, j, grid)
    for ax in list(axes.flat)[shown:]:
        ax.set_visible(False)
    for j, ax in enumerate(axes.flat[:shown]):
        if j + ncols >= shown:
            ax.set_xlabel(lines.covariate)
            ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axes[:, 0]:
        ax.set_ylabel(problem.desc.response.label)
    fig.legend(handles=_legend_handles(), loc="outside lower center", ncols=4, frameon=False)
    suptitle(fig, f"{problem.desc.response.label} against {lines.covariate} per {lines.clusters.name}: "
                  "no pooling vs partial pooling")
    notes = _common_notes(lines) + population_notes(lines, "cluster_fits")
    if shown < k:
        notes.append(f"cluster_fits shows the first {shown} of {k} {lines.clusters.name} clusters.")
    name = f"cluster_fits-{safe_name(lines.covariate)}"
    return [Drawn(name, f"Per-{lines.clusters.name} lines of {lines.covariate}: no pooling and partial pooling",
                  fig, notes)]


def _legend_handles() -> list[Line2D]:
    return [Line2D([], [], marker="o", ls="", color="black", label="Data"),
            Line2D([], [], color=POP_COLOR, ls=":", label="Population (fixed effects)"),
            Line2D([], [], color=OWN_COLOR, ls="--", label="No pooling (separate lm)"),
            Line2D([], [], color=MIXED_COLOR, label="Partial pooling (mixed model)")]


def _cluster_panel(ax, lines: ClusterLines, j: int, grid: np.ndarray) -> None:
    rows = lines.clusters.codes == j
    tag(ax.scatter(lines.x[rows], lines.y[rows], s=12, color="black", alpha=0.7, label="Data"), "data")
    own_cell = lines.cells.line_of(j)
    b0, b1 = lines.population if own_cell is None else own_cell
    tag(ax.plot(grid, b0 + b1 * grid, color=POP_COLOR, lw=1, ls=":", label="Population (fixed effects)"),
        "population-line")
    if np.isfinite(lines.own[j]).all():
        a, s = lines.own[j]
        tag(ax.plot(grid, a + s * grid, color=OWN_COLOR, lw=1.4, ls="--", label="No pooling"), "no-pooling-line")
    if np.isfinite(lines.mixed[j]).all():
        a, s = lines.mixed[j]
        tag(ax.plot(grid, a + s * grid, color=MIXED_COLOR, lw=1.6, label="Partial pooling"), "partial-pooling-line")
    ax.set_title(lines.clusters.labels[j], fontsize=9)
