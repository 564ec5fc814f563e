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
    and mixed-model test options; ``glmm``: without the marginal means' df options, with the
    GLMM's family, link, number of trials and response scale, and its two test methods)."""
    s = copy.deepcopy(schema())
    if analysis in ("lm", "glmm"):
        entry = next(a for a in _manifest_file()["analyses"] if a["name"] == analysis)
        for k in entry["excludeOptions"]:
            s["properties"].pop(k, None)
        s["title"] = "JASP-style linear model options"
    if analysis == "glmm":
        _glmm_options(s)
    return s


def _glmm_options(s: dict) -> None:
    """The GLMM's options added to the schema ``s``: JASP's family and link names (each family's
    links, its default first, under ``allOf``), as :mod:`.glmm` reads them."""
    from .glmm import FAMILIES, GLMM_TESTS, LINKS

    s["title"] = "JASP-style generalized linear mixed model options"
    s["$id"] = s.get("$id", "").replace("jasp-lmm-options", "jasp-glmm-options")
    links = list(dict.fromkeys(lk for ls in LINKS.values() for lk in ls))
    s["properties"].update({
        "family": {"enum": list(FAMILIES), "default": "bernoulli", "x-rFamily": dict(FAMILIES),
                   "description": "Response distribution, JASP's names: bernoulli (a binary response: its second "
                                  "value or level is success), binomial (aggregated: successes, or proportions, of "
                                  "dependentAggregation trials), gaussian, gamma, inverseGaussian, poisson; "
                                  "x-rFamily gives R's family names."},
        "link": {"enum": links, "default": LINKS["bernoulli"][0],
                 "description": "Link function (R's names); the links each family takes are under allOf, its "
                                "default first: " + "; ".join(f"{f}: {', '.join(ls)}" for f, ls in LINKS.items())},
        "dependentAggregation": {"$ref": "#/$defs/variable", "default": "",
                                 "description": "Number of trials (the binomial family only)."},
        "marginalMeansResponse": {"type": "boolean", "default": True,
                                  "description": "Marginal means and their contrasts on the response scale "
                                                 "(emmeans type = \"response\")."},
    })
    s["properties"]["testMethod"] = {"enum": list(GLMM_TESTS), "default": "likelihoodRatioTest",
                                     "description": "How model terms are tested (afex's LRT or PB)."}
    s["allOf"] = [{"if": {"properties": {"family": {"const": f}}, "required": ["family"]},
                   "then": {"properties": {"link": {"enum": list(ls)}}}} for f, ls in LINKS.items()]


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
