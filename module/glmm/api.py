"""``fit_glmm``: fit a generalized linear mixed model natively and fill the engine-independent
:class:`~mixedbridge.fit.Fit` with ``summary(glmer)``'s answers (lme4 1.1-31)."""
from __future__ import annotations

import numpy as np

from ..design import ReTermData
from ..fit import Fit, NativeBackend, RanefBlock
from ..lmm.api import coef_groups
from ..lmm.threads import blas_threads
from ..lmm.varcorr import varcorr
from .checks import Convergence, check_convergence, overdispersion_note, separation_notes
from .family import Family, make_family
from .model import GeneralizedLinearMixedModel
from .validate import check_glmm_inputs


def fit_glmm(X: np.ndarray, names: list[str], y: np.ndarray, reterms: list[ReTermData], *,
             family: str | Family, link: str | None = None, weights: np.ndarray | None = None,
             offset: np.ndarray | None = None, nagq: int = 1,
             dropped: list[str] | None = None) -> Fit:
    """Fit g(E[y | b]) = o + Xβ + Zb, b ~ N(0, Σ_θ), as lme4's ``glmer`` does.

    Parameters
    ----------
    X : (n, p) fixed-effects matrix (aliased columns dropped); ``names`` its R column names.
    y : (n,) response on the family's scale: for the binomial the proportion of successes
        (0/1 for binary data), with ``weights`` the numbers of trials.
    reterms : random-effects terms (:class:`~mixedbridge.design.ReTermData`).
    family : R's family name (``binomial``, ``poisson``, ``Gamma``, ``inverse.gaussian``,
        ``gaussian``; ``negative.binomial`` fits θ as ``glmer.nb``, see
        :func:`~.negbin.fit_glmer_nb`) or a :class:`~.family.Family` (e.g. a negative binomial
        with θ fixed).
    link : R's link name, default the family's canonical link.
    weights : prior weights (binomial: trials), or None.
    offset : offset on the link scale, or None.
    nagq : 0 (lme4's first stage only), 1 (Laplace, default) or up to 25 adaptive
        Gauss-Hermite points (a single scalar random-effects term only).
    dropped : names of aliased columns already dropped from X.

    Returns
    -------
    Fit
        ``analysis="glmm"``, ``engine="native"``, ``family``/``link`` R's names. Conventions, as
        lme4 1.1-31:

        * ``deviance`` = ``deviance_ml`` = −2·logLik, the optimised criterion (``summary``'s
          "deviance"; lme4's ``deviance()`` function instead returns the sum of squared
          deviance residuals, kept in ``optinfo["residual_deviance"]``);
        * ``aic``/``bic`` with k = p + length(θ) (+1 for families with a scale);
          ``df_residual`` = n − k;
        * ``sigma``: 1 for binomial, Poisson and negative binomial; otherwise lme4's
          √((Σ pw(y − μ)²/V(μ) + ‖ũ‖²)/n);
        * ``vcov``: for nAGQ ≥ 1 from the finite-difference Hessian H of the criterion in
          (θ, β) (``use.hessian = TRUE``): the β block of 2H⁻¹; for nAGQ = 0, or when that is
          not positive definite, σ²(R_XᵀR_X)⁻¹ at the final working weights;
        * ``varcorr`` sds are σ times the template row norms; ``ranef`` condsd from lme4's
          ``condVar`` σ²Λ(ΛᵀZᵀWZΛ + I)⁻¹Λᵀ;
        * ``fitted`` μ̂ (response scale); ``residuals`` deviance residuals (lme4's default
          ``residuals()`` for a glmer fit); ``pearson_residuals`` (y − μ̂)√pw/√V(μ̂) (not divided
          by σ, as lme4's ``residuals(type = "pearson")``);
        * convergence: lme4's ``checkConv`` rules on the gradient of the converged criterion
          and the Hessian above (glmer differentiates its own criterion, which carries its PIRLS
          tolerance, and so sometimes warns at an optimum this check accepts); singularity
          (θ below 1e-4), separation and overdispersion (Pearson χ²/df) in words in
          ``warnings``/``notes``.

        The optimum: the criterion is never above glmer's (PIRLS is converged fully where glmer
        stops at a relative change of 1e-7, so it is typically 1e-7 to 5e-6 relative lower).

        ``backend.model`` is the fitted :class:`~.model.GeneralizedLinearMixedModel`
        (``deviance(pars)`` in (θ, β), ``deviance0(θ)``, ``theta``, ``beta``).
    """
    if family == "negative.binomial":
        from .negbin import fit_glmer_nb

        return fit_glmer_nb(X, names, y, reterms, link=link, weights=weights, offset=offset,
                            nagq=nagq, dropped=dropped)
    fam = family if isinstance(family, Family) else make_family(family, link)
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    w = None if weights is None else np.asarray(weights, dtype=float)
    o = None if offset is None else np.asarray(offset, dtype=float)
    notes = check_glmm_inputs(X, y, reterms, fam, w, o, int(nagq))
    with blas_threads(1), np.errstate(all="ignore"):
        model = GeneralizedLinearMixedModel(X, names, y, reterms, fam, w, o, int(nagq)).fit()
        return model_to_fit(model, dropped, notes)


def glmm_sigma(model: GeneralizedLinearMixedModel) -> float:
    """lme4's ``sigma()`` of a GLMM: 1 without a free scale, else √(pwrss/n)."""
    if not model.family.scale:
        return 1.0
    r = model.resp
    mu = model.mu()
    wrss = float(np.sum(r.pw * (r.y - mu) ** 2 / model.family.variance(mu)))
    u = model.u()
    return float(np.sqrt((wrss + u @ u) / model.n))


def glmm_vcov(model: GeneralizedLinearMixedModel, sigma: float) -> tuple[np.ndarray, str]:
    """V(β̂) as lme4's ``vcov`` (``use.hessian`` when the Hessian is there) and its source."""
    rec = model.record
    if model.p == 0:
        return np.zeros((0, 0)), "none"
    if rec is not None and rec.hessian is not None:
        try:
            Hinv = np.linalg.inv(rec.hessian)
            k = model.ntheta
            V = Hinv[k:, k:] + Hinv[k:, k:].T
            if np.all(np.isfinite(V)) and np.linalg.eigvalsh(V)[0] > 0:
                return V, "hessian"
        except np.linalg.LinAlgError:
            pass
    return sigma**2 * model.unscaled_vcov(), "RX"


def model_to_fit(model: GeneralizedLinearMixedModel, dropped: list[str] | None = None,
                 notes: list[str] | None = None, extra_params: int = 0) -> Fit:
    """Fill a :class:`~mixedbridge.fit.Fit` from a fitted model; ``extra_params`` further
    estimated parameters counted in AIC, BIC and df.residual (the negative binomial θ)."""
    s, fam, r = model.structure, model.family, model.resp
    sigma = glmm_sigma(model)
    vcov, vsource = glmm_vcov(model, sigma)
    k = model.p + model.ntheta + (1 if fam.scale else 0) + extra_params
    dev = model.fval
    mu = model.mu()
    dres = r.devres(mu)
    resid = np.sign(r.y - mu) * np.sqrt(np.clip(dres, 0.0, None))
    pearson = (r.y - mu) * np.sqrt(r.pw / fam.variance(mu))
    ranef = ranef_blocks(model, sigma)
    rec = model.record
    conv = check_convergence(model.theta, s.is_sd, rec.gradient if rec else None,
                             rec.hessian if rec else None)
    se = np.sqrt(np.clip(np.diag(vcov), 0.0, None))
    binary = bool(np.all(r.pw == 1.0) and np.all((r.y == 0) | (r.y == 1)))
    od, _ = overdispersion_note(fam.name, pearson, model.n - k, binary)
    all_notes = list(notes or []) + ([od] if od else [])
    return Fit(
        analysis="glmm", engine="native", coef_names=list(model.names), beta=model.beta.copy(),
        vcov=vcov, sigma=sigma, nobs=model.n, loglik=-dev / 2.0, aic=dev + 2.0 * k,
        bic=dev + k * np.log(model.n), deviance=dev, df_residual=float(model.n - k), reml=False,
        deviance_ml=dev, dropped=list(dropped or []), theta=model.theta.copy(),
        varcorr=varcorr(s.terms, model.theta, sigma), ranef=ranef,
        coef_groups=coef_groups(model.names, model.beta, s.factor_names(), ranef), fitted=mu, residuals=resid,
        pearson_residuals=pearson,
        ngroups={g: next(t.nlevels for t in s.terms if t.group == g) for g in s.factor_names()},
        optinfo=optinfo(model, conv, float(np.sum(dres)), vsource),
        warnings=warnings_in_words(model, conv) + separation_notes(fam.name, model.names, model.beta, se, mu),
        notes=all_notes, family=fam.name,
        link=fam.link.name, backend=NativeBackend(model),
    )


def ranef_blocks(model: GeneralizedLinearMixedModel, sigma: float) -> list[RanefBlock]:
    """Conditional modes and conditional sds per term (lme4's term order)."""
    out = []
    for t, b, v in zip(model.structure.terms, model.b_terms(), model.condvar_terms(sigma)):
        sd = np.sqrt(np.clip(np.einsum("iaa->ia", v), 0.0, None))
        out.append(RanefBlock(t.group, list(t.names), list(t.levels), b, sd))
    return out


def optinfo(model: GeneralizedLinearMixedModel, conv: Convergence, resid_dev: float, vsource: str) -> dict:
    """The optimizer record as a plain dict."""
    rec = model.record
    assert rec is not None
    st1, st2 = rec.stage1, rec.stage2
    last = st2 or st1
    return {
        "optimizer": "LN_BOBYQA" if st2 is None else ["LN_BOBYQA", "LN_BOBYQA"],
        "nAGQ": model.nagq,
        "feval": st1.feval + (st2.feval if st2 else 0),
        "feval_stages": [st1.feval] + ([st2.feval] if st2 else []),
        "return_code": last.return_code,
        "converged": bool(last.converged and conv.grad_ok and conv.hess_ok),
        "max_grad": conv.max_grad,
        "gradient": None if rec.gradient is None else rec.gradient.tolist(),
        "hessian_eigenvalues": None if conv.eigenvalues is None else conv.eigenvalues.tolist(),
        "singular": conv.singular,
        "boundary_snapped": list(rec.snapped),
        "vcov_source": vsource,
        "residual_deviance": resid_dev,
        "messages": list(st1.messages) + (list(st2.messages) if st2 else []) + list(conv.messages),
    }


def warnings_in_words(model: GeneralizedLinearMixedModel, conv: Convergence) -> list[str]:
    """Singular-fit and convergence warnings a researcher understands."""
    out: list[str] = []
    s = model.structure
    for term in s.terms:
        which = [term.names[rr] for rr, i in zip(term.rows, term.theta_index)
                 if int(i) in conv.singular_index]
        if which:
            out.append(f"The random-effects variance for {term.group} ({', '.join(which)}) is estimated "
                       "at (or near) zero: the model is singular, so some variance components are not "
                       "estimable from these data; consider simplifying the random-effects structure.")
    if not conv.grad_ok:
        out.append("The optimizer did not converge cleanly: the deviance is not flat at the estimates "
                   f"(max|grad| = {conv.max_grad:.3g}, tolerance 0.002). The estimates may be "
                   "unreliable; consider rescaling predictors or simplifying the model.")
    if not conv.hess_ok:
        msg = "; ".join(m for m in conv.messages if "Hessian" in m or "unidentifiable" in m)
        out.append(f"The curvature of the deviance at the estimates is not well determined ({msg}); "
                   "some parameters may not be identifiable from these data.")
    rec = model.record
    if rec is not None and not (rec.stage2 or rec.stage1).converged:
        out.append("The optimizer stopped without reaching its tolerance; the estimates may be unreliable.")
    return out
