"""Minimising the profiled objective over θ with NLopt's LN_BOBYQA, as lme4's default
``nloptwrap`` does.

Why BOBYQA: it is lme4's default since 1.1-20 (bounded, derivative-free, quadratic models), so
the same settings reach the same optimum by the same route; on sleepstudy's correlated-slope
model it needs 43 evaluations (lme4's count) against 74 for scipy's COBYQA, 76 for L-BFGS-B with
finite differences and 211 for Nelder-Mead. Settings are lme4's: ``xtol_abs = 1e-8``,
``ftol_abs = 1e-8``, ``maxeval = 1e5``, start θ = 1 on template diagonals and 0 off, lower bound
0 on diagonals. After the run, lme4's ``restart_edge`` and ``check.boundary`` (tol 1e-5) are
applied. When NLopt is not installed, scipy's COBYQA is used with the same bounds.

BOBYQA's path depends on NLopt's version: with ``ftol_abs`` it may stop where its last step
gained less than 1e-8 although the optimum is further (lme4's NLopt, on another path, gets
there). :func:`newton_finish` takes one Newton step on the derivative check's gradient and
Hessian when their quadratic model promises more than ``ftol_abs``, i.e. when the stop was
early by the optimizer's own tolerance; elsewhere the result is BOBYQA's.

Measured and not taken for small models (issue #16): the exact gradient of the profiled REML
criterion on the dense path (d log|M| and d log r² from M⁻¹ and the quadratic form's
coefficients) lets scipy's L-BFGS-B reach the same optimum (to 1e-9) in 21, 13 and 12
evaluations on sleepstudy, Penicillin and Pastes against BOBYQA's 43, 45 and 34, but an
evaluation with its gradient costs at least twice one without (M⁻¹ and a second product), so the
fit is not faster. lme4's start stays too: from moment estimates (:mod:`.start`) BOBYQA needs
50, 69 and 32 evaluations.

The work around BOBYQA's run is done on Python floats where numpy's calls on two or three
numbers cost more than the arithmetic (the Newton finish's checks, the boundary rules' early
exits, NLopt's lower bounds): on sleepstudy the Newton finish that takes no step went from 16 to
7 µs, the boundary rules from 5 to 1.3 µs, with the same decisions (tests/test_lmm_glue_speed.py).
Not taken: skipping the finish's solve when ‖g‖²/(2λ_min) bounds the predicted decrease below
the tolerance (2.6 µs more): for an ill-conditioned H the solve's rounding is not bounded by a
fixed margin, and the decision must stay the solve's.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .. import progress
from . import gufuncs
from .optsummary import OptSummary
from .polish import polish_summary

try:
    import nlopt
except ImportError:  # pragma: no cover - optional dependency path
    nlopt = None

Objective = Callable[[np.ndarray], float]

_NLOPT_CODES = {1: "SUCCESS", 2: "STOPVAL_REACHED", 3: "FTOL_REACHED", 4: "XTOL_REACHED",
                5: "MAXEVAL_REACHED", 6: "MAXTIME_REACHED", -1: "FAILURE", -2: "INVALID_ARGS",
                -3: "OUT_OF_MEMORY", -4: "ROUNDOFF_LIMITED", -5: "FORCED_STOP"}

#: lme4's ``boundary.tol``.
BOUNDARY_TOL = 1e-5


class _Evaluations:
    """What :func:`_counted` records of the optimizer's evaluations: how many (``feval``) and the
    best point and value (NLopt's Python interface loses them when it raises)."""

    __slots__ = ("feval", "best_x", "best_f")

    def __init__(self) -> None:
        self.feval = 0
        self.best_x: np.ndarray | None = None
        self.best_f = math.inf


def _counted(fun: Objective, record: _Evaluations) -> Callable[..., float]:
    """The objective as NLopt calls it: counted in ``record`` with the best point, the progress
    listener ticked, non-finite values mapped to 1e300. One closure, the listener's ticker read
    once: a small model's evaluation takes ~10 µs, and a bound ``__call__`` with its attribute
    look-ups and a progress call per evaluation cost ~0.35 µs more. NLopt hands it θ as a
    float64 array."""
    tick = progress.ticker("fit")
    isfinite = math.isfinite

    def call(x: np.ndarray, grad: np.ndarray | None = None) -> float:
        record.feval += 1
        if tick is not None:
            tick()
        val = fun(x)
        if not isfinite(val):
            return 1e300
        if val < record.best_f:
            record.best_x, record.best_f = x.copy(), val  # NLopt may reuse x's storage
        return val

    return call


def _nlopt_lower(lower: np.ndarray) -> np.ndarray:
    """θ's lower bounds for NLopt: −inf where a bound is not finite (NaN or +inf; the common
    case, finite bounds and −inf, is the array itself, without numpy's ``where``)."""
    if lower.dtype == np.float64 and all(v == -math.inf or math.isfinite(v) for v in lower.tolist()):
        return lower
    return np.where(np.isfinite(lower), lower, -np.inf)


def _bobyqa(fun: Objective, x0: np.ndarray, summary: OptSummary, initial_step: np.ndarray | None = None,
            ftol_rel: float = 0.0) -> tuple[np.ndarray, float, str]:
    if nlopt is None:
        return _cobyqa(fun, x0, summary)
    opt = nlopt.opt(nlopt.LN_BOBYQA, len(x0))
    opt.set_lower_bounds(_nlopt_lower(summary.lower))
    record = _Evaluations()
    opt.set_min_objective(_counted(fun, record))
    opt.set_xtol_abs(summary.xtol_abs)
    opt.set_ftol_abs(summary.ftol_abs)
    if ftol_rel:
        opt.set_ftol_rel(ftol_rel)
    opt.set_maxeval(summary.maxeval)
    if initial_step is not None:
        opt.set_initial_step(initial_step)
    try:
        x = opt.optimize(np.asarray(x0, dtype=float))
        result = opt.last_optimize_result()
        code = _NLOPT_CODES.get(result) or str(result)
    except nlopt.RoundoffLimited:
        x, code = record.best_x, "ROUNDOFF_LIMITED"
    except (RuntimeError, ValueError) as err:
        x, code = record.best_x, "FAILURE"
        summary.messages.append(f"NLopt stopped with an error: {err}")
    finally:
        summary.feval += record.feval
    if x is None:
        x = np.asarray(x0, dtype=float)
    x = np.asarray(x, dtype=float)
    if record.best_x is not None and x.tolist() == record.best_x.tolist():
        return x, record.best_f, code
    return x, float(fun(x)), code


def _cobyqa(fun: Objective, x0: np.ndarray, summary: OptSummary) -> tuple[np.ndarray, float, str]:
    from scipy.optimize import Bounds, minimize

    record = _Evaluations()
    bounds = Bounds(summary.lower, np.full(len(x0), np.inf))
    try:
        res = minimize(_counted(fun, record), x0, method="COBYQA", bounds=bounds,
                       options={"f_target": -np.inf, "maxfev": summary.maxeval})
    finally:
        summary.feval += record.feval
    summary.optimizer = "COBYQA"
    return res.x, float(fun(res.x)), "SUCCESS" if res.success else "FAILURE"


def _restart_edge(fun: Objective, x: np.ndarray, fx: float, summary: OptSummary) -> tuple[np.ndarray, float]:
    """lme4's ``restart_edge``: restart when a θ on its bound has a negative one-sided slope."""
    on_bound = [i for i, (xi, li) in enumerate(zip(x.tolist(), summary.lower.tolist())) if xi == li]
    if not on_bound:  # the common case, decided on Python floats (no numpy call per fit)
        return x, fx
    btol = 1e-5
    slopes = []
    for i in on_bound:
        xt = x.copy()
        xt[i] = summary.lower[i] + btol
        slopes.append((fun(xt) - fx) / btol)
    if min(slopes) < 0:
        summary.restarted.append("restart_edge")
        x2, f2, code = _bobyqa(fun, x, summary)
        summary.return_code = code
        if f2 <= fx:
            return x2, f2
    return x, fx


def _check_boundary(fun: Objective, x: np.ndarray, fx: float, summary: OptSummary) -> tuple[np.ndarray, float]:
    """lme4's ``check.boundary``: set near-bound θ to the bound when that lowers the objective."""
    edge = [i for i, (xi, li) in enumerate(zip(x.tolist(), summary.lower.tolist())) if 0 < xi - li < BOUNDARY_TOL]
    if not edge:
        return x, fx
    out = x.copy()
    for i in edge:
        trial = out.copy()
        trial[i] = summary.lower[i]
        if fun(trial) < fx:
            out[i] = summary.lower[i]
            summary.boundary_snapped.append(int(i))
    return out, float(fun(out))


def polish(fun: Objective, x: np.ndarray, fx: float, summary: OptSummary) -> tuple[np.ndarray, float]:
    """A second BOBYQA run from θ̂ with a small trust region and ``ftol_rel = 1e-12``; kept only
    if it lowers the objective."""
    step = np.maximum(1e-3 * np.abs(x), 1e-4)
    summary.restarted.append("polish")
    x2, f2, _ = _bobyqa(fun, x, summary, initial_step=step, ftol_rel=1e-12)
    if f2 < fx:
        return x2, f2
    return x, fx


def _finite(values: np.ndarray) -> bool:
    """``np.all(np.isfinite(values))`` for a small array, in Python (a tenth of the time)."""
    return all(map(math.isfinite, np.asarray(values, dtype=float).ravel().tolist()))


def _least(values: np.ndarray) -> float:
    """``np.min(values)`` for a small array, in Python: NaN when any value is NaN, as numpy."""
    listed = np.asarray(values, dtype=float).ravel().tolist()
    return math.nan if any(v != v for v in listed) else min(listed)


def newton_finish(fun: Objective, theta: np.ndarray, fmin: float, gradient: np.ndarray | None,
                  hessian: np.ndarray | None, lower: np.ndarray,
                  ftol_abs: float = 1e-8, ftol_rel: float = 1e-12,
                  eigenvalues: np.ndarray | None = None) -> tuple[np.ndarray, float] | None:
    """One Newton step θ̂ − H⁻¹g (kept within the bounds) from the derivative check's gradient
    g and Hessian H, when H is positive definite, the predicted decrease g'H⁻¹g/2 exceeds
    ``ftol_abs`` and ``ftol_rel``·|f(θ̂)| (MixedModels.jl's relative tolerance: on a criterion
    of 2·10⁵, as InstEval's, a gain below 2·10⁻⁷ is not worth the second derivative check the
    step brings) and the objective is lower there; None otherwise. ``eigenvalues``: H's, when
    the caller has them (the check's, of the same symmetric H), else computed here."""
    if gradient is None or hessian is None or not _finite(hessian) or not _finite(gradient):
        return None
    H = np.asarray(hessian, dtype=float)
    if H.tolist() != H.T.tolist():
        H = (H + H.T) / 2
        eigenvalues = None
    if _least(gufuncs.eigvalsh(H) if eigenvalues is None else eigenvalues) <= 0:
        return None
    step = -gufuncs.solve(H, np.asarray(gradient, dtype=float))
    if not -float(gradient @ step) / 2 > max(ftol_abs, ftol_rel * abs(fmin)):
        return None
    new = np.maximum(theta + step, lower)
    f_new = float(fun(new))
    return (new, f_new) if f_new < fmin else None


def minimize_theta(fun: Objective, theta0: np.ndarray, lower: np.ndarray, *, ftol_abs: float = 1e-8,
                   xtol_abs: float = 1e-8, maxeval: int = 100_000, do_polish: bool = False,
                   initial_step: np.ndarray | None = None, exact: bool = False) -> OptSummary:
    """Minimise the profiled objective over θ as lme4's ``optimizeLmer`` does; ``initial_step``
    sets BOBYQA's first trust-region radius per θ element (None: NLopt's default, lme4's);
    ``exact`` adds Newton steps to the exact optimum (:mod:`.polish`) after lme4's route."""
    summary = OptSummary("LN_BOBYQA", theta0.copy(), lower.copy(), ftol_abs, xtol_abs, maxeval)
    x, fx, code = _bobyqa(fun, theta0, summary, initial_step=initial_step)
    summary.return_code = code
    x, fx = _restart_edge(fun, x, fx, summary)
    x, fx = _check_boundary(fun, x, fx, summary)
    if do_polish:
        x, fx = polish(fun, x, fx, summary)
    if exact:
        x, fx = polish_summary(fun, x, fx, summary)
    summary.theta, summary.fmin = x, fx
    return summary
