"""The shortcuts of the native LMM's work at θ̂ (its Fit) give, bit for bit, the numbers of the
numpy routes they replace: Λ_r X Λ_rᵀ for one-column rest blocks by two broadcast products (the
two row-scaling einsum passes and the transposed copy), γ = (−β̃, 1) without ``np.append``,
lme4's ``coef()`` rows without ``np.repeat``, σ̂ by ``math.sqrt`` and ``set_theta``'s test of an
unchanged θ without ``np.array_equal``. Whole fits are pinned by ``test_lmm_small_speed.py`` and
agree with lme4 in ``test_lmm_lme4.py``."""
from __future__ import annotations

import numpy as np
import pytest

from mixedbridge.lmm import api
from mixedbridge.lmm import model as model_module

from .lmm_models import dataset_model as _model


def _same(a: np.ndarray, b: np.ndarray) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.flags.c_contiguous == b.flags.c_contiguous
    assert a.tobytes() == b.tobytes()


def _two_passes(X: np.ndarray, A, rest_T: list[np.ndarray]) -> np.ndarray:
    """The replaced route: Λ_r on the rows, transpose, Λ_r on the rows again."""
    X = X.copy()
    model_module._apply_lambda_rows(X, A, rest_T)
    X = np.ascontiguousarray(X.T)
    model_module._apply_lambda_rows(X, A, rest_T)
    return X


@pytest.mark.parametrize("ds,formula", [
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    ("Pastes", "strength ~ 1 + (1 | batch/cask)"),
])
@pytest.mark.parametrize("signs", [(1.0, 1.0), (-0.7, 0.0), (0.0, -2.5), (-1.3, 3.0)])
def test_lambda_sandwich_one_column_blocks_is_the_two_passes(ds: str, formula: str,
                                                              signs: tuple[float, float]) -> None:
    m = _model(ds, formula)
    A = m.A
    rest = A.rest
    assert rest and all(b.p == 1 for b in rest)
    rest_T = [np.array([[signs[i % 2]]]) for i in range(len(rest))]
    rng = np.random.default_rng(7)
    q = A.q_rest
    S = rng.standard_normal((q, q))
    S[rng.random((q, q)) < 0.3] = 0.0
    S[rng.random((q, q)) < 0.2] = -0.0
    S = np.tril(S) + np.tril(S, -1).T
    _same(model_module._lambda_sandwich(S.copy(), A, rest_T), _two_passes(S, A, rest_T))


def test_lambda_sandwich_many_columns_keeps_the_two_passes() -> None:
    m = _model("Orthodont", "distance ~ age + (1 | Subject) + (age | Sex)")
    A = m.A
    assert any(b.p > 1 for b in A.rest)
    rest_T = [b.template(m.structure.theta0 + 0.3) for b in m.structure.blocks[1:]]
    q = A.q_rest
    S = np.random.default_rng(3).standard_normal((q, q))
    S = np.tril(S) + np.tril(S, -1).T
    _same(model_module._lambda_sandwich(S.copy(), A, rest_T), _two_passes(S, A, rest_T))


@pytest.mark.parametrize("ds,formula", [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    ("Pastes", "strength ~ 1 + (1 | batch/cask)"),
])
def test_quantities_at_theta_hat_are_the_numpy_routes(ds: str, formula: str) -> None:
    m = _model(ds, formula).fit()
    L = m.L
    beta_tilde = m.beta_tilde
    gamma = np.append(-beta_tilde, 1.0)
    g0 = np.einsum("c,cia->ia", gamma, m.A.Ax0)
    u0 = m.u_blocks()[0]
    if not m.A.rest:
        _same(u0, np.einsum("iab,ib->ia", L.M0inv, g0 @ L.T0))
    assert m.sigma == float(np.sqrt(m.pwrss / m.dof))
    fit = api.model_to_fit(m)
    for g, coefs in fit.coef_groups.items():
        blocks = [r for r in fit.ranef if r.group == g]
        vals = np.repeat(np.asarray(fit.beta, dtype=float)[None, :], len(blocks[0].levels), axis=0)
        for r in blocks:
            for j, name in enumerate(r.terms):
                vals[:, list(fit.coef_names).index(name)] += r.modes[:, j]
        _same(coefs.values, vals)


def test_set_theta_same_theta_keeps_the_factor_and_another_refactors() -> None:
    m = _model("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    L = m.set_theta(np.array([1.0, 0.0, 1.0]))
    assert m.set_theta(np.array([1.0, 0.0, 1.0])) is L
    assert m.set_theta(np.array([1.0, 0.0, 0.5])) is not L
    assert m.set_theta(np.array([1.0, np.nan, 0.5])) is not m.set_theta(np.array([1.0, np.nan, 0.5]))
