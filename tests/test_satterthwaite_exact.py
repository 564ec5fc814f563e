"""The exact Satterthwaite route of small models (analytic Hessian of the deviance in φ = (θ, σ)
and Jacobian of Var(β̂), :func:`~mixedbridge.inference.blockedderivatives.dense_derivatives`)
gives lmerTest's
numbers: it agrees with numDeriv's differences (lmerTest's own route,
:func:`~mixedbridge.inference.satterthwaite.numeric_derivatives`) on REML and ML fits of
correlated, crossed and nested models. lmerTest's df themselves are checked in
test_inference_native.py and test_crosscheck.py."""
from __future__ import annotations

import numpy as np
import pytest

import mixedbridge
from mixedbridge.engines import native_model
from mixedbridge.inference.blockedderivatives import dense_derivatives
from mixedbridge.inference.satterthwaite import analytic_applies, numeric_derivatives

MODELS = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", True),
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", False),
    ("sleepstudy", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", True),
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", True),
    ("Pastes", "strength ~ 1 + (1 | batch/cask)", True),
]


@pytest.mark.parametrize(("dataset", "formula", "reml"), MODELS)
def test_exact_derivatives_equal_numderiv(dataset, formula, reml):
    res = mixedbridge.run({"analysis": "lmm", "data": {"dataset": dataset}, "formula": formula,
                           "options": {"reml": reml, "df_method": "asymptotic"}})
    model = native_model(res.outcome.lead.fit)
    assert analytic_applies(model)
    theta = np.asarray(model.optsum.theta, dtype=float)
    model.set_theta(theta)
    phi = np.append(theta, model.sigma)
    H_num, J_num = numeric_derivatives(model, phi, reml)
    H, J = dense_derivatives(model)
    assert np.allclose(H, H_num, rtol=1e-6, atol=1e-8 * np.abs(H_num).max())
    assert np.allclose(J, J_num, rtol=1e-6, atol=1e-8 * np.abs(J_num).max())


def test_exact_derivatives_with_prior_weights_equal_numderiv():
    """With prior weights the derivatives are the whitened model's (the cross-products carry W);
    numDeriv differentiates the weighted deviance itself."""
    from mixedbridge.datasets import load

    df, _ = load("sleepstudy")
    df = df.assign(w=1.0 + (df["Days"] % 3) / 2.0)
    res = mixedbridge.run({"analysis": "lmm", "data": {"dataset": "x"}, "formula": "Reaction ~ Days + (Days | Subject)",
                           "options": {"weights": "w", "df_method": "asymptotic"}}, data=df)
    model = native_model(res.outcome.lead.fit)
    assert analytic_applies(model) and model.weights is not None
    theta = np.asarray(model.optsum.theta, dtype=float)
    model.set_theta(theta)
    H_num, J_num = numeric_derivatives(model, np.append(theta, model.sigma), True)
    H, J = dense_derivatives(model)
    assert np.allclose(H, H_num, rtol=1e-6, atol=1e-8 * np.abs(H_num).max())
    assert np.allclose(J, J_num, rtol=1e-6, atol=1e-8 * np.abs(J_num).max())
