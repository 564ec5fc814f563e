"""Native linear mixed model estimator giving lme4's ``lmer`` answers (REML and ML).

``fit_lmm`` is the entry point; :class:`LinearMixedModel` exposes the profiled objective and the
quantities at θ̂ (β̂, R_X, ũ, b̃, σ̂) for later inference.
"""
from .api import fit_lmm, model_to_fit
from .model import LinearMixedModel

__all__ = ["fit_lmm", "model_to_fit", "LinearMixedModel"]
