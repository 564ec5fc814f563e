"""Post-fit checks as lme4's ``checkConv``: singularity, then (if not singular) the gradient and
Hessian of the profiled objective over θ by central finite differences (``deriv12``)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

#: lme4's ``check.conv.singular`` tolerance (``getSingTol()``).
SINGULAR_TOL = 1e-4
#: lme4's ``check.conv.grad`` tolerance.
GRAD_TOL = 2e-3
#: lme4's ``check.conv.hess`` tolerance.
HESS_TOL = 1e-6
#: lme4's ``deriv12`` step.
DELTA = 1e-4


@dataclass
class ConvergenceCheck:
    """Outcome of the checks.

    Fields: ``singular`` whether some template diagonal θ is within :data:`SINGULAR_TOL` of 0;
    ``singular_index`` those θ indices; ``gradient`` and ``hessian`` at θ̂ (None when singular);
    ``max_grad`` lme4's max(min(|scaled grad|, |grad|)); ``hess_eigen`` Hessian eigenvalues;
    ``grad_ok``/``hess_ok``; ``messages`` lme4's messages; ``nfeval`` evaluations spent.
    """

    singular: bool
    singular_index: list[int] = field(default_factory=list)
    gradient: np.ndarray | None = None
    hessian: np.ndarray | None = None
    max_grad: float | None = None
    hess_eigen: np.ndarray | None = None
    grad_ok: bool = True
    hess_ok: bool = True
    messages: list[str] = field(default_factory=list)
    nfeval: int = 0


def _deriv12_points(x: np.ndarray, xadd: np.ndarray, xsub: np.ndarray) -> np.ndarray:
    """The points :func:`deriv12` evaluates, in its order: per j, x with xⱼ moved up and down,
    then for each i < j the four corners (up/down in i, up/down in j)."""
    rows, cols, down = _deriv12_moves(len(x))
    out = np.tile(np.asarray(x, dtype=float), (2 * len(x) ** 2, 1))  # 2 per j, 4 per pair i < j
    out[rows, cols] = np.where(down, xsub[cols], xadd[cols])
    return out


@lru_cache(maxsize=16)
def _deriv12_moves(nx: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where :func:`_deriv12_points` moves x: per move, the point (row), the element (column) and
    whether it moves down."""
    moves = []
    row = 0
    for j in range(nx):
        moves += [(row, j, False), (row + 1, j, True)]
        row += 2
        for i in range(j):
            for di, dj in ((False, False), (False, True), (True, False), (True, True)):
                moves += [(row, i, di), (row, j, dj)]
                row += 1
    rows = np.array([m[0] for m in moves], dtype=np.intp)
    cols = np.array([m[1] for m in moves], dtype=np.intp)
    down = np.array([m[2] for m in moves], dtype=bool)
    for a in (rows, cols, down):
        a.flags.writeable = False
    return rows, cols, down


def deriv12(fun: Callable[[np.ndarray], float], x: np.ndarray, fx: float, lower: np.ndarray,
            delta: float = DELTA, many: Callable[[np.ndarray], np.ndarray] | None = None
            ) -> tuple[np.ndarray, np.ndarray, int]:
    """Central-difference gradient and Hessian exactly as lme4's ``deriv12`` (steps shortened at
    lower bounds); returns (gradient, Hessian, evaluations). ``many``, when given, evaluates the
    objective at all the points (rows) at once (the dense path's batched factorisations)."""
    nx = len(x)
    xadd = x + delta
    xsub = x - delta
    active = np.isfinite(lower) & (xsub < lower)
    ldelta = np.where(active, x - lower, delta)
    xsub = np.where(active, lower, xsub)
    g = np.empty(nx)
    H = np.empty((nx, nx))
    points = _deriv12_points(x, xadd, xsub)
    values = iter([float(v) for v in (many(points) if many is not None else [fun(z) for z in points])])
    for j in range(nx):
        fadd, fsub = next(values), next(values)
        ud, ld = delta, ldelta[j]
        H[j, j] = fadd / ud**2 - 2 * fx / (ud * ld) + fsub / ld**2
        g[j] = (fadd - fsub) / (ud + ld)
        for i in range(j):
            udi, ldi = delta, ldelta[i]
            pp, pm, mp, mm = next(values), next(values), next(values), next(values)
            H[i, j] = H[j, i] = (pp / (udi + ud) ** 2 - pm / (udi + ld) ** 2
                                 - mp / (ldi + ud) ** 2 + mm / (ldi + ld) ** 2)
    return g, H, len(points)


def singular_components(theta: np.ndarray, lower: np.ndarray, tol: float = SINGULAR_TOL) -> list[int]:
    """θ indices with a zero lower bound and a value below ``tol`` (lme4's ``isSingular``)."""
    bounded = np.flatnonzero(lower == 0)
    return [int(i) for i in bounded if theta[i] < tol]


def _hessian_messages(H: np.ndarray, chol_ok: bool, tol: float = HESS_TOL) -> tuple[np.ndarray | None, list[str]]:
    """lme4's Hessian messages from H's eigenvalues and whether its Cholesky factorisation
    succeeded (``chol_ok``)."""
    try:
        ev = np.linalg.eigvalsh(H)
    except np.linalg.LinAlgError:
        return None, ["Problem with Hessian check (infinite or missing values?)"]
    ev = ev[::-1]
    if np.sum(ev < -tol):
        return ev, [f"Model failed to converge: degenerate Hessian with {int(np.sum(ev < -tol))} "
                    "negative eigenvalues"]
    if np.sum(np.abs(ev) < tol) or not chol_ok:
        return ev, ["Hessian is numerically singular: parameters are not uniquely determined"]
    msgs = []
    if ev.max() * tol > 1:
        msgs.append("Model is nearly unidentifiable: very large eigenvalue - Rescale variables?")
    if ev.min() / ev.max() < tol:
        msgs.append("Model is nearly unidentifiable: large eigenvalue ratio - Rescale variables?")
    return ev, msgs


def _cholesky(H: np.ndarray) -> np.ndarray | None:
    """The lower Cholesky factor of H, or None when H is not positive definite."""
    try:
        return np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return None


def _scaled_gradient(g: np.ndarray, chol: np.ndarray | None) -> np.ndarray | None:
    """lme4's scaled gradient ``solve(chol(H), g)`` from H's lower Cholesky factor."""
    if chol is None:
        return None
    try:
        return np.linalg.solve(chol.T, g)
    except np.linalg.LinAlgError:
        return None


def check_convergence(fun: Callable[[np.ndarray], float], theta: np.ndarray, fmin: float,
                      lower: np.ndarray, calc_derivs: bool = True,
                      many: Callable[[np.ndarray], np.ndarray] | None = None) -> ConvergenceCheck:
    """lme4's ``checkConv`` on the θ-only objective of a linear mixed model (``many``: the
    objective at several θ at once, see :func:`deriv12`)."""
    sing = singular_components(theta, lower)
    out = ConvergenceCheck(bool(sing), sing)
    if sing:
        out.messages.append("boundary (singular) fit: see help('isSingular')")
        return out
    if not calc_derivs:
        return out
    g, H, count = deriv12(fun, theta, fmin, lower, many=many)
    out.gradient, out.hessian, out.nfeval = g, H, count
    if not np.all(np.isfinite(g)):
        out.grad_ok = False
        out.messages.append("Gradient contains NAs")
        return out
    chol = _cholesky(H)
    scg = _scaled_gradient(g, chol)
    if scg is None or np.any(np.isnan(scg)):
        out.grad_ok = False
        out.messages.append("unable to evaluate scaled gradient")
    else:
        out.max_grad = float(np.max(np.minimum(np.abs(scg), np.abs(g))))
        if out.max_grad > GRAD_TOL:
            out.grad_ok = False
            comp = int(np.argmax(np.minimum(np.abs(scg), np.abs(g)))) + 1
            out.messages.append(f"Model failed to converge with max|grad| = {out.max_grad:.6g} "
                                f"(tol = {GRAD_TOL:g}, component {comp})")
    ev, msgs = _hessian_messages(H, chol is not None)
    out.hess_eigen = ev
    if msgs:
        out.hess_ok = False
        out.messages += msgs
    return out
