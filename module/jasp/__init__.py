"""JASP's mixed-models interface: option documents in, jaspResults documents out.

>>> from mixedbridge import jasp
>>> doc = jasp.run_jasp(options, dataset="fhch2010")      # doctest: +SKIP
>>> spec, notes = jasp.translate(options, data)            # doctest: +SKIP
>>> jasp.manifest()["analyses"][0]["title"]
'Linear Mixed Models'

Modules: :mod:`.options` (schema, defaults, shapes, what each option value means),
:mod:`.model` (the rows and the model JASP's ``.mmModelFormula`` builds, as a model
description), :mod:`.means` (marginal means and trends as emmeans requests),
:mod:`.analysis` (translate and run), :mod:`.tables` (the analysis as JASP's tables),
:mod:`.jaspresults` (the document shapes).
"""
from __future__ import annotations

import copy
import json
from importlib import resources

from .analysis import run_jasp, translate
from .errors import JaspOptionError, error_document
from .options import defaults, normalize, schema

__all__ = [
    "JaspOptionError",
    "defaults",
    "error_document",
    "manifest",
    "normalize",
    "options_schema",
    "run_jasp",
    "translate",
]


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
