"""Input checks before a fit, with lme4's rules and messages that name the factor or term."""
from __future__ import annotations

import numpy as np

from ..design import ReTermData
from ..errors import ModelError
from .remat import term_label

#: Largest magnitude of a response or offset value, and smallest magnitude of the largest
#: response value: σ⁴ (Satterthwaite's df divides squared variances) must stay inside floating
#: point (the bounds of model columns, :data:`mixedbridge.design.MAX_SCALE`).
MIN_SCALE, MAX_SCALE = 1e-50, 1e50
#: Range of the median of the prior weights. Multiplying every weight by c divides θ by
#: √c and σ by √c and changes nothing else (fixed effects, their SEs, the random-effects
#: variances and the criterion stay); outside this range θ̂ moves so far from the optimizer's
#: start (θ = 1) that the fit fails silently (lme4 too: weights of 1e-12 give a wrong optimum).
WEIGHT_RANGE = (1e-6, 1e6)
#: A response whose values span fewer than this many rounding steps (units in the last place of
#: its largest value) varies only by rounding error.
MIN_SPREAD_ULPS = 1024


def check_inputs(X: np.ndarray, y: np.ndarray, reterms: list[ReTermData],
                 weights: np.ndarray | None, offset: np.ndarray | None) -> None:
    """Raise :class:`~mixedbridge.errors.ModelError` for models lme4 refuses to fit.

    * no random-effects term;
    * a grouping factor with fewer than 2 levels (lme4's ``check.nlev.gtr.1``);
    * a grouping factor with as many levels as observations or more (``check.nobs.vs.nlev``);
    * a term with at least as many random effects ℓᵢpᵢ as observations (``check.nobs.vs.nRE``:
      lme4 stops when n ≤ ℓᵢpᵢ for some term);
    * no more observations than fixed-effect coefficients (lme4: "objective in x0 returns NA" under
      REML, a perfect fit under ML);
    * a response with zero variance, or one that varies only in its last digits (by rounding);
    * bad lengths, weights or offset; a response or offset beyond ±1e50, weights whose
      median is outside :data:`WEIGHT_RANGE`.
    """
    n = len(y)
    if not reterms:
        raise ModelError("the formula has no random-effects term '( ... | group)'; "
                         "a linear mixed model needs at least one")
    _check_lengths(X, y, reterms, weights, offset)
    seen: set[str] = set()
    for t in reterms:
        if t.group in seen:
            continue
        seen.add(t.group)
        nl = len(t.levels)
        if nl < 2:
            raise ModelError(f"the grouping factor {t.group!r} has only {nl} level in the data used; "
                             "a random effect needs at least 2 groups (lme4: grouping factors must "
                             "have > 1 sampled level)")
        if nl >= n:
            raise ModelError(f"the grouping factor {t.group!r} has {nl} levels for {n} observations: "
                             "every observation is its own group, so the random effect cannot be "
                             "told apart from the residual (lme4: number of levels of each grouping "
                             f"factor must be < number of observations (problems: {t.group}))")
    for t in reterms:
        q = len(t.levels) * t.X.shape[1]
        if n <= q:
            raise ModelError(f"the term ({term_label(t)}) has {q} random effects for {n} observations "
                             "(lme4: number of observations (=%d) <= number of random effects (=%d) for "
                             "term (%s); the random-effects parameters and the residual variance are "
                             "probably unidentifiable); simplify the term" % (n, q, term_label(t)))
    top, bottom = (float(y.max()), float(y.min())) if n else (0.0, 0.0)
    if n < 2 or top == bottom:
        raise ModelError("the response has zero variance (all values are equal); there is nothing "
                         "to model", "/formula")
    _check_response(top, bottom)
    if n <= X.shape[1]:
        raise ModelError(f"{n} observations cannot estimate {X.shape[1]} fixed-effect coefficients "
                         "and a residual variance (lme4 stops: objective in x0 returns NA); use more "
                         "data or fewer predictors", "/formula")


def _check_lengths(X: np.ndarray, y: np.ndarray, reterms: list[ReTermData],
                   weights: np.ndarray | None, offset: np.ndarray | None) -> None:
    n = len(y)
    if X.shape[0] != n or any(len(t.codes) != n or t.X.shape[0] != n for t in reterms):
        raise ModelError("the fixed and random design matrices and the response differ in length")
    if not np.isfinite(y).all():
        raise ModelError("the response has non-finite values")
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ModelError("prior weights must be finite and positive, one per observation",
                             "/weights")
        _check_weight_scale(w)
    if offset is not None:
        o = np.asarray(offset, dtype=float)
        if o.shape != (n,) or not np.all(np.isfinite(o)):
            raise ModelError("the offset must be finite, one value per observation", "/offset")
        if np.max(np.abs(o)) > MAX_SCALE:
            raise ModelError(f"the offset has values as large as {np.max(np.abs(o)):.3g}; beyond "
                             f"±{MAX_SCALE:.0e} the model's sums of squares overflow: rescale the "
                             "response and the offset", "/options/offset")


def _check_response(largest: float, smallest: float) -> None:
    """A response (its largest and smallest values) within ±1e50 (and not all within 1e-50 of
    0), whose values are more than a few rounding steps apart."""
    top = max(abs(largest), abs(smallest))
    if top > MAX_SCALE or top < MIN_SCALE:
        raise ModelError(f"the response has values of order {top:.3g}; outside {MIN_SCALE:.0e} to "
                         f"{MAX_SCALE:.0e} its variance cannot be represented in floating point: "
                         "rescale it (express it in other units)", "/formula")
    spread = largest - smallest
    if spread < MIN_SPREAD_ULPS * np.spacing(top):
        raise ModelError(f"the response is constant up to rounding error: its values range from "
                         f"{smallest!r} to {largest!r}, fewer than {MIN_SPREAD_ULPS} rounding "
                         "steps apart, so its variation carries no information; check how the "
                         "column was computed", "/formula")


def _check_weight_scale(w: np.ndarray) -> None:
    """Weights whose median is inside :data:`WEIGHT_RANGE` (the bulk of the weights sets the
    scale of θ; a few tiny weights only remove their observations)."""
    lo, hi = WEIGHT_RANGE
    mid = float(np.median(w))
    if not lo <= mid <= hi:
        raise ModelError(f"the prior weights have a median of {mid:.3g}; outside {lo:.0e} to "
                         f"{hi:.0e} the variance parameters are out of the optimizer's reach. "
                         "Divide the weights by their median: weights are relative precisions, and "
                         "scaling them all by one constant changes only σ (and θ), not the fixed "
                         "effects, their standard errors, the random-effects variances or the "
                         "REML criterion", "/options/weights")
