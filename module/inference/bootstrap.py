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

import sys
import time

import numpy as np

from ..engines import native_model
from ..fit import Fit
from ..problem import Problem

#: Print progress to stderr when a bootstrap is expected to take longer than this (seconds).
PROGRESS_AFTER_S = 5.0


def _zlambda_u(model, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Z Λ_θ u for a native model (u in lme4's term order, level-major)."""
    out = np.zeros(model.n)
    k = 0
    for t in model.structure.terms:
        q = t.nlevels * t.p
        b = u[k: k + q].reshape(t.nlevels, t.p) @ t.template(theta).T
        out += np.einsum("na,na->n", t.data.X, b[t.data.codes])
        k += q
    return out


def simulate(model, beta: np.ndarray, theta: np.ndarray, sigma: float, X: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    """One response vector simulated from the model at (β, θ, σ)."""
    q = sum(t.nlevels * t.p for t in model.structure.terms)
    u = rng.standard_normal(q)
    e = rng.standard_normal(model.n)
    if model.weights is not None:
        e = e / np.sqrt(model.weights)
    y = X @ beta + sigma * (_zlambda_u(model, theta, u) + e)
    return y if model.offset is None else y + model.offset


def refit(model, X: np.ndarray, names: list[str], y: np.ndarray, reml: bool, theta0: np.ndarray):
    """A new native model for response y (same random-effects terms), fitted from θ0."""
    from ..lmm import LinearMixedModel

    m = LinearMixedModel(X, list(names), y, list(model.reterms), model.weights, model.offset, reml)
    m.structure.theta0 = np.maximum(np.asarray(theta0, dtype=float), m.structure.lower)
    m.set_theta(m.structure.theta0)
    m.fit(calc_derivs=False)
    m.set_theta(m.optsum.theta)
    return m


def _deviance(m) -> float:
    return m.deviance_ml()


class _Progress:
    def __init__(self, what: str, total: int) -> None:
        self.what, self.total, self.t0, self.last = what, total, time.perf_counter(), 0.0

    def __call__(self, done: int) -> None:
        now = time.perf_counter() - self.t0
        if done < self.total and (now < PROGRESS_AFTER_S or now - self.last < 2.0):
            return
        self.last = now
        eta = now / max(done, 1) * (self.total - done)
        print(f"[mixedbridge] {self.what}: {done}/{self.total} samples, {now:.0f} s"
              + (f", about {eta:.0f} s left" if done < self.total else ""), file=sys.stderr, flush=True)


def sdcor(model, theta: np.ndarray, sigma: float) -> np.ndarray:
    """Variance parameters on lme4's sd/correlation scale in ``oldNames`` order (.sig01, ...,
    .sigma)."""
    out = []
    for t in model.structure.terms:
        T = t.template(theta)
        C = (T @ T.T) * sigma**2
        sd = np.sqrt(np.diag(C))
        rows, cols = np.tril_indices(t.p)
        order = np.lexsort((rows, cols))
        for a, b in zip(rows[order], cols[order]):
            if a == b:
                out.append(sd[a])
            else:
                out.append(C[a, b] / (sd[a] * sd[b]) if sd[a] > 0 and sd[b] > 0 else np.nan)
    out.append(sigma)
    return np.asarray(out)


def sig_names(model) -> list[str]:
    k = sum(t.p * (t.p + 1) // 2 for t in model.structure.terms)
    return [f".sig{i + 1:02d}" for i in range(k)] + [".sigma"]


def confint(problem: Problem, fit: Fit, level: float, nsim: int, seed: int) -> list[dict]:
    """Percentile intervals for (.sig01, ..., .sigma, β) from ``nsim`` parametric bootstrap
    samples of the fitted model."""
    model = native_model(fit)
    theta = np.asarray(fit.theta, dtype=float)
    rng = np.random.default_rng(seed)
    X = problem.fixed.X
    names = sig_names(model) + list(fit.coef_names)
    draws = np.full((nsim, len(names)), np.nan)
    progress = _Progress("bootstrap intervals", nsim)
    for i in range(nsim):
        y = simulate(model, fit.beta, theta, fit.sigma, X, rng)
        m = refit(model, X, fit.coef_names, y, model.reml, theta)
        draws[i] = np.concatenate([sdcor(m, m.theta, m.sigma), m.beta])
        progress(i + 1)
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
    seeds = np.random.SeedSequence(seed).spawn(len(rows))
    progress = _Progress("parametric bootstrap tests", nsim * len(rows))
    done = 0
    for row, ss, (term, cols) in zip(rows, seeds, terms.items()):
        keep = [j for j in range(X.shape[1]) if j not in cols]
        Xr = X[:, keep]
        red = lrt.ml_fit_native(problem, Xr, [names[j] for j in keep])
        rmodel = native_model(red)
        rng = np.random.default_rng(ss)
        stat = row["Chisq"]
        ref = np.empty(nsim)
        for i in range(nsim):
            y = simulate(rmodel, red.beta, red.theta, red.sigma, Xr, rng)
            m_red = refit(rmodel, Xr, [names[j] for j in keep], y, False, red.theta)
            m_full = refit(fmodel, X, names, y, False, full.theta)
            ref[i] = max(0.0, _deviance(m_red) - _deviance(m_full))
            done += 1
            progress(done)
        row["p.value.pb"] = float((1 + np.sum(ref >= stat - 1e-10)) / (1 + nsim))
    return rows
