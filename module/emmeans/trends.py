"""Trends of a covariate (emmeans's ``emtrends``): the slope of the linear predictor in the
covariate at each grid row, by emtrends's forward difference with ``delta.var`` = 0.001 × the
covariate's range, then averaged over the grid like means."""
from __future__ import annotations

import numpy as np

from ..problem import Problem
from .refgrid import DesignMaker, RefGrid, build

#: emtrends's default step, as a fraction of the covariate's range.
DELTA_FRACTION = 1e-3


def trend_grid(problem: Problem, coef_names: list[str], var: str, at: dict | None = None,
               sd_steps: float | None = None, maker: DesignMaker | None = None) -> tuple[RefGrid, np.ndarray, float]:
    """The reference grid, its rows of d(x'β)/d var (full columns), and the step used."""
    maker = maker or DesignMaker(problem)
    x = problem.frame.data[var].to_numpy(dtype=float)
    h = DELTA_FRACTION * float(np.max(x) - np.min(x))
    if h == 0:
        h = DELTA_FRACTION
    rg = build(problem, coef_names, at, sd_steps, maker)
    shifted = build(problem, coef_names, at, sd_steps, maker, shift=(var, h))
    return rg, (shifted.X - rg.X) / h, h
