"""Where the ANOVA, EMM, contrast and trend rows come from.

First choice: tables of the same name in our :class:`~mixedbridge.Results` (``anova``,
``emmeans``, ``contrasts``, ``trends``), filled when the spec asks for them and the analysis
layer computes them. Fallback: the inference and emmeans layers' own entry points on the
prepared problem and the fit (``mixedbridge.inference.run.infer_native``,
``mixedbridge.emmeans.emmeans_tables``), each guarded so that a build without them yields
``None`` and the JASP element says the result is not available yet.
"""
from __future__ import annotations

from ..errors import MixedBridgeError


def table_rows(results, name: str) -> list[dict] | None:
    for t in results.tables:
        if t.name == name:
            return [dict(r) for r in t.rows]
    return None


def _settings(analysis: str, spec_options: dict):
    from ..inference.options import settings  # noqa: PLC0415 (optional layer)

    return settings(analysis, spec_options)


def inference(problem, fit, spec_options: dict, analysis: str):
    """``(coef, anova_rows, error)`` from the native inference layer, or Nones with why."""
    try:
        from ..inference.run import infer_native  # noqa: PLC0415
        s = _settings(analysis, spec_options)
    except (ImportError, AttributeError) as exc:
        return None, None, f"ANOVA tests are not available yet in this build ({exc.__class__.__name__})."
    if fit.extra.get("model") is None and analysis == "lmm":
        return None, None, "ANOVA tests from this engine are not available yet; use the native engine."
    try:
        inf = infer_native(problem, fit, s)
    except MixedBridgeError as exc:
        return None, None, exc.message
    except (ImportError, AttributeError, KeyError, TypeError) as exc:  # layer still being written
        return None, None, f"ANOVA tests are not available yet in this build ({exc.__class__.__name__}: {exc})."
    return inf.coef, inf.anova, None


def emmeans(problem, fit, request: dict):
    """``(tables by name, notes, error)`` from the emmeans layer."""
    try:
        from ..emmeans import emmeans_tables  # noqa: PLC0415
    except ImportError as exc:
        return None, [], f"Estimated marginal means are not available yet in this build ({exc})."
    try:
        tables, notes = emmeans_tables(problem, fit, request)
    except MixedBridgeError as exc:
        return None, [], exc.message
    return {t.name: [dict(r) for r in t.rows] for t in tables}, notes, None
