"""Input checks before a GLMM fit, with glmer's rules (``glFormula`` allows a grouping factor
with as many levels as observations, an observation-level random effect) and the family's
rules on the response, in messages that name what is wrong."""
from __future__ import annotations

import numpy as np

from ..design import ReTermData
from ..errors import ModelError
from ..lmm.remat import term_label
from .family import Family
from .quadrature import MAX_NAGQ


def check_glmm_inputs(X: np.ndarray, y: np.ndarray, reterms: list[ReTermData], family: Family,
                      weights: np.ndarray | None, offset: np.ndarray | None, nagq: int) -> list[str]:
    """Raise :class:`~mixedbridge.errors.ModelError` for models glmer refuses; return R's
    warnings (non-integer counts or successes) in words."""
    n = len(y)
    if not reterms:
        raise ModelError("the formula has no random-effects term '( ... | group)'; a generalized "
                         "linear mixed model needs at least one")
    if X.shape[0] != n or any(len(t.codes) != n or t.X.shape[0] != n for t in reterms):
        raise ModelError("the fixed and random design matrices and the response differ in length")
    if not np.all(np.isfinite(y)):
        raise ModelError("the response has missing or non-finite values")
    if weights is not None and (np.shape(weights) != (n,) or not np.all(np.isfinite(weights))
                                or np.any(np.asarray(weights) < 0)):
        raise ModelError("prior weights must be finite and non-negative, one per observation", "/weights")
    if offset is not None and (np.shape(offset) != (n,) or not np.all(np.isfinite(offset))):
        raise ModelError("the offset must be finite, one value per observation", "/offset")
    _check_groups(reterms, n)
    _check_nagq(reterms, nagq)
    return check_response(y, family, weights)


def _check_groups(reterms: list[ReTermData], n: int) -> None:
    for t in reterms:
        nl = len(t.levels)
        if nl < 2:
            raise ModelError(f"the grouping factor {t.group!r} has only {nl} level in the data used; "
                             "a random effect needs at least 2 groups (lme4: grouping factors must "
                             "have > 1 sampled level)")
        if nl > n:
            raise ModelError(f"the grouping factor {t.group!r} has {nl} levels for {n} observations "
                             "(lme4: number of levels of each grouping factor must be <= number of "
                             "observations)")
        q = nl * t.X.shape[1]
        if q > n:
            raise ModelError(f"the term ({term_label(t)}) has {q} random effects for {n} observations "
                             "(lme4: number of observations < number of random effects); simplify "
                             "the term")


def _check_nagq(reterms: list[ReTermData], nagq: int) -> None:
    if not 0 <= nagq <= MAX_NAGQ:
        raise ModelError(f"nAGQ must be between 0 and {MAX_NAGQ}, not {nagq}", "/options/nAGQ")
    if nagq > 1 and (len(reterms) != 1 or reterms[0].X.shape[1] != 1):
        raise ModelError("nAGQ > 1 (adaptive Gauss-Hermite quadrature) is only available for models "
                         "with a single, scalar random-effects term such as (1 | group); use nAGQ = 1 "
                         "(Laplace) for this model", "/options/nAGQ")


def check_response(y: np.ndarray, family: Family, weights: np.ndarray | None) -> list[str]:
    """The family's rules on the response (R's ``initialize``): binomial proportions in [0, 1]
    (successes ≤ trials), non-negative counts, positive values for Gamma and inverse Gaussian."""
    name = family.name
    out: list[str] = []
    if name == "binomial":
        if np.any((y < 0) | (y > 1)):
            raise ModelError("a binomial response must be a proportion of successes between 0 and 1 "
                             "(or 0/1, or successes not exceeding trials); some values are outside "
                             "[0, 1]", "/formula")
        m = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
        if np.any(np.abs(m * y - np.round(m * y)) > 1e-7):
            out.append("non-integer #successes in a binomial glm! (R warns the same)")
    elif name in ("poisson", "negative.binomial"):
        if np.any(y < 0):
            raise ModelError(f"a {name} response must be a non-negative count; some values are "
                             "negative", "/formula")
        if np.any(np.abs(y - np.round(y)) > 1e-7):
            out.append(f"the {name} response has non-integer values (R warns: non-integer x); the "
                       "log-likelihood uses them as given")
    elif name in ("Gamma", "inverse.gaussian") and np.any(y <= 0):
        raise ModelError(f"the {name} family needs a strictly positive response; some values are "
                         "zero or negative", "/formula")
    if family.link.name in ("log", "inverse") and name == "gaussian" and np.any(y <= 0):
        raise ModelError("the gaussian family with a log or inverse link needs a positive response "
                         "to start from (R: cannot find valid starting values); some values are zero "
                         "or negative", "/formula")
    return out
