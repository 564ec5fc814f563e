"""The engine-independent fit object: engines fill it, the table layer reads it.

Notation follows lme4 (Bates et al. 2015): β fixed effects, θ relative covariance parameters,
σ residual standard deviation, b = Λθ u conditional modes.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class Inference:
    """Tests and intervals computed from a fit (:mod:`mixedbridge.inference`, or lmerTest /
    pbkrtest / lme4 through the bridge); immutable once built.

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


@dataclass(frozen=True)
class GroupCoefs:
    """lme4's ``coef()`` for one grouping factor: fixed effects plus that factor's random effects.

    Fields: ``levels`` the factor's levels; ``names`` the coefficient names (fixed effects first,
    then random-effects columns that are not fixed effects); ``values`` an ℓ×k array.
    """

    levels: list[str]
    names: list[str]
    values: np.ndarray


@dataclass(frozen=True)
class NativeBackend:
    """What the native engine keeps of a fit for later requests on it.

    Fields: ``model`` the fitted :class:`~mixedbridge.lmm.model.LinearMixedModel` left at θ̂
    (``objective``, ``vcov``, ``refit`` … for Satterthwaite, Kenward-Roger, profiles and the
    parametric bootstrap); None for ``lm``, whose inference needs only β̂, V and the residual df.
    """

    model: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class RBackend:
    """What the lme4 engine keeps of a fit: the handle of the R model stored in the worker.

    Fields: ``handle`` the stored model's number (None when the engine does not keep models);
    ``versions`` R's and the packages' versions; ``timing`` seconds in R, in the worker, for the
    call and in all.
    """

    handle: int | None = None
    versions: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)


#: The engine-specific part of a fit: only the engine that made it reads it.
Backend = NativeBackend | RBackend

#: Names of a fit's per-row arrays that an engine may leave to be computed on first use.
ROW_VALUES = ("fitted", "residuals", "pearson_residuals")


class RowValues:
    """A per-row array field of :class:`Fit` (n values: fitted values, residuals): the array the
    engine gave, or, when it gave None and filled ``Fit.rows``, ``rows(name)`` computed on first
    read and kept. An engine whose model already holds what the rows are made of (the native LMM)
    so keeps no n-vectors it may never be asked for (1M rows: 23 MiB)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.slot = name, "_" + name

    def __get__(self, obj: Any, owner: type | None = None) -> np.ndarray | None:
        if obj is None:
            return None  # the field's default
        got = obj.__dict__.get(self.slot)
        if got is None and obj.rows is not None:
            got = obj.__dict__[self.slot] = obj.rows(self.name)
        return got

    def __set__(self, obj: Any, value: np.ndarray | None) -> None:
        obj.__dict__[self.slot] = value


@dataclass(frozen=True)
class Fit:
    """What a fitted model yields, whichever engine fitted it; immutable once built.

    Fields: ``analysis`` (``lm``/``lmm``/``glmm``); ``engine`` the name of the engine that made it (the
    key of :func:`mixedbridge.engines.get_engine`); ``coef_names`` and ``beta`` (β̂) with
    ``vcov`` = σ̂² R_X⁻¹R_X⁻ᵀ; ``dropped`` aliased fixed-effect columns; ``sigma`` σ̂; ``nobs``;
    ``reml``; ``loglik``, ``deviance``, ``reml_crit`` (REML fits), ``aic``, ``bic``,
    ``df_residual``; ``deviance_ml`` the ML deviance at the estimates (lme4's
    ``deviance(fm, REML = FALSE)``); ``r_squared``, ``adj_r_squared`` (``lm``); ``theta`` θ̂;
    ``varcorr`` per-term covariance; ``ranef`` conditional modes; ``coef_groups`` lme4's
    ``coef()`` per grouping factor; ``fitted``, ``residuals``, ``pearson_residuals`` (residuals
    ·√w/σ̂), given or (``rows``, see :class:`RowValues`) computed on first read; ``ngroups``
    levels per grouping factor; ``optinfo`` optimizer record; ``warnings`` and ``notes``
    in words; ``family`` and ``link`` R's names for a GLMM (None otherwise);
    ``backend`` what the engine keeps for later requests on this fit
    (:class:`NativeBackend` or :class:`RBackend`), read only by that engine; ``rows`` None, or a
    callable the engine fills that returns a per-row array of :data:`ROW_VALUES` by name.
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
    deviance_ml: float | None = None
    r_squared: float | None = None
    adj_r_squared: float | None = None
    dropped: list[str] = field(default_factory=list)
    theta: np.ndarray | None = None
    varcorr: list[VarComp] = field(default_factory=list)
    ranef: list[RanefBlock] = field(default_factory=list)
    coef_groups: dict[str, GroupCoefs] = field(default_factory=dict)
    fitted: RowValues = RowValues()
    residuals: RowValues = RowValues()
    pearson_residuals: RowValues = RowValues()
    ngroups: dict[str, int] = field(default_factory=dict)
    optinfo: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    family: str | None = None
    link: str | None = None
    backend: Backend = field(default_factory=NativeBackend)
    rows: Callable[[str], np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def se(self) -> np.ndarray:
        """Standard errors of β̂."""
        return np.sqrt(np.diag(self.vcov))
