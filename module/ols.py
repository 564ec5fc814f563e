"""Ordinary (weighted) least squares, R's ``lm``: the first analysis and the mixed model's baseline."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import linalg

from .errors import ModelError
from .fit import Fit
from .problem import Problem


def fit_lm(problem: Problem) -> Fit:
    """Fit ``lm`` by QR of √W X, with R's logLik, AIC, BIC, deviance and r²."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        fit = _fit_lm(problem)
    f = fit.fitted
    assert f is not None, "_fit_lm always fills the fitted values"
    with np.errstate(over="ignore", invalid="ignore"):
        scale = float(np.mean(f) ** 2 + np.var(f, ddof=1)) if len(f) > 1 else 0.0
    if not np.isfinite(fit.deviance) or fit.deviance / fit.df_residual < scale * 1e-30:
        fit = replace(fit, warnings=fit.warnings + [
            "Essentially perfect fit (as R's summary.lm warns): the residual variance is zero or not "
            "finite, so σ, standard errors, tests, the log-likelihood, AIC and BIC are unreliable or "
            "undefined."])
    return fit


def _fit_lm(problem: Problem) -> Fit:
    X, names = problem.fixed.X, problem.fixed.names
    y = problem.y
    offset = problem.frame.offset
    w = problem.frame.weights
    n, p = X.shape
    if n <= p:
        raise ModelError(f"{n} observations cannot estimate {p} fixed-effect coefficients and a residual "
                         "variance; use more data or fewer predictors")
    yo = y - offset if offset is not None else y
    sw = np.sqrt(w) if w is not None else np.ones(n)
    Q, R = linalg.qr(X * sw[:, None], mode="economic")
    beta = linalg.solve_triangular(R, Q.T @ (yo * sw)) if p else np.zeros(0)
    fitted = X @ beta + (offset if offset is not None else 0.0)
    resid = y - fitted
    rss = float(np.sum(w * resid**2)) if w is not None else float(resid @ resid)
    df_res = n - p
    sigma = np.sqrt(rss / df_res) if df_res > 0 else np.nan
    Rinv = linalg.solve_triangular(R, np.eye(p)) if p else np.zeros((0, 0))
    vcov = sigma**2 * (Rinv @ Rinv.T)
    sum_logw = float(np.sum(np.log(w[w > 0]))) if w is not None else 0.0
    loglik = 0.5 * (sum_logw - n * (np.log(2 * np.pi) + 1 - np.log(n) + np.log(rss)))
    k = p + 1
    r2, adj = _r_squared(problem, yo, resid, w, rss, n, p)
    return Fit(
        analysis="lm", engine="native", coef_names=list(names), beta=beta, vcov=vcov,
        sigma=float(sigma), nobs=n, loglik=float(loglik), aic=float(-2 * loglik + 2 * k),
        bic=float(-2 * loglik + np.log(n) * k), deviance=rss, df_residual=float(df_res),
        dropped=list(problem.fixed.dropped), fitted=fitted, residuals=resid,
        r_squared=r2, adj_r_squared=adj,
    )


def _r_squared(problem: Problem, y, resid, w, rss, n, p) -> tuple[float, float]:
    """R's summary.lm r² and adjusted r² (centred when the model has an intercept)."""
    ww = w if w is not None else np.ones(n)
    has_icpt = "(Intercept)" in problem.fixed.names
    fitted = y - resid
    if has_icpt:
        m = np.sum(ww * fitted) / np.sum(ww)
        mss = float(np.sum(ww * (fitted - m) ** 2))
    else:
        mss = float(np.sum(ww * fitted**2))
    r2 = mss / (mss + rss) if mss + rss > 0 else np.nan
    df_int = 1 if has_icpt else 0
    adj = 1 - (1 - r2) * ((n - df_int) / (n - p)) if n > p else np.nan
    return float(r2), float(adj)
