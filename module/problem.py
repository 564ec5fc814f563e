"""A prepared analysis: everything an engine needs to fit, with no user text left to interpret."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .design import FixedDesign, ReTermData, fixed_design, random_designs
from .formula import ModelDescription
from .frame import ModelFrame
from .guard import check_memory


@dataclass
class Problem:
    """One model to fit.

    ``analysis`` (``lm``/``lmm``); ``desc`` the parsed formula; ``frame`` the prepared rows;
    ``options`` the spec's normalized options (``reml``, ``contrasts``, ``weights``, ``offset``);
    ``fixed`` X with R's column names; ``reterms`` each random-effects term's Xᵢ and factor.
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
        fixed = fixed_design(desc, frame, contrasts)
        reterms = random_designs(desc, frame, contrasts) if analysis == "lmm" else []
        if reterms:
            check_memory(reterms, frame.nobs, len(fixed.names))
        return cls(analysis, desc, frame, options, fixed, reterms)

    @property
    def y(self) -> np.ndarray:
        return self.frame.response(self.desc)

    @property
    def reml(self) -> bool:
        return bool(self.options.get("reml", True))
