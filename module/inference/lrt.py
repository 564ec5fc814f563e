"""Likelihood-ratio tests: per model term (afex's method "LRT") and between models (lme4's
``anova(m1, m2, ...)``).

* Per term: the full model and, for each term, the model without that term's columns of X
  (the other columns, interactions included, stay: the "type III" reduced model afex builds
  from the model matrix) are fitted by maximum likelihood; χ² = deviance(reduced) −
  deviance(full), df = the number of columns dropped. With treatment contrasts the reduced model
  for a lower-order term depends on the coding; sum contrasts make the tests the usual ones.
* Between models: REML fits are refitted by ML (``refit = TRUE``), the models are ordered by
  their number of parameters, and each row is tested against the one before it:
  χ² = 2·max(0, ℓ_i − ℓ_{i−1}), df = npar_i − npar_{i−1} (lme4's ``anova.merMod``).
"""
from __future__ import annotations

import numpy as np

from .. import distributions as dist
from ..errors import ModelError
from ..fit import Fit
from ..problem import Problem


def npar(fit: Fit) -> int:
    """Parameters counted by ``logLik``'s df: p + length(θ) + 1 (lmm), p + 1 (lm), a glmm's
    by :func:`.glmm_tests.npar`."""
    if fit.analysis == "glmm":
        from .glmm_tests import npar as glmm_npar
        return glmm_npar(fit)
    k = len(fit.coef_names) + 1
    if fit.analysis == "lmm":
        assert fit.theta is not None, "a mixed-model fit carries θ̂"
        k += len(fit.theta)
    return k


def ml_fit_native(problem: Problem, X: np.ndarray | None = None, names: list[str] | None = None) -> Fit:
    """The model (or the model with design X) fitted natively by maximum likelihood."""
    from ..lmm import fit_lmm

    X = problem.fixed.X if X is None else X
    names = problem.fixed.names if names is None else names
    if X.shape[1] == 0:
        raise ModelError("a likelihood-ratio test would leave a model without fixed effects; "
                         "this engine needs at least one fixed-effect column", "/options/anova")
    return fit_lmm(X, names, problem.y, problem.reterms, reml=False,
                   weights=problem.frame.weights, offset=problem.frame.offset)


def chisq_row(llk_small: float, llk_big: float, df: int) -> dict:
    chisq = 2.0 * max(0.0, llk_big - llk_small)
    p = float(dist.chi2.sf(chisq, df)) if df > 0 else None
    return {"Chisq": chisq, "Df": df, "p.value": p}


def term_tests(problem: Problem, fit: Fit, terms: dict[str, list[int]]) -> tuple[list[dict], Fit]:
    """LRT per term; ``terms`` maps a term label to the X columns it owns. Returns rows (term,
    npar, logLik, deviance, Chisq, Df, p.value) and the ML fit of the full model."""
    full = fit if (fit.analysis == "lmm" and not fit.reml) else ml_fit_native(problem)
    X, names = problem.fixed.X, problem.fixed.names
    rows = []
    for term, cols in terms.items():
        keep = [j for j in range(X.shape[1]) if j not in cols]
        red = ml_fit_native(problem, X[:, keep], [names[j] for j in keep])
        row = {"term": term, "npar": npar(red), "logLik": red.loglik, "deviance": -2.0 * red.loglik}
        row.update(chisq_row(red.loglik, full.loglik, len(cols)))
        rows.append(row)
    return rows, full


def compare(entries: list[tuple[str, str, Fit]]) -> list[dict]:
    """lme4's ``anova`` of several models: entries (name, formula, fit) where lmm fits are
    already ML fits (REML ones refitted by the caller). Rows ordered by npar."""
    nobs = {f.nobs for _, _, f in entries}
    if len(nobs) > 1:
        raise ModelError("models were not all fitted to the same number of observations", "/compare")
    n = entries[0][2].nobs
    nparams = [npar(f) for _, _, f in entries]
    out: list[dict] = []
    prev: tuple[int, float] | None = None  # npar and logLik of the row before
    for i in sorted(range(len(entries)), key=lambda i: nparams[i]):
        name, frm, f = entries[i]
        k, llk = nparams[i], f.loglik
        r = {"model": name, "formula": frm, "npar": k, "logLik": llk,
             "AIC": -2.0 * llk + 2.0 * k, "BIC": -2.0 * llk + np.log(n) * k, "deviance": -2.0 * llk,
             "Chisq": None, "Df": None, "p.value": None}
        if prev is not None:
            df = k - prev[0]
            chisq = 2.0 * max(0.0, llk - prev[1])
            r.update({"Chisq": chisq, "Df": df, "p.value": float(dist.chi2.sf(chisq, df)) if df != 0 else None})
        out.append(r)
        prev = k, llk
    return out
