"""Tests of a GLMM's terms beyond Wald: likelihood-ratio tests per term (afex's ``mixed(...,
method = "LRT", family = ...)``) and their parametric-bootstrap p-values (afex's ``"PB"``,
pbkrtest's ``PBmodcomp``), on a native fit.

* Per term: the model without that term's columns of X (the other columns stay, interactions
  included: afex's type III reduced model built from the model matrix) is refitted with the
  same family, link, weights, offset and nAGQ; χ² = 2(ℓ_full − ℓ_reduced), df = the columns
  dropped. A GLMM is always fitted by maximum likelihood, so the full fit is used as it is.
  For a negative binomial fit, θ is held at the full model's estimate in the refits.
* Bootstrap: responses simulated from the fitted reduced model (b* ~ N(0, Σ_θ̂),
  y* ~ family(g⁻¹(o + Xβ̂ + Zb*))), both models refitted, p = (1 + #{LRT* ≥ LRT})/(1 + nsim).
  numpy's PCG64 seeded with ``seed`` (one child stream per term): reproducible, not R's numbers.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import progress
from ..engines import native_model
from ..errors import ModelError
from ..fit import Fit
from ..glmm.model import GeneralizedLinearMixedModel
from .lrt import chisq_row


def npar(fit: Fit) -> int:
    """``logLik``'s df of a GLMM: p + length(θ), + 1 for a family with a scale (σ)."""
    from ..families import has_scale

    k = len(fit.coef_names) + (0 if fit.theta is None else len(fit.theta))
    return k + (1 if has_scale(fit.family) else 0)


def refit(model: GeneralizedLinearMixedModel, X: np.ndarray, names: list[str],
          y: np.ndarray | None = None, start: np.ndarray | None = None) -> GeneralizedLinearMixedModel:
    """``model``'s GLMM with design X (and response y) fitted anew: same family (θ of a negative
    binomial held), link, prior weights, offset, random effects and nAGQ; no Hessian. With
    ``start`` (θ, β), glmer's second stage only, from there (lme4's ``refit``, which
    ``PBmodcomp`` uses for the simulated responses); else both stages."""
    if X.shape[1] == 0:
        raise ModelError("a likelihood-ratio test would leave a model without fixed effects; "
                         "this engine needs at least one fixed-effect column", "/options/anova")
    r = model.resp
    m = GeneralizedLinearMixedModel(X, names, r.y if y is None else y, model.reterms, model.family,
                                    r.pw, r.offset, model.nagq, model.system)
    if start is None or model.nagq == 0:
        return m.fit(calc_derivs=False)
    return m.fit(calc_derivs=False, start=start)


def _reduced(model: GeneralizedLinearMixedModel, cols: list[int]) -> GeneralizedLinearMixedModel:
    keep = [j for j in range(model.p) if j not in cols]
    return refit(model, model.X[:, keep], [model.names[j] for j in keep])


def term_tests(fit: Fit, terms: dict[str, list[int]], nsim: int | None = None,
               seed: int = 1) -> list[dict]:
    """LRT per term (``terms``: label → the X columns it owns): rows term, npar, logLik,
    deviance, Chisq, Df, p.value; with ``nsim``, also ``p.value.pb`` from the parametric
    bootstrap."""
    full = native_model(fit, "likelihood-ratio tests of a GLMM")
    llf = -0.5 * full.fval
    k_extra = npar(fit) - full.p
    seeds = np.random.SeedSequence(seed).spawn(len(terms)) if nsim else [None] * len(terms)
    with progress.stage("bootstrap-tests", (nsim or 0) * len(terms)) as step:
        done = [0]

        def tick() -> None:
            done[0] += 1
            step(done[0])

        return [_term_row(full, term, cols, llf, k_extra, nsim, ss, tick)
                for (term, cols), ss in zip(terms.items(), seeds)]


def _term_row(full: GeneralizedLinearMixedModel, term: str, cols: list[int], llf: float, k_extra: int,
              nsim: int | None, ss: np.random.SeedSequence | None, tick: Callable[[], None]) -> dict:
    """One term's LRT row (and its bootstrap p-value when ``nsim`` is given)."""
    red = _reduced(full, cols)
    llr = -0.5 * red.fval
    row: dict[str, Any] = {"term": term, "npar": red.p + k_extra, "logLik": llr, "deviance": -2.0 * llr}
    row.update(chisq_row(llr, llf, len(cols)))
    if nsim:
        ref = _bootstrap_lrt(full, red, cols, int(nsim), np.random.default_rng(ss), tick)
        row["p.value.pb"] = float((1 + np.sum(ref >= row["Chisq"] - 1e-10)) / (1 + nsim))
    return row


def _bootstrap_lrt(full: GeneralizedLinearMixedModel, red: GeneralizedLinearMixedModel, cols: list[int],
                   nsim: int, rng: np.random.Generator, tick: Callable[[], None]) -> np.ndarray:
    """The LRT statistic of ``nsim`` responses simulated from the reduced model."""
    keep = [j for j in range(full.p) if j not in cols]
    Xr, names_r = full.X[:, keep], [full.names[j] for j in keep]
    sigma = _sigma(red)
    out = np.full(nsim, np.nan)
    start_f = np.concatenate([full.theta, full.beta])
    start_r = np.concatenate([red.theta, red.beta])
    for i in range(nsim):
        y = simulate(red, rng, sigma)
        try:
            f = refit(full, full.X, full.names, y, start_f)
            r = refit(full, Xr, names_r, y, start_r)
            out[i] = max(0.0, r.fval - f.fval)
        except (ModelError, np.linalg.LinAlgError, FloatingPointError):
            pass
        tick()
    return out[np.isfinite(out)]


def _sigma(model: GeneralizedLinearMixedModel) -> float:
    from ..glmm.api import glmm_sigma

    return glmm_sigma(model)


def simulate(model: GeneralizedLinearMixedModel, rng: np.random.Generator, sigma: float = 1.0) -> np.ndarray:
    """One response (on the family's scale) simulated from a fitted model: new random effects
    b* ~ N(0, Σ_θ̂) and observations from the family around μ* = g⁻¹(o + Xβ̂ + Zb*)."""
    u = rng.standard_normal(model.structure.q)
    eta = model.resp.offset + model.X @ model.beta + model.structure.zlambda(u, model.theta)
    mu = model.family.linkinv(eta)
    return draw(model.family, mu, model.resp.pw, sigma, rng)


def draw(family, mu: np.ndarray, pw: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Observations with means μ from ``family`` (binomial: proportions of ``pw`` trials)."""
    name = family.name
    if name == "binomial":
        n = np.maximum(np.rint(pw), 1).astype(np.int64)
        return rng.binomial(n, np.clip(mu, 0.0, 1.0)) / n
    if name == "poisson":
        return rng.poisson(mu).astype(float)
    if name == "negative.binomial":
        th = float(family.theta)
        return rng.negative_binomial(th, th / (th + mu)).astype(float)
    if name == "Gamma":
        shape = pw / sigma**2
        return rng.gamma(shape, mu / shape)
    if name == "inverse.gaussian":
        return rng.wald(mu, pw / sigma**2)
    return rng.normal(mu, sigma / np.sqrt(pw))
