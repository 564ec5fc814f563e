"""Post-fit checks as lme4's ``checkConv``: singularity, then (if not singular) the gradient and
Hessian of the profiled objective over θ by central finite differences (``deriv12``).

On small models the check is numpy calls on a handful of numbers around one batched Cholesky
factorisation of the points (:meth:`.dense.DenseSystem.factor_many`); the numbers are therefore
read as Python floats and the 3×3 factorisations call numpy's gufuncs directly
(:mod:`.gufuncs`), the same operations. Measured (issue #16, instructions per check before and
after: sleepstudy 2.13 M and 1.79 M, Penicillin 1.11 M and 0.80 M, Pastes 1.45 M and 1.14 M): on
sleepstudy the batched factorisation is two thirds of what is left, 0.87 M in LAPACK's ``dpotrf``
and 0.31 M in numpy's copies of each matrix into and out of LAPACK's layout (a BLAS copy per
row). Not taken: scipy's ``dpotrf`` on each point
(one call per matrix, no such copies) runs a separate OpenBLAS build and differs from numpy's in
the last bits on Penicillin; the Hessian's finite differences amplify such differences to its
leading digits.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from . import gufuncs

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


def _deriv12_points(x: Sequence[float], xadd: Sequence[float], xsub: Sequence[float]) -> np.ndarray:
    """The points :func:`deriv12` evaluates, in its order: per j, x with xⱼ moved up and down,
    then for each i < j the four corners (up/down in i, up/down in j); one take from the rows
    (x, xadd, xsub)."""
    return np.array((x, xadd, xsub), dtype=float).take(_deriv12_sources(len(x)))


@lru_cache(maxsize=16)
def _deriv12_sources(nx: int) -> np.ndarray:
    """Where :func:`_deriv12_points` reads each element (points × nx, read-only): its flat index
    into the rows (x, xadd, xsub)."""
    rows, cols, down = _deriv12_moves(nx)
    out = np.tile(np.arange(nx), (2 * nx**2, 1))  # 2 per j, 4 per pair i < j
    out[rows, cols] += np.where(down, 2 * nx, nx)
    out.flags.writeable = False
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


def _lower_steps(x: list[float], lower: list[float], delta: float) -> tuple[list[float], list[float]]:
    """The points below x and the steps down to them: x − δ, shortened to the lower bound where
    it would cross a finite one (lme4's ``deriv12``)."""
    xsub, ldelta = [], []
    for xj, lj in zip(x, lower):
        down = xj - delta
        if math.isfinite(lj) and down < lj:
            xsub.append(lj)
            ldelta.append(xj - lj)
        else:
            xsub.append(down)
            ldelta.append(delta)
    return xsub, ldelta


def deriv12(fun: Callable[[np.ndarray], float], x: np.ndarray, fx: float, lower: np.ndarray,
            delta: float = DELTA, many: Callable[[np.ndarray], np.ndarray] | None = None
            ) -> tuple[np.ndarray, np.ndarray, int]:
    """Central-difference gradient and Hessian exactly as lme4's ``deriv12`` (steps shortened at
    lower bounds); returns (gradient, Hessian, evaluations). ``many``, when given, evaluates the
    objective at all the points (rows) at once (the dense path's batched factorisations).

    The few numbers are Python floats: the same IEEE operations as on numpy's scalars (``**`` is
    C's ``pow`` in both) at a fraction of the cost. Where Python raises instead (a zero step
    down, on a bound), the steps down are numpy scalars again, whose divisions give inf or nan."""
    xs = np.asarray(x, dtype=float).tolist()
    xadd = [xj + delta for xj in xs]
    xsub, ldelta = _lower_steps(xs, np.asarray(lower, dtype=float).tolist(), delta)
    points = _deriv12_points(xs, xadd, xsub)
    found = many(points) if many is not None else [fun(z) for z in points]
    values = np.asarray(found, dtype=float).tolist()
    try:
        g, H = _differences(values, fx, delta, ldelta)
    except (ZeroDivisionError, OverflowError):
        g, H = _differences(values, fx, delta, [np.float64(s) for s in ldelta])
    return np.array(g), np.array(H), len(points)


def _differences(values: list[float], fx: float, delta: float, ldelta: Sequence[float]
                 ) -> tuple[list[float], list[list[float]]]:
    """lme4's ``deriv12`` gradient and Hessian (lists) from the objective at
    :func:`_deriv12_points` (``values``, in their order), at x (``fx``), the step up ``delta``
    and the steps down ``ldelta``."""
    nx = len(ldelta)
    it = iter(values)
    g = [0.0] * nx
    H = [[0.0] * nx for _ in range(nx)]
    for j in range(nx):
        fadd, fsub = next(it), next(it)
        ud, ld = delta, ldelta[j]
        H[j][j] = fadd / ud**2 - 2 * fx / (ud * ld) + fsub / ld**2
        g[j] = (fadd - fsub) / (ud + ld)
        for i in range(j):
            udi, ldi = delta, ldelta[i]
            pp, pm, mp, mm = next(it), next(it), next(it), next(it)
            H[i][j] = H[j][i] = (pp / (udi + ud) ** 2 - pm / (udi + ld) ** 2
                                 - mp / (ldi + ud) ** 2 + mm / (ldi + ld) ** 2)
    return g, H


def singular_components(theta: np.ndarray, lower: np.ndarray, tol: float = SINGULAR_TOL) -> list[int]:
    """θ indices with a zero lower bound and a value below ``tol`` (lme4's ``isSingular``)."""
    return [i for i, (t, lo) in enumerate(zip(np.asarray(theta, dtype=float).tolist(),
                                              np.asarray(lower, dtype=float).tolist()))
            if lo == 0 and t < tol]


def _hessian_messages(H: np.ndarray, chol_ok: bool, tol: float = HESS_TOL) -> tuple[np.ndarray | None, list[str]]:
    """lme4's Hessian messages from H's eigenvalues and whether its Cholesky factorisation
    succeeded (``chol_ok``); the eigenvalues are read as Python floats (a NaN among them makes
    the largest and smallest NaN, as numpy's ``max`` and ``min``)."""
    try:
        ev = gufuncs.eigvalsh(H)
    except np.linalg.LinAlgError:
        return None, ["Problem with Hessian check (infinite or missing values?)"]
    ev = ev[::-1]
    values = ev.tolist()
    negative = sum(v < -tol for v in values)
    if negative:
        return ev, [f"Model failed to converge: degenerate Hessian with {negative} negative eigenvalues"]
    if any(abs(v) < tol for v in values) or not chol_ok:
        return ev, ["Hessian is numerically singular: parameters are not uniquely determined"]
    top, bottom = (math.nan, math.nan) if any(math.isnan(v) for v in values) else (max(values), min(values))
    msgs = []
    if top * tol > 1:
        msgs.append("Model is nearly unidentifiable: very large eigenvalue - Rescale variables?")
    if bottom / top < tol:
        msgs.append("Model is nearly unidentifiable: large eigenvalue ratio - Rescale variables?")
    return ev, msgs


def _cholesky(H: np.ndarray) -> np.ndarray | None:
    """The lower Cholesky factor of H, or None when H is not positive definite."""
    try:
        return gufuncs.cholesky(H)
    except np.linalg.LinAlgError:
        return None


def _scaled_gradient(g: np.ndarray, chol: np.ndarray | None) -> np.ndarray | None:
    """lme4's scaled gradient ``solve(chol(H), g)`` from H's lower Cholesky factor."""
    if chol is None:
        return None
    try:
        return gufuncs.solve(chol.T, g)
    except np.linalg.LinAlgError:
        return None


def _gradient_message(g: list[float], scg: list[float], tol: float = GRAD_TOL) -> tuple[float, str | None]:
    """lme4's max(min(|scaled grad|, |grad|)) and, when above ``tol``, its message naming the
    first component that reaches it (finite numbers, read as Python floats)."""
    smaller = [min(abs(s), abs(v)) for s, v in zip(scg, g)]
    worst = max(smaller)
    if worst <= tol:
        return worst, None
    return worst, (f"Model failed to converge with max|grad| = {worst:.6g} "
                   f"(tol = {tol:g}, component {smaller.index(worst) + 1})")


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
    grad = g.tolist()
    if not all(math.isfinite(v) for v in grad):
        out.grad_ok = False
        out.messages.append("Gradient contains NAs")
        return out
    chol = _cholesky(H)
    scg = _scaled_gradient(g, chol)
    scaled = None if scg is None else scg.tolist()
    if scaled is None or any(math.isnan(v) for v in scaled):
        out.grad_ok = False
        out.messages.append("unable to evaluate scaled gradient")
    else:
        out.max_grad, message = _gradient_message(grad, scaled)
        if message is not None:
            out.grad_ok = False
            out.messages.append(message)
    ev, msgs = _hessian_messages(H, chol is not None)
    out.hess_eigen = ev
    if msgs:
        out.hess_ok = False
        out.messages += msgs
    return out
