"""The negative binomial GLMM with θ estimated, as lme4's ``glmer.nb`` does it.

``glmer.nb`` fits the Poisson GLMM, starts θ at MASS's ``theta.ml`` for its fitted values, fits
the GLMM for ``negative.binomial(θ)``, and then minimises −2 logLik over log θ with R's
``optimize`` on log θ₀ ± 3 (tolerance 5e-5), each evaluation refitting the GLMM from the last
one (stage 2 only). Here the same profile is minimised with Brent's bounded method on the same
interval to a tighter tolerance, with the same warm starts; the final fit at θ̂ has the
derivatives and standard errors of a ``glmer`` fit for that θ. The negative binomial θ counts as a
parameter in logLik's degrees of freedom (lme4: df = p + length(θ) + 1).
"""
from __future__ import annotations

import numpy as np
from scipy import optimize, special

from ..design import ReTermData
from ..fit import Fit
from ..lmm.threads import blas_threads
from .api import model_to_fit
from .family import make_family
from .model import GeneralizedLinearMixedModel
from .validate import check_glmm_inputs

#: glmer.nb's search interval: log θ₀ ± 3.
LOG_THETA_HALF_WIDTH = 3.0
#: Tolerance on log θ (R's optimize in glmer.nb: 5e-5).
LOG_THETA_TOL = 1e-6


def theta_ml(y: np.ndarray, mu: np.ndarray, w: np.ndarray, limit: int = 20, eps: float = 1e-4) -> float:
    """MASS's ``theta.ml``: Newton's method on the negative binomial score for θ given μ."""
    n = float(np.sum(w))
    t0 = n / float(np.sum(w * (y / mu - 1.0) ** 2))
    it, delta = 0, 1.0
    while it + 1 < limit and abs(delta) > eps:
        it += 1
        t0 = abs(t0)
        score = np.sum(w * (special.digamma(t0 + y) - special.digamma(t0) + np.log(t0) + 1.0
                            - np.log(t0 + mu) - (y + t0) / (mu + t0)))
        info = np.sum(w * (-special.polygamma(1, t0 + y) + special.polygamma(1, t0) - 1.0 / t0
                           + 2.0 / (mu + t0) - (y + t0) / (mu + t0) ** 2))
        delta = float(score / info)
        t0 += delta
    return max(t0, 0.0)


def fit_glmer_nb(X: np.ndarray, names: list[str], y: np.ndarray, reterms: list[ReTermData], *,
                 link: str | None = None, weights: np.ndarray | None = None,
                 offset: np.ndarray | None = None, nagq: int = 1,
                 dropped: list[str] | None = None) -> Fit:
    """Fit a negative binomial GLMM with θ estimated (lme4's ``glmer.nb``).

    The returned :class:`~mixedbridge.fit.Fit` has ``family="negative.binomial"``; θ̂ is in
    ``optinfo["nb_theta"]`` (with the profile's evaluations in ``optinfo["nb_evaluations"]``)
    and a note; ``aic``/``bic``/``df_residual`` count θ as a parameter, as lme4 does.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    w = None if weights is None else np.asarray(weights, dtype=float)
    o = None if offset is None else np.asarray(offset, dtype=float)
    notes = check_glmm_inputs(X, y, reterms, make_family("poisson"), w, o, int(nagq))
    with blas_threads(1), np.errstate(all="ignore"):
        pois = make_family("poisson", link if link in (None, "log", "identity", "sqrt") else None)
        model = GeneralizedLinearMixedModel(X, names, y, reterms, pois, w, o, int(nagq)).fit(calc_derivs=False)
        th0 = theta_ml(y, model.mu(), model.resp.pw)
        model.set_family(make_family("negative.binomial", link, th0))
        model.fit(calc_derivs=False)
        starts = [np.concatenate([model.theta, model.beta])]

        def profile(log_theta: float) -> float:
            model.set_family(make_family("negative.binomial", link, float(np.exp(log_theta))))
            model.fit(calc_derivs=False, start=starts[-1])
            starts.append(np.concatenate([model.theta, model.beta]))
            return float(model.fval)

        lo, hi = np.log(th0) - LOG_THETA_HALF_WIDTH, np.log(th0) + LOG_THETA_HALF_WIDTH
        res = optimize.minimize_scalar(profile, bounds=(lo, hi), method="bounded",
                                       options={"xatol": LOG_THETA_TOL})
        theta = float(np.exp(res.x))
        model.set_family(make_family("negative.binomial", link, theta))
        model.fit(calc_derivs=True, start=starts[-1])
        fit = model_to_fit(model, dropped, notes + [f"The negative binomial shape parameter theta is "
                                                    f"estimated at {theta:.6g} (glmer.nb)."], extra_params=1)
    fit.optinfo["nb_theta"] = theta
    fit.optinfo["nb_theta_start"] = th0
    fit.optinfo["nb_evaluations"] = len(starts) - 1
    return fit
