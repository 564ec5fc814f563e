"""The two optimizer stages of ``glmer`` on NLopt's BOBYQA, and lme4's finite-difference
derivatives (``deriv12``) and ``check.boundary``.

lme4 1.1-31's ``glmerControl()`` runs stage 1 (θ, with β inside PIRLS; nAGQ = 0's criterion)
with minqa's ``bobyqa`` from θ = 1 on template diagonals and 0 off, then stage 2 over (θ, β)
with its own ``Nelder_Mead`` from stage 1's (θ, β) (steps 0.02 for θ, 0.2·min(SE(β), 10) for
β), applies ``check.boundary`` (tolerance 1e-5), and differentiates the criterion at the optimum
by central differences with step 1e-4 (``deriv12``). Here both stages use BOBYQA (bounded,
quadratic models: far fewer evaluations than Nelder-Mead on (θ, β)) with tighter tolerances, so
that the optimum is at least as good as glmer's; the stage-2 start is lme4's. The Hessian takes
2 evaluations per off-diagonal pair where ``deriv12`` takes 4 (:func:`hessian_central`): the same
O(δ²) estimate, about half the evaluations. A Newton step with these derivatives ends stage 2
(:func:`newton_step`): BOBYQA's stopping point depends on its path (rounding in an evaluation
moved a z statistic by 1e-4), the point after the step does not, so stage 2 starts from half
of lme4's steps and stops in fewer evaluations.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import nlopt
import numpy as np

from .. import progress

Objective = Callable[[np.ndarray], float]

_CODES = {1: "SUCCESS", 2: "STOPVAL_REACHED", 3: "FTOL_REACHED", 4: "XTOL_REACHED",
          5: "MAXEVAL_REACHED", 6: "MAXTIME_REACHED", -1: "FAILURE", -2: "INVALID_ARGS",
          -3: "OUT_OF_MEMORY", -4: "ROUNDOFF_LIMITED", -5: "FORCED_STOP"}

#: lme4's ``boundary.tol``.
BOUNDARY_TOL = 1e-5
#: lme4's step in ``deriv12``.
DERIV_DELTA = 1e-4


@dataclass
class StageResult:
    """One optimizer run: ``x`` the optimum, ``fval`` the criterion there, ``feval``
    evaluations, ``return_code`` NLopt's result, ``messages``."""

    x: np.ndarray
    fval: float
    feval: int
    return_code: str
    messages: list[str] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return self.return_code in ("SUCCESS", "FTOL_REACHED", "XTOL_REACHED", "STOPVAL_REACHED")


def bobyqa(fun: Objective, x0: np.ndarray, lower: np.ndarray, step: np.ndarray, *,
           ftol_abs: float, xtol_abs: float, maxeval: int = 100_000) -> StageResult:
    """Minimise ``fun`` from ``x0`` within ``lower`` with NLopt's LN_BOBYQA."""
    best = {"x": np.asarray(x0, dtype=float).copy(), "f": np.inf, "n": 0}

    def counted(x: np.ndarray, grad: np.ndarray | None = None) -> float:
        best["n"] += 1
        progress.tick("fit")
        val = fun(np.array(x, dtype=float))
        if not np.isfinite(val):
            return 1e300
        if val < best["f"]:
            best["x"], best["f"] = np.array(x, dtype=float), val
        return val

    opt = nlopt.opt(nlopt.LN_BOBYQA, len(x0))
    opt.set_lower_bounds(np.where(np.isfinite(lower), lower, -np.inf))
    opt.set_upper_bounds(np.full(len(x0), np.inf))
    opt.set_min_objective(counted)
    opt.set_ftol_abs(ftol_abs)
    opt.set_xtol_abs(xtol_abs)
    opt.set_maxeval(maxeval)
    opt.set_initial_step(np.asarray(step, dtype=float))
    messages: list[str] = []
    try:
        opt.optimize(np.maximum(np.asarray(x0, dtype=float), lower))
        code = _CODES.get(opt.last_optimize_result(), str(opt.last_optimize_result()))
    except nlopt.RoundoffLimited:
        code = "ROUNDOFF_LIMITED"
    except (RuntimeError, ValueError) as err:
        code = "FAILURE"
        messages.append(f"NLopt stopped with an error: {err}")
    return StageResult(best["x"], float(best["f"]), int(best["n"]), code, messages)


def check_boundary(fun: Objective, x: np.ndarray, fx: float, lower: np.ndarray,
                   ntheta: int) -> tuple[np.ndarray, float, list[int]]:
    """lme4's ``check.boundary``: a θ within 1e-5 above its bound is set to the bound when that
    lowers the criterion."""
    out = x.copy()
    snapped: list[int] = []
    diff = x[:ntheta] - lower[:ntheta]
    for i in np.flatnonzero((diff > 0) & (diff < BOUNDARY_TOL)):
        trial = out.copy()
        trial[i] = lower[i]
        if fun(trial) < fx:
            out[i] = lower[i]
            snapped.append(int(i))
    if snapped:
        fx = fun(out)
    return out, fx, snapped


def gradient(fun: Objective, x: np.ndarray, delta: float = DERIV_DELTA) -> np.ndarray:
    """Central-difference gradient of ``fun`` at x (``deriv12``'s gradient)."""
    g = np.empty(len(x))
    for j in range(len(x)):
        e = np.zeros(len(x))
        e[j] = delta
        g[j] = (fun(x + e) - fun(x - e)) / (2.0 * delta)
    return g


def hessian_central(fun: Objective, x: np.ndarray, fx: float, delta: float = DERIV_DELTA,
                    many: Callable[[np.ndarray], np.ndarray] | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian by central differences with 2 evaluations per off-diagonal pair
    (x ± δ(eᵢ + eⱼ)) instead of ``deriv12``'s 4; the same O(δ²) accuracy for a smooth criterion
    (glmer's standard errors are reproduced within 2e-3 in the tests). ``many``, if given,
    evaluates the criterion at all rows of a matrix at once (the same values as ``fun``)."""
    k = len(x)
    E = delta * np.eye(k)
    pairs = [(i, j) for j in range(k) for i in range(j)]
    P = np.vstack([x + E, x - E] + [x + E[i] + E[j] for i, j in pairs]
                  + [x - E[i] - E[j] for i, j in pairs])
    f = many(P) if many is not None else np.array([fun(p) for p in P])
    fp, fm = f[:k], f[k: 2 * k]
    npair = len(pairs)
    H = np.diag((fp - 2.0 * fx + fm) / delta**2)
    for c, (i, j) in enumerate(pairs):
        fpp, fmm = f[2 * k + c], f[2 * k + npair + c]
        H[i, j] = H[j, i] = (fpp + fmm - fp[i] - fm[i] - fp[j] - fm[j] + 2.0 * fx) / (2.0 * delta**2)
    return (fp - fm) / (2.0 * delta), H


def newton_step(fun: Objective, x: np.ndarray, fx: float, grad: np.ndarray, hess: np.ndarray,
                lower: np.ndarray, ntheta: int) -> tuple[np.ndarray, float] | None:
    """One Newton step x − H⁻¹g from the optimizer's stopping point with the finite-difference
    gradient and Hessian already computed there, on the parameters not at (within 1e-5 of) their
    bound; (x', f(x')) when it lowers the criterion, else None (H not positive definite there,
    or no decrease).

    BOBYQA stops where a step gains less than its tolerance, a point whose distance from the
    optimum depends on the path it took (about 1e-4 in a z statistic at ``ftol_abs = 1e-8``);
    one Newton step with the Hessian lme4 differentiates takes that point to the optimum to the
    accuracy of the derivatives, whatever the path.
    """
    free = np.ones(len(x), dtype=bool)
    free[:ntheta] = x[:ntheta] - lower[:ntheta] > BOUNDARY_TOL
    Hf = hess[np.ix_(free, free)]
    try:
        L = np.linalg.cholesky(Hf)
    except np.linalg.LinAlgError:
        return None
    xn = x.copy()
    xn[free] -= np.linalg.solve(L.T, np.linalg.solve(L, grad[free]))
    xn = np.maximum(xn, lower)
    fn = fun(xn)
    return (xn, float(fn)) if np.isfinite(fn) and fn < fx else None
