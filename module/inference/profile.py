"""Profile-likelihood confidence intervals, as lme4's ``confint(fm, method = "profile")``.

lme4 profiles the *maximum-likelihood* deviance (a REML fit is refitted by ML first) on the
scale of standard deviations and correlations (``oldNames``: .sig01, ..., .sigma, in θ's
order: per term the lower triangle of its covariance column-wise, sd on the diagonal, cor off
it) and of the fixed effects. For a parameter ψ,

    ζ(ψ) = sign(ψ − ψ̂)·√(d(ψ) − d̂),   d(ψ) = min over the other parameters of the deviance,

and the interval is {ψ: |ζ(ψ)| ≤ z_{(1+level)/2}}. Here the limits are found by bracketing and
Brent's method on ζ(ψ) ∓ z (lme4 interpolates a spline through a grid of profile points; the
two agree to the interpolation error). The variance parameters are mapped to θ by the model's
terms (``structure.theta_from_sdcor``) and d is the model's unprofiled ML deviance at (θ, σ),
``objective(θ, reml=False, sigma=σ)``; for a fixed effect βⱼ = b the model without column j and
with offset Xⱼb is refitted by ML.

A limit that cannot be reached inside the parameter space (an sd at 0, a correlation at ±1) is
reported at the boundary (lme4 gives the boundary or NA there).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import optimize, stats

from .. import progress
from ..engines import native_model
from ..fit import Fit
from ..problem import Problem

try:
    import nlopt
except ImportError:  # pragma: no cover
    nlopt = None


def _minimize(fun, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, float]:
    """Minimise ``fun`` over the box from x0 with BOBYQA; when NLopt stops on round-off (its
    ``RoundoffLimited``, near a boundary or at tiny scales) the best point it evaluated is kept."""
    if x0.size == 0:
        return x0, float(fun(x0))
    x0 = np.clip(x0, lower, upper)
    if nlopt is not None:
        return _bobyqa(fun, x0, lower, upper)
    res = optimize.minimize(fun, x0, method="Powell", bounds=list(zip(lower, upper)),
                            options={"xtol": 1e-10, "ftol": 1e-12})
    return res.x, float(res.fun)


def _bobyqa(fun, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, float]:
    best_x, best_f = x0, float(fun(x0))

    def f(x, grad) -> float:
        nonlocal best_x, best_f
        progress.check()
        val = float(fun(np.asarray(x)))
        if val < best_f:
            best_x, best_f = np.array(x), val
        return val

    opt = nlopt.opt(nlopt.LN_BOBYQA, x0.size)
    opt.set_min_objective(f)
    opt.set_lower_bounds(lower)
    opt.set_upper_bounds(upper)
    opt.set_xtol_abs(1e-10)
    opt.set_ftol_abs(1e-10)
    opt.set_maxeval(20000)
    opt.set_initial_step(np.maximum(0.1 * np.abs(x0), 0.02))
    try:
        opt.optimize(x0)
    except nlopt.RoundoffLimited:
        pass
    return best_x, best_f


def _root(zeta, target: float, x0: float, step: float, lo_bound: float, hi_bound: float,
          direction: int) -> float | None:
    """ψ beyond x0 in ``direction`` where ζ(ψ) = target; the bound if never reached."""
    a = x0
    h = step
    for _ in range(60):
        b = x0 + direction * h
        if direction < 0 and b <= lo_bound:
            b = lo_bound
        if direction > 0 and b >= hi_bound:
            b = hi_bound
        fb = abs(zeta(b))
        if fb >= abs(target):
            return float(optimize.brentq(lambda x: abs(zeta(x)) - abs(target), min(a, b), max(a, b),
                                         xtol=1e-12, rtol=1e-10))
        if b in (lo_bound, hi_bound):
            return float(b)
        a = b
        h *= 2.0
    return None


def confint(problem: Problem, fit: Fit, level: float) -> list[dict]:
    """Profile intervals for (.sig01, ..., .sigma, β)."""
    from .lrt import ml_fit_native

    ml = fit if not fit.reml else ml_fit_native(problem)
    model = native_model(ml)
    z = float(stats.norm.isf((1.0 - level) / 2.0))
    with progress.stage("profile", len(model.structure.sig_names()) + len(model.names)) as step:
        variance = variance_intervals(model, z, step)
        return variance + fixed_intervals(model, z, lambda done: step(len(variance) + done))


def variance_intervals(model, z: float, advance: Callable[[int], None] = lambda done: None) -> list[dict]:
    """Profile limits of the sds, correlations and σ of a native ML fit (left at θ̂), at
    |ζ| = z (``advance(j)`` after the j-th)."""
    structure = model.structure
    theta_hat = np.asarray(model.optsum.theta, dtype=float)
    model.set_theta(theta_hat)
    sigma_hat = model.sigma
    s_hat = structure.sdcor(theta_hat, sigma_hat)
    lo_b, hi_b = structure.sdcor_bounds()
    lo_b[-1] = 1e-10  # σ > 0: the deviance has log σ²
    is_cor = np.append(~structure.is_sd, False)
    names = structure.sig_names()

    def dev(s: np.ndarray) -> float:
        return model.objective(structure.theta_from_sdcor(s), False, sigma=s[-1])

    d_hat = dev(s_hat)
    rows = []
    k = s_hat.size
    for j in range(k):
        free = [i for i in range(k) if i != j]
        start = {"x": s_hat[free].copy()}

        def prof(v: float, j=j, free=free, start=start) -> float:
            def f(x):
                s = s_hat.copy()
                s[free] = x
                s[j] = v
                return dev(s)
            _, val = _minimize(f, start["x"], lo_b[free], hi_b[free])
            return val

        def zeta(v: float, j=j, prof=prof) -> float:
            d = prof(v) - d_hat
            return np.sign(v - s_hat[j]) * np.sqrt(max(d, 0.0))

        step = max(0.25 * abs(s_hat[j]), 0.05 if is_cor[j] else 1e-3 * sigma_hat + 1e-8)
        lower = _root(zeta, -z, s_hat[j], step, lo_b[j], hi_b[j], -1)
        upper = _root(zeta, z, s_hat[j], step, lo_b[j], hi_b[j], +1)
        rows.append({"parameter": names[j], "lower": lower, "upper": upper})
        advance(j + 1)
    model.set_theta(theta_hat)
    return rows


def fixed_intervals(model, z: float, advance: Callable[[int], None] = lambda done: None) -> list[dict]:
    """Profile limits of the fixed effects of a native ML fit (left at θ̂), at |ζ| = z: for
    βⱼ = b the model without column j and with offset Xⱼb is refitted by ML (``advance(j)`` after
    the j-th)."""
    from ..lmm import LinearMixedModel

    theta_hat = np.asarray(model.optsum.theta, dtype=float)
    model.set_theta(theta_hat)
    beta, dev_ml = model.beta, model.deviance_ml()
    se_all = np.sqrt(np.diag(model.vcov()))
    X, names = model.X, model.names
    rows = []
    for j, name in enumerate(names):
        keep = [i for i in range(X.shape[1]) if i != j]

        def prof_b(b: float, j=j, keep=keep) -> float:
            y, off = _fixed_at(model, j, b)
            m = LinearMixedModel(X[:, keep], [names[i] for i in keep], y, list(model.reterms),
                                 model.weights, off, False)
            return m.fit(theta0=theta_hat, calc_derivs=False).deviance_ml()

        def zeta_b(b: float, j=j, prof_b=prof_b) -> float:
            d = prof_b(b) - dev_ml
            return np.sign(b - beta[j]) * np.sqrt(max(d, 0.0))

        se = float(se_all[j]) if se_all[j] > 0 else 1.0
        lower = _root(zeta_b, -z, float(beta[j]), 0.5 * z * se, -np.inf, np.inf, -1)
        upper = _root(zeta_b, z, float(beta[j]), 0.5 * z * se, -np.inf, np.inf, +1)
        rows.append({"parameter": name, "lower": lower, "upper": upper})
        advance(j + 1)
    return rows


def _fixed_at(model, j: int, b: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Response and offset of the model with βⱼ fixed at b. A constant Xⱼ (the intercept) joins
    the offset (o + b loses no more than b's own rounding, even when o is 1e15); any other column
    is taken from the response (y − Xⱼb), so that a large offset stays exact in the fit."""
    xj, off = model.X[:, j], model.offset
    if np.all(xj == xj[0]):
        return model.y, xj * b if off is None else off + xj * b
    return model.y - xj * b, off
