"""The single-scalar-term quadrature path of the native GLMM (``mixedbridge.glmm.scalar``,
nAGQ > 1) against the general path (``mixedbridge.glmm.pirls``/``.quadrature`` through the
blocked system), which the R-agreement tests check against glmer: the same criterion at given
(θ, β), the same stage-1 (joint) modes, all points at once the same as one by one, and the same
fits. Laplace and nAGQ = 0 fits stay on the general path (bit for bit: a flat optimum's
optimizer path follows the criterion's last bits).

Tolerances: the criteria are the same numbers formed in another order, so they agree to
rounding (1e-11 relative). The fitted estimates are where BOBYQA stops (``xtol_abs`` 1e-7 on
(θ, β) in stage 2), and its path moves with the criterion's last digits, so they are compared
to 1e-8 (they agree to about 1e-9); the fitted criterion to 1e-10 relative. Standard errors come from
a finite-difference Hessian with step 1e-4, which scales rounding in the criterion by 1e8:
compared to 1e-5 relative. The indicator and nested-chain products are checked exactly
against the sparse products they replace (the same sums in the same order)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixedbridge.design import fixed_design, random_designs
from mixedbridge.formula import parse_formula
from mixedbridge.frame import model_frame
from mixedbridge.glmm import make_family
from mixedbridge.glmm.api import model_to_fit
from mixedbridge.glmm.indicator import IndicatorMatrix
from mixedbridge.glmm.model import GeneralizedLinearMixedModel
from mixedbridge.glmm.nested import NestedChain, NestedFactor
from mixedbridge.lmm.remat import build_structure

DATA = Path(__file__).resolve().parent / "data" / "glmm"

#: name -> (file, formula with response y_, factor columns, family, nAGQ)
MODELS = {
    "cbpp_agq25": ("cbpp.csv", "y_ ~ period + (1 | herd)", {"herd", "period"}, "binomial", 25),
    "cbpp_agq3": ("cbpp.csv", "y_ ~ period + (1 | herd)", {"herd", "period"}, "binomial", 3),
    "grouse_poisson_agq9": ("grouseticks.csv", "y_ ~ YEAR + cHEIGHT + (1 | LOCATION)",
                            {"YEAR", "LOCATION"}, "poisson", 9),
    "grouse_slope_agq5": ("grouseticks.csv", "y_ ~ YEAR + h + (0 + h | LOCATION)",
                          {"YEAR", "LOCATION"}, "poisson", 5),
}


def _model(name: str, scalar: bool, nagq: int | None = None) -> GeneralizedLinearMixedModel:
    """The unfitted model, on the single-scalar-term path or (``scalar`` False) the general one
    (``nagq`` other than the case's: no assertion on the path)."""
    file, formula, factors, family, case_nagq = MODELS[name]
    df = pd.read_csv(DATA / file)
    for col in factors:
        df[col] = df[col].astype(str)
    if file == "cbpp.csv":
        y, w = (df["incidence"] / df["size"]).to_numpy(float), df["size"].to_numpy(float)
    else:
        y, w = df["TICKS"].to_numpy(float), None
        df["h"] = df["cHEIGHT"] / 20.0  # a slope on about the intercept's scale
    desc = parse_formula(formula)
    frame = model_frame(df.assign(y_=y), desc, {}, factors)
    fd = fixed_design(desc, frame)
    weights = None if w is None else w[frame.data.index.to_numpy()]
    m = GeneralizedLinearMixedModel(fd.X, fd.names, frame.response(desc), random_designs(desc, frame),
                                    make_family(family), weights, None, case_nagq if nagq is None else nagq)
    if nagq is None:
        assert m._scalar is not None  # these models are on the scalar path unless switched off
    if not scalar:
        m._scalar = None
    return m


def _points(m: GeneralizedLinearMixedModel, rng: np.random.Generator, k: int = 6) -> np.ndarray:
    """(θ, β) points around a plausible fit: θ in [0.2, 1.5], β near the GLM's."""
    beta = np.linalg.lstsq(m.X, m._eta0, rcond=None)[0]
    return np.column_stack([rng.uniform(0.2, 1.5, (k, m.ntheta)),
                            beta[None, :] + rng.normal(0.0, 0.1, (k, m.p))])


@pytest.mark.parametrize("name", list(MODELS))
def test_criterion_matches_general_path(name):
    fast, slow = _model(name, True), _model(name, False)
    P = _points(fast, np.random.default_rng(1))
    one = np.array([fast.deviance(p) for p in P])
    ref = np.array([slow.deviance(p) for p in P])
    np.testing.assert_allclose(one, ref, rtol=1e-11)
    fresh = _model(name, True)
    fresh._u = fast._u.copy()
    np.testing.assert_allclose(fresh.deviances(P), ref, rtol=1e-11)  # all points at once


@pytest.mark.parametrize("name", ["cbpp_agq25", "grouse_poisson_agq9", "grouse_slope_agq5"])
def test_joint_modes_match_general_path(name):
    fast, slow = _model(name, True), _model(name, False)
    for theta in (0.3, 0.9, 1.4):
        t = np.array([theta])
        a, b = fast.joint_modes(t), slow.joint_modes(t)
        assert a.converged and b.converged
        np.testing.assert_allclose(a.beta, b.beta, rtol=0, atol=1e-10)
        np.testing.assert_allclose(a.u, b.u, rtol=0, atol=1e-10)
        assert fast.deviance0(t) == pytest.approx(slow.deviance0(t), rel=1e-11)


@pytest.mark.parametrize("name", list(MODELS))
def test_fit_matches_general_path(name):
    fast, slow = _model(name, True).fit(), _model(name, False).fit()
    assert fast.fval == pytest.approx(slow.fval, rel=1e-10)
    np.testing.assert_allclose(fast.theta, slow.theta, rtol=0, atol=1e-8)
    np.testing.assert_allclose(fast.beta, slow.beta, rtol=0, atol=1e-8)
    a, b = model_to_fit(fast), model_to_fit(slow)
    np.testing.assert_allclose(np.sqrt(np.diag(a.vcov)), np.sqrt(np.diag(b.vcov)), rtol=1e-5)
    np.testing.assert_allclose(a.ranef[0].condsd, b.ranef[0].condsd, rtol=1e-7)
    assert a.optinfo["vcov_source"] == b.optinfo["vcov_source"]


@pytest.mark.parametrize("nagq", [0, 1])
def test_laplace_and_stage_one_only_fits_keep_the_general_path(nagq):
    assert _model("cbpp_agq25", True, nagq)._scalar is None
    assert _model("grouse_poisson_agq9", True, nagq)._scalar is None


def test_out_of_range_falls_back():
    """A linear predictor beyond R's logit clamp (|η| > 30) leaves the scalar path: the criterion
    is then the general path's."""
    fast, slow = _model("cbpp_agq25", True), _model("cbpp_agq25", False)
    p = np.array([0.8, 40.0, 0.0, 0.0, 0.0])
    assert fast.scalar_deviances(p[None, :]) is None
    assert fast.deviance(p) == slow.deviance(p)


def test_indicator_products_are_the_sparse_ones():
    rng = np.random.default_rng(3)
    n = 300
    codes = [rng.integers(0, 300, n), rng.integers(0, 40, n), rng.integers(0, 7, n)]
    Z = IndicatorMatrix(codes, [300, 40, 7])
    dense = Z.csr.toarray()
    u, w, V = rng.normal(size=Z.q), rng.normal(size=n), rng.normal(size=(n, 3))
    assert np.array_equal(Z @ u, Z.csr @ u)
    assert np.array_equal(Z.T @ w, Z.T.csr @ w)
    assert np.array_equal(Z.T @ V, Z.T.csr @ V)
    U = rng.normal(size=(Z.q, 2))
    np.testing.assert_allclose(Z @ U, dense @ U, rtol=1e-13)
    big = IndicatorMatrix([rng.integers(0, 50, 3000), rng.integers(0, 9, 3000)], [50, 9])
    assert Z.gather and not big.gather  # large designs keep the CSR products
    one = IndicatorMatrix([codes[1]], [40])
    assert np.array_equal(one @ u[:40], u[:40][codes[1]])
    assert np.array_equal(one.T @ w, np.bincount(codes[1], weights=w, minlength=40))


def test_nested_solve_matrix_is_columnwise():
    """M⁻¹R for several right-hand sides (the per-column ``bincount`` gathers) equals the
    one-column solves."""
    rng = np.random.default_rng(4)
    n = 200
    loc = rng.integers(0, 5, n)
    brood = loc * 4 + rng.integers(0, 4, n)
    df = pd.DataFrame({"y": rng.normal(size=n), "loc": loc.astype(str), "brood": brood.astype(str),
                       "obs": np.arange(n).astype(str)})
    desc = parse_formula("y ~ (1 | obs) + (1 | brood) + (1 | loc)")
    frame = model_frame(df, desc, {}, {"loc", "brood", "obs"})
    blocks = build_structure(random_designs(desc, frame)).blocks
    chain = NestedChain(list(blocks))
    q = int(chain.offsets[-1])
    sums = np.bincount(np.concatenate([o + b.codes for o, b in zip(chain.offsets, blocks)]),
                       weights=np.tile(rng.uniform(0.5, 2.0, n), len(blocks)), minlength=q)
    fac: NestedFactor = chain.factor(sums, [0.7, 1.3, 0.4])
    R = rng.normal(size=(q, 4))
    cols = np.column_stack([fac.solve(R[:, c]) for c in range(4)])
    np.testing.assert_allclose(fac.solve(R), cols, rtol=1e-12, atol=1e-14)
