"""lme4's convergence checks for GLMMs (``checkConv`` with ``glmerControl()``'s settings) and
plain-word notes on singularity, separation and overdispersion.

* singular: a θ on a template diagonal below 1e-4 (``check.conv.singular``);
* gradient: max over (θ, β) of min(|H^{-1/2}g|, |g|) above 0.002 (``check.conv.grad``, with
  the Cholesky factor of the finite-difference Hessian);
* Hessian: a negative eigenvalue below −1e-6, or a ratio of smallest to largest eigenvalue below
  1e-6 (``check.conv.hess``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import distributions as dist

SINGULAR_TOL = 1e-4
GRAD_TOL = 0.002
HESS_TOL = 1e-6
#: |β| (link scale) from which a coefficient of a binomial or Poisson model counts as diverging.
SEPARATION_BETA = 10.0
#: Fitted probability this close to 0 or 1 counts as numerically 0 or 1 (R's glm.fit uses 10ε).
FITTED_EPS = 10 * float(np.finfo(float).eps)


@dataclass
class Convergence:
    """Results of the checks: ``singular`` and ``singular_index`` (θ positions), ``max_grad``
    (None without derivatives), ``grad_ok``, ``hess_ok``, ``eigenvalues`` of the Hessian,
    ``messages`` lme4-like."""

    singular: bool
    singular_index: list[int]
    max_grad: float | None = None
    grad_ok: bool = True
    hess_ok: bool = True
    eigenvalues: np.ndarray | None = None
    messages: list[str] = field(default_factory=list)


def check_convergence(theta: np.ndarray, is_sd: np.ndarray, gradient: np.ndarray | None,
                      hessian: np.ndarray | None) -> Convergence:
    """lme4's ``checkConv`` on the fit's θ and its finite-difference derivatives."""
    idx = [int(i) for i in np.flatnonzero(is_sd & (theta < SINGULAR_TOL))]
    out = Convergence(bool(idx), idx)
    if idx:
        out.messages.append("boundary (singular) fit: see help('isSingular')")
    if gradient is None or hessian is None:
        return out
    try:
        R = np.linalg.cholesky(hessian).T
        scgrad = np.linalg.solve(R.T, gradient)
        out.max_grad = float(np.max(np.minimum(np.abs(scgrad), np.abs(gradient))))
    except np.linalg.LinAlgError:
        out.max_grad = float(np.max(np.abs(gradient)))
        out.messages.append("unable to evaluate scaled gradient")
    if out.max_grad > GRAD_TOL:
        out.grad_ok = False
        out.messages.append(f"Model failed to converge with max|grad| = {out.max_grad:.6g} (tol = {GRAD_TOL})")
    ev = np.linalg.eigvalsh(hessian)
    out.eigenvalues = ev
    if ev[0] < -HESS_TOL:
        out.hess_ok = False
        out.messages.append(f"Model failed to converge: degenerate Hessian with {int(np.sum(ev < -HESS_TOL))} "
                            "negative eigenvalues")
    elif ev[-1] > 0 and ev[0] / ev[-1] < HESS_TOL:
        out.hess_ok = False
        out.messages.append("Model is nearly unidentifiable: very large eigenvalue ratio - Rescale variables?")
    return out


def separation_notes(family: str, names: list[str], beta: np.ndarray, se: np.ndarray,
                     mu: np.ndarray) -> list[str]:
    """Plain-word warnings when a fixed effect diverges (binomial, Poisson): a coefficient
    beyond ±10 on the link scale with a larger standard error, or fitted probabilities of
    exactly 0 or 1."""
    if family not in ("binomial", "poisson", "negative.binomial"):
        return []
    out = []
    big = [(nm, b, s) for nm, b, s in zip(names, beta, se) if abs(b) > SEPARATION_BETA and not s < abs(b)]
    for nm, b, s in big:
        out.append(f"The fixed effect {nm} is diverging (estimate {b:.3g}, standard error {s:.3g}): "
                   "the data separate the outcomes (some combination of predictors always gives the "
                   "same outcome), so its estimate and test are not meaningful; consider merging "
                   "levels, removing the predictor, or a penalized (bias-reduced) fit.")
    if family == "binomial" and np.any((mu < FITTED_EPS) | (mu > 1.0 - FITTED_EPS)):
        out.append("Some fitted probabilities are numerically 0 or 1, a sign of (quasi-)separation "
                   "in the data.")
    return out


def overdispersion_note(family: str, pearson: np.ndarray, df: float, binary: bool) -> tuple[str | None, bool]:
    """The Pearson χ²/df overdispersion check for Poisson and binomial (with trials) models, in
    words, and whether it indicates overdispersion (p < 0.05 and ratio above 1)."""
    if family not in ("binomial", "poisson") or binary or df <= 0:
        return None, False
    chi2 = float(np.sum(pearson**2))
    ratio = chi2 / df
    p = float(dist.chi2.sf(chi2, df))
    if p < 0.05 and ratio > 1.0:
        return (f"The data look overdispersed: Pearson chi-square / df = {ratio:.3g} "
                f"(chi-square {chi2:.4g} on {df:g} df, p = {p:.3g}); standard errors may be too "
                "small. Consider an observation-level random effect or, for counts, a negative "
                "binomial model."), True
    return (f"No sign of overdispersion: Pearson chi-square / df = {ratio:.3g} "
            f"(chi-square {chi2:.4g} on {df:g} df, p = {p:.3g})."), False
