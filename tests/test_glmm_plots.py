"""Plots of a GLMM: deviance and Pearson residuals against μ̂, caterpillar and random-effects
Q-Q plots from the conditional modes, and estimated means on the response scale (probabilities
with back-transformed intervals, as the emmeans table with type = "response")."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from .conftest import unavailable

if importlib.util.find_spec("matplotlib") is None:
    unavailable("matplotlib is not installed (pip install 'mixedbridge[plots]')", module_level=True)

from mixedbridge import spec as specmod  # noqa: E402
from mixedbridge.analysis import prepare  # noqa: E402
from mixedbridge.emmeans import emmeans_tables  # noqa: E402
from mixedbridge.plots import describe, figures, marginal_means  # noqa: E402

glmm_api = pytest.importorskip("mixedbridge.glmm.api", reason="the native GLMM estimator (glmm-core)")


@pytest.fixture(scope="module")
def cbpp():
    spec = specmod.validate({"analysis": "glmm", "formula": "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                             "data": {"dataset": "cbpp"}, "options": {"family": "binomial"}})
    pr = prepare(spec)
    fit = glmm_api.fit_glmm(pr.fixed.X, pr.fixed.names, pr.y, pr.reterms, family="binomial",
                            weights=pr.frame.weights)
    return pr, fit


def test_residual_plot_shows_deviance_and_pearson_residuals(cbpp):
    pr, fit = cbpp
    [drawn] = figures(pr, fit, {"type": "residuals"})
    axes = describe(drawn.figure)["axes"]
    assert [a["ylabel"] for a in axes] == ["Deviance residuals", "Pearson residuals"]
    assert all(a["roles"]["data"]["points"] == fit.nobs for a in axes)
    assert all("smooth" in a["roles"] for a in axes)


@pytest.mark.parametrize("kind", ["caterpillar", "ranef_qq"])
def test_caterpillar_and_ranef_qq_draw_every_herd(cbpp, kind):
    pr, fit = cbpp
    [drawn] = figures(pr, fit, {"type": kind})
    assert describe(drawn.figure)["totals"]["data"]["points"] == 15  # the 15 herds


def test_means_plot_uses_response_scale_probabilities(cbpp):
    pr, fit = cbpp
    means = marginal_means(pr, fit, "period")
    tables, _ = emmeans_tables(pr, fit, {"specs": "period", "type": "response"})
    prob = tables[0].to_pandas()["prob"].astype(float).to_numpy()
    np.testing.assert_allclose(means.table["mean"], prob, rtol=1e-12)
    assert np.all((means.table["lower"] > 0) & (means.table["upper"] < 1))
    link = marginal_means(pr, fit, "period", scale="link")
    np.testing.assert_allclose(1 / (1 + np.exp(-link.table["mean"])), prob, rtol=1e-10)
    [drawn] = figures(pr, fit, {"type": "emmeans", "horizontal": "period", "background": "jitter"})
    assert any("back-transformed" in n for n in drawn.notes)
