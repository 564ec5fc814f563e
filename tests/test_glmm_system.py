"""The penalized system of the native GLMM's PIRLS (``mixedbridge.glmm.system``/``.nested``)
against M = ŨᵀWŨ + I formed densely: log|M|, M⁻¹r for one and several right-hand sides, and the
diagonal blocks of M⁻¹ (lme4's ``condVar``), for the factorisations chosen by the design:
nested scalar terms (level by level), crossed scalar terms (indicator products, with the
rest × block-0 part dense or sparse), one scalar term, and a random slope (the general blocked path). Pure linear
algebra, so the reference is numpy's, not R's."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixedbridge.design import random_designs
from mixedbridge.formula import parse_formula
from mixedbridge.frame import model_frame
from mixedbridge.glmm.nested import NestedFactor
from mixedbridge.glmm.system import PenalizedSystem
from mixedbridge.lmm.remat import build_structure


def _data(rng: np.random.Generator) -> pd.DataFrame:
    n = 240
    loc = rng.integers(0, 6, n)
    brood = loc * 4 + rng.integers(0, 4, n)  # broods within locations
    return pd.DataFrame({
        "y": rng.normal(size=n), "x": rng.normal(size=n),
        "loc": loc.astype(str), "brood": brood.astype(str), "obs": np.arange(n).astype(str),
        "subj": rng.integers(0, 30, n).astype(str), "item": rng.integers(0, 8, n).astype(str),
    })


def _system(df: pd.DataFrame, rhs: str) -> PenalizedSystem:
    desc = parse_formula("y ~ " + rhs)
    factors = {"loc", "brood", "obs", "subj", "item"}
    frame = model_frame(df, desc, {}, factors & set(rhs.replace("(", " ").replace(")", " ").split()))
    return PenalizedSystem(build_structure(random_designs(desc, frame)))


def _dense_u(system: PenalizedSystem) -> np.ndarray:
    """Ũ = ZΛ (n × q, computational order) from the blocks' columns Ũ and level codes."""
    n = system.blocks[0].codes.size
    cols = []
    for b, U in zip(system.blocks, system.Ut):
        Zb = np.zeros((n, b.q))
        for a in range(b.p):
            Zb[np.arange(n), b.codes * b.p + a] = U[:, a]
        cols.append(Zb)
    return np.hstack(cols)


CASES = {
    "nested": "x + (1 | obs) + (1 | brood) + (1 | loc)",
    "crossed": "x + (1 | subj) + (1 | item)",
    "sparse": "x + (1 | obs) + (1 | subj) + (1 | item)",
    "single": "x + (1 | subj)",
    "slope": "x + (x | subj) + (1 | item)",
}


@pytest.mark.parametrize("name", list(CASES))
def test_factor_matches_dense(name):
    rng = np.random.default_rng(7)
    system = _system(_data(rng), CASES[name])
    if name == "nested":
        assert system.chain is not None
    if name in ("crossed", "sparse"):
        assert system.ind is not None and system.chain is None
        assert system.dense_r0 == (name == "crossed")
    theta = system.structure.theta0 * rng.uniform(0.5, 1.5, system.structure.ntheta)
    system.set_theta(theta)
    w = rng.uniform(0.05, 0.3, system.blocks[0].codes.size)
    fac = system.factor(w)
    assert fac.ok
    assert isinstance(fac, NestedFactor) == (name == "nested")
    U = _dense_u(system)
    M = U.T @ (w[:, None] * U) + np.eye(system.q)
    assert fac.ldL2 == pytest.approx(np.linalg.slogdet(M)[1], rel=1e-12)
    r = rng.normal(size=system.q)
    np.testing.assert_allclose(fac.solve(r), np.linalg.solve(M, r), rtol=1e-10, atol=1e-12)
    R = rng.normal(size=(system.q, 3))
    np.testing.assert_allclose(fac.solve(R), np.linalg.solve(M, R), rtol=1e-10, atol=1e-12)
    Minv = np.linalg.inv(M)
    blocks = fac.diag_blocks_inverse()
    b0 = system.blocks[0]
    for lev in range(b0.nlevels):
        idx = slice(lev * b0.p, (lev + 1) * b0.p)
        np.testing.assert_allclose(blocks[0][lev], Minv[idx, idx], rtol=1e-10, atol=1e-13)
    if len(blocks) > 1:
        np.testing.assert_allclose(blocks[1], Minv[system.q0:, system.q0:], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", ["nested", "crossed"])
def test_products_with_u(name):
    rng = np.random.default_rng(3)
    system = _system(_data(rng), CASES[name])
    system.set_theta(system.structure.theta0 * rng.uniform(0.5, 1.5, system.structure.ntheta))
    U = _dense_u(system)
    u, v = rng.normal(size=system.q), rng.normal(size=U.shape[0])
    V = rng.normal(size=(U.shape[0], 2))
    np.testing.assert_allclose(system.zlam(u), U @ u, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(system.zlam_t(v), U.T @ v, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(system.zlam_t_matrix(V), U.T @ V, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["nested", "crossed", "sparse"])
def test_patterns_formed_when_needed_and_scales_follow_theta(name):
    """The cells' scales (s_r s_rᵀ, ...) and the sparse rest × block-0 Gram pattern are formed
    when a factorisation first asks for them (a nested chain never does), and a factorisation
    at a second θ uses that θ's scales, not the first one's."""
    rng = np.random.default_rng(11)
    system = _system(_data(rng), CASES[name])
    w = rng.uniform(0.05, 0.3, system.blocks[0].codes.size)
    for scale in (0.7, 1.9):
        system.set_theta(system.structure.theta0 * scale * rng.uniform(0.5, 1.5, system.structure.ntheta))
        fac = system.factor(w)
        U = _dense_u(system)
        M = U.T @ (w[:, None] * U) + np.eye(system.q)
        assert fac.ldL2 == pytest.approx(np.linalg.slogdet(M)[1], rel=1e-12)
    assert system.ind is not None
    assert (system.ind._cell_scales is None) == (name == "nested")
    assert ("_gram" in vars(system)) == (name != "nested")
    assert (vars(system).get("_gram") is not None) == (name == "sparse")
