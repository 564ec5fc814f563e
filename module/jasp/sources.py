"""Where the ANOVA, EMM, contrast and trend rows come from.

First choice: tables of the same name in our :class:`~mixedbridge.Results` (``anova``,
``emmeans``, ``contrasts``, ``trends``), filled when the spec asks for them. Otherwise the
fit's engine (its ``infer`` and ``emmeans``) on the prepared problem and the fit; a
:class:`MixedBridgeError` from them becomes the element's error message.
"""
from __future__ import annotations

from ..engines import engine_of
from ..errors import MixedBridgeError
from ..inference.options import settings


def table_rows(results, name: str) -> list[dict] | None:
    for t in results.tables:
        if t.name == name:
            return [dict(r) for r in t.rows]
    return None


def inference(problem, fit, spec_options: dict, analysis: str):
    """``(coef, anova_rows, error)`` from the fit's engine, or Nones with why."""
    try:
        inf = engine_of(fit).infer(problem, fit, settings(analysis, spec_options))
    except MixedBridgeError as exc:
        return None, None, exc.message
    return inf.coef, inf.anova, None


def emmeans(problem, fit, request: dict):
    """``(tables by name, notes, error)`` from the fit's engine."""
    try:
        tables, notes = engine_of(fit).emmeans(problem, fit, request)
    except MixedBridgeError as exc:
        return None, [], exc.message
    return {t.name: [dict(r) for r in t.rows] for t in tables}, notes, None
