"""The Satterthwaite t and F tests around the covariance of the variance parameters take short
routes that must give the longer routes' numbers exactly: a coefficient's own test
(:func:`~mixedbridge.inference.satterthwaite.coef_test`, and :func:`contest1d` of a unit
contrast) reads lᵀβ, lᵀCl and lᵀJ_jl off β̂, C and the ∂C/∂φ_j's diagonals instead of forming
the products, once per covariance; the distributions' scalar route serves an F's integer NumDF.
Each is pinned here to a copy of the route it replaced (bit for bit), on several models, with
non-finite pieces, signed zeros and invalid parameters. (The contrasts' routes:
test_contrast_routes.py.)"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

import mixedbridge
from mixedbridge import distributions as dist
from mixedbridge.engines import native_model
from mixedbridge.inference import satterthwaite as sat

MODELS = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", True),
    ("sleepstudy", "Reaction ~ Days + (Days || Subject)", False),
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", True),
    ("Orthodont", "distance ~ age * Sex + (age | Subject)", True),
    ("cake", "angle ~ recipe * temperature + (1 | recipe:replicate)", True),
]


def _old_contest1d(vp: sat.VarparCovariance, L: np.ndarray, rhs: float = 0.0) -> dict:
    """contest1d as it was: every product formed."""
    L = np.ravel(L)
    est = float(L @ vp.beta)
    v = sat._qform(L, vp.vcov)
    g = np.array([sat._qform(L, J) for J in vp.jac])
    df = 2.0 * v**2 / sat._qform(g, vp.A)
    se = np.sqrt(v)
    t = (est - rhs) / se
    return {"estimate": est, "std.error": se, "df": df, "statistic": t,
            "p.value": float(2.0 * dist.t.sf(abs(t), df))}


def _same_row(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert type(a[k]) is type(b[k]), k
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        assert np.signbit(a[k]) == np.signbit(b[k]), k


def _fitted(dataset: str, formula: str, reml: bool):
    res = mixedbridge.run({"analysis": "lmm", "data": {"dataset": dataset}, "formula": formula,
                           "options": {"reml": reml, "df_method": "asymptotic", "anova": False}})
    assert res.outcome is not None
    fit = res.outcome.lead.fit
    model = native_model(fit)
    return res, sat.varpar_covariance(model, fit.theta, estimates=(fit.beta, fit.vcov))


@pytest.fixture(scope="module", params=MODELS, ids=lambda m: f"{m[0]}-{m[2]}")
def varpar(request):
    return _fitted(*request.param)[1]


def test_coef_test_is_the_products_route(varpar):
    p = len(varpar.beta)
    E = np.eye(p)
    assert varpar.unit_gradients is not None
    for i in range(p):
        old = _old_contest1d(varpar, E[i])
        _same_row(sat.coef_test(varpar, i), old)
        _same_row(sat.contest1d(varpar, E[i]), old)
        _same_row(sat.contest1d(varpar, -0.0 * np.ones(p) + E[i]), old)
        _same_row(sat.coef_test(varpar, i, rhs=1.5), _old_contest1d(varpar, E[i], rhs=1.5))


def test_other_contrasts_keep_the_products(varpar):
    p = len(varpar.beta)
    for L in (np.ones(p), 2.0 * np.eye(p)[0], -np.eye(p)[p - 1]):
        _same_row(sat.contest1d(varpar, L), _old_contest1d(varpar, L))
    for test in (sat.contest1d, _old_contest1d):
        with pytest.raises(ZeroDivisionError):
            test(varpar, np.zeros(p))


@pytest.mark.parametrize("where", ["jac", "vcov", "beta"])
def test_non_finite_pieces_take_the_products(varpar, where):
    """A nan or inf anywhere turns the products nan (0·inf) where reading off would not."""
    vp = dataclasses.replace(varpar, jac=[J.copy() for J in varpar.jac], vcov=varpar.vcov.copy(),
                             beta=varpar.beta.copy())
    p = len(vp.beta)
    for bad in (np.inf, np.nan):
        if where == "jac":
            vp.jac[-1][p - 1, 0] = bad
        elif where == "vcov":
            vp.vcov[p - 1, 0] = bad
        else:
            vp.beta[p - 1] = bad
        vp.__dict__.pop("unit_gradients", None)
        assert vp.unit_gradients is None
        E = np.eye(p)
        with np.errstate(all="ignore"):
            for i in range(p):
                _same_row(sat.coef_test(vp, i), _old_contest1d(vp, E[i]))


def test_signed_zero_gradient_reads_as_the_products(varpar):
    """A -0 in β̂ or on a diagonal (negatives beside it) gives what the products give (+0)."""
    vp = dataclasses.replace(varpar, jac=[J.copy() for J in varpar.jac], vcov=varpar.vcov.copy(),
                             beta=varpar.beta.copy())
    p = len(vp.beta)
    vp.jac[0][:, :] = -1.0
    vp.jac[0][p - 1, p - 1] = -0.0
    vp.vcov[:, p - 1] = -1.0
    vp.vcov[p - 1, p - 1] = -0.0
    vp.beta[:] = -1.0
    vp.beta[p - 1] = -0.0
    assert vp.unit_gradients is not None
    E = np.eye(p)
    with np.errstate(all="ignore"):
        for i in range(p):
            _same_row(sat.coef_test(vp, i), _old_contest1d(vp, E[i]))


@pytest.mark.parametrize("dfn", [0, 1, 3, -2])
@pytest.mark.parametrize("dfd", [1, 17, 3.3, 0.0, float("nan")])
@pytest.mark.parametrize("x", [-1.0, 0.0, 0.7, 4.0, float("inf"), float("nan"), 2])
def test_scalar_integer_parameters(dfn, dfd, x):
    """ints take the scalar route and give scipy.stats' (and the array route's) values."""
    with np.errstate(all="ignore"):
        for ours, theirs, array in (
                (dist.f.sf(x, dfn, dfd), stats.f.sf(x, dfn, dfd), dist.f.sf(np.array(x, float), dfn, dfd)),
                (dist.t.sf(x, dfn), stats.t.sf(x, dfn), dist.t.sf(np.array(x, float), dfn)),
                (dist.chi2.sf(x, dfn), stats.chi2.sf(x, dfn), dist.chi2.sf(np.array(x, float), dfn))):
            assert type(ours) is type(theirs) is type(array)
            np.testing.assert_array_equal(ours, theirs)
            np.testing.assert_array_equal(ours, array)


def test_coef_tests_are_remembered_per_covariance(varpar):
    """The anova's one-column term with contrast e_i gets the coefficient's row; a caller's edit
    of a returned row does not reach the remembered one."""
    vp = dataclasses.replace(varpar)
    p = len(vp.beta)
    E = np.eye(p)
    for i in range(p):
        row = sat.coef_test(vp, i)
        row["df"] = -1.0
        old = _old_contest1d(vp, E[i])
        _same_row(sat.coef_test(vp, i), old)
        _same_row(sat.contest_md(vp, E[[i]]), sat._ftable(old["statistic"] ** 2, 1, old["df"], vp.sigma))
    assert sorted(vp.coef_tests) == list(range(p))
