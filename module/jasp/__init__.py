"""JASP's mixed-models interface: option documents in, jaspResults documents out.

>>> from mixedbridge import jasp
>>> doc = jasp.run_jasp(options, dataset="fhch2010")      # doctest: +SKIP
>>> spec, notes = jasp.translate(options, data)            # doctest: +SKIP
>>> jasp.manifest()["analyses"][0]["title"]
'Linear Mixed Models'

Modules: :mod:`.options` (schema, defaults, shapes), :mod:`.model` (rows, factors and the
formula as JASP's ``.mmModelFormula`` builds it), :mod:`.analysis` (translate and run),
:mod:`.tables` (our results as JASP's tables), :mod:`.jaspresults` (the document shapes),
:mod:`.sources` (ANOVA / EMM rows from the inference and emmeans layers).
"""
from __future__ import annotations

import copy
import json
from importlib import resources

from .analysis import run_jasp, translate
from .errors import JaspOptionError, error_document
from .options import defaults, normalize, schema

__all__ = ["manifest", "run_jasp", "translate", "options_schema", "defaults", "normalize",
           "JaspOptionError", "error_document"]


def options_schema(analysis: str = "lmm") -> dict:
    """JSON Schema of an analysis's options (``lm``: the LMM schema without the random-effects
    and mixed-model test options)."""
    s = copy.deepcopy(schema())
    if analysis == "lm":
        entry = next(a for a in _manifest_file()["analyses"] if a["name"] == "lm")
        for k in entry["excludeOptions"]:
            s["properties"].pop(k, None)
        s["title"] = "JASP-style linear model options"
    return s


def _manifest_file() -> dict:
    return json.loads(resources.files(__name__).joinpath("manifest.json").read_text(encoding="utf-8"))


def manifest() -> dict:
    """The module description: each analysis with its title, entry point, options schema and
    defaults (JASP's ``Description.qml`` plus what a host needs to build the forms)."""
    m = _manifest_file()
    for a in m["analyses"]:
        s = options_schema(a["name"])
        a["options"] = s
        a["defaults"] = {k: copy.deepcopy(v["default"]) for k, v in s["properties"].items()}
    return m
