"""A prepared analysis: everything an engine needs to fit, with no user text left to interpret."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .design import FixedDesign, FormulaicNames, ReTermData, fixed_design, random_designs
from .errors import FormulaError, SpecError
from .formula import ModelDescription
from .frame import ModelFrame
from .guard import check_memory

#: Most quadrature points lme4 takes (``nAGQ``).
MAX_NAGQ = 25


@dataclass
class Problem:
    """One model to fit.

    ``analysis`` (``lm``/``lmm``/``glmm``); ``desc`` the parsed formula; ``frame`` the prepared
    rows; ``options`` the spec's normalized options (``reml``, ``contrasts``, ``weights``,
    ``offset``; a glmm's ``family``, ``link`` and ``nAGQ``); ``fixed`` X with R's column names;
    ``reterms`` each random-effects term's Xᵢ and factor.
    """

    analysis: str
    desc: ModelDescription
    frame: ModelFrame
    options: dict
    fixed: FixedDesign
    reterms: list[ReTermData] = field(default_factory=list)

    @classmethod
    def build(cls, analysis: str, desc: ModelDescription, frame: ModelFrame, options: dict) -> Problem:
        contrasts = options.get("contrasts", "treatment")
        if analysis == "glmm":
            _check_glmm(desc, options)
        safe = FormulaicNames(frame, contrasts)
        fixed = fixed_design(desc, frame, contrasts, safe)
        reterms = random_designs(desc, frame, contrasts, safe) if analysis in ("lmm", "glmm") else []
        if reterms:
            check_memory(reterms, frame.nobs, len(fixed.names))
        if analysis == "glmm":
            _check_nagq(int(options.get("nAGQ", 1)), desc, reterms)
        return cls(analysis, desc, frame, options, fixed, reterms)

    @property
    def y(self) -> np.ndarray:
        """The response (a glmm's on its family's scale: a binomial's proportion of successes)."""
        return self.frame.response(self.desc)

    @property
    def reml(self) -> bool:
        return bool(self.options.get("reml", True)) and self.analysis != "glmm"

    def exact_optimum(self, default: bool) -> bool:
        """``options.exact_optimum``: Newton steps to the exact optimum after lme4's route; when
        the spec leaves it out, the backend's ``default`` (in memory no, over Dask yes)."""
        return bool(self.options.get("exact_optimum", default))

    @property
    def family(self) -> str | None:
        """A glmm's family (R's name), None otherwise."""
        return self.options.get("family") if self.analysis == "glmm" else None

    @property
    def link(self) -> str | None:
        """A glmm's link (R's name; the family's canonical one unless the spec names another)."""
        return self.options.get("link") if self.analysis == "glmm" else None

    @property
    def nagq(self) -> int:
        """A glmm's quadrature points (lme4's ``nAGQ``: 1 the Laplace approximation)."""
        return int(self.options.get("nAGQ", 1))


def _check_glmm(desc: ModelDescription, options: dict) -> None:
    """A glmm needs random effects and a family."""
    if not desc.random:
        raise FormulaError("analysis 'glmm' needs at least one random-effects term such as (1 | herd); "
                           "a model without random effects is a generalized linear model")
    if not options.get("family"):
        raise SpecError("/options/family: analysis 'glmm' needs a family", "/options/family")


def _check_nagq(nagq: int, desc: ModelDescription, reterms: list[ReTermData]) -> None:
    """nAGQ from 0 to 25, above 1 only with one random-effects term of one column (lme4's rule)."""
    if not 0 <= nagq <= MAX_NAGQ:
        raise SpecError(f"/options/nAGQ: {nagq} quadrature points; expected 0 to {MAX_NAGQ}", "/options/nAGQ")
    if nagq > 1 and not (len(reterms) == 1 and reterms[0].X.shape[1] == 1):
        labels = ", ".join(f"({r.label})" for r in desc.random)
        raise SpecError(f"/options/nAGQ: adaptive Gauss-Hermite quadrature (nAGQ > 1) needs a single scalar "
                        f"random-effects term such as (1 | group), as in lme4; this model has {labels}. "
                        "Use nAGQ 1 (the Laplace approximation) or 0", "/options/nAGQ")
