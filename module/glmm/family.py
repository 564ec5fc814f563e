"""R's GLM families and links, as R's ``family`` objects define them (``binomial()``,
``poisson()``, ``Gamma()``, ``inverse.gaussian()``, ``gaussian()``, MASS's
``negative.binomial(theta)``): link function, inverse link, dμ/dη, variance function,
deviance residuals and the family's ``aic`` (−2 log-likelihood, plus 2 for an estimated
dispersion), with R's clamping of μ and dμ/dη near the boundaries.

Both lme4's PIRLS and its Laplace criterion read only these functions, so matching R's
definitions here is what makes the native optimum glmer's.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from ..errors import ModelError

Array = np.ndarray
_EPS = float(np.finfo(float).eps)
#: R's logit clamp (``THRESH``/``MTHRESH`` in R's family.c).
_THRESH = 30.0


@dataclass(frozen=True)
class Link:
    """A link g: ``linkfun`` η = g(μ), ``linkinv`` μ = g⁻¹(η), ``mu_eta`` dμ/dη, R's ``name``."""

    name: str
    linkfun: Callable[[Array], Array]
    linkinv: Callable[[Array], Array]
    mu_eta: Callable[[Array], Array]


def _logit_inv(eta: Array) -> Array:
    e = np.exp(np.minimum(np.maximum(eta, -_THRESH), _THRESH))
    mu = e / (1.0 + e)
    out = np.abs(eta) > _THRESH
    if np.any(out):
        mu = np.where(eta < -_THRESH, _EPS / (1.0 + _EPS), np.where(out, 1.0 / (1.0 + _EPS), mu))
    return mu


def _logit_mu_eta(eta: Array) -> Array:
    e = np.exp(np.minimum(np.maximum(eta, -_THRESH), _THRESH))
    out = e / ((1.0 + e) * (1.0 + e))
    if np.any(np.abs(eta) > _THRESH):
        out = np.where(np.abs(eta) > _THRESH, _EPS, out)
    return out


_PROBIT_T = float(-special.ndtri(_EPS))
_SQRT2PI = float(np.sqrt(2.0 * np.pi))
_CAUCHIT_T = float(1.0 / np.tan(np.pi * _EPS))  # -qcauchy(DBL_EPSILON), as R computes it


def _cloglog_inv(eta: Array) -> Array:
    return np.clip(-np.expm1(-np.exp(np.minimum(eta, 700.0))), _EPS, 1.0 - _EPS)


def _cloglog_mu_eta(eta: Array) -> Array:
    e = np.minimum(eta, 700.0)
    return np.maximum(np.exp(e) * np.exp(-np.exp(e)), _EPS)


LINKS: dict[str, Link] = {
    "logit": Link("logit", lambda mu: np.log(mu / (1.0 - mu)), _logit_inv, _logit_mu_eta),
    "probit": Link("probit", special.ndtri,
                   lambda eta: special.ndtr(np.clip(eta, -_PROBIT_T, _PROBIT_T)),
                   lambda eta: np.maximum(np.exp(-0.5 * eta * eta) / _SQRT2PI, _EPS)),
    "cloglog": Link("cloglog", lambda mu: np.log(-np.log1p(-mu)), _cloglog_inv, _cloglog_mu_eta),
    "cauchit": Link("cauchit", lambda mu: np.tan(np.pi * (mu - 0.5)),
                    lambda eta: 0.5 + np.arctan(np.clip(eta, -_CAUCHIT_T, _CAUCHIT_T)) / np.pi,
                    lambda eta: np.maximum(1.0 / (np.pi * (1.0 + eta * eta)), _EPS)),
    "log": Link("log", np.log, lambda eta: np.maximum(np.exp(eta), _EPS),
                lambda eta: np.maximum(np.exp(eta), _EPS)),
    "identity": Link("identity", lambda mu: np.asarray(mu, dtype=float), lambda eta: np.asarray(eta, dtype=float),
                     lambda eta: np.ones_like(eta, dtype=float)),
    "inverse": Link("inverse", lambda mu: 1.0 / mu, lambda eta: 1.0 / eta, lambda eta: -1.0 / eta**2),
    "sqrt": Link("sqrt", np.sqrt, lambda eta: eta**2, lambda eta: 2.0 * eta),
    "1/mu^2": Link("1/mu^2", lambda mu: 1.0 / mu**2, lambda eta: 1.0 / np.sqrt(eta),
                   lambda eta: -1.0 / (2.0 * eta**1.5)),
}


def _ylogy(y: Array, mu: Array) -> Array:
    """y·log(y/μ) with 0·log 0 = 0 (R's ``y_log_y``)."""
    return special.xlogy(y, y / mu)


# -- deviance residuals (R's dev.resids) ---------------------------------------------------------

def _binomial_dev(y: Array, mu: Array, wt: Array) -> Array:
    return 2.0 * wt * (_ylogy(y, mu) + _ylogy(1.0 - y, 1.0 - mu))


def _poisson_dev(y: Array, mu: Array, wt: Array) -> Array:
    return 2.0 * wt * np.where(y > 0, _ylogy(y, mu) - (y - mu), mu)


def _gamma_dev(y: Array, mu: Array, wt: Array) -> Array:
    with np.errstate(divide="ignore"):
        ly = np.log(np.where(y == 0, 1.0, y / mu))
    return -2.0 * wt * (ly - (y - mu) / mu)


def _invgauss_dev(y: Array, mu: Array, wt: Array) -> Array:
    return wt * (y - mu) ** 2 / (y * mu**2)


def _gaussian_dev(y: Array, mu: Array, wt: Array) -> Array:
    return wt * (y - mu) ** 2


# -- aic (R's family$aic(y, n, mu, wt, dev)) -----------------------------------------------------

def _binomial_aic(y: Array, mu: Array, wt: Array, dev: float) -> float:
    m = np.round(wt)
    k = np.round(m * y)
    ld = (special.gammaln(m + 1.0) - special.gammaln(k + 1.0) - special.gammaln(m - k + 1.0)
          + special.xlogy(k, mu) + special.xlog1py(m - k, -mu))
    return float(-2.0 * np.sum(np.where(m > 0, ld, 0.0)))


def _poisson_aic(y: Array, mu: Array, wt: Array, dev: float) -> float:
    ld = special.xlogy(y, mu) - mu - special.gammaln(y + 1.0)
    return float(-2.0 * np.sum(ld * wt))


def _gamma_aic(y: Array, mu: Array, wt: Array, dev: float) -> float:
    disp = dev / np.sum(wt)
    shape, scale = 1.0 / disp, mu * disp
    ld = special.xlogy(shape - 1.0, y / scale) - y / scale - special.gammaln(shape) - np.log(scale)
    return float(-2.0 * np.sum(ld * wt) + 2.0)


def _invgauss_aic(y: Array, mu: Array, wt: Array, dev: float) -> float:
    sw = np.sum(wt)
    return float(sw * (np.log(dev / sw * 2.0 * np.pi) + 1.0) + 3.0 * np.sum(np.log(y) * wt) + 2.0)


def _gaussian_aic(y: Array, mu: Array, wt: Array, dev: float) -> float:
    n = y.size
    return float(n * (np.log(2.0 * np.pi * dev / n) + 1.0) + 2.0 - np.sum(np.log(wt)))


@dataclass(frozen=True)
class Family:
    """A GLM family with its link.

    Fields: ``name`` R's family name (``binomial``, ``poisson``, ``Gamma``, ``inverse.gaussian``,
    ``gaussian``, ``negative.binomial``); ``link``; ``variance`` V(μ); ``dev_resids`` R's
    ``dev.resids(y, μ, wt)`` (squared deviance residuals); ``aic_fun`` R's ``aic(y, n, μ, wt,
    dev)``; ``theta`` the negative binomial's θ (None otherwise); ``scale`` whether the family has
    a free dispersion (lme4's ``useSc``: Gamma, inverse.gaussian, gaussian).
    """

    name: str
    link: Link
    variance: Callable[[Array], Array]
    dev_resids: Callable[[Array, Array, Array], Array]
    aic_fun: Callable[[Array, Array, Array, float], float]
    theta: float | None = None
    scale: bool = False

    def linkfun(self, mu: Array) -> Array:
        return self.link.linkfun(mu)

    def linkinv(self, eta: Array) -> Array:
        return self.link.linkinv(eta)

    def mu_eta(self, eta: Array) -> Array:
        return self.link.mu_eta(eta)

    def aic(self, y: Array, mu: Array, wt: Array) -> float:
        """R's ``family$aic`` with ``dev`` the sum of the deviance residuals."""
        return self.aic_fun(y, mu, wt, float(np.sum(self.dev_resids(y, mu, wt))))

    @property
    def label(self) -> str:
        """R's printed family name (``Negative Binomial(3.2)`` for the negative binomial)."""
        if self.theta is not None:
            return f"Negative Binomial({self.theta:.4g})"
        return self.name


#: Each family's links as R accepts them; the first is the canonical (default) one.
VALID_LINKS: dict[str, tuple[str, ...]] = {
    "binomial": ("logit", "probit", "cloglog", "cauchit", "log"),
    "poisson": ("log", "identity", "sqrt"),
    "Gamma": ("inverse", "identity", "log"),
    "inverse.gaussian": ("1/mu^2", "inverse", "identity", "log"),
    "gaussian": ("identity", "log", "inverse"),
    "negative.binomial": ("log", "sqrt", "identity"),
}


def _negbin(theta: float) -> tuple[Callable, Callable, Callable]:
    def variance(mu: Array) -> Array:
        return mu + mu**2 / theta

    def dev(y: Array, mu: Array, wt: Array) -> Array:
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = y * np.log(np.maximum(1.0, y) / mu)
            t2 = (y + theta) * np.log((y + theta) / (mu + theta))
        return 2.0 * wt * (t1 - t2)

    def aic(y: Array, mu: Array, wt: Array, dev_: float) -> float:
        term = ((y + theta) * np.log(mu + theta) - y * np.log(mu) + special.gammaln(y + 1.0)
                - theta * np.log(theta) + special.gammaln(theta) - special.gammaln(theta + y))
        return float(2.0 * np.sum(term * wt))

    return variance, dev, aic


def make_family(name: str, link: str | None = None, theta: float | None = None) -> Family:
    """The family ``name`` with ``link`` (default the canonical one), as R builds it.

    Raises
    ------
    mixedbridge.errors.ModelError
        For an unknown family, a link the family does not take (R: "link "x" not available for
        ... family"), or a negative binomial without a positive θ.
    """
    if name not in VALID_LINKS:
        raise ModelError(f"unknown family {name!r}; expected one of {', '.join(VALID_LINKS)}",
                         "/options/family")
    links = VALID_LINKS[name]
    link = links[0] if link is None else link
    if link not in links:
        raise ModelError(f"the link {link!r} is not available for the {name} family; it takes "
                         f"{', '.join(repr(v) for v in links)}", "/options/link")
    lk = LINKS[link]
    if name == "binomial":
        return Family(name, lk, lambda mu: mu * (1.0 - mu), _binomial_dev, _binomial_aic)
    if name == "poisson":
        return Family(name, lk, lambda mu: np.asarray(mu, dtype=float), _poisson_dev, _poisson_aic)
    if name == "Gamma":
        return Family(name, lk, lambda mu: mu**2, _gamma_dev, _gamma_aic, scale=True)
    if name == "inverse.gaussian":
        return Family(name, lk, lambda mu: mu**3, _invgauss_dev, _invgauss_aic, scale=True)
    if name == "gaussian":
        return Family(name, lk, lambda mu: np.ones_like(mu, dtype=float), _gaussian_dev,
                      _gaussian_aic, scale=True)
    if theta is None or not np.isfinite(theta) or theta <= 0:
        raise ModelError("the negative binomial family needs a positive, finite theta", "/options/family")
    variance, dev, aic = _negbin(float(theta))
    return Family(name, lk, variance, dev, aic, theta=float(theta))
