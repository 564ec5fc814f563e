"""The random-effects term as the one owner of θ: layout, bounds, lme4's names, θ ↔ sd/cor
(with lme4's two conventions at a zero sd), Z and Λ; and the model's public methods that the
inference layer uses (objective with and without σ, vcov, refit, zlambda)."""
from __future__ import annotations

import numpy as np
import pytest

from mixedbridge.design import ReTermData
from mixedbridge.lmm.remat import ReTerm, build_structure, sdcor_layout, sig_names

from .lmm_models import dataset_model as _model


def _term(names: list[str], nlevels: int = 3, start: int = 0) -> ReTerm:
    n = 2 * nlevels
    X = np.column_stack([np.ones(n)] + [np.arange(n, dtype=float) ** k for k in range(1, len(names))])
    data = ReTermData("g", [f"l{i}" for i in range(nlevels)], np.repeat(np.arange(nlevels), 2), X, names)
    return ReTerm.from_data(data, start)



def test_term_theta_layout_bounds_and_names():
    t = _term(["(Intercept)", "x", "x2"], start=2)
    np.testing.assert_array_equal(t.theta_index, [2, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(t.rows, [0, 1, 2, 1, 2, 2])
    np.testing.assert_array_equal(t.cols, [0, 0, 0, 1, 1, 2])
    np.testing.assert_array_equal(t.lower, [0, -np.inf, -np.inf, 0, -np.inf, 0])
    np.testing.assert_array_equal(t.theta0, [1, 0, 0, 1, 0, 1])
    # broom.mixed / lme4 names: tidy(fm) "sd__(Intercept)", "cor__(Intercept).x", ...
    assert t.param_names() == ["sd__(Intercept)", "cor__(Intercept).x", "cor__(Intercept).x2",
                               "sd__x", "cor__x.x2", "sd__x2"]
    assert [name for _, _, name in sdcor_layout(t.names)] == t.param_names()
    assert sig_names(3) == [".sig01", ".sig02", ".sig03", ".sigma"]


def test_zero_sd_correlation_as_lme4():
    """lme4 1.1-31, sleepstudy's Days with simulated slopes only (set.seed(18); b <- rnorm(18, 0,
    8); y <- 250 + 10*Days + b[Subject]*Days + rnorm(180, 0, 30)), fm <- lmer(y ~ Days +
    (Days | Subject)): θ = (0, 0.145439693295318, 0.288831404900210), σ = 29.781796806163;
    as.data.frame(VarCorr(fm))$sdcor = 0, 9.63091391039493, NaN (the correlation);
    lme4:::Cv_to_Sv(θ, n = 2, s = σ) (confint's scale) = 0, 0, 9.63091391039493, 29.78179680616295."""
    t = _term(["(Intercept)", "Days"])
    theta = np.array([0.0, 0.145439693295318, 0.288831404900210])
    sigma = 29.781796806163
    sd, corr = t.sd_corr(theta, sigma)
    np.testing.assert_allclose(sd, [0.0, 9.63091391039493], rtol=1e-12)
    assert np.isnan(corr[0, 1]) and np.isnan(corr[1, 0])
    np.testing.assert_array_equal(np.diag(corr), [1.0, 1.0])
    np.testing.assert_allclose(t.sdcor(theta, sigma), [0.0, 0.0, 9.63091391039493], rtol=1e-12)
    s = build_structure([ReTermData("g", t.levels, t.codes, t.X, t.names)])
    np.testing.assert_allclose(s.sdcor(theta, sigma), [0.0, 0.0, 9.63091391039493, 29.78179680616295],
                               rtol=1e-12)
    # lme4:::Cv_to_Sv(c(0, 0.5, 0.3), n = 2) = 0, 0, 0.58309518948453
    np.testing.assert_allclose(t.sdcor(np.array([0.0, 0.5, 0.3]), 1.0), [0.0, 0.0, 0.58309518948453],
                               rtol=1e-12)


def test_sdcor_round_trip():
    rng = np.random.default_rng(3)
    s = build_structure([
        ReTermData("g", ["a", "b", "c"], np.array([0, 0, 1, 1, 2, 2]),
                   np.column_stack([np.ones(6), np.arange(6.0), np.arange(6.0) ** 2]), ["(Intercept)", "x", "x2"]),
        ReTermData("h", ["a", "b"], np.array([0, 1, 0, 1, 0, 1]), np.ones((6, 1)), ["(Intercept)"]),
    ])
    for _ in range(5):
        theta = rng.uniform(-1, 1, s.ntheta)
        theta = np.where(s.lower == 0, np.abs(theta) + 0.1, theta)
        sigma = rng.uniform(0.5, 2.0)
        sc = s.sdcor(theta, sigma)
        lo, hi = s.sdcor_bounds()
        assert np.all(sc >= lo) and np.all(sc <= hi)
        np.testing.assert_allclose(s.theta_from_sdcor(sc), theta, rtol=1e-10, atol=1e-12)


def test_amalgamated_block_placement_and_lambda():
    """(Days | Subject) + (0 + I(Days^2) | Subject): two lme4 terms, one computational block."""
    model = _model("sleepstudy", "Reaction ~ Days + (Days | Subject) + (0 + I(Days^2) | Subject)")
    s = model.structure
    assert len(s.terms) == 2 and len(s.blocks) == 1
    assert s.placement == [(0, 0), (0, 2)]
    blk = s.blocks[0]
    theta = np.array([0.9, -0.2, 0.4, 0.3])
    T = blk.template(theta)
    np.testing.assert_array_equal(T[:2, :2], s.terms[0].template(theta))
    np.testing.assert_array_equal(T[2:, 2:], s.terms[1].template(theta))
    assert T[2, 0] == T[2, 1] == 0.0
    np.testing.assert_array_equal(s.lower, [0, -np.inf, 0, 0])
    # ZΛΛᵀZᵀ from the lme4-ordered terms equals the one from the amalgamated block
    ZL = (s.z_matrix() @ s.lambda_matrix(theta)).toarray()
    ZLb = (blk.z_block() @ blk.lambda_block(theta)).toarray()
    np.testing.assert_allclose(ZL @ ZL.T, ZLb @ ZLb.T, rtol=1e-12, atol=1e-9)
    u = np.random.default_rng(1).standard_normal(s.q)
    np.testing.assert_allclose(model.zlambda(u, theta), ZL @ u, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("reml", [True, False])
def test_objective_at_sigma_and_vcov(reml):
    model = _model("sleepstudy", "Reaction ~ Days + (Days | Subject)", reml=reml).fit()
    theta = model.optsum.theta * 1.1
    model.set_theta(theta)
    sigma = model.sigma
    assert model.objective(theta, sigma=sigma) == pytest.approx(model.objective(theta), rel=1e-12)
    assert model.objective(theta, sigma=1.2 * sigma) > model.objective(theta)
    other = model.objective(theta, reml=not reml, sigma=sigma)
    assert other != pytest.approx(model.objective(theta, sigma=sigma), rel=1e-6)
    V = model.vcov(theta, 2.0 * sigma)
    np.testing.assert_allclose(V, 4.0 * model.vcov(theta), rtol=1e-12)


def test_refit_same_response_same_estimates():
    model = _model("sleepstudy", "Reaction ~ Days + (Days | Subject)").fit()
    again = model.refit(model.y)
    np.testing.assert_allclose(again.optsum.theta, model.optsum.theta, rtol=1e-10)
    np.testing.assert_allclose(again.beta, model.beta, rtol=1e-10)
    ml = model.refit(model.y, reml=False, theta0=model.optsum.theta)
    assert not ml.reml and model.reml
    # R: logLik(lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE)) = -875.969672244495
    assert ml.deviance_ml() == pytest.approx(2 * 875.969672244495, rel=1e-8)
