"""Unit checks of the blocked algebra against a dense re-derivation of lme4's formulas, and of
lme4's term ordering."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla

from mixedbridge import datasets
from mixedbridge.design import ReTermData, fixed_design, random_designs
from mixedbridge.formula import parse_formula
from mixedbridge.frame import model_frame
from mixedbridge.lmm import LinearMixedModel, gram
from mixedbridge.lmm import dense as dense_path
from mixedbridge.lmm.blocks import _first_block
from mixedbridge.lmm.remat import lme4_order


def _r_rev_order(nl):
    """R: if (any(diff(nl) > 0)) rev(order(nl)) else seq_along(nl), 0-based."""
    nl = list(nl)
    if not any(b > a for a, b in zip(nl, nl[1:])):
        return list(range(len(nl)))
    order = sorted(range(len(nl)), key=lambda i: (nl[i], i))
    return order[::-1]


@pytest.mark.parametrize("nl", [[5, 10, 10], [10, 10], [3, 3, 7], [30, 10], [10, 30], [4, 9, 9, 2, 9]])
def test_lme4_term_order(nl):
    assert lme4_order(nl) == _r_rev_order(nl)


def _dense_z_lambda(model: LinearMixedModel, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Explicit n×q Z and q×q Λ(θ), for checking the blocked algebra against plain matrices."""
    cols, lams = [], []
    for blk in model.structure.blocks:
        Z = np.zeros((model.n, blk.q))
        for a in range(blk.p):
            Z[np.arange(model.n), blk.codes * blk.p + a] = blk.X[:, a]
        cols.append(Z)
        lams.append(np.kron(np.eye(blk.nlevels), blk.template(theta)))
    return np.hstack(cols), sla.block_diag(*lams)


def _dense_objective(model: LinearMixedModel, theta: np.ndarray, reml: bool) -> tuple[float, np.ndarray]:
    """lme4's profiled criterion from explicit n×q Z and q×q Λ (eq. REMLprofiled / profiledDeviance)."""
    Z, Lam = _dense_z_lambda(model, theta)
    w = np.ones(model.n) if model.weights is None else model.weights
    yo = model.y if model.offset is None else model.y - model.offset
    ZL = Z @ Lam
    q = ZL.shape[1]
    M = np.block([[ZL.T @ (w[:, None] * ZL) + np.eye(q), ZL.T @ (w[:, None] * model.X)],
                  [model.X.T @ (w[:, None] * ZL), model.X.T @ (w[:, None] * model.X)]])
    rhs = np.concatenate([ZL.T @ (w * yo), model.X.T @ (w * yo)])
    sol = np.linalg.solve(M, rhs)
    u, beta = sol[:q], sol[q:]
    r = yo - model.X @ beta - ZL @ u
    pwrss = np.sum(w * r * r) + u @ u
    ldL2 = np.linalg.slogdet(M[:q, :q])[1]
    n, p = model.X.shape
    RX2 = M[q:, q:] - M[q:, :q] @ np.linalg.solve(M[:q, :q], M[:q, q:])
    d = n - p if reml else n
    val = ldL2 - np.sum(np.log(w)) + d * (1 + np.log(2 * np.pi * pwrss / d))
    if reml:
        val += np.linalg.slogdet(RX2)[1]
    return float(val), beta


def _model(ds, formula, spec=None, rows=None, weights=False, offset=False, reml=True):
    df, factors = datasets.load(ds)
    if rows:
        df = df.iloc[:rows]
    desc = parse_formula(formula)
    frame = model_frame(df, desc, spec or {}, factors)
    fd = fixed_design(desc, frame)
    rng = np.random.default_rng(1)
    n = frame.nobs
    w = rng.uniform(0.5, 2.0, n) if weights else None
    o = rng.normal(size=n) if offset else None
    return LinearMixedModel(fd.X, fd.names, frame.response(desc), random_designs(desc, frame), w, o, reml)


CASES = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", {}),
    ("sleepstudy", "Reaction ~ Days + (1 + Days + I(Days^2) | Subject)", {"weights": True}),
    ("sleepstudy", "Reaction ~ Days + (Days || Subject)", {"offset": True, "reml": False}),
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", {"weights": True}),
    ("Pastes", "strength ~ 1 + (1 | batch/cask)", {}),
    ("fhch2010", "log_rt ~ task * stimulus + (1 + stimulus | id) + (1 | item)", {"rows": 500}),
    ("fhch2010", "log_rt ~ stimulus + (1 + stimulus | item) + (1 + stimulus | id)", {"rows": 400}),
    ("InstEval", "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", {"rows": 400, "reml": False}),
]


@pytest.mark.parametrize("ds,formula,opt", CASES)
def test_blocked_objective_matches_dense(ds, formula, opt):
    model = _model(ds, formula, rows=opt.get("rows"), weights=opt.get("weights", False),
                   offset=opt.get("offset", False), reml=opt.get("reml", True))
    rng = np.random.default_rng(7)
    s = model.structure
    for _ in range(3):
        theta = s.theta0 + rng.uniform(-0.4, 0.6, s.ntheta)
        theta = np.where(s.lower == 0, np.abs(theta), theta)
        for reml in (True, False):
            dense, beta = _dense_objective(model, theta, reml)
            assert model.objective(theta, reml=reml) == pytest.approx(dense, rel=1e-10)
            blocked = model._criterion(model.set_theta(theta), reml)
            assert blocked == pytest.approx(dense, rel=1e-10)
            if model.dense is not None:
                assert model._criterion(model.dense.factor(theta), reml) == pytest.approx(dense, rel=1e-10)
            np.testing.assert_allclose(model.beta, beta, rtol=1e-7, atol=1e-10)


def test_gram_map_matches_sparse_product():
    model = _model("InstEval", "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", rows=2000)
    A = model.A
    assert A.gram is not None
    assert A.gram.Pg is not None
    W = _first_block(A.A00, np.array([[0.7]]))[1]
    np.testing.assert_allclose(A.gram.values(W), A.gram.P @ W.ravel(), rtol=1e-12)
    S = np.zeros((A.q_rest, A.q_rest))
    A.gram.subtract_from(S, W)
    np.testing.assert_allclose(-S, gram.gram_product(A, W), rtol=1e-12, atol=1e-12)


def test_small_gram_product_dense_matches_sparse(monkeypatch):
    """gram_product by dense products (a small A_r0) equals the sparse product."""
    model = _model("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)")
    A = model.A
    W = _first_block(A.A00, np.array([[0.7]]))[1]
    small = gram.gram_product(A, W)
    monkeypatch.setattr(gram, "DENSE_GRAM_ENTRIES", 0)
    np.testing.assert_allclose(small, gram.gram_product(A, W), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("ds,formula", [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("Pastes", "strength ~ 1 + (1 | batch) + (1 | batch:cask)"),
])
def test_dense_quadratic_form_matches_products(monkeypatch, ds, formula):
    """The dense path's quadratic form in (θ, 1) gives the numbers of forming ΛᵀAΛ by products."""
    model = _model(ds, formula)
    assert model.dense is not None and model.dense._quadratic is not None
    monkeypatch.setattr(dense_path, "QUADRATIC_MAX_ENTRIES", 0)
    products = _model(ds, formula).dense
    assert products is not None and products._quadratic is None
    rng = np.random.default_rng(3)
    s = model.structure
    for _ in range(5):
        theta = np.where(s.lower == 0, 1.0, 0.0) * rng.uniform(0.0, 2.0, s.ntheta) + rng.normal(0, 0.3, s.ntheta)
        theta = np.maximum(theta, s.lower)
        np.testing.assert_allclose(model.dense.factor(theta), products.factor(theta), rtol=1e-11)


def test_gram_fallback_gives_same_fit(monkeypatch):
    formula = "log_rt ~ stimulus + (1 + stimulus | item) + (1 + stimulus | id)"
    ref = _model("fhch2010", formula, rows=800)
    monkeypatch.setattr(gram, "GRAM_MAP_LIMIT", 0)
    alt = _model("fhch2010", formula, rows=800)
    assert alt.A.gram is None
    theta = ref.structure.theta0 * 0.7
    assert alt.objective(theta) == pytest.approx(ref.objective(theta), rel=1e-12)


@pytest.mark.parametrize("ds,formula,rows,use_gram", [
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", None, True),
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", None, False),
    ("fhch2010", "log_rt ~ stimulus + (1 + stimulus | item) + (1 + stimulus | id)", 400, True),
    ("fhch2010", "log_rt ~ stimulus + (1 + stimulus | item) + (1 + stimulus | id)", 400, False),
    ("sleepstudy", "Reaction ~ Days + (Days | Subject) + (0 + I(Days^2) | Subject)", None, True),
])
def test_conditional_modes_and_variances_match_dense(monkeypatch, ds, formula, rows, use_gram):
    """The blocked factor's ũ and condVar against dense formulas, with the Gram map (models
    evaluated densely build none: the dense path is turned off for them) and without it (the
    sparse or, for a small A_r0, dense Gram product)."""
    if use_gram:
        monkeypatch.setattr(dense_path, "DENSE_MAX_Q", 0)
    else:
        monkeypatch.setattr(gram, "GRAM_MAP_LIMIT", 0)
    model = _model(ds, formula, rows=rows)
    assert (model.A.gram is not None) == (use_gram and bool(model.A.rest))
    theta = model.structure.theta0 * 0.8 + 0.05 * (model.structure.lower == 0)
    model.set_theta(theta)
    Z, Lam = _dense_z_lambda(model, theta)
    s = model.structure
    ZL = Z @ Lam
    Minv = np.linalg.inv(ZL.T @ ZL + np.eye(ZL.shape[1]))
    u = Minv @ ZL.T @ (model.y - model.X @ model.beta)
    V = model.sigma**2 * Lam @ Minv @ Lam.T
    np.testing.assert_allclose(np.concatenate([x.ravel() for x in model.b_blocks()]), Lam @ u,
                               rtol=1e-8, atol=1e-10)
    start = 0
    for blk, cv in zip(s.blocks, model.condvar_blocks()):
        for i in range(blk.nlevels):
            sl = slice(start + i * blk.p, start + (i + 1) * blk.p)
            np.testing.assert_allclose(cv[i], V[sl, sl], rtol=1e-8, atol=1e-12)
        start += blk.q


def test_reterm_template_layout():
    X = np.column_stack([np.ones(6), np.arange(6.0), np.arange(6.0) ** 2])
    term = ReTermData("g", ["a", "b", "c"], np.array([0, 0, 1, 1, 2, 2]), X, ["(Intercept)", "x", "x2"])
    from mixedbridge.lmm.remat import build_structure

    s = build_structure([term])
    T = s.terms[0].template(np.arange(1.0, 7.0))
    np.testing.assert_array_equal(T, [[1, 0, 0], [2, 4, 0], [3, 5, 6]])
    np.testing.assert_array_equal(s.lower, [0, -np.inf, -np.inf, 0, -np.inf, 0])
    np.testing.assert_array_equal(s.theta0, [1, 0, 0, 1, 0, 1])


@pytest.mark.parametrize("reml", [True, False])
def test_variance_parameter_deviance_and_vcov(reml):
    model = _model("sleepstudy", "Reaction ~ Days + (Days | Subject)", reml=reml).fit()
    theta, sigma = model.optsum.theta, model.sigma
    assert model.objective(theta, sigma=sigma) == pytest.approx(model.optsum.fmin, rel=1e-12)
    assert model.objective(theta, sigma=sigma * 1.1) > model.optsum.fmin
    model.set_theta(theta)
    np.testing.assert_allclose(model.vcov(theta, sigma), model.vcov(), rtol=1e-12)


def test_scipy_fallback_without_nlopt(monkeypatch):
    from mixedbridge.lmm import optimize

    monkeypatch.setattr(optimize, "nlopt", None)
    model = _model("sleepstudy", "Reaction ~ Days + (Days | Subject)").fit()
    assert model.optsum.optimizer == "COBYQA"
    # R: REMLcrit(lmer(Reaction ~ Days + (Days | Subject), sleepstudy)) = 1743.62827195995
    assert model.optsum.fmin == pytest.approx(1743.62827195995, rel=1e-8)


def test_deriv12_on_a_quadratic_and_batched_like_one_at_a_time():
    """deriv12's central differences are exact on a quadratic (the points in lme4's order),
    whether evaluated one at a time or all at once."""
    from mixedbridge.lmm.checks import deriv12

    H0 = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, -0.2], [0.5, -0.2, 2.0]])
    g0 = np.array([0.3, -0.1, 0.2])

    def fun(z):
        return float(g0 @ z + 0.5 * z @ H0 @ z)

    x = np.array([0.5, 0.4, -0.3])
    lower = np.array([0.0, -np.inf, -np.inf])
    g, H, count = deriv12(fun, x, fun(x), lower)
    gb, Hb, countb = deriv12(fun, x, fun(x), lower, many=lambda pts: np.array([fun(z) for z in pts]))
    assert count == countb == 2 * 3 + 4 * 3
    np.testing.assert_allclose(H, H0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g, g0 + H0 @ x, atol=1e-6)
    np.testing.assert_array_equal(g, gb)
    np.testing.assert_array_equal(H, Hb)


def test_batched_derivative_check_matches_one_at_a_time(monkeypatch):
    """The dense path's batched factorisations (``objectives``) give the objective of each θ;
    without the quadratic form the θ are evaluated one at a time."""
    model = _model("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    rng = np.random.default_rng(5)
    thetas = np.abs(rng.normal(1.0, 0.3, (7, 3))) * [1.0, 0.1, 1.0]
    one = np.array([model.objective(t) for t in thetas])
    assert model.dense is not None and model.dense.factor_many(thetas) is not None
    np.testing.assert_allclose(model.objectives(thetas), one, rtol=1e-12)
    monkeypatch.setattr(dense_path, "QUADRATIC_MAX_ENTRIES", 0)
    products = _model("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    assert products.dense is not None and products.dense.factor_many(thetas) is None
    np.testing.assert_allclose(products.objectives(thetas), one, rtol=1e-12)


@pytest.mark.parametrize("p0", [1, 2, 3])
def test_gram_map_matches_dense_product_for_any_block_width(p0):
    """W ↦ A_r0(I⊗W)A_r0ᵀ by the map (32-bit pair indices) equals the dense product at every
    position of the map, with the levels of equal A₀₀ᵢ merged (equal Wᵢ) and without."""
    import scipy.sparse as sparse

    rng = np.random.default_rng(11 + p0)
    ell, q = 60, 45
    Ar0 = sparse.random(q, ell * p0, density=0.08, random_state=3, format="csr")
    A00 = rng.standard_normal((ell, p0, p0))
    A00 = A00 @ np.swapaxes(A00, 1, 2)
    A00[: ell // 2] = A00[0]  # half the levels alike: their columns are merged
    W = np.linalg.inv(A00 + np.eye(p0))  # a function of A₀₀ᵢ, as the factorisation's Wᵢ are
    g = gram.build_gram_map(Ar0, A00)
    assert g is not None and g.Pg is not None
    D = Ar0.toarray().reshape(q, ell, p0)
    dense = np.einsum("ria,iab,sib->rs", D, W, D)
    np.testing.assert_allclose(g.values(W), dense[g.rows, g.cols], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(g.P @ W.ravel(), dense[g.rows, g.cols], rtol=1e-12, atol=1e-13)
    nonzero = np.flatnonzero(np.triu(np.abs(dense.T) > 1e-14).ravel())
    assert set(nonzero.tolist()) <= set(g.upper.tolist())
