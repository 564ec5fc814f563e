"""The response of a generalized linear mixed model in every form R takes, on the family's
scale as glmer receives it: for the binomial the proportion of successes, with the trials as
prior weights (0/1 numbers; a two-level factor whose first level is failure; proportions with
``weights`` as trials; ``cbind(successes, failures)``); for the other families the values.

The values arrive evaluated (:mod:`.frame` walks the formula's syntax tree); here they are
turned into the response and checked, after listwise deletion, as R's family checks them:
errors where R stops, warnings where R warns.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import DataError


@dataclass
class GlmmResponse:
    """A glmm's response before listwise deletion.

    Fields: ``label`` the response as written; ``family``; ``y`` the response on the family's
    scale (the proportion of successes for the binomial); ``trials`` the binomial trials of the
    counts form (successes + failures), else None; ``successes`` and ``failures`` the counts
    of that form (for the checks); ``levels`` a factor response's levels.
    """

    label: str
    family: str
    y: pd.Series
    trials: pd.Series | None = None
    successes: pd.Series | None = None
    failures: pd.Series | None = None
    levels: list[str] | None = None


def from_counts(label: str, family: str, successes: np.ndarray, failures: np.ndarray,
                index: pd.Index) -> GlmmResponse:
    """``cbind(successes, failures)``: the proportion of successes, the trials as weights."""
    if family != "binomial":
        raise DataError(f"the response {label} (successes and failures) is a binomial response; "
                        f"options.family is {family!r}", "/options/family")
    n = successes + failures
    with np.errstate(all="ignore"):
        y = np.where(n == 0, 0.0, successes / n)
    y = np.where(np.isnan(successes) | np.isnan(failures), np.nan, y)
    return GlmmResponse(label, family, pd.Series(y, index=index), pd.Series(n, index=index),
                        pd.Series(successes, index=index), pd.Series(failures, index=index))


def from_factor(label: str, family: str, col: pd.Series) -> GlmmResponse:
    """A factor response of the binomial: the first level is failure (0), the other success (1)."""
    levels = [str(c) for c in col.cat.categories]
    if family != "binomial":
        raise DataError(f"the response {label!r} holds text or a factor; the {family} family needs numbers "
                        "(a factor response is binomial: set options.family to 'binomial')", "/formula")
    codes = col.cat.codes.to_numpy()
    y = np.where(codes < 0, np.nan, (codes > 0).astype(float))
    return GlmmResponse(label, family, pd.Series(y, index=col.index), levels=levels)


def from_values(label: str, family: str, values: pd.Series) -> GlmmResponse:
    """A numeric response: 0/1 or proportions for the binomial, values otherwise."""
    return GlmmResponse(label, family, values.astype(float))


def check(resp: GlmmResponse, index: pd.Index, weights: pd.Series | None) -> list[str]:
    """Check the complete rows (``index``) as R's family does; the warnings R gives, in words.

    Raises
    ------
    DataError
        Naming the response for a value R's family refuses.
    """
    y = resp.y.loc[index].to_numpy(dtype=float)
    if resp.family == "binomial":
        return _check_binomial(resp, index, y, weights)
    if resp.family in ("poisson", "negative.binomial"):
        return _check_counts(resp, y)
    if resp.family in ("Gamma", "inverse.gaussian"):
        bad = int(np.sum(y <= 0))
        if bad:
            raise DataError(f"the response {resp.label!r} has {bad} value(s) <= 0; the {resp.family} family "
                            "takes positive values only (as R's family refuses)", "/formula")
    return []


def _rows(n: int) -> str:
    return f"{n} row{'s' if n != 1 else ''}"


def _check_binomial(resp: GlmmResponse, index: pd.Index, y: np.ndarray, weights: pd.Series | None) -> list[str]:
    if resp.levels is not None:
        if len(resp.levels) != 2:
            raise DataError(f"the binomial response {resp.label!r} is a factor with {len(resp.levels)} level(s); "
                            "it needs two (the first is failure, the second success; 'levels' sets their "
                            "order)", "/formula")
        return []
    if resp.trials is not None:
        s = resp.successes.loc[index].to_numpy(dtype=float)  # type: ignore[union-attr]
        f = resp.failures.loc[index].to_numpy(dtype=float)  # type: ignore[union-attr]
        bad = int(np.sum((s < 0) | (f < 0)))
        if bad:
            raise DataError(f"the binomial response {resp.label} has negative successes or failures in "
                            f"{_rows(bad)} (more successes than trials where the failures are trials minus "
                            "successes); the counts must be >= 0", "/formula")
        if _non_integer(s) or _non_integer(f):
            return [f"The binomial response {resp.label} has non-integer counts (R warns: non-integer counts "
                    "in a binomial glm)."]
        return []
    bad = int(np.sum((y < 0) | (y > 1)))
    if bad:
        raise DataError(f"the binomial response {resp.label!r} has {_rows(bad)} outside [0, 1] (more successes "
                        "than trials for a proportion); it must be 0/1, a proportion with 'weights' as the "
                        "trials, a two-level factor or cbind(successes, failures)", "/formula")
    trials = np.ones_like(y) if weights is None else weights.loc[index].to_numpy(dtype=float)
    if _non_integer(y * trials):
        return [f"The binomial response {resp.label!r} gives non-integer numbers of successes (proportion "
                "times weights) (R warns: non-integer #successes in a binomial glm)."]
    return []


def _check_counts(resp: GlmmResponse, y: np.ndarray) -> list[str]:
    name = "Poisson" if resp.family == "poisson" else "negative binomial"
    bad = int(np.sum(y < 0))
    if bad:
        raise DataError(f"the response {resp.label!r} has {_rows(bad)} with negative values; the {name} family "
                        "takes counts >= 0 (as R's family refuses)", "/formula")
    odd = int(np.sum(np.abs(y - np.round(y)) > 1e-7 * np.maximum(1.0, np.abs(y))))  # R's dpois check
    if odd:
        return [f"The {name} response {resp.label!r} has non-integer values in {_rows(odd)} "
                "(R warns: non-integer x); its likelihood treats them as counts."]
    return []


def _non_integer(x: np.ndarray) -> bool:
    return _count_non_integer(x) > 0


def _count_non_integer(x: np.ndarray) -> int:
    """Values more than 0.001 from a whole number (R's tolerance in the binomial's check)."""
    return int(np.sum(np.abs(x - np.round(x)) > 1e-3))
