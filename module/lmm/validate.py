"""Input checks before a fit, with lme4's rules and messages that name the factor or term."""
from __future__ import annotations

import numpy as np

from ..design import ReTermData
from ..errors import ModelError
from .remat import term_label


def check_inputs(X: np.ndarray, y: np.ndarray, reterms: list[ReTermData],
                 weights: np.ndarray | None, offset: np.ndarray | None) -> None:
    """Raise :class:`~mixedbridge.errors.ModelError` for models lme4 refuses to fit.

    * no random-effects term;
    * a grouping factor with fewer than 2 levels (lme4's ``check.nlev.gtr.1``);
    * a grouping factor with as many levels as observations or more (``check.nobs.vs.nlev``);
    * a term with at least as many random effects ℓᵢpᵢ as observations (``check.nobs.vs.nRE``:
      lme4 stops when n ≤ ℓᵢpᵢ for some term);
    * a response with zero variance, or bad lengths, weights or offset.
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
    if n < 2 or np.all(y == y[0]):
        raise ModelError("the response has zero variance (all values are equal); there is nothing "
                         "to model", "/formula")


def _check_lengths(X: np.ndarray, y: np.ndarray, reterms: list[ReTermData],
                   weights: np.ndarray | None, offset: np.ndarray | None) -> None:
    n = len(y)
    if X.shape[0] != n or any(len(t.codes) != n or t.X.shape[0] != n for t in reterms):
        raise ModelError("the fixed and random design matrices and the response differ in length")
    if not np.all(np.isfinite(y)):
        raise ModelError("the response has non-finite values")
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ModelError("prior weights must be finite and positive, one per observation",
                             "/weights")
    if offset is not None:
        o = np.asarray(offset, dtype=float)
        if o.shape != (n,) or not np.all(np.isfinite(o)):
            raise ModelError("the offset must be finite, one value per observation", "/offset")
