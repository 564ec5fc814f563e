"""The engine-independent fit object: engines fill it, the table layer reads it.

Notation follows lme4 (Bates et al. 2015): β fixed effects, θ relative covariance parameters,
σ residual standard deviation, b = Λθ u conditional modes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class VarComp:
    """Covariance of one random-effects term.

    Fields: ``group`` grouping factor name (``Subject``, ``cask:batch``); ``terms`` the term's
    column names in R's spelling (``(Intercept)``, ``Days``); ``sd`` standard deviations (σ times
    the row norms of the template Tᵢ); ``corr`` p×p correlation matrix (identity for p = 1).
    """

    group: str
    terms: list[str]
    sd: np.ndarray
    corr: np.ndarray


@dataclass
class RanefBlock:
    """Conditional modes b̃ of one random-effects term and their conditional sds.

    Fields: ``group``; ``terms``; ``levels`` level labels in factor order; ``modes`` ℓ×p array;
    ``condsd`` ℓ×p array of sqrt of the diagonal of the conditional covariance (lme4's
    ``condVar``).
    """

    group: str
    terms: list[str]
    levels: list[str]
    modes: np.ndarray
    condsd: np.ndarray


@dataclass
class Inference:
    """Tests and intervals computed from a fit (:mod:`mixedbridge.inference`, or lmerTest /
    pbkrtest / lme4 through the bridge).

    Fields: ``df_method`` (``satterthwaite``, ``kenward-roger``, ``asymptotic``, ``residual`` for
    ``lm``); ``coef`` per fixed effect a dict with ``std.error``, ``statistic``, ``df``,
    ``p.value`` (the SE is Kenward-Roger's adjusted SE under that method); ``anova`` rows (term,
    sumsq, meansq, NumDF, DenDF, statistic, p.value; or Chisq, Df for LRT/bootstrap) with
    ``anova_info`` (type, method, ...); ``confint`` rows (parameter, group, term, estimate,
    lower, upper) with ``confint_info``; ``comparison`` rows of the model comparison (model,
    formula, npar, AIC, BIC, logLik, deviance, Chisq, Df, p.value); ``notes``, ``warnings``;
    ``timing`` seconds per step.
    """

    df_method: str = "residual"
    coef: dict = field(default_factory=dict)
    anova: list[dict] | None = None
    anova_info: dict = field(default_factory=dict)
    confint: list[dict] | None = None
    confint_info: dict = field(default_factory=dict)
    comparison: list[dict] | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timing: dict = field(default_factory=dict)


@dataclass
class Fit:
    """What a fitted model yields, whichever engine fitted it.

    Fields: ``analysis`` (``lm``/``lmm``); ``engine``; ``coef_names`` and ``beta`` (β̂) with
    ``vcov`` = σ̂² R_X⁻¹R_X⁻ᵀ; ``dropped`` aliased fixed-effect columns; ``sigma`` σ̂; ``nobs``;
    ``reml``; ``loglik``, ``deviance``, ``reml_crit`` (REML fits), ``aic``, ``bic``,
    ``df_residual``; ``theta`` θ̂; ``varcorr`` per-term covariance; ``ranef`` conditional modes;
    ``fitted``, ``residuals``; ``ngroups`` levels per grouping factor; ``optinfo`` optimizer record;
    ``warnings`` and ``notes`` in words; ``extra`` engine-specific values (r², per-group
    coefficients ``coef_groups``, the native model object ``model``);
    ``inference`` df, tests and intervals once :func:`mixedbridge.engines.infer` has run.
    """

    analysis: str
    engine: str
    coef_names: list[str]
    beta: np.ndarray
    vcov: np.ndarray
    sigma: float
    nobs: int
    loglik: float
    aic: float
    bic: float
    deviance: float
    df_residual: float
    reml: bool = False
    reml_crit: float | None = None
    dropped: list[str] = field(default_factory=list)
    theta: np.ndarray | None = None
    varcorr: list[VarComp] = field(default_factory=list)
    ranef: list[RanefBlock] = field(default_factory=list)
    fitted: np.ndarray | None = None
    residuals: np.ndarray | None = None
    ngroups: dict[str, int] = field(default_factory=dict)
    optinfo: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    inference: Inference | None = None

    @property
    def se(self) -> np.ndarray:
        """Standard errors of β̂."""
        return np.sqrt(np.diag(self.vcov))
