"""Parametric bootstrap for linear mixed models (lme4's ``simulate`` / ``bootMer``, pbkrtest's
``PBmodcomp``), seeded and reproducible.

A sample from a fitted model: u* ~ N(0, I_q), ε* ~ N(0, I_n),
y* = Xβ̂ + o + σ̂·(ZΛ_θ̂u* + ε*/√w). Each sample is refitted with the same criterion, starting
from θ̂ (as lme4's ``refit``). Percentile intervals use the sample quantiles; the bootstrap
p-value of a likelihood-ratio test is (1 + #{LRT* ≥ LRT})/(1 + nsim), the samples drawn from
the reduced (null) model.

Random numbers: numpy's PCG64 generator seeded with ``seed`` (one child stream per test), so a
seed gives the same numbers on every machine; R's numbers differ, so bootstrap results are not
cross-checked against R, only repeated.
"""
from __future__ import annotations

import numpy as np

from .. import progress
from ..engines import native_model
from ..fit import Fit
from ..problem import Problem


def simulate(model, beta: np.ndarray, theta: np.ndarray, sigma: float,
             rng: np.random.Generator) -> np.ndarray:
    """One response vector simulated from the model at (β, θ, σ)."""
    u = rng.standard_normal(model.structure.q)
    e = rng.standard_normal(model.n)
    if model.weights is not None:
        e = e / np.sqrt(model.weights)
    y = model.X @ beta + sigma * (model.zlambda(u, theta) + e)
    return y if model.offset is None else y + model.offset


def confint(problem: Problem, fit: Fit, level: float, nsim: int, seed: int) -> list[dict]:
    """Percentile intervals for (.sig01, ..., .sigma, β) from ``nsim`` parametric bootstrap
    samples of the fitted model."""
    return intervals(native_model(fit), level, nsim, seed)


def intervals(model, level: float, nsim: int, seed: int) -> list[dict]:
    """Percentile intervals for (.sig01, ..., .sigma, β) from ``nsim`` parametric bootstrap
    samples of a fitted native model; a correlation next to a zero sd counts as 0 (lme4's
    ``Cv_to_Sv``, which ``confint(method = "boot")`` uses)."""
    theta = np.asarray(model.optsum.theta, dtype=float)
    model.set_theta(theta)
    beta, sigma = model.beta, model.sigma
    rng = np.random.default_rng(seed)
    names = model.structure.sig_names() + list(model.names)
    draws = np.full((nsim, len(names)), np.nan)
    with progress.stage("bootstrap", nsim) as step:
        for i in range(nsim):
            y = simulate(model, beta, theta, sigma, rng)
            m = model.refit(y, theta0=theta)
            draws[i] = np.concatenate([m.structure.sdcor(m.theta, m.sigma), m.beta])
            step(i + 1)
    a = (1.0 - level) / 2.0
    lo = np.nanquantile(draws, a, axis=0)
    hi = np.nanquantile(draws, 1.0 - a, axis=0)
    return [{"parameter": n, "lower": float(lo[j]), "upper": float(hi[j])} for j, n in enumerate(names)]


def term_tests(problem: Problem, fit: Fit, terms: dict[str, list[int]], nsim: int, seed: int) -> list[dict]:
    """Likelihood-ratio tests per term with parametric bootstrap p-values (``p.value.pb``) next
    to the χ² ones."""
    from . import lrt

    rows, full = lrt.term_tests(problem, fit, terms)
    fmodel = native_model(full)
    X, names = problem.fixed.X, problem.fixed.names
    reduced = []
    for cols in terms.values():
        keep = [j for j in range(X.shape[1]) if j not in cols]
        reduced.append(native_model(lrt.ml_fit_native(problem, X[:, keep], [names[j] for j in keep])))
    pb_pvalues(rows, fmodel, reduced, nsim, seed)
    return rows


def pb_pvalues(rows: list[dict], full, reduced: list, nsim: int, seed: int) -> None:
    """Add ``p.value.pb`` to each LRT row: samples simulated from the reduced native model
    (``reduced``, one per row), both models refitted by ML, (1 + #{LRT* ≥ LRT})/(1 + nsim)."""
    seeds = np.random.SeedSequence(seed).spawn(len(rows))
    done = 0
    theta_full = np.asarray(full.optsum.theta, dtype=float)
    with progress.stage("bootstrap-tests", nsim * len(rows)) as step:
        for row, ss, red in zip(rows, seeds, reduced):
            rng = np.random.default_rng(ss)
            theta_red = np.asarray(red.optsum.theta, dtype=float)
            beta_red, sigma_red = red.beta, red.sigma
            ref = np.empty(nsim)
            for i in range(nsim):
                y = simulate(red, beta_red, theta_red, sigma_red, rng)
                m_red = red.refit(y, reml=False, theta0=theta_red)
                m_full = full.refit(y, reml=False, theta0=theta_full)
                ref[i] = max(0.0, m_red.deviance_ml() - m_full.deviance_ml())
                done += 1
                step(done)
            row["p.value.pb"] = float((1 + np.sum(ref >= row["Chisq"] - 1e-10)) / (1 + nsim))
