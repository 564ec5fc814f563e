"""The optimizer record of a fit (MixedModels.jl's ``OptSummary``, lme4's ``optinfo``)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class OptSummary:
    """What the optimizer did.

    Fields: ``optimizer`` name (``LN_BOBYQA``); ``theta0`` start θ; ``lower`` bounds of θ;
    ``ftol_abs``, ``xtol_abs``, ``maxeval`` settings; ``theta`` final θ̂ (the start θ until the
    run ends); ``fmin`` objective at θ̂; ``feval`` objective evaluations by the optimizer
    (restarts and polish included, the derivative checks not); ``return_code`` NLopt's result;
    ``restarted`` whether lme4's restart-on-edge or a polishing run was made;
    ``boundary_snapped`` θ components set to their bound by lme4's ``check.boundary``;
    ``messages`` in words.
    """

    optimizer: str
    theta0: np.ndarray
    lower: np.ndarray
    ftol_abs: float
    xtol_abs: float
    maxeval: int
    theta: np.ndarray = field(init=False)
    fmin: float = np.inf
    feval: int = 0
    return_code: str = ""
    restarted: list[str] = field(default_factory=list)
    boundary_snapped: list[int] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.theta = self.theta0.copy()

    @property
    def converged(self) -> bool:
        """Whether NLopt stopped on a tolerance (not on maxeval or a failure)."""
        return self.return_code in ("FTOL_REACHED", "XTOL_REACHED", "SUCCESS", "STOPVAL_REACHED")
