"""The families and links of a generalized linear mixed model, by R's names: which links each
family takes, its canonical link and whether it has a scale parameter (σ).

Only names live here (the spec's vocabulary, shared by both engines and the table layer); the
link and variance functions themselves belong to the estimator (:mod:`mixedbridge.glmm`).
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import SpecError


@dataclass(frozen=True)
class Family:
    """One family: ``name`` (R's), ``links`` those R's family function accepts, the canonical
    link first; ``scale`` whether it has a dispersion parameter that glmer estimates (σ, with t
    rather than z statistics in ``summary``); ``counts`` whether the response is a count."""

    name: str
    links: tuple[str, ...]
    scale: bool
    counts: bool = False

    @property
    def canonical(self) -> str:
        return self.links[0]


#: R's families (stats::binomial ..., MASS's negative.binomial as glmer.nb fits it).
FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("binomial", ("logit", "probit", "cauchit", "cloglog", "log"), scale=False),
    Family("poisson", ("log", "identity", "sqrt"), scale=False, counts=True),
    Family("Gamma", ("inverse", "identity", "log"), scale=True),
    Family("inverse.gaussian", ("1/mu^2", "inverse", "identity", "log"), scale=True),
    Family("gaussian", ("identity", "log", "inverse"), scale=True),
    Family("negative.binomial", ("log",), scale=False, counts=True),  # glmer.nb: log link only
)}

#: The options only a glmm takes.
GLMM_OPTIONS = ("family", "link")


def family(name: str) -> Family:
    """The family called ``name`` (SpecError naming ``options.family`` otherwise)."""
    if name not in FAMILIES:
        raise SpecError(f"/options/family: {name!r} is not a family; expected one of "
                        + ", ".join(repr(f) for f in FAMILIES), "/options/family")
    return FAMILIES[name]


def has_scale(name: str | None) -> bool:
    """Whether a fit of this family reports σ (Gamma, inverse.gaussian, gaussian)."""
    return name is not None and name in FAMILIES and FAMILIES[name].scale


def resolve(analysis: str, options: dict) -> dict:
    """``options`` with the glmm's family checked and its link filled in (the canonical one
    when none is given); for another analysis, a refusal of the glmm's options.

    Raises
    ------
    SpecError
        Naming ``/options/family`` (missing for a glmm, or given for another analysis),
        ``/options/link`` (a link the family does not take) or ``/options/exact_optimum``
        (an lmm's option, given for another analysis).
    """
    if analysis != "lmm" and "exact_optimum" in options:
        raise SpecError(f"/options/exact_optimum: exact_optimum is for analysis 'lmm' (Newton steps after "
                        f"lme4's optimizer), not {analysis!r}", "/options/exact_optimum")
    if analysis != "glmm":
        for key in GLMM_OPTIONS:
            if key in options:
                raise SpecError(f"/options/{key}: a {key} is for analysis 'glmm' (a generalized linear mixed "
                                f"model), not {analysis!r}", f"/options/{key}")
        return options
    if "family" not in options:
        raise SpecError("/options/family: analysis 'glmm' needs a family: one of "
                        + ", ".join(repr(f) for f in FAMILIES), "/options/family")
    fam = family(options["family"])
    link = options.get("link", fam.canonical)
    if link not in fam.links:
        raise SpecError(f"/options/link: the {fam.name} family does not take the link {link!r}; it takes "
                        + ", ".join(repr(lk) for lk in fam.links), "/options/link")
    if fam.name == "gaussian" and link == "identity":
        raise SpecError("/options/link: a gaussian model with the identity link is a linear mixed model; use "
                        "analysis 'lmm' (or a link 'log' or 'inverse')", "/options/link")
    return {**options, "link": link}
