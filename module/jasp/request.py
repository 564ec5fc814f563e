"""A host request carrying a JASP option document: ``{"jasp": "lmm" | "lm" | "glmm" | "MixedModelsLMM" |
"MixedModelsLM" | "MixedModelsGLMM", "options": {...},
"data": {"dataset" | "path" | "records"}, "columnTypes": {column: "scale" | "ordinal" | "nominal" |
"nominalText"}, "engine": ..., "id": ..., "timeout": ...}``, the way ``run`` and ``serve`` take it
(``id`` and ``timeout`` are the host protocol's, see :mod:`mixedbridge.protocol`; ``columnTypes``,
optional, is the data set's column types as JASP's engine knows them)."""
from __future__ import annotations

from pathlib import Path

from ..errors import MixedBridgeError
from ..spec import load_data
from .analysis import ANALYSIS_NAMES, GLMM_NAMES, TITLES, UNAVAILABLE, run_jasp, title_for
from .errors import error_document


def is_jasp_request(doc) -> bool:
    """Whether a request document is a JASP wrapper (it names the analysis under ``jasp``)."""
    return isinstance(doc, dict) and "jasp" in doc and "formula" not in doc


def title_of(doc: dict) -> str:
    """The title of the analysis a JASP request names (Linear Mixed Models when it names none)."""
    return title_for(doc.get("jasp"))


def failure_document(doc: dict, message: str, path: str = "", kind: str = "fatalError") -> dict:
    """A JASP request's answer when it could not be run at all (unreadable request, time limit,
    crashed worker): JASP's error shape with the request's title."""
    return error_document(message, "", path, kind, title_of(doc))


def run_request(doc: dict, base: Path | None = None) -> dict:
    """The JASP results document for a wrapped option document (errors in JASP's shape)."""
    analysis = doc.get("jasp") if isinstance(doc.get("jasp"), str) else None
    title = title_of(doc)
    extra = sorted(set(doc) - {"jasp", "options", "data", "columnTypes", "engine", "id", "timeout"})
    if extra:
        return error_document(f"unknown key(s) {', '.join(map(repr, extra))} in the request; expected "
                              "jasp, options, data, columnTypes, engine (and id, timeout)", "", "",
                              "validationError", title)
    if analysis in UNAVAILABLE:
        return error_document(f"'jasp' names {analysis!r} ({UNAVAILABLE[analysis]}), which is not available yet: "
                              "only linear mixed models and linear models can be run", "jasp", "/jasp",
                              "validationError", title)
    if analysis not in TITLES and analysis not in ANALYSIS_NAMES and analysis not in GLMM_NAMES:
        return error_document("'jasp' names the analysis: one of "
                              f"{', '.join(map(repr, [*TITLES, *ANALYSIS_NAMES, *GLMM_NAMES]))}", "jasp", "/jasp",
                              "validationError", title)
    options = doc.get("options")
    if not isinstance(options, dict):
        return error_document("the request needs 'options': JASP's option document (an object)",
                              "options", "/options", "validationError", title)
    source = doc.get("data")
    if not isinstance(source, dict) or len(source) != 1 or not set(source) <= {"dataset", "path", "records"}:
        return error_document("the request needs 'data': {\"dataset\": NAME}, {\"path\": FILE} or "
                              "{\"records\": [...]}", "data", "/data", "validationError", title)
    try:
        df, _ = load_data({"data": source}, base)
    except MixedBridgeError as exc:
        return error_document(exc.message, "data", exc.path, "validationError", title)
    return run_jasp(options, data=df, engine=doc.get("engine", "native"), analysis=analysis,
                    column_types=doc.get("columnTypes"))
