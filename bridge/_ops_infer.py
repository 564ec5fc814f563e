"""Inference operations of the R worker (:mod:`._worker`): lmerTest, pbkrtest and lme4's tests
and intervals on a model the worker has fitted and stored.

A plain module, imported by the worker from its own directory; it never imports mixedbridge.
Requests name models by the handle the fit request returned (``keep``); the options are numbers
and words from fixed lists, checked here and again in R. The R side is ``bridge/R/inference.R``
(``op_infer``, ``op_compare``, ``op_lm_anova``), called with one named list.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

#: The shipped schemas (``schemas/`` beside ``bridge/``, in the source tree and when installed).
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


@lru_cache(maxsize=1)
def allowed() -> dict[str, tuple[str, ...]]:
    """The words each inference option may take, read from the spec schema where they are
    declared ("" = not asked for)."""
    options = json.loads((SCHEMAS / "spec.schema.json").read_text())["$defs"]["options"]["properties"]
    anova, confint = options["anova"]["properties"], options["confint"]["properties"]
    return {"df_method": tuple(options["df_method"]["enum"]),
            "anova_method": ("",) + tuple(anova["method"]["enum"]),
            "anova_type": tuple(anova["type"]["enum"]),
            "confint_method": ("",) + tuple(confint["method"]["enum"])}


class InferOps:
    """The worker's inference requests; lmerTest and pbkrtest are loaded on the first one."""

    def __init__(self, r) -> None:
        self.r = r

    def _call(self, name: str, args: dict) -> dict:
        self.r.require(("lmerTest", "pbkrtest"), "inference through R")
        return self.r.to_py(self.r.call(name, args))

    def infer(self, req: dict) -> dict:
        for key, vals in allowed().items():
            if req[key] not in vals:
                raise ValueError(f"refusing {key}={req[key]!r}")
        args = {"handle": self.r.key(req["handle"]), "df_method": req["df_method"],
                "anova_type": req["anova_type"], "anova_method": req["anova_method"],
                "intercept": bool(req["intercept"]), "confint_method": req["confint_method"],
                "level": float(req["level"]), "nsim": int(req["nsim"]), "seed": int(req["seed"]),
                "ci_nsim": int(req["ci_nsim"]), "ci_seed": int(req["ci_seed"])}
        return self._call("op_infer", args)

    def compare(self, req: dict) -> dict:
        names = [str(n) for n in req["names"]]
        for n in names:
            if not n.isidentifier():
                raise ValueError("refusing a model name that is not a plain identifier")
        handles = [self.r.key(h) for h in req["handles"]]
        return self._call("op_compare", {"handles": handles, "names": names})

    def lm_anova(self, req: dict) -> dict:
        if req["anova_type"] not in allowed()["anova_type"]:
            raise ValueError("refusing anova_type")
        return self._call("op_lm_anova", {"handle": self.r.key(req["handle"]), "anova_type": req["anova_type"]})


def register(r) -> dict:
    """The operations this module adds to the worker's registry."""
    ops = InferOps(r)
    return {"infer": ops.infer, "compare": ops.compare, "lm_anova": ops.lm_anova}
