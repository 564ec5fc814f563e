"""The data with fitted lines (the chapter's Figures 12.3 and 12.4): the response against a
covariate, points coloured per cluster, the population (fixed-effects) line and one line per
cluster from the mixed model."""
from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes

from ..fit import Fit
from ..problem import Problem
from .modeldata import ClusterLines, PlotNote, cluster_lines, first_covariate, population_notes
from .render import new_figure, safe_name, tag
from .types import Drawn


def cluster_colors(k: int) -> np.ndarray:
    """k distinct colours: tab10/tab20 for few clusters, an evenly sampled hue wheel beyond."""
    if k <= 10:
        return colormaps["tab10"](np.arange(k))
    if k <= 20:
        return colormaps["tab20"](np.arange(k))
    return colormaps["hsv"](np.linspace(0, 1, k, endpoint=False))


def data_lines_plot(problem: Problem, fit: Fit, request: dict) -> list[Drawn]:
    """Response against a covariate with the population line and cluster lines.

    ``random``: ``intercepts`` draws each cluster's line with the population slope and its own
    intercept (Figure 12.4); ``slopes`` (default when the model has a random slope for the
    covariate) its own intercept and slope; ``none`` the population line only (Figure 12.3).
    """
    name = request.get("covariate") or first_covariate(problem)
    if name is None:
        raise PlotNote("the model has no numeric covariate to put on the horizontal axis (set \"covariate\")")
    lines = cluster_lines(problem, fit, name, request.get("group"))
    notes = []
    has_slope = _has_random_slope(problem, lines.clusters.name, name)
    mode = request.get("random") or ("slopes" if has_slope else "intercepts")
    if mode == "slopes" and not has_slope:
        notes.append(f"data_lines: the model has no random slope of {name!r} for {lines.clusters.name}; "
                     "cluster lines share the population slope.")
    k = len(lines.clusters)
    colors = cluster_colors(k)
    fig, ax = new_figure(8, 5.5)
    assert isinstance(ax, Axes)  # new_figure's default 1×1 grid is a single Axes
    tag(ax.scatter(lines.x, lines.y, s=16, c=colors[lines.clusters.codes], alpha=0.75, edgecolors="none"), "data")
    grid = np.linspace(lines.x.min(), lines.x.max(), 2)
    b1 = lines.population[1]
    drawn = 0
    for j in range(k):
        a, s = lines.mixed[j]
        if mode == "none" or not np.isfinite(a):
            continue
        own_cell = lines.cells.line_of(j)
        slope = s if mode == "slopes" else (b1 if own_cell is None else own_cell[1])
        tag(ax.plot(grid, a + slope * grid, color=colors[j], lw=1, alpha=0.9), "cluster-line")
        drawn += 1
    _population_lines(ax, lines, grid)
    if mode != "none":
        ax.plot([], [], color="grey", lw=1, label=f"{lines.clusters.name} lines "
                f"({'own intercept and slope' if mode == 'slopes' else 'own intercept'})")
    ax.set_xlabel(name)
    ax.set_ylabel(problem.desc.response.label)
    ax.set_title(f"{problem.desc.response.label} against {name}, coloured by {lines.clusters.name}"
                 + (f" ({drawn} cluster lines)" if drawn else ""))
    ax.legend(loc="upper left", frameon=False)
    if lines.curved:
        notes.append(f"data_lines: the model's per-cluster predictions are not straight lines in {name!r}; "
                     "least-squares lines through them are shown.")
    notes += population_notes(lines, "data_lines")
    title = f"{problem.desc.response.label} against {name} with population and per-{lines.clusters.name} lines"
    return [Drawn(f"data_lines-{safe_name(name)}-{mode}", title, fig, notes)]


#: Line styles of the population lines of several between-cluster cells.
_CELL_STYLES = ("-", "--", "-.", ":")


def _population_lines(ax: Axes, lines: ClusterLines, grid: np.ndarray) -> None:
    """The population line, or one per between-cluster cell (labelled by the cell)."""
    cells = lines.cells
    if len(cells.labels) <= 1:
        b0, b1 = lines.population
        tag(ax.plot(grid, b0 + b1 * grid, color="black", lw=3, label="Population (fixed effects)"), "population-line")
        return
    for i, ((b0, b1), label) in enumerate(zip(cells.lines, cells.labels)):
        tag(ax.plot(grid, b0 + b1 * grid, color="black", lw=3, ls=_CELL_STYLES[i % len(_CELL_STYLES)],
                    label=f"Population: {label}"), "population-line")


def _has_random_slope(problem: Problem, group: str, name: str) -> bool:
    return any(rt.group == group and name in rt.names for rt in problem.reterms)
