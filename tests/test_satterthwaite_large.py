"""The Satterthwaite route for models above ``ANALYTIC_MAX_Q`` random effects: Richardson
differences with :data:`~mixedbridge.inference.satterthwaite.DIFFERENCES` (two levels from
h = 0.01·|x|, the Jacobian at the Hessian's points) give lmerTest's numbers, i.e. those of
numDeriv's settings as lmerTest calls them (:data:`LMERTEST_DIFFERENCES`), to far inside the
project's 2e-3 tolerance, with fewer factorizations. lmerTest's df themselves on fhch2010 are
checked in test_crosscheck.py."""
from __future__ import annotations

import numpy as np
import pytest

import mixedbridge
from mixedbridge.engines import native_model
from mixedbridge.inference import satterthwaite as sat

FORMULA = "log_rt ~ task * stimulus + (1 + stimulus | id) + (1 | item)"


@pytest.fixture(scope="module", params=["treatment", "sum"])
def model(request):
    res = mixedbridge.run({"analysis": "lmm", "data": {"dataset": "fhch2010"}, "formula": FORMULA,
                           "options": {"contrasts": request.param, "df_method": "asymptotic"}})
    return native_model(res.outcome.lead.fit)


def _counted(model, monkeypatch) -> list[int]:
    """Count the factorizations (new θ in the memo) the numerical route makes."""
    n = [0]
    inner = model.summary_at

    def summary_at(theta, memo):
        n[0] += theta.tobytes() not in memo
        return inner(theta, memo)

    monkeypatch.setattr(model, "summary_at", summary_at)
    return n


def _dfs(model, H: np.ndarray, J: np.ndarray) -> np.ndarray:
    """Satterthwaite df of every coefficient and of the joint test of all but the intercept."""
    p = model.p
    vp = sat.VarparCovariance(np.zeros(0), 2.0 * np.linalg.pinv(H), [J[:, j].reshape(p, p, order="F")
                                                                    for j in range(J.shape[1])],
                              model.vcov(), model.beta, model.sigma, np.zeros(0))
    one = [sat.contest1d(vp, row)["df"] for row in np.eye(p)]
    return np.array(one + [sat.contest_md(vp, np.eye(p)[1:])["DenDF"]])


def test_cheap_differences_agree_with_lmertest_settings(model, monkeypatch):
    assert not sat.analytic_applies(model)
    theta = np.asarray(model.theta, dtype=float).copy()
    phi = np.append(theta, model.sigma)
    count = _counted(model, monkeypatch)
    H_ref, J_ref = sat.numeric_derivatives(model, phi, bool(model.reml), sat.LMERTEST_DIFFERENCES)
    n_ref, count[0] = count[0], 0
    H, J = sat.numeric_derivatives(model, phi, bool(model.reml))
    k, r = theta.size, sat.DIFFERENCES.levels
    assert (n_ref, count[0]) == (8 * k + 4 * k * (k - 1) + 8 * k + 1, 2 * r * k + r * k * (k - 1) + 1)
    assert np.array_equal(model.theta, theta)
    assert np.allclose(H, H_ref, rtol=1e-5, atol=1e-7 * np.abs(H_ref).max())
    assert np.allclose(J, J_ref, rtol=1e-5, atol=1e-7 * np.abs(J_ref).max())
    df, df_ref = _dfs(model, H, J), _dfs(model, H_ref, J_ref)
    assert np.max(np.abs(df / df_ref - 1.0)) < 1e-6
