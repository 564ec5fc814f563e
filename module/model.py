"""The model object for scripts and notebooks: ``lmer(formula, data)``, ``glmer(formula, data,
family)`` and ``lm(formula, data)`` in the style of lme4, lmerTest and emmeans, over the same
engines and tables as a spec.

A model is fitted by :func:`mixedbridge.run` from the spec it stands for (:meth:`Model.to_spec`),
so every number it shows is the spec path's number; tests, intervals and marginal means on it are
the engines' own computations on the stored fit.

>>> import mixedbridge
>>> m = mixedbridge.lmer("Reaction ~ Days + (Days | Subject)", "sleepstudy")
>>> round(m.fixef["Days"], 3)
10.467
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from . import fit_tables
from .analysis import run, run_prepared
from .engines import engine_of
from .errors import DataError, ModelError, SpecError
from .families import has_scale
from .fit import Fit, Inference
from .inference.options import settings as inference_settings
from .predict import (
    inverse_link,
    linear_predictor,
    link_derivative,
    new_design,
    own_design,
    prior_weights,
    simulate_glmm,
    simulate_responses,
    term_covariance,
)
from .problem import Problem
from .results import Results
from .table import Table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Arguments of one kind of model only (``update`` refuses them for another).
_OWN_ARGS = ("REML", "df_method", "family", "link", "nAGQ")
#: lmerTest's ``ddf`` names → the spec's df methods.
_DDF = {"satterthwaite": "satterthwaite", "kenward-roger": "kenward-roger", "kenward_roger": "kenward-roger",
        "kr": "kenward-roger", "lme4": "asymptotic", "asymptotic": "asymptotic"}
_TYPES = {"1": "I", "2": "II", "3": "III", "i": "I", "ii": "II", "iii": "III"}


def lmer(formula: str, data: pd.DataFrame | str, REML: bool = True, contrasts: str = "treatment",
         weights: str | None = None, offset: str | None = None, engine: str = "native",
         df_method: str = "satterthwaite") -> Model:
    """Fit a linear mixed model, as lme4's ``lmer`` (with lmerTest's tests).

    Parameters
    ----------
    formula : str
        lme4 syntax, e.g. ``"Reaction ~ Days + (Days | Subject)"`` (parsed, never evaluated).
    data : DataFrame or str
        The rows, or the name of a bundled data set (``"sleepstudy"``). A pandas Categorical
        column's category order is its level order (the first level is the reference).
    REML : bool
        Restricted maximum likelihood (default) or maximum likelihood.
    contrasts : str
        ``treatment`` (R's default) or ``sum``.
    weights, offset : str, optional
        Names of the columns holding prior weights and an offset.
    engine : str
        ``native`` (default), ``lme4`` (R) or ``both`` (R cross-checks every number).
    df_method : str
        Degrees of freedom of the t tests: ``satterthwaite``, ``kenward-roger`` or ``asymptotic``.
    """
    options = {"reml": bool(REML), "contrasts": contrasts, "df_method": df_method}
    return _fit("lmm", formula, data, options, engine, weights, offset)


def lm(formula: str, data: pd.DataFrame | str, contrasts: str = "treatment", weights: str | None = None,
       offset: str | None = None, engine: str = "native") -> Model:
    """Fit an ordinary (weighted) least-squares regression, as R's ``lm``; parameters as
    :func:`lmer`."""
    return _fit("lm", formula, data, {"contrasts": contrasts}, engine, weights, offset)


def glmer(formula: str, data: pd.DataFrame | str, family: str = "binomial", link: str | None = None,
          nAGQ: int = 1, weights: str | None = None, offset: str | None = None, contrasts: str = "treatment",
          engine: str = "native") -> Model:
    """Fit a generalized linear mixed model, as lme4's ``glmer`` (``glmer.nb`` for the
    negative binomial).

    Parameters
    ----------
    formula : str
        lme4 syntax; a binomial response may be 0/1 numbers, a two-level factor (the first level
        is failure), proportions with ``weights`` as the trials, or ``cbind(successes, failures)``.
    data : DataFrame or str
        The rows, or the name of a bundled data set (``"cbpp"``).
    family : str
        R's family name: ``binomial``, ``poisson``, ``Gamma``, ``inverse.gaussian``, ``gaussian``
        (with a non-identity link) or ``negative.binomial``.
    link : str, optional
        R's link name (``logit``, ``probit``, ``cloglog``, ``log`` ...); default the family's
        canonical link.
    nAGQ : int
        1 the Laplace approximation (default), 0 lme4's fast first stage, up to 25 adaptive
        Gauss-Hermite points (a single scalar random-effects term only).
    weights, offset : str, optional
        Names of the columns holding prior weights (a binomial proportion's trials) and an offset.
    contrasts : str
        ``treatment`` (R's default) or ``sum``.
    engine : str
        ``native`` (default), ``lme4`` (R) or ``both`` (R cross-checks every number).
    """
    options: dict[str, Any] = {"family": family, "nAGQ": nAGQ, "contrasts": contrasts}
    if link is not None:
        options["link"] = link
    return _fit("glmm", formula, data, options, engine, weights, offset)


def _fit(analysis: str, formula: str, data: pd.DataFrame | str, options: dict, engine: str,
         weights: str | None, offset: str | None) -> Model:
    if not isinstance(formula, str):
        raise SpecError(f"the formula must be text, not {type(formula).__name__}", "/formula")
    options = {**options, **({"weights": weights} if weights else {}), **({"offset": offset} if offset else {})}
    spec = {"analysis": analysis, "engine": engine, "formula": formula, "options": options}
    if isinstance(data, str):
        from .datasets import load

        frame, _ = load(data)
        spec["data"] = {"dataset": data}
        return Model(run(spec), frame, spec)
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame or a bundled data set's name, not {type(data).__name__}",
                        "/data")
    if not data.index.is_unique:
        raise DataError("the data's index has repeated labels; rows are matched to results by it "
                        "(use data.reset_index(drop=True))", "/data")
    return Model(run(spec, data=data), data, spec)


class EmmeansFrames(NamedTuple):
    """Estimated marginal means (or trends) and, when asked, their contrasts, as DataFrames."""

    emmeans: pd.DataFrame
    contrasts: pd.DataFrame | None


@dataclass(frozen=True)
class Summary:
    """A model's summary: lme4/lmerTest-like ``text``, shown when printed."""

    text: str

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


class Model:
    """A fitted model (made by :func:`lmer`, :func:`glmer` or :func:`lm`).

    Attributes
    ----------
    results : Results
        The results document of the spec the model stands for (tables, notes, warnings).
    data : DataFrame
        The rows given; fitted values and residuals are Series on its index.
    """

    def __init__(self, results: Results, data: pd.DataFrame, spec: dict) -> None:
        if results.outcome is None:
            raise ValueError("a model needs results that hold their fit")
        self.results = results
        self.data = data
        self._spec = spec

    # --- the fit ---------------------------------------------------------------------------
    @property
    def fit(self) -> Fit:
        """The engine-independent fit (:class:`~mixedbridge.fit.Fit`)."""
        return self.results.fit

    @property
    def problem(self) -> Problem:
        """The prepared model (rows, designs)."""
        assert self.results.outcome is not None
        return self.results.outcome.problem

    @property
    def inference(self) -> Inference:
        """The tests and intervals the fit came with (:class:`~mixedbridge.fit.Inference`)."""
        assert self.results.outcome is not None
        return self.results.outcome.lead.inference

    @property
    def formula(self) -> str:
        """The model formula, as given."""
        return str(self._spec["formula"])

    @property
    def is_mixed(self) -> bool:
        """Whether the model has random effects (``lmer``, ``glmer``) rather than being a regression
        (``lm``)."""
        return self.fit.analysis in ("lmm", "glmm")

    @property
    def is_glmm(self) -> bool:
        """Whether the model is a generalized linear mixed model (``glmer``)."""
        return self.fit.analysis == "glmm"

    @property
    def family(self) -> str:
        """R's name of the response distribution (``gaussian`` for ``lmer`` and ``lm``)."""
        return self.fit.family or "gaussian"

    @property
    def link(self) -> str:
        """R's name of the link function (``identity`` for ``lmer`` and ``lm``)."""
        return self.fit.link or "identity"

    @property
    def nobs(self) -> int:
        """The number of rows used (complete in the model's variables)."""
        return int(self.fit.nobs)

    @property
    def fixef(self) -> pd.Series:
        """Fixed-effect estimates β̂ by coefficient name (lme4's ``fixef``)."""
        return pd.Series(np.asarray(self.fit.beta, dtype=float), index=list(self.fit.coef_names), name="estimate")

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of β̂ (lme4's ``vcov``)."""
        names = list(self.fit.coef_names)
        return pd.DataFrame(np.asarray(self.fit.vcov, dtype=float), index=names, columns=names)

    @property
    def sigma(self) -> float:
        """Residual standard deviation σ̂ (lme4's ``sigma``: 1 for a binomial or Poisson GLMM)."""
        return float(self.fit.sigma)

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes per grouping factor: levels × terms (lme4's ``ranef``)."""
        out: dict[str, pd.DataFrame] = {}
        for block in self.fit.ranef:
            frame = pd.DataFrame(block.modes, index=pd.Index(block.levels, name=block.group), columns=block.terms)
            out[block.group] = frame if block.group not in out else out[block.group].join(frame)
        return out

    @property
    def coef(self) -> dict[str, pd.DataFrame] | pd.Series:
        """Per grouping factor, the fixed effects plus that factor's random effects per level
        (lme4's ``coef``); for ``lm`` the coefficients."""
        if not self.is_mixed:
            return self.fixef
        return {g: pd.DataFrame(c.values, index=pd.Index(c.levels, name=g), columns=c.names)
                for g, c in self.fit.coef_groups.items()}

    @property
    def varcorr(self) -> pd.DataFrame:
        """Variance components as R's ``as.data.frame(VarCorr(m))``: ``grp``, ``var1``, ``var2``,
        ``vcov`` (variance or covariance), ``sdcor`` (sd or correlation); a GLMM has a
        ``Residual`` row only for a family with a scale (Gamma, inverse.gaussian, gaussian)."""
        rows: list[tuple[str, str | None, str | None, float, float]] = []
        for vc in self.fit.varcorr:
            sd, corr = np.asarray(vc.sd, dtype=float), np.asarray(vc.corr, dtype=float)
            rows += [(vc.group, t, None, sd[i] ** 2, sd[i]) for i, t in enumerate(vc.terms)]
            rows += [(vc.group, vc.terms[i], vc.terms[j], corr[i, j] * sd[i] * sd[j], corr[i, j])
                     for i in range(len(vc.terms)) for j in range(i + 1, len(vc.terms))]
        if not self.is_glmm or has_scale(self.fit.family):
            rows.append(("Residual", None, None, self.sigma ** 2, self.sigma))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    @property
    def loglik(self) -> float:
        """The log-likelihood (REML's for a REML fit, as lme4's ``logLik``; a GLMM's by the
        Laplace approximation or quadrature)."""
        return float(self.fit.loglik)

    @property
    def aic(self) -> float:
        """Akaike's information criterion, as R's ``AIC``."""
        return float(self.fit.aic)

    @property
    def bic(self) -> float:
        """The Bayesian information criterion, as R's ``BIC``."""
        return float(self.fit.bic)

    def table(self, name: str) -> pd.DataFrame:
        """One of the results' tables as a DataFrame (``parameters``, ``fit``, ``anova`` ...)."""
        return self.results.table(name).to_pandas()

    # --- rows ------------------------------------------------------------------------------
    def _on_input(self, values: np.ndarray, index: pd.Index, name: str) -> pd.Series:
        """Values of the fitted rows as a Series on the input's index (NaN for rows not used)."""
        return pd.Series(np.asarray(values, dtype=float), index=index, name=name).reindex(self.data.index)

    def fitted(self) -> pd.Series:
        """Fitted values (conditional on the random effects; a GLMM's on the response scale, μ̂),
        NaN where a row was not used."""
        assert self.fit.fitted is not None
        return self._on_input(self.fit.fitted, self.problem.frame.data.index, "fitted")

    def residuals(self, type: str | None = None, scaled: bool = False) -> pd.Series:
        """Residuals as lme4's ``residuals``, NaN where a row was not used; ``scaled`` divides by σ̂.

        For ``lmer``/``lm``: ``response`` (y − fitted, the default) or ``pearson`` (times
        √weights). For ``glmer`` (``residuals.glmerMod``): ``deviance`` (the default),
        ``pearson`` ((y − μ̂)√w/√V(μ̂)), ``response`` (y − μ̂, y a binomial's proportion) or
        ``working`` ((y − μ̂)/(dμ/dη)).
        """
        if self.is_glmm:
            r = self._glmm_residuals(type or "deviance")
        else:
            r = self._linear_residuals(type or "response")
        if scaled:
            r = r / self.sigma
        return self._on_input(r, self.problem.frame.data.index, "residuals")

    def _linear_residuals(self, type: str) -> np.ndarray:
        assert self.fit.residuals is not None
        r = np.asarray(self.fit.residuals, dtype=float)
        if type == "pearson":
            w = prior_weights(self.problem)
            return r * (np.sqrt(w) if w is not None else 1.0)
        if type not in ("response", "working"):
            raise ModelError(f"residuals: type {type!r} is not one of 'response', 'pearson', 'working'", "")
        return r

    def _glmm_residuals(self, type: str) -> np.ndarray:
        fit = self.fit
        if type == "deviance" and fit.residuals is not None:
            return np.asarray(fit.residuals, dtype=float)
        if type == "pearson" and fit.pearson_residuals is not None:
            return np.asarray(fit.pearson_residuals, dtype=float)
        if type not in ("response", "working"):
            raise ModelError(f"residuals: type {type!r} is not one of 'deviance', 'pearson', 'response', "
                             "'working' (a glmer model's residual types)", "")
        assert fit.fitted is not None
        r = self.problem.y - np.asarray(fit.fitted, dtype=float)
        if type == "working":
            eta = linear_predictor(fit, own_design(self.problem, fit), True)
            r = r / link_derivative(fit, eta)
        return r

    def predict(self, newdata: pd.DataFrame | None = None, re_form: str | None = None,
                allow_new_levels: bool = False, type: str = "link") -> pd.Series:
        """Predictions as lme4's ``predict.merMod``.

        Parameters
        ----------
        newdata : DataFrame, optional
            Rows to predict (default: the fitted rows, NaN for rows not used).
        re_form : None or ``"~0"``
            None: conditional on the random effects; ``"~0"`` (or ``"NA"``): population level.
        allow_new_levels : bool
            Predict a level of a grouping factor the model was not fitted with at the population
            level (its random effects 0) instead of raising an error that names it.
        type : ``"link"`` or ``"response"``
            A GLMM's linear predictor η (the default, as lme4) or μ = g⁻¹(η); the same for
            ``lmer`` and ``lm``.
        """
        if type not in ("link", "response"):
            raise ModelError(f"predict: type {type!r} is not one of 'link', 'response'", "")
        population = _population(re_form) or not self.is_mixed
        if newdata is None:
            design = own_design(self.problem, self.fit)
            index = self.data.index
        else:
            design = new_design(self.problem, self.fit, newdata, population)
            index = newdata.index
        eta = linear_predictor(self.fit, design, not population, allow_new_levels)
        values = inverse_link(self.fit, eta) if type == "response" else eta
        return pd.Series(values, index=design.index, name="predicted").reindex(index)

    def simulate(self, nsim: int = 1, seed: int | None = None) -> pd.DataFrame:
        """Responses simulated from the fitted model as lme4's ``simulate`` (new random effects
        and residuals each time): columns ``sim_1`` … on the input's index.

        A GLMM's (binomial or Poisson) are drawn from its family: Poisson counts, or binomial
        successes of each row's trials given as proportions of the trials, the response's scale
        here (lme4 gives a ``cbind`` response's as a matrix of counts), so that
        ``m.refit(sims["sim_1"])`` refits one.
        """
        if not isinstance(nsim, int) or nsim < 1:
            raise ModelError(f"simulate: nsim must be a positive whole number, not {nsim!r}", "")
        design = own_design(self.problem, self.fit)
        draw = simulate_glmm if self.is_glmm else simulate_responses
        y = draw(self.fit, design, prior_weights(self.problem), nsim, np.random.default_rng(seed))
        frame = pd.DataFrame(y, index=design.index, columns=[f"sim_{i + 1}" for i in range(nsim)])
        return frame.reindex(self.data.index)

    def refit(self, newresp: Sequence[float] | pd.Series | np.ndarray) -> Model:
        """The same model fitted to a new response (lme4's ``refit``): a Series on the input's
        index, or one value per fitted row."""
        y = self._new_response(newresp)
        frame = self.problem.frame
        data = frame.data.copy()
        data[self.problem.desc.response.label] = y
        problem = replace(self.problem, frame=replace(frame, data=data))
        assert self.results.outcome is not None
        results = run_prepared(self.results.outcome.spec, problem)
        return Model(results, self.data, self._spec)

    def _new_response(self, newresp) -> np.ndarray:
        index = self.problem.frame.data.index
        if isinstance(newresp, pd.Series):
            if not index.isin(newresp.index).all():
                raise DataError("refit: newresp lacks values for some fitted rows (matched by index)", "newresp")
            values = newresp.reindex(index).to_numpy(dtype=float)
        else:
            values = np.asarray(newresp, dtype=float).ravel()
            if len(values) == len(self.data) and len(values) != len(index):
                values = pd.Series(values, index=self.data.index).reindex(index).to_numpy()
            if len(values) != len(index):
                raise DataError(f"refit: newresp has {len(values)} values; the model has {len(index)} rows", "newresp")
        if not np.all(np.isfinite(values)):
            raise DataError("refit: newresp has missing or non-finite values for fitted rows", "newresp")
        if self.is_glmm:
            _check_glmm_response(self.family, values)
        return values

    def update(self, formula: str | None = None, **changes: Any) -> Model:
        """The model refitted with a new ``formula`` (``". ~ . + x"`` adds to both sides of the
        old one) or other arguments of :func:`lmer`/:func:`glmer`/:func:`lm` (``REML``,
        ``family``, ``link``, ``nAGQ``, ``contrasts``, ``data`` ...)."""
        spec = self._spec
        new_formula = _updated_formula(self.formula, formula) if formula else self.formula
        options = dict(spec.get("options", {}))
        keys = {"REML": "reml", "contrasts": "contrasts", "weights": "weights", "offset": "offset",
                "df_method": "df_method", "family": "family", "link": "link", "nAGQ": "nAGQ"}
        mine = {"lmm": ("REML", "df_method"), "glmm": ("family", "link", "nAGQ"), "lm": ()}[self.fit.analysis]
        allowed = {k for k in keys if k not in _OWN_ARGS or k in mine} | {"data", "engine"}
        for key, value in changes.items():
            if key not in allowed:
                raise ModelError(f"update: unknown argument {key!r} for this model; it takes "
                                 + ", ".join(sorted(allowed)), "")
            if key in keys:
                options[keys[key]] = value
        if "family" in changes and "link" not in changes:
            options.pop("link", None)
        data = changes.get("data", spec["data"]["dataset"] if "data" in spec else self.data)
        engine = changes.get("engine", spec["engine"])
        common = {"contrasts": options.get("contrasts", "treatment"), "weights": options.get("weights"),
                  "offset": options.get("offset"), "engine": engine}
        if self.is_glmm:
            return glmer(new_formula, data, options["family"], options.get("link"), options.get("nAGQ", 1), **common)
        if not self.is_mixed:
            return lm(new_formula, data, **common)
        return lmer(new_formula, data, options.get("reml", True), df_method=options.get("df_method", "satterthwaite"),
                    **common)

    # --- tests, intervals, means -----------------------------------------------------------
    def _infer(self, options: dict) -> Inference:
        opts = {k: v for k, v in self.problem.options.items() if k in ("reml", "weights", "offset", "contrasts")}
        s = inference_settings(self.fit.analysis, {**opts, **options})
        return engine_of(self.fit).infer(self.problem, self.fit, s)

    def anova(self, type: str | int = "III", ddf: str = "Satterthwaite", method: str | None = None) -> pd.DataFrame:
        """F tests per model term as lmerTest's ``anova(m, type, ddf)`` (``ddf``
        ``"Satterthwaite"`` or ``"Kenward-Roger"``), or per-term ``method`` ``"lrt"`` /
        ``"bootstrap"`` tests; for ``lm`` the F tests with the residual df; for ``glmer``
        likelihood-ratio tests per term (afex's ``mixed(..., method = "LRT")``, the default) or
        ``method="bootstrap"``."""
        kind = _TYPES.get(str(type).lower(), str(type))
        block: dict[str, Any] = {"type": kind}
        if self.is_glmm:
            block["method"] = method or "lrt"
        elif self.is_mixed:
            block["method"] = method or _ddf(ddf)
        table = fit_tables.anova_table(self.fit, self._infer({"anova": block}))
        assert table is not None
        return _indexed(table, "term")

    def confint(self, method: str = "wald", level: float = 0.95, nsim: int = 500, seed: int = 1) -> pd.DataFrame:
        """Confidence intervals as lme4's ``confint``: ``wald``, ``profile`` (also the variance
        components, on the sd scale) or ``bootstrap`` (parametric, ``nsim`` samples, ``seed``)."""
        block: dict[str, Any] = {"method": method.lower(), "level": level}
        if method.lower() == "bootstrap":
            block.update(nsim=nsim, seed=seed)
        table = fit_tables.confint_table(self.fit, self._infer({"confint": block, "anova": False}))
        assert table is not None
        return _indexed(table, "parameter")

    def emmeans(self, specs: str | list[str], by: str | list[str] | None = None, **request: Any) -> EmmeansFrames:
        """Estimated marginal means as R's ``emmeans``: ``specs`` the factors, ``by`` the factors
        to condition on, and any other key of an emmeans request (``contrasts="pairwise"``,
        ``adjust``, ``at``, ``trend``, ``df``; ``mixedbridge schema emmeans``)."""
        block: dict[str, Any] = {"specs": [specs] if isinstance(specs, str) else list(specs), **request}
        if by is not None:
            block["by"] = [by] if isinstance(by, str) else list(by)
        tables, _ = engine_of(self.fit).emmeans(self.problem, self.fit, block, "emmeans")
        return EmmeansFrames(tables[0].to_pandas(), tables[1].to_pandas() if len(tables) > 1 else None)

    # --- effect sizes ----------------------------------------------------------------------
    def _variances(self) -> tuple[float, float, float]:
        """(fixed, random, residual) variances of Nakagawa & Schielzeth (2013) as
        ``performance`` computes them: var(Xβ̂) (n − 1 denominator), the mean over rows of
        xᵢ'Σxᵢ summed over random-effects terms (Johnson 2014), σ̂²."""
        design = own_design(self.problem, self.fit)
        fixed = float(np.var(design.X @ self.fit.beta, ddof=1))
        random = 0.0
        for term in design.reterms:
            cov = term_covariance(self.fit, term)
            random += float(np.mean(np.einsum("ij,jk,ik->i", term.X, cov, term.X)))
        return fixed, random, self.sigma ** 2

    def _glmm_variances(self) -> tuple[float, float, float]:
        """(fixed, random, distribution-specific) variances of a GLMM as ``performance``
        0.10.2 (with insight 0.19.0's ``get_variance``) computes them: the last is π²/3 for the
        logit link, 1 for the probit link and π²/6 for the cloglog link of a binomial model, and
        ln(1 + 1/λ) for a Poisson log model with λ = exp(β̂₀) of the same model refitted with the
        intercept as its only fixed effect (Nakagawa et al. 2017's lognormal approximation)."""
        if (self.family, self.link) not in _R2_LINKS:
            raise ModelError(f"r2/icc: a {self.family} model with the {self.link} link is not supported; R² and "
                             "ICC of a GLMM are available for binomial (logit, probit, cloglog) and Poisson (log) "
                             "models, as performance::r2_nakagawa", "")
        vf, vr, _ = self._variances()
        if self.family == "binomial":
            return vf, vr, {"logit": math.pi ** 2 / 3, "probit": 1.0, "cloglog": math.pi ** 2 / 6}[self.link]
        null = self.update(". ~ " + " + ".join(["1", *self._random_terms()]))
        return vf, vr, math.log1p(1 / math.exp(float(null.fixef.iloc[0])))

    def _random_terms(self) -> list[str]:
        return [t for _, t in _signed_terms(self.formula.partition("~")[2]) if t.startswith("(") and "|" in t]

    def r2(self) -> dict[str, float]:
        """Marginal and conditional R² (Nakagawa & Schielzeth), as ``performance::r2_nakagawa``;
        for ``lm`` R's ``r.squared`` and ``adj.r.squared``. For ``glmer`` (binomial with a logit,
        probit or cloglog link, Poisson with a log link) the residual variance is the
        distribution-specific one of Nakagawa et al. (2017), as ``performance`` computes it
        (:meth:`_glmm_variances`); other families get a ModelError naming those supported.

        A random slope in a term of its own (``(x || g)``) counts as in ``(x | g)`` with zero
        correlation; ``performance`` 0.10.2 leaves such a term's slope variance out (for
        sleepstudy's ``Days || Subject`` it reports a marginal R² of 0.415 where this gives 0.283).
        """
        if not self.is_mixed:
            r2, adj = self.fit.r_squared, self.fit.adj_r_squared
            return {"r2": math.nan if r2 is None else float(r2), "r2_adjusted": math.nan if adj is None else float(adj)}
        vf, vr, ve = self._glmm_variances() if self.is_glmm else self._variances()
        total = vf + vr + ve
        return {"marginal": vf / total, "conditional": (vf + vr) / total}

    def icc(self) -> dict[str, float]:
        """Intraclass correlation as ``performance::icc``: ``adjusted`` σ²_random / (σ²_random +
        σ²_residual) and ``unadjusted`` (the fixed effects' variance in the denominator too); a
        GLMM's σ²_residual is its distribution-specific variance (see :meth:`r2`)."""
        if not self.is_mixed:
            raise ModelError("icc: an 'lm' has no random effects", "")
        vf, vr, ve = self._glmm_variances() if self.is_glmm else self._variances()
        return {"adjusted": vr / (vr + ve), "unadjusted": vr / (vf + vr + ve)}

    # --- pictures and documents ------------------------------------------------------------
    def plot(self, kind: str = "residuals", **options: Any) -> Figure:
        """One of the spec's plots (``residuals``, ``qq``, ``ranef_qq``, ``caterpillar``,
        ``shrinkage``, ``cluster_fits``, ``data_lines``, ``emmeans``; options as
        ``mixedbridge schema plots``) as a matplotlib Figure (the first, when a plot has several)."""
        from .plots import PlotNote, figures

        try:
            drawn = figures(self.problem, self.fit, {"type": kind, **options})
        except PlotNote as exc:
            raise ModelError(f"plot {kind!r}: {exc.message}", "") from None
        if not drawn:
            raise ModelError(f"plot {kind!r}: nothing to draw for this model", "")
        return drawn[0].figure

    def to_spec(self) -> dict:
        """The spec that reproduces this model (``mixedbridge.run(m.to_spec())``): its data as
        inline records when the model was given a DataFrame (Categorical orders as ``levels``)."""
        spec = {k: v for k, v in self._spec.items()}
        if "data" in spec:
            return spec
        used = [c for c in self.data.columns if c in set(self.problem.desc.columns)
                | {self._spec["options"].get("weights"), self._spec["options"].get("offset")}]
        frame = self.data[used]
        spec["data"] = {"records": [{k: _json_value(v) for k, v in row.items()} for row in frame.to_dict("records")]}
        levels = {c: [str(x) for x in frame[c].cat.categories] for c in used
                  if isinstance(frame[c].dtype, pd.CategoricalDtype)}
        if levels:
            spec["levels"] = {c: [x for x in lev if x in set(frame[c].dropna().astype(str))]
                              for c, lev in levels.items()}
        return spec

    def summary(self) -> Summary:
        """lme4/lmerTest-like text: fit criterion, scaled residuals, random effects, fixed effects."""
        from .summary import model_summary

        return Summary(model_summary(self))

    def __repr__(self) -> str:
        kind = "Linear mixed model" if self.is_mixed else "Linear model"
        if self.is_glmm:
            kind = f"Generalized linear mixed model ({self.family}, {self.link} link)"
        crit = (f"REML criterion {self.fit.reml_crit:.1f}" if self.fit.reml and self.fit.reml_crit is not None
                else f"logLik {self.fit.loglik:.1f}")
        return f"<{kind}: {self.formula}; {self.nobs} obs, {crit}, engine {self.fit.engine}>"

    def _repr_html_(self) -> str:
        head = f"<p><b>{_html(repr(self)[1:-1])}</b></p>"
        return head + self.results.table("parameters").to_html() + self.results.table("fit").to_html()


def anova(*models: Model, names: Sequence[str] | None = None) -> pd.DataFrame:
    """Likelihood-ratio comparison of models fitted to the same rows, as lme4's ``anova(m1, m2,
    ...)`` (REML fits refitted by ML; nested GLMMs by their Laplace or quadrature
    log-likelihoods); one model gives its own :meth:`Model.anova`."""
    if len(models) == 1:
        return models[0].anova()
    if not all(isinstance(m, Model) for m in models):
        raise ModelError("anova: pass fitted models (from lmer, glmer or lm)", "")
    labels = list(names) if names is not None else [f"model{i + 1}" for i in range(len(models))]
    if len(labels) != len(models) or len(set(labels)) != len(labels):
        raise ModelError("anova: names must be one distinct name per model", "")
    first = models[0].problem.frame.data.index
    for label, m in zip(labels, models):
        if not m.problem.frame.data.index.equals(first) or m.fit.engine != models[0].fit.engine:
            raise ModelError(f"anova: {label} is fitted to other rows or by another engine than {labels[0]}; "
                             "likelihood-ratio tests need the same rows", "")
    entries = [(label, m.formula, m.problem, m.fit) for label, m in zip(labels, models)]
    rows = engine_of(models[0].fit).compare(entries)
    table = fit_tables.model_comparison_table(models[0].fit, Inference(comparison=rows))
    assert table is not None
    return _indexed(table, "model")


#: The (family, link) pairs whose R² and ICC follow performance::r2_nakagawa.
_R2_LINKS = (("binomial", "logit"), ("binomial", "probit"), ("binomial", "cloglog"), ("poisson", "log"))


def _check_glmm_response(family: str, values: np.ndarray) -> None:
    """A new response on the family's scale, refused as the model frame refuses data."""
    if family == "binomial" and np.any((values < 0) | (values > 1)):
        raise DataError("refit: a binomial newresp holds proportions of successes (0/1, or successes / trials); "
                        "some values are outside [0, 1]", "newresp")
    if family in ("poisson", "negative.binomial") and np.any(values < 0):
        raise DataError(f"refit: a {family} newresp holds counts; some values are negative", "newresp")
    if family in ("Gamma", "inverse.gaussian") and np.any(values <= 0):
        raise DataError(f"refit: a {family} newresp must be positive; some values are <= 0", "newresp")


def _population(re_form: str | None) -> bool:
    if re_form is None:
        return False
    if str(re_form).replace(" ", "") in ("~0", "NA", "~1-1"):
        return True
    raise ModelError(f"predict: re_form {re_form!r} is not supported; use None (conditional) or '~0' (population)",
                     "")


def _ddf(ddf: str) -> str:
    key = ddf.lower().replace(" ", "")
    if key not in _DDF:
        raise ModelError(f"anova: ddf {ddf!r} is not one of 'Satterthwaite', 'Kenward-Roger', 'lme4'", "")
    method = _DDF[key]
    return "satterthwaite" if method == "asymptotic" else method


def _updated_formula(old: str, new: str) -> str:
    """lme4's ``update`` of a formula: ``.`` on the left is the old response; ``.`` on the right
    the old terms, to which ``+ term`` adds and from which ``- term`` removes."""
    if "~" not in new:
        raise ModelError(f"update: {new!r} is not a formula (no '~')", "")
    lhs_old, _, rhs_old = old.partition("~")
    lhs, _, rhs = new.partition("~")
    lhs = lhs_old.strip() if lhs.strip() == "." else lhs.strip()
    pieces = _signed_terms(rhs)
    if not pieces or pieces[0] != ("+", "."):
        return f"{lhs} ~ {rhs.strip()}"
    terms = _old_terms(old, rhs_old)
    for sign, term in pieces[1:]:
        if sign == "-":
            if _squeezed(term) not in [_squeezed(t) for t in terms]:
                raise ModelError(f"update: {term!r} is not a term of {old!r}", "")
            terms = [t for t in terms if _squeezed(t) != _squeezed(term)]
        elif _squeezed(term) not in [_squeezed(t) for t in terms]:
            terms.append(term)
    return f"{lhs} ~ {' + '.join(terms) or '1'}"


def _old_terms(old: str, rhs_old: str) -> list[str]:
    """The old formula's terms expanded as R expands them (``a * b`` is ``a``, ``b``, ``a:b``),
    its random-effects terms as written, ``0`` first when it has no intercept."""
    from .formula import parse_formula

    desc = parse_formula(old)
    bars = [t for _, t in _signed_terms(rhs_old) if t.startswith("(") and "|" in t]
    return ([] if desc.intercept else ["0"]) + [t.label for t in desc.fixed] + bars


def _squeezed(term: str) -> str:
    return "".join(term.split())


def _signed_terms(rhs: str) -> list[tuple[str, str]]:
    """The top-level ``+``/``-`` pieces of a formula's right side, with their signs."""
    out, depth, sign, start = [], 0, "+", 0
    for i, ch in enumerate(rhs + "+"):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and ch in "+-" and not _in_exponent(rhs, i):
            piece = rhs[start:i].strip()
            if piece:
                out.append((sign, piece))
            sign, start = ch, i + 1
    return out


def _in_exponent(text: str, i: int) -> bool:
    """Whether the sign at ``i`` belongs to a number's exponent (``1e-3``)."""
    return i > 1 and i < len(text) and text[i - 1] in "eE" and text[i - 2].isdigit()


def _indexed(table: Table, key: str) -> pd.DataFrame:
    frame = table.to_pandas()
    return frame.set_index(key) if key in frame.columns else frame


def _json_value(value: Any) -> Any:
    """A cell as a JSON value (missing → None, numpy scalars → Python)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _html(text: str) -> str:
    import html

    return html.escape(text)
