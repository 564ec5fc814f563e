"""Estimated marginal means, contrasts and trends, computed as R's emmeans 1.8 computes them.

>>> tables, notes = emmeans_tables(problem, fit, {"specs": ["time", "group"],
...                                               "contrasts": "pairwise"}, df_fn)  # doctest: +SKIP

Modules: :mod:`.refgrid` (reference grid), :mod:`.emm` (means and the shared summary),
:mod:`.contrasts` (pairwise / custom), :mod:`.adjust` (p-value and interval adjustment),
:mod:`.trends` (emtrends), :mod:`.tables` (result tables), :mod:`.request` (the spec block).
The R side lives in :mod:`mixedbridge.bridge.emmeans_r`.
"""
from .api import compute, df_function, emmeans_tables
from .request import Request, parse

__all__ = ["emmeans_tables", "compute", "df_function", "parse", "Request", "schema"]


def schema() -> dict:
    """JSON Schema of one ``options.emmeans`` block (schemas/emmeans.schema.json)."""
    from ..spec import schema as shipped

    return shipped("emmeans")
