"""Estimated marginal means (JASP's mixed-model plots, afex_plot): model-based means of a factor
over a reference grid, with confidence intervals, separate lines and panels by other factors,
and the raw data behind as seeded jitter, violins or boxplots.

The numbers come from the fit's engine (:mod:`mixedbridge.emmeans` natively, R's emmeans for
the lme4 engine; emmeans 1.8 rules: factors crossed, covariates
at their mean, equally weighted averages Lβ̂ with SE sqrt(L V Lᵀ)), so the plot and the
``emmeans`` table agree.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import distributions as dist
from ..fit import Fit
from ..kept import KeptByOwners
from ..options import node
from ..problem import Problem
from ..table import Table
from .datalines import cluster_colors
from .modeldata import PlotNote
from .render import DRAW_LOCK, new_figure, safe_name, styled, suptitle, tag, to_plot
from .reuse import blank_figure, reusing_figures
from .types import Drawn

#: Horizontal room shared by the lines' positions at one level of the horizontal factor.
SPREAD = 0.6


@dataclass
class Means:
    """Marginal means: ``table`` one row per cell (factor columns, ``mean``, ``se``, ``lower``,
    ``upper``; NaN where not estimable), the ``factors`` (horizontal, lines, panels; None where
    unused), ``level`` and ``notes``."""

    table: pd.DataFrame
    factors: tuple[str, str | None, str | None]
    level: float
    notes: list[str] = field(default_factory=list)


def fixed_factors(problem: Problem) -> list[str]:
    """Factor variables of the fixed part, in formula order."""
    out: list[str] = []
    for t in problem.desc.fixed:
        for v in t.variables:
            if v.label in problem.frame.factors and v.label not in out:
                out.append(v.label)
    return out


def _check_factor(name: str | None, role: str, factors: list[str]) -> None:
    if name is not None and name not in factors:
        have = ", ".join(factors) or "none"
        raise PlotNote(f"emmeans {role} {name!r} is not a factor of the fixed part; factors: {have}")


#: Marginal means kept by :func:`marginal_means`, the newest: at most this many.
MAX_KEPT_MEANS = 16
_KEPT: KeptByOwners[Means] = KeptByOwners(MAX_KEPT_MEANS)


def marginal_means(problem: Problem, fit: Fit, horizontal: str, lines: str | None = None,
                   panels: str | None = None, level: float | None = None, df: str | None = None,
                   scale: str = "response") -> Means:
    """Model-based marginal means of ``horizontal`` (× ``lines`` × ``panels``) with intervals,
    computed by the fit's engine (the same numbers as its ``emmeans`` table).

    The means of a fit and its rows are kept (the last :data:`MAX_KEPT_MEANS`, dropped with the
    fit): a host's plot click that changes the background, the intervals' look or the image
    format asks for the same means again. Each call gets its own copy.

    ``level``: the confidence level; None is the plots schema's default (``$defs/level``).

    ``df``: ``satterthwaite``, ``kenward-roger`` or ``asymptotic`` (normal quantiles); None
    tries Satterthwaite and falls back to asymptotic with a note in ``Means.notes``.

    ``scale``: a GLMM's means on the ``response`` scale (emmeans ``type = "response"``:
    probabilities, rates, back-transformed intervals) or on the ``link`` scale.
    """
    owners, key = (fit, problem.frame), (horizontal, lines, panels, level, df, scale)
    kept = _KEPT.get(owners, key)
    if kept is not None:
        return _copy(kept)
    means = _marginal_means(problem, fit, horizontal, lines, panels, level, df, scale)
    _KEPT.put(owners, key, _copy(means))
    return means


def _copy(means: Means) -> Means:
    return Means(means.table.copy(), means.factors, means.level, list(means.notes))


def _marginal_means(problem: Problem, fit: Fit, horizontal: str, lines: str | None, panels: str | None,
                    level: float | None, df: str | None, scale: str) -> Means:
    """:func:`marginal_means`, computed."""
    from ..engines import engine_of
    from ..errors import MixedBridgeError

    factors = fixed_factors(problem)
    for name, role in ((horizontal, "horizontal"), (lines, "lines"), (panels, "panels")):
        _check_factor(name, role, factors)
    by = [f for f in (horizontal, lines, panels) if f is not None]
    if len(set(by)) < len(by):
        raise PlotNote("emmeans: horizontal, lines and panels must be different factors")
    notes: list[str] = []
    level = node("plots", "/$defs/level")["default"] if level is None else level
    request = {"specs": by, "level": level, "df": df or "satterthwaite"}
    if fit.analysis == "glmm" and scale == "response":
        request["type"] = "response"
        notes.append(f"Means and intervals are back-transformed from the {fit.link} scale")
    try:
        tables, _ = engine_of(fit).emmeans(problem, fit, request, "/options/plots")
    except MixedBridgeError as exc:
        if df is not None:
            raise PlotNote(f"emmeans: {exc.message}") from None
        tables, _ = engine_of(fit).emmeans(problem, fit, {**request, "df": "asymptotic"}, "/options/plots")
        notes.append("emmeans: Satterthwaite degrees of freedom are not available; intervals use the "
                     "normal (asymptotic) quantile.")
    return Means(_cell_table(tables[0], by, problem), (horizontal, lines, panels), level, notes)


def _cell_table(emm: Table, by: list[str], problem: Problem) -> pd.DataFrame:
    """The emmeans table's cells as :class:`Means` holds them: the factors ``by`` as Categoricals
    of the model's levels, ``mean``, ``se``, ``lower``, ``upper`` (NaN where not estimable), the
    first factor varying fastest."""
    names = [c.name for c in emm.columns]
    est = names[names.index("SE") - 1]  # emmean, prob, rate, response
    cells: dict[str, object] = {
        f: pd.Categorical([str(r.get(f)) for r in emm.rows], categories=problem.frame.data[f].cat.categories)
        for f in by}
    for src, dst in ((est, "mean"), ("SE", "se"), ("lower.CL", "lower"), ("upper.CL", "upper")):
        cells[dst] = np.array([_number(r.get(src)) for r in emm.rows], dtype=float)
    table = pd.DataFrame(cells)
    codes = [np.where(c < 0, len(table), c) for c in (table[f].cat.codes.to_numpy() for f in by)]
    return table.iloc[np.lexsort(codes)].reset_index(drop=True)  # a level not in the model last


def _number(value: object) -> float:
    """A cell as a float; NaN when it is not a number."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def data_means(problem: Problem, horizontal: str, level: float) -> Means:
    """The response's mean per level of ``horizontal`` with a normal interval of the mean, from
    the rows alone (no fit, no engine): a stand-in for :func:`marginal_means` in a figure drawn
    only to measure and rasterize a model's text ahead of its first means plot."""
    codes = problem.frame.data[horizontal].cat.codes.to_numpy()
    categories = problem.frame.data[horizontal].cat.categories
    y = np.asarray(problem.y, dtype=float)
    seen = (codes >= 0) & np.isfinite(y)
    k = len(categories)
    n = np.bincount(codes[seen], minlength=k).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(codes[seen], weights=y[seen], minlength=k) / n
        sq = np.bincount(codes[seen], weights=y[seen] ** 2, minlength=k) / n
        se = np.sqrt(np.maximum(sq - mean**2, 0.0) / np.maximum(n - 1, 1.0))
    half = dist.norm.ppf(0.5 + level / 2) * se
    table = pd.DataFrame({horizontal: pd.Categorical(categories, categories=categories), "mean": mean,
                          "se": se, "lower": mean - half, "upper": mean + half})
    return Means(table, (horizontal, None, None), level)


def emmeans_plot(problem: Problem, fit: Fit, request: dict) -> list[Drawn]:
    """Marginal means with intervals, lines and panels by other factors, data behind."""
    horizontal = request.get("horizontal")
    if horizontal is None:
        factors = fixed_factors(problem)
        if not factors:
            raise PlotNote("emmeans needs a factor in the fixed part; the model has none")
        horizontal = factors[0]
    lines, panels = request.get("lines"), request.get("panels")
    level = float(request["ci_level"])
    means = marginal_means(problem, fit, horizontal, lines, panels, level, request.get("df"),
                           request.get("scale", "response"))
    return [draw_means(problem, means, request)]


def draw_means(problem: Problem, means: Means, request: dict) -> Drawn:
    """The figure of :func:`emmeans_plot` for ``means`` (its factors: horizontal, lines, panels)."""
    horizontal, lines, panels = means.factors
    background = request.get("background")
    by = request.get("background_by")
    needed = background or by is not None or request["ci_type"] == "mean"
    data = _background_data(problem, means.factors, by) if needed else None
    plevels = list(problem.frame.data[panels].cat.categories) if panels else [None]
    ncols = min(3, len(plevels))
    nrows = -(-len(plevels) // ncols)
    size = _size(nrows, ncols)
    if len(plevels) == 1:
        fig, ax = blank_figure(("emmeans", *size), *size)
        axes = np.array([[ax]])
    else:
        fig, axes = new_figure(*size, nrows, ncols, squeeze=False, sharey=True)
    assert isinstance(axes, np.ndarray)  # squeeze=False: always a 2-d array of Axes
    notes: list[str] = list(means.notes)
    for ax, plev in zip(axes.flat, plevels):
        _means_panel(ax, problem, means, data, plev, background, request, notes)
    for ax in list(axes.flat)[len(plevels):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(problem.desc.response.label)
    if lines:
        axes.flat[0].legend(title=lines, loc="best", frameon=False)
    ci = request["ci_type"]
    suptitle(fig, f"Estimated marginal means of {problem.desc.response.label} by {horizontal}"
                  + (f" and {lines}" if lines else "")
                  + ("" if ci == "none" else f" ({means.level:.0%} {'model-based' if ci == 'model' else 'data'} CI)"))
    name = "emmeans-" + "-".join(safe_name(f) for f in means.factors if f) + (f"-{background}" if background else "")
    return Drawn(name, f"Estimated marginal means by {', '.join(f for f in means.factors if f)}", fig, notes)


def _size(nrows: int, ncols: int) -> tuple[float, float]:
    """The figure size in inches of ``nrows`` × ``ncols`` panels."""
    return 5.2 * ncols + 0.5, 4.4 * nrows + 0.4


def warm_up() -> None:
    """Draw a made-up one-panel means plot (a line of means, intervals, level labels) into the
    figure kept for one panel, to PNG and SVG: a host's first emmeans plot then finds its figure,
    ticks and renderer made (:func:`reuse.blank_figure`; ~40 ms of a first click)."""
    size = _size(1, 1)
    with reusing_figures(), DRAW_LOCK, styled():
        fig, ax = blank_figure(("emmeans", *size), *size)
        x, y = np.arange(2.0), np.array([0.0, 1.0])
        ax.plot(x, y, "-o", color="C0", lw=1.8, ms=7, zorder=5, label="warm-up")
        ax.errorbar(x, y, yerr=[y * 0 + 0.5, y * 0 + 0.5], fmt="none", ecolor="C0", elinewidth=1.5, capsize=4)
        ax.set_xticks(range(2), ["a", "b"])
        ax.set_xlim(-0.6, 1.6)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        suptitle(fig, "warm-up")
        to_plot("warm-up", "warm-up", fig)


def _background_data(problem: Problem, factors: tuple, by: str | None) -> pd.DataFrame:
    """The response per row (or averaged per level of ``by`` within each cell, JASP's
    plotBackgroundData) with the plot's factor columns."""
    cols = [f for f in factors if f]
    df = problem.frame.data[cols].copy()
    df["y"] = problem.y
    if by is None:
        return df
    if by not in problem.frame.data:
        raise PlotNote(f"emmeans background_by {by!r} is not a grouping factor or variable of the model")
    keys = cols if by in cols else cols + [by]
    df[by] = problem.frame.data[by]
    return df.groupby(keys, observed=True, sort=True)["y"].mean().reset_index()


def _offsets(n: int) -> tuple[np.ndarray, float]:
    """Dodged positions of n lines around each level, and the width each may use."""
    step = SPREAD / n if n > 1 else 0.35
    return (np.arange(n) - (n - 1) / 2) * step, step


def _means_panel(ax, problem: Problem, means: Means, data: pd.DataFrame | None, plev, background: str | None,
                 request: dict, notes: list[str]) -> None:
    """One panel: the means of each line with their intervals and the ``data`` behind (None
    when neither the background nor data intervals need the rows)."""
    horizontal, lines, panels = means.factors
    table = means.table if panels is None else means.table[means.table[panels] == plev]
    sub = data if panels is None or data is None else data[data[panels] == plev]
    hlevels = list(problem.frame.data[horizontal].cat.categories)
    llevels = list(problem.frame.data[lines].cat.categories) if lines else [None]
    colors = cluster_colors(len(llevels)) if lines else np.array([[0.17, 0.24, 0.31, 1.0]])
    offs, width = _offsets(len(llevels))
    rng = np.random.default_rng(int(request["seed"]))
    for j, llev in enumerate(llevels):
        t = table if lines is None else table[table[lines] == llev]
        d = sub if lines is None or sub is None else sub[sub[lines] == llev]
        xpos = {h: i + offs[j] for i, h in enumerate(hlevels)}
        if background and d is not None:
            where = f"{lines} = {llev}, " if lines else ""
            where += f"{panels} = {plev}, " if panels else ""
            _draw_background(ax, d, horizontal, xpos, background, colors[j], rng, notes, width * 0.85, where)
        at, t = _cells(t, horizontal)
        x = at + offs[j]
        mean = t["mean"].to_numpy()
        label = str(llev) if lines else "Marginal mean"
        tag(ax.plot(x, mean, "-o", color=colors[j], lw=1.8, ms=7, zorder=5, label=label), "mean")
        lo, hi = _interval(t, [hlevels[i] for i in at], d, horizontal, request)
        if lo is not None:
            tag(ax.errorbar(x, mean, yerr=[mean - lo, hi - mean], fmt="none",
                            ecolor=colors[j], elinewidth=1.5, capsize=4, zorder=5).lines[2], "interval")
    ax.set_xticks(range(len(hlevels)), [str(h) for h in hlevels])
    ax.set_xlim(-0.6, len(hlevels) - 0.4)
    ax.set_xlabel(horizontal)
    ax.set_title(f"{panels} = {plev}" if panels else "")


def _cells(t: pd.DataFrame, horizontal: str) -> tuple[np.ndarray, pd.DataFrame]:
    """The rows of ``t`` that have a mean, in the order of ``horizontal``'s levels, and the
    place of each one's level among them (the table's factor columns are Categoricals of the
    model's levels)."""
    at = t[horizontal].cat.codes.to_numpy()
    keep = np.flatnonzero((at >= 0) & ~np.isnan(t["mean"].to_numpy()))
    keep = keep[np.argsort(at[keep], kind="stable")]
    return at[keep], t.iloc[keep]


def _interval(t: pd.DataFrame, levels: list, d: pd.DataFrame | None, horizontal: str, request: dict):
    """The intervals of the cells ``t`` (at the ``levels`` of ``horizontal``): the model's, the
    data's (from the rows ``d``) or none."""
    ci = request["ci_type"]
    if ci == "none":
        return None, None
    if ci == "model" or d is None:  # d is only None when ci is not "mean"
        return t["lower"].to_numpy(), t["upper"].to_numpy()
    level = float(request["ci_level"])
    lo, hi = [], []
    for h in levels:
        y = d.loc[d[horizontal] == h, "y"].to_numpy()
        m = y.mean()
        half = dist.t.ppf(0.5 + level / 2, len(y) - 1) * y.std(ddof=1) / np.sqrt(len(y)) if len(y) > 1 else np.nan
        lo.append(m - half)
        hi.append(m + half)
    return np.array(lo), np.array(hi)


def _draw_background(ax, d: pd.DataFrame, horizontal: str, xpos: dict, kind: str, color, rng,
                     notes: list[str], width: float, where: str = "") -> None:
    for h, x in xpos.items():
        y = d.loc[d[horizontal] == h, "y"].to_numpy()
        if len(y) == 0:
            continue
        if kind == "jitter":
            xs = x + rng.uniform(-width / 3, width / 3, len(y))
            tag(ax.scatter(xs, y, s=14, color=color, alpha=0.5, edgecolors="none", zorder=1), "background")
        elif kind == "violin":
            if len(y) < 3 or np.ptp(y) == 0:
                notes.append(f"emmeans: no violin for {where}{horizontal} = {h} (fewer than 3 distinct values).")
                continue
            parts = ax.violinplot([y], positions=[x], widths=width, showextrema=False)
            for body in parts["bodies"]:
                body.set_facecolor(color)
                body.set_alpha(0.25)
                tag(body, "background")
        elif kind in ("boxplot", "boxjitter"):
            _boxplot(ax, y, x, width, color, kind == "boxjitter", rng)


def _boxplot(ax, y: np.ndarray, x: float, width: float, color, beside: bool, rng) -> None:
    """A faint box plot at ``x``; with ``beside`` (ggpol's ``geom_boxjitter``, JASP's
    ``boxjitter``) a half-width box on the left and every point jittered on the right half."""
    faint = (*color[:3], 0.45)
    line = {"color": faint}
    pos, w = (x - width / 4, width * 0.35) if beside else (x, width * 0.7)
    bp = ax.boxplot([y], positions=[pos], widths=w, patch_artist=True, showfliers=not beside,
                    manage_ticks=False, zorder=1, whiskerprops=line, capprops=line, medianprops=line,
                    flierprops={"markeredgecolor": faint, "markersize": 4},
                    boxprops={"facecolor": (*color[:3], 0.15), "edgecolor": faint})
    tag(bp["boxes"], "background")
    if beside:
        xs = x + width / 8 + rng.uniform(0, width / 4, len(y))
        tag(ax.scatter(xs, y, s=12, color=color, alpha=0.5, edgecolors="none", zorder=1), "background")
