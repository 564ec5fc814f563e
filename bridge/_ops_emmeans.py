"""The emmeans operation of the R worker (:mod:`._worker`): emmeans, emtrends and contrast on a
model the worker has fitted and stored (no refit).

A plain module, imported by the worker from its own directory; it never imports mixedbridge.
Everything the request carries is a generated safe name (``v3_``), a level code (``L2``) or a
number: variables, ``by``, ``at`` levels, the trend variable and custom contrast weights (as a
numeric matrix whose contrasts R knows as ``c1``, ``c2``...), checked here. The R side is
``bridge/R/emmeans.R`` (``op_emmeans``), called with one named list.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

_SAFE = re.compile(r"^v\d+_$")
_LEVEL = re.compile(r"^L(\d+)$")


class _RWarnings:
    """Collects what R prints while emmeans runs (messages, warnings) from the worker's console."""

    def __init__(self, r) -> None:
        self.r = r
        self.messages: list[str] = []

    def __enter__(self):
        self.r.console.clear()
        return self

    def __exit__(self, *exc) -> None:
        self.messages = [m.strip() for m in self.r.console if m.strip()]


class EmmeansOps:
    """The worker's ``emmeans`` request; the emmeans package is loaded on the first one."""

    def __init__(self, r) -> None:
        self.r = r

    def emmeans(self, msg: dict) -> dict:
        r = self.r
        a = msg["args"]
        _check(a)
        args = {"key": r.key(msg["handle"]), "specs": list(a["specs"]), "by": list(a["by"]),
                "at": {name: _at_values(vals) for name, vals in a["at"].items()},
                "sd_steps": float(a["sd_steps"]), "level": float(a["level"]), "df": a["df"],
                "null": float(a["null"]), "has_null": bool(a["has_null"]), "contr_kind": a["contr_kind"],
                "cmat": np.atleast_2d(np.asarray(a["cmat"], dtype=float)), "adjust": a["adjust"],
                "trend": a["trend"] or "", "type": a.get("type", "link"), "regrid": bool(a.get("regrid", False))}
        r.require(("emmeans",), "emmeans through R")
        with _RWarnings(r) as w:
            res = r.call("op_emmeans", args)
        out = r.to_py(res)
        out.update({"ok": True, "r_warnings": w.messages})
        return out


def _df_methods() -> tuple[str, ...]:
    """The emmeans df methods, as the emmeans schema declares them."""
    schemas = Path(__file__).resolve().parent.parent / "schemas"
    return tuple(json.loads((schemas / "emmeans.schema.json").read_text())["properties"]["df"]["enum"])


def _check(a: dict) -> None:
    """Refuse anything but safe names, level codes and words from fixed lists."""
    for name in list(a["specs"]) + list(a["by"]) + list(a["at"]) + ([a["trend"]] if a["trend"] else []):
        if name != "1" and not _SAFE.match(name):
            raise ValueError(f"refusing unsafe name {name!r}")
    if a["df"] not in _df_methods():
        raise ValueError(f"refusing df={a['df']!r}")
    if a["contr_kind"] not in ("none", "pairwise", "custom"):
        raise ValueError(f"refusing contrasts kind {a['contr_kind']!r}")
    if a.get("type", "link") not in ("link", "response"):
        raise ValueError(f"refusing type={a['type']!r}")
    if not re.fullmatch(r"[A-Za-z]+", a["adjust"]):
        raise ValueError(f"refusing adjust={a['adjust']!r}")


def _at_values(vals) -> list[str] | np.ndarray:
    """The values of one ``at`` variable: level codes (``L2``) or numbers."""
    if isinstance(vals[0], str):
        if not all(_LEVEL.match(v) for v in vals):
            raise ValueError("refusing unsafe level codes")
        return list(vals)
    return np.asarray([float(v) for v in vals], dtype=float)


def register(r) -> dict:
    """The operations this module adds to the worker's registry."""
    return {"emmeans": EmmeansOps(r).emmeans}
