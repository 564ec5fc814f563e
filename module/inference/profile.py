"""Profile-likelihood confidence intervals, as lme4's ``confint(fm, method = "profile")``.

lme4 profiles the *maximum-likelihood* deviance (a REML fit is refitted by ML first) on the
scale of standard deviations and correlations (``oldNames``: .sig01, ..., .sigma, in θ's
order: per term the lower triangle of its covariance column-wise, sd on the diagonal, cor off
it) and of the fixed effects. For a parameter ψ,

    ζ(ψ) = sign(ψ − ψ̂)·√(d(ψ) − d̂),   d(ψ) = min over the other parameters of the deviance,

and the interval is {ψ: |ζ(ψ)| ≤ z_{(1+level)/2}}. Here the limits are found by bracketing and
Brent's method on ζ(ψ) ∓ z (lme4 interpolates a spline through a grid of profile points; the
two agree to the interpolation error). The unprofiled ML deviance at (θ, σ) is
log|L_θ|² − log|W| + r²(θ)/σ² + n·log(2πσ²); for a fixed effect βⱼ = b the model without
column j and with offset Xⱼb is refitted by ML.

A limit that cannot be reached inside the parameter space (an sd at 0, a correlation at ±1) is
reported at the boundary (lme4 gives the boundary or NA there).
"""
from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from ..engines import native_model
from ..fit import Fit
from ..problem import Problem

try:
    import nlopt
except ImportError:  # pragma: no cover
    nlopt = None

_LOG2PI = float(np.log(2.0 * np.pi))


class _SdCor:
    """Map between θ (with σ) and the sd/cor vector s = (.sig01, ..., .sigma)."""

    def __init__(self, model) -> None:
        self.terms = model.structure.terms
        self.kinds = []  # (term index, a, b): a == b sd, else cor
        for i, t in enumerate(self.terms):
            rows, cols = np.tril_indices(t.p)
            order = np.lexsort((rows, cols))
            for a, b in zip(rows[order], cols[order]):
                self.kinds.append((i, int(a), int(b)))
        self.k = len(self.kinds) + 1

    def lower(self) -> np.ndarray:
        return np.array([0.0 if a == b else -1.0 for _, a, b in self.kinds] + [1e-10])

    def upper(self) -> np.ndarray:
        return np.array([np.inf if a == b else 1.0 for _, a, b in self.kinds] + [np.inf])

    def from_theta(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        out = []
        cache = {}
        for i, a, b in self.kinds:
            if i not in cache:
                T = self.terms[i].template(theta)
                C = (T @ T.T) * sigma**2
                cache[i] = (C, np.sqrt(np.diag(C)))
            C, sd = cache[i]
            out.append(sd[a] if a == b else (C[a, b] / (sd[a] * sd[b]) if sd[a] > 0 and sd[b] > 0 else 0.0))
        return np.array(out + [sigma])

    def to_theta(self, s: np.ndarray) -> np.ndarray:
        sigma = s[-1]
        theta = []
        per: dict[int, list] = {}
        for (i, a, b), v in zip(self.kinds, s[:-1]):
            per.setdefault(i, []).append((a, b, v))
        for i, t in enumerate(self.terms):
            sd = np.zeros(t.p)
            R = np.eye(t.p)
            for a, b, v in per[i]:
                if a == b:
                    sd[a] = v
                else:
                    R[a, b] = R[b, a] = v
            C = np.outer(sd, sd) * R / sigma**2
            T = _psd_cholesky(C)
            rows, cols = np.tril_indices(t.p)
            order = np.lexsort((rows, cols))
            theta += list(T[rows[order], cols[order]])
        return np.array(theta)


def _psd_cholesky(C: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a positive semi-definite matrix (zero columns where singular)."""
    p = C.shape[0]
    L = np.zeros_like(C)
    for j in range(p):
        d = C[j, j] - L[j, :j] @ L[j, :j]
        if d <= 1e-14 * max(C[j, j], 1e-300):
            continue
        L[j, j] = np.sqrt(d)
        L[j + 1:, j] = (C[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]) / L[j, j]
    return L


def _minimize(fun, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, float]:
    if x0.size == 0:
        return x0, float(fun(x0))
    x0 = np.clip(x0, lower, upper)
    if nlopt is not None:
        opt = nlopt.opt(nlopt.LN_BOBYQA, x0.size)
        opt.set_min_objective(lambda x, g: float(fun(np.asarray(x))))
        opt.set_lower_bounds(lower)
        opt.set_upper_bounds(upper)
        opt.set_xtol_abs(1e-10)
        opt.set_ftol_abs(1e-10)
        opt.set_maxeval(20000)
        opt.set_initial_step(np.maximum(0.1 * np.abs(x0), 0.02))
        x = opt.optimize(x0)
        return np.asarray(x), float(opt.last_optimum_value())
    res = optimize.minimize(fun, x0, method="Powell", bounds=list(zip(lower, upper)),
                            options={"xtol": 1e-10, "ftol": 1e-12})
    return res.x, float(res.fun)


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
    theta_hat = np.asarray(ml.theta, dtype=float)
    model.set_theta(theta_hat)
    sigma_hat = float(np.sqrt(model.pwrss / model.n))
    n = model.n
    ldw = model.A.sum_log_w
    z = float(stats.norm.ppf((1.0 + level) / 2.0))
    sc = _SdCor(model)
    s_hat = sc.from_theta(theta_hat, sigma_hat)
    lo_b, hi_b = sc.lower(), sc.upper()

    def dev(s: np.ndarray) -> float:
        L = model.set_theta(sc.to_theta(s))
        if not L.ok:
            return np.inf
        s2 = s[-1] ** 2
        return float(L.ldL2 - ldw + L.pwrss / s2 + n * np.log(2.0 * np.pi * s2))

    d_hat = dev(s_hat)
    rows = []
    for j in range(sc.k):
        free = [i for i in range(sc.k) if i != j]
        start = {"x": s_hat[free].copy()}

        def prof(v: float, j=j, free=free, start=start) -> float:
            def f(x):
                s = s_hat.copy()
                s[free] = x
                s[j] = v
                return dev(s)
            x, val = _minimize(f, start["x"], lo_b[free], hi_b[free])
            return val

        def zeta(v: float, j=j, prof=prof) -> float:
            d = prof(v) - d_hat
            return np.sign(v - s_hat[j]) * np.sqrt(max(d, 0.0))

        step = max(0.25 * abs(s_hat[j]), 0.05 if j < sc.k - 1 and sc.kinds[j][1] != sc.kinds[j][2] else 1e-3 * sigma_hat + 1e-8)
        lower = _root(zeta, -z, s_hat[j], step, lo_b[j], hi_b[j], -1)
        upper = _root(zeta, z, s_hat[j], step, lo_b[j], hi_b[j], +1)
        name = f".sig{j + 1:02d}" if j < sc.k - 1 else ".sigma"
        rows.append({"parameter": name, "lower": lower, "upper": upper})
    model.set_theta(theta_hat)

    # fixed effects: refit without column j, offset X_j b
    from ..lmm import LinearMixedModel

    X, names = problem.fixed.X, problem.fixed.names
    base_off = problem.frame.offset
    dev_ml = -2.0 * ml.loglik
    for j, name in enumerate(names):
        keep = [i for i in range(X.shape[1]) if i != j]
        start = {"theta": theta_hat.copy()}

        def prof_b(b: float, j=j, keep=keep, start=start) -> float:
            off = X[:, j] * b + (0.0 if base_off is None else base_off)
            m = LinearMixedModel(X[:, keep], [names[i] for i in keep], problem.y, list(problem.reterms),
                                 problem.frame.weights, off, False)
            m.structure.theta0 = np.maximum(start["theta"], m.structure.lower)
            m.set_theta(m.structure.theta0)
            m.fit(calc_derivs=False)
            return float(m.optsum.fmin)

        def zeta_b(b: float, j=j, prof_b=prof_b) -> float:
            d = prof_b(b) - dev_ml
            return np.sign(b - ml.beta[j]) * np.sqrt(max(d, 0.0))

        se = float(ml.se[j]) if ml.se[j] > 0 else 1.0
        lower = _root(zeta_b, -z, float(ml.beta[j]), 0.5 * z * se, -np.inf, np.inf, -1)
        upper = _root(zeta_b, z, float(ml.beta[j]), 0.5 * z * se, -np.inf, np.inf, +1)
        rows.append({"parameter": name, "lower": lower, "upper": upper})
    return rows
