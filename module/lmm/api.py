"""``fit_lmm``: fit a linear mixed model natively and fill the engine-independent
:class:`~mixedbridge.fit.Fit` with lme4's answers."""
from __future__ import annotations

import math

import numpy as np

from ..design import ReTermData
from ..fit import Fit, GroupCoefs, NativeBackend, RanefBlock
from .checks import ConvergenceCheck
from .model import Estimates, LinearMixedModel
from .optsummary import OptSummary
from .remat import ReTerm
from .threads import blas_threads, others_running, usable_cpus
from .validate import check_inputs
from .varcorr import varcorr

#: Size of the dense fill-in block from which its Cholesky may use more than one BLAS thread.
MULTITHREAD_FILL = 500


def auto_threads(q_rest: int) -> int | None:
    """BLAS threads for a fit whose dense fill-in block has ``q_rest`` rows: one for small blocks
    (many tiny BLAS calls, where threads cost more than they give), the library default for
    large ones when, besides this process, a core is idle now (:func:`~.threads.others_running`;
    InstEval's fit: 0.75 s against 0.9 s wall on two quiet cores). On a loaded machine
    OpenBLAS's spin-waiting threads slow a fit down many times, so one thread, however large
    the block (synth-crossed, q_r = 5,000, load 8 on 2 cores: 70 s CPU and 140 s wall with the
    default threads against 27 s and 87 s with one)."""
    if q_rest < MULTITHREAD_FILL:
        return 1
    idle = usable_cpus() - 1 - others_running()
    return None if idle >= 1.0 else 1


def fit_lmm(X: np.ndarray, names: list[str], y: np.ndarray, reterms: list[ReTermData], *,
            reml: bool = True, weights: np.ndarray | None = None,
            offset: np.ndarray | None = None, threads: int | None | str = "auto",
            dropped: list[str] | None = None, exact: bool = False) -> Fit:
    """Fit y ~ Xβ + Zb + o by REML (default) or ML, as lme4's ``lmer`` does.

    Parameters
    ----------
    X : (n, p) fixed-effects matrix, aliased columns already dropped; ``names`` its columns.
    y : (n,) response.
    reterms : random-effects terms (grouping factor codes and raw model matrices Xᵢ).
    reml : REML criterion (True) or maximum likelihood.
    weights : prior weights w (σ²/wᵢ residual variances), or None.
    offset : known offset o added to the linear predictor, or None.
    threads : BLAS threads during the fit: ``"auto"`` chooses by the size of the dense fill-in
        block and the machine's load (:func:`auto_threads`), None leaves the library default,
        an integer sets it (see :mod:`.threads`).
    dropped : names of aliased columns already dropped from X (reported in ``Fit.dropped``).
    exact : after lme4's route, Newton steps to the exact optimum (``LinearMixedModel.fit``).

    Returns
    -------
    Fit
        ``analysis="lmm"``, ``engine="native"``. Conventions, as lme4 1.1-31:

        * ``loglik`` = −REMLcrit/2 for REML fits, −deviance/2 for ML fits;
        * ``deviance``: for ML fits −2·logLik; for REML fits the REML criterion, which is what
          ``deviance(fm)`` returns for a REML fit in lme4 1.1-31 (with a deprecation warning;
          ``devCrit(REML = TRUE)``). The ML deviance evaluated at the REML estimates
          (``deviance(fm, REML = FALSE)``) is ``deviance_ml``;
        * ``aic``/``bic`` from ``loglik`` with k = p + length(θ) + 1;
        * ``df_residual`` = n − (p + length(θ) + 1), lme4's ``df.residual`` (broom.mixed's glance);
        * ``varcorr`` and ``ranef`` per term in lme4's term order; a correlation involving a zero
          standard deviation is NaN (as R's ``cov2cor``);
        * ``ranef[i].condsd``: square roots of the diagonal of lme4's ``condVar``,
          σ̂²Λ(ΛᵀZᵀWZΛ + I)⁻¹Λᵀ (conditional on β̂);
        * ``residuals`` raw y − fitted; ``pearson_residuals`` = residuals·√w/σ̂;
        * ``coef_groups``: lme4's ``coef()`` per grouping factor (fixed + random).

        ``backend.model`` is the fitted :class:`~.model.LinearMixedModel`, for later inference
        (Satterthwaite, Kenward-Roger, profiles, bootstrap) through its public methods
        (``objective(θ, reml, sigma)``, ``vcov(θ, σ)``, ``refit(y)``, ``zlambda(u)``, ``beta``,
        ``sigma``) and its terms (``structure``: θ layout, sd/correlation scale, Z and Λ).

    Raises
    ------
    mixedbridge.errors.ModelError
        For models lme4 refuses (see :func:`~.validate.check_inputs`).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    w = None if weights is None else np.asarray(weights, dtype=float)
    o = None if offset is None else np.asarray(offset, dtype=float)
    check_inputs(X, y, reterms, w, o)
    auto = threads == "auto"
    limit = None if auto else _thread_limit(threads)
    building = 1 if auto else limit
    with blas_threads(building):
        model = LinearMixedModel(X, list(names), y, list(reterms), w, o, reml)
        fitting = auto_threads(model.A.q_rest) if auto else limit
        if fitting == building:  # the same limit (a small model): the thread pools stay as set
            model.fit(exact=exact)
            return model_to_fit(model, dropped)
    with blas_threads(fitting):
        model.fit(exact=exact)
        return model_to_fit(model, dropped)


def _thread_limit(threads: int | None | str) -> int | None:
    """``fit_lmm``'s ``threads`` other than ``"auto"``: an integer or None."""
    if isinstance(threads, str):
        raise ValueError(f"threads must be 'auto', an integer or None, not {threads!r}")
    return threads


def model_to_fit(model: LinearMixedModel, dropped: list[str] | None = None) -> Fit:
    """Fill a :class:`~mixedbridge.fit.Fit` from a fitted model (left at θ̂)."""
    s = model.structure
    theta = model.optsum.theta
    model.set_theta(theta)
    deviance_ml = model.deviance_ml()
    crit = model.reml_crit() if model.reml else deviance_ml
    loglik = -crit / 2.0
    k = model.p + s.ntheta + 1
    sigma = model.sigma
    estimates = model.estimates()
    ranef = ranef_blocks(model, estimates.b_blocks)
    groups = s.factor_names()
    beta = model.beta
    return Fit(
        analysis="lmm", engine="native", coef_names=list(model.names), beta=beta,
        vcov=model.vcov(), sigma=sigma, nobs=model.n, loglik=loglik,
        aic=-2.0 * loglik + 2.0 * k, bic=-2.0 * loglik + k * np.log(model.n),
        deviance=crit, df_residual=float(model.n - k), reml=model.reml,
        reml_crit=crit if model.reml else None, deviance_ml=deviance_ml,
        dropped=list(dropped or []), theta=theta.copy(),
        varcorr=varcorr(s.terms, theta, sigma), ranef=ranef,
        coef_groups=coef_groups(model.names, beta, groups, ranef),
        rows=RowsAtEstimates(model, estimates, sigma) if model.has_rows else None,
        ngroups={g: _nlevels(model, g) for g in groups},
        optinfo=optinfo(model.optsum, model.check), warnings=warnings_in_words(model),
        backend=NativeBackend(model),
    )


class RowsAtEstimates:
    """A fit's per-row arrays (:data:`~mixedbridge.fit.ROW_VALUES`) computed when first read, from
    the model's rows and the estimates at θ̂ (β̃, b̃: a few values per group), so that a fit keeps
    no n-vectors until asked; the same numbers as computing them at the fit.

    Residuals y − fitted (:meth:`LinearMixedModel.residuals`); fitted values y − residuals;
    Pearson residuals residuals·√w/σ̂."""

    def __init__(self, model: LinearMixedModel, estimates: Estimates, sigma: float) -> None:
        self.model, self.estimates, self.sigma = model, estimates, sigma

    def __call__(self, name: str) -> np.ndarray:
        model = self.model
        residuals = model.residuals_at(self.estimates)
        if name == "residuals":
            return residuals
        if name == "fitted":
            return model.y - residuals
        if name != "pearson_residuals":
            raise KeyError(name)
        if model.weights is None:
            return residuals / self.sigma
        residuals *= np.sqrt(model.weights)
        residuals /= self.sigma
        return residuals


def _nlevels(model: LinearMixedModel, group: str) -> int:
    return next(t.nlevels for t in model.structure.terms if t.group == group)


def ranef_blocks(model: LinearMixedModel, modes: list[np.ndarray] | None = None) -> list[RanefBlock]:
    """Conditional modes and conditional sds per term (lme4's term order); ``modes`` the
    model's ``b_blocks()`` when the caller has them."""
    s = model.structure
    modes = model.b_blocks() if modes is None else modes
    cvar = model.condvar_blocks()
    out = []
    for t, (block, offset) in zip(s.terms, s.placement):
        cols = slice(offset, offset + t.p)
        b = modes[block][:, cols]
        v = cvar[block][:, cols, cols]
        sd = np.sqrt(np.maximum(np.diagonal(v, axis1=1, axis2=2), 0.0))  # np.clip(·, 0, None)'s own call
        out.append(RanefBlock(t.group, list(t.names), list(t.levels), b.copy(), sd))
    return out


def coef_groups(names: list[str], beta: np.ndarray, groups: list[str],
                ranef: list[RanefBlock]) -> dict[str, GroupCoefs]:
    """lme4's ``coef()``: per grouping factor (``groups``, the model's order), the fixed effects
    (``names``, ``beta``) plus that factor's random effects per level; shared by the LMM and the
    GLMM (:mod:`mixedbridge.glmm.api`)."""
    out: dict[str, GroupCoefs] = {}
    for g in groups:
        blocks = [r for r in ranef if r.group == g]
        levels = blocks[0].levels
        vals = np.empty((len(levels), len(beta)))  # np.repeat's rows of β, filled by broadcasting
        vals[:] = beta
        cols = list(names)
        for r in blocks:
            for j, name in enumerate(r.terms):
                if name in cols:
                    vals[:, cols.index(name)] += r.modes[:, j]
                else:
                    cols.append(name)
                    vals = np.column_stack([vals, r.modes[:, j]])
        out[g] = GroupCoefs(list(levels), cols, vals)
    return out


def optinfo(optsum: OptSummary, check: ConvergenceCheck) -> dict:
    """The optimizer record as a plain dict."""
    return {
        "optimizer": optsum.optimizer,
        "feval": optsum.feval,
        "return_code": optsum.return_code,
        "converged": bool(optsum.converged and check.grad_ok and check.hess_ok),
        "max_grad": check.max_grad,
        "gradient": None if check.gradient is None else check.gradient.tolist(),
        "hessian_eigenvalues": None if check.hess_eigen is None else check.hess_eigen.tolist(),
        "hessian": ("skipped: singular fit" if check.singular else
                    "; ".join(m for m in check.messages if "Hessian" in m or "unidentifiable" in m)
                    or "positive definite"),
        "singular": check.singular,
        "deriv_feval": check.nfeval,
        "restarts": list(optsum.restarted),
        "boundary_snapped": list(optsum.boundary_snapped),
        "theta0": optsum.theta0.tolist(),
        "lower": [v if math.isfinite(v) else None for v in optsum.lower.tolist()],
        "ftol_abs": optsum.ftol_abs,
        "xtol_abs": optsum.xtol_abs,
        "messages": list(optsum.messages) + list(check.messages),
    }


def warnings_in_words(model: LinearMixedModel) -> list[str]:
    """Singular-fit and convergence warnings a researcher understands."""
    check, s = model.check, model.structure
    out: list[str] = []
    if check.singular:
        for term in s.terms:
            which = [term.names[r] for r, i in zip(term.rows, term.theta_index)
                     if i in check.singular_index]
            if which:
                out.append(_singular_message(term, which))
    if not check.grad_ok:
        grad = f" (max|grad| = {check.max_grad:.3g}, tolerance 0.002)" if check.max_grad is not None else ""
        out.append("The optimizer did not converge cleanly: the objective is not flat at the "
                   f"estimates{grad}. The estimates may be unreliable; consider rescaling "
                   "predictors, simplifying the random-effects structure, or checking the data.")
    if not check.hess_ok and not check.singular:
        msg = "; ".join(m for m in check.messages if "Hessian" in m or "unidentifiable" in m)
        out.append("The curvature of the objective at the estimates is not well determined "
                   f"({msg}); some variance parameters may not be identifiable from these data.")
    if not model.optsum.converged:
        out.append(f"The optimizer stopped without reaching its tolerance "
                   f"({model.optsum.return_code}); the estimates may be unreliable.")
    return out


def _singular_message(term: ReTerm, which: list[str]) -> str:
    what = ", ".join(which)
    if term.p == 1:
        hint = "consider removing this random-effects term"
    else:
        hint = ("consider simplifying the random-effects structure, e.g. removing the slope or "
                "the correlation (the '||' form)")
    return (f"The random-effects variance for {term.group} ({what}) is estimated at (or near) zero: "
            f"the model is singular, so some variance components or correlations are not "
            f"estimable from these data; {hint}.")
