"""Fitted values and residuals of a model fitted over Dask: one more map over the partitions,
returned as a lazy Dask DataFrame (nothing is gathered until the caller computes it).

Each partition's complete rows (its model frame, on the whole data's levels) give
fitted = Xβ̂ + Zb̃ + o and residual = y − fitted, indexed like the rows of the data.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import EngineError
from ..fit import Fit, RanefBlock
from ..results import Results
from .partition import FrameRecipe, part_arrays, part_frame

COLUMNS = ("fitted", "residual")


def _modes(ranef: list[RanefBlock], group: str, names: list[str]) -> np.ndarray:
    """The conditional modes (levels × columns) of the term on ``group`` with columns ``names``."""
    block = next(r for r in ranef if r.group == group and list(r.terms) == list(names))
    return np.asarray(block.modes, dtype=float)


def part_fitted(pdf: pd.DataFrame, recipe: FrameRecipe, keep: list[int], beta: np.ndarray,
                ranef: list[RanefBlock]) -> pd.DataFrame:
    """One partition's fitted values and residuals (its complete rows)."""
    pf = part_frame(pdf, recipe)
    a = part_arrays(pdf, recipe, pf)
    if a is None or pf.frame is None:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in COLUMNS})
    fitted = a.X[:, keep] @ beta
    for t in a.reterms:
        b = _modes(ranef, t.group, t.names)
        fitted += np.einsum("na,na->n", t.X, b[t.codes])
    if a.offset is not None:
        fitted += a.offset
    return pd.DataFrame({"fitted": fitted, "residual": a.y - fitted}, index=pf.frame.data.index)


def fitted_and_residuals(results: Results):
    """A lazy Dask DataFrame (columns ``fitted``, ``residual``) for the rows a Dask fit used.

    Raises
    ------
    EngineError
        When ``results`` is not a fit over Dask that still holds its outcome.
    """
    outcome = results.outcome
    prepared = getattr(outcome.lead.engine, "prepared", None) if outcome is not None else None
    if prepared is None or prepared.recipe is None:
        raise EngineError("fitted values and residuals by a map over the partitions need the results of a "
                          "fit over Dask (with its outcome kept)")
    fit: Fit = outcome.lead.fit  # type: ignore[union-attr]
    meta = pd.DataFrame({c: pd.Series(dtype=float) for c in COLUMNS})
    return prepared.ddf.map_partitions(part_fitted, prepared.recipe, prepared.keep, np.asarray(fit.beta),
                                       fit.ranef, meta=meta)
