"""Caterpillar plots: each level's conditional mode with a ±z·condsd interval (lme4's
``dotplot(ranef(fit, condVar = TRUE))``), one panel per term, one figure per grouping factor."""
from __future__ import annotations

import numpy as np

from .. import distributions as dist
from ..fit import Fit
from ..problem import Problem
from .modeldata import merged_by_group, ranef_blocks
from .render import new_figure, safe_name, suptitle, tag
from .types import Drawn

#: Above this many levels the level names are not written on the axis.
MAX_LABELLED_LEVELS = 60


def _order(modes: np.ndarray, first: np.ndarray, how: str) -> np.ndarray:
    key = first if how == "first" else modes
    return np.argsort(key, kind="stable") if how != "none" else np.arange(len(modes))


def caterpillar_plot(problem: Problem, fit: Fit, request: dict) -> list[Drawn]:
    """Conditional modes with intervals, sorted per panel (``order``: ``each`` (default),
    ``first`` (by the first term, rows aligned across panels as lme4 does) or ``none``)."""
    level = float(request["ci_level"])
    z = float(dist.norm.ppf(0.5 + level / 2))
    how = request["order"]
    out = []
    for group, columns in merged_by_group(ranef_blocks(fit, request.get("group"))).items():
        nlev = len(columns[0][1])
        ncols = len(columns)
        height = min(14.0, max(3.5, 1.2 + 0.17 * nlev))
        fig, axes = new_figure(min(max(5.5, 4.0 * ncols), 12), height, 1, ncols, squeeze=False)
        assert isinstance(axes, np.ndarray)  # squeeze=False: always a 2-d array of Axes
        first = columns[0][2]
        for ax, (term, levels, modes, sds) in zip(axes.flat, columns):
            _panel(ax, term, levels, modes, sds, _order(modes, first, how), z, nlev <= MAX_LABELLED_LEVELS)
        axes.flat[0].set_ylabel(group)
        suptitle(fig, f"Random effects of {group}: conditional modes of {nlev} levels with "
                      f"{level:.0%} intervals (±{z:.2f} × conditional SD)")
        out.append(Drawn(f"caterpillar-{safe_name(group)}", f"Caterpillar plot of the random effects of {group}", fig))
    return out


def _panel(ax, term: str, levels: list[str], modes: np.ndarray, sds: np.ndarray, order: np.ndarray,
           z: float, labelled: bool) -> None:
    pos = np.arange(len(levels))
    m, s = modes[order], sds[order]
    tag(ax.errorbar(m, pos, xerr=z * s, fmt="none", ecolor="#7f8c8d", elinewidth=1.2).lines[2], "interval")
    tag(ax.scatter(m, pos, s=20, color="#3b6ea5", zorder=3), "data")
    tag(ax.axvline(0, color="black", lw=0.8, ls="--"), "reference")
    ax.set_yticks(pos if labelled else [])
    if labelled:
        ax.set_yticklabels([levels[i] for i in order], fontsize=8 if len(levels) > 25 else 9)
    ax.set_ylim(-0.7, len(levels) - 0.3)
    ax.set_title(term)
    ax.set_xlabel(f"Conditional mode of {term}")
    ax.grid(axis="y", alpha=0.15)
