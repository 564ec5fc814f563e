"""Stage 2's closing Newton step (glmm/optimize.py ``newton_step``): exact on a quadratic, held
at a bound, refused without a positive definite Hessian or a decrease; and the property it is
there for: the optimum no longer depends on BOBYQA's path (its initial steps).

The glmer agreement of the fits it ends is checked in test_glmm_native.py (stored glmer values,
R calls in tests/data/glmm/glmm_reference.R) and test_glmm_r_agreement.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixedbridge.design import fixed_design, random_designs
from mixedbridge.fit import NativeBackend
from mixedbridge.formula import parse_formula
from mixedbridge.frame import model_frame
from mixedbridge.glmm import fit_glmm
from mixedbridge.glmm import model as glmm_model
from mixedbridge.glmm.optimize import newton_step

DATA = Path(__file__).resolve().parent / "data" / "glmm"

A = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
XSTAR = np.array([0.3, -1.0, 2.0])


def quad(x: np.ndarray) -> float:
    d = x - XSTAR
    return float(0.5 * d @ A @ d + 7.0)


def test_newton_step_solves_a_quadratic():
    x = XSTAR + np.array([0.01, -0.02, 0.03])
    out = newton_step(quad, x, quad(x), A @ (x - XSTAR), A, np.full(3, -np.inf), 0)
    assert out is not None
    np.testing.assert_allclose(out[0], XSTAR, rtol=0, atol=1e-12)
    assert out[1] == pytest.approx(7.0, abs=1e-12)


def test_newton_step_keeps_a_theta_at_its_bound():
    x = XSTAR + np.array([0.01, -0.02, 0.03])
    lower = np.array([x[0], -np.inf, -np.inf])  # θ₁ on its bound: not moved
    out = newton_step(quad, x, quad(x), A @ (x - XSTAR), A, lower, 1)
    assert out is not None
    assert out[0][0] == x[0]
    g = A @ (out[0] - XSTAR)
    np.testing.assert_allclose(g[1:], 0.0, atol=1e-12)  # optimum over the free parameters


def test_newton_step_refused_without_curvature_or_decrease():
    x = XSTAR + 0.01
    g = A @ (x - XSTAR)
    assert newton_step(quad, x, quad(x), g, -A, np.full(3, -np.inf), 0) is None
    assert newton_step(quad, x, quad(x), -g, A, np.full(3, -np.inf), 0) is None  # uphill


def _cbpp_glmm():
    """The cbpp binomial fit (proportions with trials as weights), through fit_glmm."""
    df = pd.read_csv(DATA / "cbpp.csv")
    for col in ("herd", "period"):
        df[col] = df[col].astype(str)
    df = df.assign(y_=df["incidence"] / df["size"])
    desc = parse_formula("y_ ~ period + (1 | herd)")
    frame = model_frame(df, desc, {}, {"herd", "period"})
    fd = fixed_design(desc, frame)
    return fit_glmm(fd.X, fd.names, frame.response(desc), random_designs(desc, frame), family="binomial",
                    weights=df["size"].to_numpy(float)[frame.data.index.to_numpy()])


def _cbpp_fit() -> tuple[float, np.ndarray, np.ndarray]:
    fit = _cbpp_glmm()
    return float(fit.deviance), np.concatenate([fit.theta, fit.beta]), np.sqrt(np.diag(fit.vcov))


def test_optimum_does_not_depend_on_bobyqas_steps(monkeypatch):
    """From half and from all of lme4's initial steps: the same optimum (measured: criterion
    6e-10 apart, β 1.6e-5 SE). Without the Newton step the two stopping points are 1.3e-6 apart
    in the criterion and up to 7e-4 SE in β, so both bounds here would fail."""
    dev_half, x_half, se = _cbpp_fit()
    monkeypatch.setattr(glmm_model, "POLISHED_STEP_SCALE", 1.0)
    dev_full, x_full, _ = _cbpp_fit()
    assert abs(dev_half - dev_full) < 1e-8
    assert np.max(np.abs(x_half[1:] - x_full[1:]) / se) < 1e-4


def _cbpp_model() -> glmm_model.GeneralizedLinearMixedModel:
    fit = _cbpp_glmm()
    assert isinstance(fit.backend, NativeBackend)
    return fit.backend.model


def test_lme4_criterion_kept_starts_give_the_values_of_fresh_ones(monkeypatch):
    """lme4's first iterate is kept per θ for the Hessian's evaluations (which return to each θ
    in turn): the values along such a path are bit for bit those of a fresh evaluation, and the
    store stays within LME4_STARTS_KEPT entries."""
    monkeypatch.setattr(glmm_model, "LME4_STARTS_KEPT", 3)
    model = _cbpp_model()
    x = np.concatenate([model.theta, model.beta])
    e0, e1 = np.eye(len(x))[0] * 1e-4, np.eye(len(x))[1] * 1e-4
    path = [x + e0, x, x + e0 + e1, x - e0, x + e1, x + e0, x - e0 - e1, x + 2 * e0, x + e0]
    calls = []

    def counted(*args):
        calls.append(1)
        return start(*args)

    start = glmm_model.lme4_start
    monkeypatch.setattr(glmm_model, "lme4_start", counted)
    kept = [model.deviance_as_lme4(p) for p in path]
    # θ's: +δ, 0, (+δ), -δ, (0), (+δ), (-δ), +2δ (full: emptied), +δ; in parentheses kept ones
    assert len(calls) == 5
    assert len(model._lme4_start) <= 3
    fresh = []
    for p in path:
        model._lme4_start.clear()
        fresh.append(model.deviance_as_lme4(p))
    assert kept == fresh
    assert len(calls) == 5 + len(path)
