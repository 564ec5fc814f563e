"""Model checks of a GLMM: deviance and Pearson residuals against the fitted values (μ̂, on the
response scale), each with a zero line and a lowess trend.

A GLMM's residuals are not normal with one variance, so the LMM's standardized residuals do
not apply: lme4's ``residuals(fit)`` (deviance residuals, sign(y − μ̂)·√dᵢ) and
``residuals(fit, type = "pearson")`` ((y − μ̂)·√wᵢ/√V(μ̂)) are shown as they are; for families
with a scale (Gamma, inverse Gaussian) they are divided by σ̂ as well.
"""
from __future__ import annotations

import numpy as np

from ..families import has_scale
from ..fit import Fit
from ..problem import Problem
from .modeldata import PlotNote
from .render import new_figure, suptitle, tag
from .smooth import lowess
from .types import Drawn

POINT_COLOR = "#3b6ea5"
LINE_COLOR = "#c0392b"
KINDS = (("deviance", "Deviance residuals"), ("pearson", "Pearson residuals"))


def residual_sets(fit: Fit) -> list[tuple[str, np.ndarray]]:
    """(label, residuals) for the deviance and Pearson residuals of a GLMM fit, divided by σ̂
    for a family with a scale."""
    if fit.fitted is None or fit.residuals is None:
        raise PlotNote("the fit has no residuals or fitted values to plot")
    scale = float(fit.sigma) if has_scale(fit.family) and np.isfinite(fit.sigma) and fit.sigma > 0 else 1.0
    sets = [("Deviance residuals", np.asarray(fit.residuals, dtype=float) / scale)]
    if fit.pearson_residuals is not None:
        sets.append(("Pearson residuals", np.asarray(fit.pearson_residuals, dtype=float) / scale))
    return sets


def residual_plot(problem: Problem, fit: Fit, request: dict) -> list[Drawn]:
    """Deviance and Pearson residuals against μ̂, side by side, with lowess trends."""
    mu = np.asarray(fit.fitted, dtype=float) if fit.fitted is not None else None
    sets = residual_sets(fit)
    assert mu is not None  # residual_sets refused a fit without fitted values
    fig, axes = new_figure(6.2 * len(sets), 5, 1, len(sets), squeeze=False)
    assert isinstance(axes, np.ndarray)  # squeeze=False: always a 2-d array of Axes
    scaled = " / σ̂" if has_scale(fit.family) else ""
    for ax, (label, r) in zip(axes.flat, sets):
        tag(ax.scatter(mu, r, s=16, alpha=0.6, color=POINT_COLOR, edgecolors="none", label="Observations"), "data")
        tag(ax.axhline(0, color="black", lw=0.8), "reference")
        if len(np.unique(mu)) >= 3 and request.get("smooth", True):
            xs, ys = lowess(mu, r, frac=float(request.get("span", 2 / 3)))
            tag(ax.plot(xs, ys, color=LINE_COLOR, lw=2, label="Lowess trend"), "smooth")
        ax.set_xlabel(f"Fitted values (μ̂, {fit.family} scale of the response)")
        ax.set_ylabel(label + scaled)
        ax.set_title(f"{label} vs fitted")
        ax.legend(loc="best", frameon=False)
    suptitle(fig, f"Residuals against fitted values: {problem.desc.response.label} "
                  f"({fit.family}, {fit.link} link)")
    return [Drawn("residuals", "Deviance and Pearson residuals against fitted values", fig)]
