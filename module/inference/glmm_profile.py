"""Profile-likelihood confidence intervals of a GLMM, as lme4's ``confint(fm, method =
"profile")`` on a glmer fit.

lme4 profiles glmer's stage-2 criterion d(θ, β) (the Laplace or quadrature deviance) over the
standard deviations and correlations of the random effects (``oldNames``: .sig01, ...; no
.sigma: lme4 profiles only GLMMs without a free scale) and the fixed effects. For a parameter ψ,

    ζ(ψ) = sign(ψ − ψ̂)·√(min over the other parameters of d − d̂),

and the interval is {ψ: |ζ(ψ)| ≤ z_{(1+level)/2}}. The limits are found by bracketing and
Brent's method on |ζ| (lme4 interpolates a spline through a grid of profile points; the two
agree to that interpolation's error). A limit not reached inside the parameter space (an sd
at 0, a correlation at ±1) is reported at the boundary.
"""
from __future__ import annotations

import numpy as np

from .. import distributions as dist
from .. import progress
from ..engines import native_model
from ..errors import ModelError
from ..families import has_scale
from ..fit import Fit
from .profile import _minimize, _root


def confint(fit: Fit, level: float) -> list[dict]:
    """Profile intervals for (.sig01, ..., β) of a native GLMM fit."""
    if has_scale(fit.family):
        raise ModelError(f"profile intervals are not available for a {fit.family} GLMM (its scale is "
                         "estimated; lme4 profiles GLMMs without a scale only); use confint method "
                         "'wald'", "/options/confint/method")
    model = native_model(fit, "profile intervals of a GLMM")
    z = float(dist.norm.isf((1.0 - level) / 2.0))
    model.reset_modes()
    prof = _Profile(model)
    rows = []
    with progress.stage("profile", len(prof.names)) as step:
        for j, name in enumerate(prof.names):
            rows.append(prof.interval(j, z, name))
            step(j + 1)
    model.modes_at(model.theta, model.beta)  # leave the model at its estimates
    model.reset_modes()
    return rows


class _Profile:
    """The GLMM's criterion on the (sd/cor, β) scale and its profile ζ for each parameter."""

    def __init__(self, model) -> None:
        self.model = model
        s = model.structure
        self.k = model.ntheta
        self.hat = np.concatenate([s.sdcor(model.theta, 1.0)[:-1], model.beta])
        lo, hi = s.sdcor_bounds()
        self.lower = np.concatenate([lo[:-1], np.full(model.p, -np.inf)])
        self.upper = np.concatenate([hi[:-1], np.full(model.p, np.inf)])
        self.names = s.sig_names()[:-1] + list(model.names)
        self.d_hat = self.deviance(self.hat)
        se = np.sqrt(np.clip(np.diag(model.unscaled_vcov()), 0.0, None))
        sd_steps = np.where(s.is_sd, np.maximum(0.25 * self.hat[: self.k], 1e-3), 0.05)
        self.steps = np.concatenate([sd_steps, np.where(se > 0, se, 1.0)])

    def deviance(self, x: np.ndarray) -> float:
        s = self.model.structure
        theta = s.theta_from_sdcor(np.append(x[: self.k], 1.0))
        return float(self.model.objective(np.concatenate([theta, x[self.k:]])))

    def zeta(self, j: int, v: float, start: dict) -> float:
        free = [i for i in range(self.hat.size) if i != j]

        def f(x: np.ndarray) -> float:
            full = self.hat.copy()
            full[free] = x
            full[j] = v
            return self.deviance(full)

        x, val = _minimize(f, start["x"], self.lower[free], self.upper[free])
        start["x"] = np.asarray(x, dtype=float)
        return float(np.sign(v - self.hat[j]) * np.sqrt(max(val - self.d_hat, 0.0)))

    def interval(self, j: int, z: float, name: str) -> dict:
        free = [i for i in range(self.hat.size) if i != j]
        limits = []
        for direction in (-1, 1):
            start = {"x": self.hat[free].copy()}
            limits.append(_root(lambda v, start=start: self.zeta(j, v, start), direction * z,
                                float(self.hat[j]), float(self.steps[j]), float(self.lower[j]),
                                float(self.upper[j]), direction))
        return {"parameter": name, "lower": limits[0], "upper": limits[1]}
