"""Newton steps that take θ from where BOBYQA stopped to the optimum of the profiled objective.

Why: BOBYQA stops when a step gains less than ``ftol_abs`` (1e-8), i.e. up to ~1e-6 relative
short of θ̂ along flat directions, and where exactly depends on the last bits of the objective.
Two computations of the same model whose objectives differ only by rounding (the rows in
another order, or cross-products summed over Dask partitions) then stop at visibly different θ
(1e-7 to 1e-4 relative in the tables). From the optimum itself they differ only by the rounding
of the gradient. So after the optimizer (and lme4's boundary rules) this module solves ∇f(θ) = 0
by Newton's method on the coordinates off their bounds:

* the Hessian by central differences once (its error only slows Newton's convergence down);
* the gradient at every step by central differences extrapolated Richardson-wise over three
  step sizes (truncation O(h⁶), rounding of the objective divided by h = 2e-2·max(|θ|, 0.1)):
  a gradient places θ̂ to rounding/H, where values alone, as BOBYQA compares them, place it
  only to √(rounding/H) (sleepstudy: ~1e-12 against ~1e-7);
* a step is kept only if the objective does not rise, except a step whose predicted decrease
  is below the objective's rounding (``ROUNDING``·|f|): values cannot judge it (kept or not by
  the last bits, the two computations would part there), so the gradient does; such a step
  moves f by rounding alone (~1e-13 relative at most);
* it stops when a step is below ``STEP_TOL`` relative, or after ``MAX_STEPS`` (where the
  rounding of the gradient keeps the steps at ~1e-10, as on sleepstudy).

Only values of the objective are used, so the same route serves a model with rows and a model
reduced to its cross-products (:mod:`mixedbridge.scale`). The objective does not rise beyond its
rounding; θ on a bound stays there.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

Objective = Callable[[np.ndarray], float]

#: Relative size of the difference step (times max(|θ_i|, ``FLOOR``)).
STEP = 4e-2
FLOOR = 1.0
#: Newton stops when a step is below ``STEP_TOL`` relative (max |Δθ_i| / max(|θ_i|, FLOOR)).
STEP_TOL = 1e-10
MAX_STEPS = 4
#: Relative rounding of the objective's value: a step whose predicted decrease gᵀH⁻¹g/2 is
#: below ``ROUNDING``·|f| cannot be judged by the values (they differ by rounding alone), so the
#: gradient decides it.
ROUNDING = 1e-13


def _h(theta: np.ndarray, free: np.ndarray) -> np.ndarray:
    return STEP * np.maximum(np.abs(theta[free]), FLOOR)


def _shifted(theta: np.ndarray, free: np.ndarray, i: int, d: float) -> np.ndarray:
    out = theta.copy()
    out[free[i]] += d
    return out


def _central(fun: Objective, theta: np.ndarray, free: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f(θ + h_i e_i) and f(θ − h_i e_i) for every free coordinate i."""
    plus = np.array([fun(_shifted(theta, free, i, h[i])) for i in range(free.size)])
    minus = np.array([fun(_shifted(theta, free, i, -h[i])) for i in range(free.size)])
    return plus, minus


def gradient(fun: Objective, theta: np.ndarray, free: np.ndarray, levels: int = 3,
             first: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """∂f/∂θ on the ``free`` coordinates: central differences at h, h/2, h/4 combined by
    Richardson's rule (error O(h⁶) plus rounding/h); ``first`` the values at h when known."""
    h0 = _h(theta, free)
    est = np.empty((levels, free.size))
    for k in range(levels):
        h = h0 / 2.0**k
        plus, minus = first if k == 0 and first is not None else _central(fun, theta, free, h)
        est[k] = (plus - minus) / (2 * h)
    for m in range(1, levels):
        est = (est[1:] * 4.0**m - est[:-1]) / (4.0**m - 1.0)
    return est[0]


def hessian(fun: Objective, theta: np.ndarray, fx: float, free: np.ndarray,
            first: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """∂²f/∂θ² on the ``free`` coordinates by central differences (step h; ``first`` the values
    f(θ ± h_i e_i), shared with the gradient)."""
    h = _h(theta, free)
    plus, minus = first
    k = free.size
    H = np.empty((k, k))
    for i in range(k):
        H[i, i] = (plus[i] - 2.0 * fx + minus[i]) / h[i] ** 2
        for j in range(i):
            e = np.zeros(theta.size)
            e[free[i]], e[free[j]] = h[i], h[j]
            pp, mm = fun(theta + e), fun(theta - e)
            H[i, j] = H[j, i] = (pp - plus[i] - plus[j] + 2.0 * fx - minus[i] - minus[j] + mm) / (2 * h[i] * h[j])
    return H


def newton_polish(fun: Objective, theta: np.ndarray, fx: float, lower: np.ndarray) -> tuple[np.ndarray, float, int]:
    """θ̂ polished by Newton steps (see the module's docstring): returns θ, f(θ) and the number
    of steps kept (0 when nothing changed: every θ on a bound, a Hessian that is not positive
    definite, or a non-finite objective nearby)."""
    theta = np.asarray(theta, dtype=float).copy()
    free = np.flatnonzero(theta > lower)
    if free.size == 0 or not np.isfinite(fx):
        return theta, fx, 0
    probe = _central(fun, theta, free, _h(theta, free))
    H = hessian(fun, theta, fx, free, probe)
    if not np.all(np.isfinite(H)) or np.min(np.linalg.eigvalsh(H)) <= 0:
        return theta, fx, 0
    kept = 0
    first: tuple[np.ndarray, np.ndarray] | None = probe
    for _ in range(MAX_STEPS):
        g = gradient(fun, theta, free, first=first)
        first = None
        if not np.all(np.isfinite(g)):
            break
        step = -np.linalg.solve(H, g)
        new = theta.copy()
        new[free] = np.maximum(theta[free] + step, lower[free])
        f_new = float(fun(new))
        if not (f_new <= fx or -float(g @ step) / 2 < ROUNDING * abs(fx)):
            break
        theta, fx, kept = new, f_new, kept + 1
        if np.max(np.abs(step) / np.maximum(np.abs(theta[free]), FLOOR)) < STEP_TOL:
            break
    return theta, fx, kept


def polish_summary(fun: Objective, theta: np.ndarray, fx: float, summary) -> tuple[np.ndarray, float]:
    """:func:`newton_polish` from the optimizer's result, noted in the optimizer record
    (``summary.restarted``) when a step was kept; the objective evaluations are not counted
    in ``feval`` (those are the optimizer's, as lme4 reports them)."""
    out, f_out, kept = newton_polish(fun, theta, fx, summary.lower)
    if kept:
        summary.restarted.append(f"newton polish ({kept} step{'s' if kept > 1 else ''})")
    return out, f_out
