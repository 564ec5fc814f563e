"""Model checks: standardized residuals against fitted values with a lowess trend (the chapter's
Figure 12.2), a normal Q-Q plot of the residuals, and normal Q-Q plots of each random effect."""
from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes

from .. import distributions as dist
from ..fit import Fit
from ..problem import Problem
from .modeldata import PlotNote, merged_by_group, ranef_blocks, standardized_residuals
from .render import new_figure, safe_name, suptitle, tag
from .smooth import lowess
from .types import Drawn

POINT_COLOR = "#3b6ea5"
LINE_COLOR = "#c0392b"


def ppoints(n: int) -> np.ndarray:
    """R's ``ppoints``: (i - a) / (n + 1 - 2a) with a = 3/8 for n ≤ 10, else 1/2."""
    a = 3 / 8 if n <= 10 else 0.5
    return (np.arange(1, n + 1) - a) / (n + 1 - 2 * a)


def qq_points(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Theoretical normal quantiles, sorted values, and R's ``qqline`` (intercept, slope)
    through the first and third quartiles."""
    v = np.sort(np.asarray(values, dtype=float))
    theo = dist.norm.ppf(ppoints(len(v)))
    q1, q3 = np.quantile(v, [0.25, 0.75])
    z1, z3 = dist.norm.ppf([0.25, 0.75])
    slope = (q3 - q1) / (z3 - z1)
    return theo, v, (float(q1 - slope * z1), float(slope))


def residual_plot(problem: Problem, fit: Fit, request: dict) -> list[Drawn]:
    """Standardized residuals against fitted values, a zero line, ±2 guides and a lowess trend
    (a GLMM's deviance and Pearson residuals: :func:`.glmm.residual_plot`)."""
    if fit.analysis == "glmm":
        from .glmm import residual_plot as glmm_residual_plot
        return glmm_residual_plot(problem, fit, request)
    r = standardized_residuals(problem, fit)
    f = np.asarray(fit.fitted, dtype=float)
    fig, ax = new_figure(7, 5)
    assert isinstance(ax, Axes)  # new_figure's default 1×1 grid is a single Axes
    tag(ax.scatter(f, r, s=18, alpha=0.7, color=POINT_COLOR, edgecolors="none", label="Observations"), "data")
    tag(ax.axhline(0, color="black", lw=0.8), "reference")
    for level in (-2, 2):
        tag(ax.axhline(level, color="grey", lw=0.8, ls=":"), "reference")
    if len(np.unique(f)) >= 3 and request["smooth"]:
        xs, ys = lowess(f, r, frac=float(request["span"]))
        tag(ax.plot(xs, ys, color=LINE_COLOR, lw=2, label="Lowess trend"), "smooth")
    ax.set_xlabel("Fitted values")
    ax.set_ylabel("Standardized residuals (residual / σ̂)")
    ax.set_title(f"Residuals vs fitted: {problem.desc.response.label}")
    ax.legend(loc="best", frameon=False)
    return [Drawn("residuals", "Standardized residuals against fitted values", fig)]


def qq_plot(problem: Problem, fit: Fit, request: dict) -> list[Drawn]:
    """Normal Q-Q plot of the standardized residuals with R's ``qqline``."""
    r = standardized_residuals(problem, fit)
    theo, v, (a, b) = qq_points(r)
    fig, ax = new_figure(6, 5)
    assert isinstance(ax, Axes)  # new_figure's default 1×1 grid is a single Axes
    tag(ax.scatter(theo, v, s=18, alpha=0.7, color=POINT_COLOR, edgecolors="none", label="Residuals"), "data")
    xs = np.array([theo[0], theo[-1]])
    tag(ax.plot(xs, a + b * xs, color=LINE_COLOR, lw=1.5, label="Line through the quartiles"), "reference")
    ax.set_xlabel("Theoretical quantiles (standard normal)")
    ax.set_ylabel("Standardized residuals")
    ax.set_title("Normal Q-Q plot of residuals")
    ax.legend(loc="upper left", frameon=False)
    return [Drawn("qq", "Normal Q-Q plot of the standardized residuals", fig)]


def ranef_qq_plot(problem: Problem, fit: Fit, request: dict) -> list[Drawn]:
    """One normal Q-Q panel per random-effects term (conditional modes), per grouping factor."""
    out = []
    for group, columns in merged_by_group(ranef_blocks(fit, request.get("group"))).items():
        if len(columns[0][1]) < 3:
            raise PlotNote(f"grouping factor {group!r} has fewer than 3 levels; a Q-Q plot needs at least 3")
        ncols = min(3, len(columns))
        nrows = math.ceil(len(columns) / ncols)
        fig, axes = new_figure(4.2 * ncols, 3.8 * nrows, nrows, ncols, squeeze=False)
        assert isinstance(axes, np.ndarray)  # squeeze=False: always a 2-d array of Axes
        for ax, (term, levels, modes, _sd) in zip(axes.flat, columns):
            theo, v, (a, b) = qq_points(modes)
            tag(ax.scatter(theo, v, s=22, color=POINT_COLOR, edgecolors="none"), "data")
            xs = np.array([theo[0], theo[-1]])
            tag(ax.plot(xs, a + b * xs, color=LINE_COLOR, lw=1.5), "reference")
            ax.set_title(f"{term}  ({len(levels)} levels)")
            ax.set_xlabel("Theoretical quantiles (standard normal)")
            ax.set_ylabel(f"Conditional mode of {term}")
        for ax in list(axes.flat)[len(columns):]:
            ax.set_visible(False)
        suptitle(fig, f"Normal Q-Q plots of the random effects of {group}")
        out.append(Drawn(f"ranef_qq-{safe_name(group)}", f"Normal Q-Q plots of the random effects of {group}", fig))
    return out
