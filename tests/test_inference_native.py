"""The native inference layer without R: numerical derivatives, contrasts, option errors with
their JSON paths, reproducible bootstrap, Kenward-Roger's block computation against a dense
n×n reference."""
from __future__ import annotations

import numpy as np
import pytest

from mixedbridge import analysis
from mixedbridge.errors import SpecError
from mixedbridge.inference import contrasts as ctr
from mixedbridge.inference import kenwardroger as kr
from mixedbridge.inference import numderiv

from .inference_cases import TENTHIRTY, cases


def test_numderiv_hessian_and_jacobian():
    f = lambda x: np.exp(x[0]) * x[1] ** 2 + np.sin(x[1])  # noqa: E731
    x = np.array([0.3, 1.7])
    H = numderiv.hessian(f, x)
    exact = np.array([[np.exp(0.3) * 1.7**2, 2 * np.exp(0.3) * 1.7],
                      [2 * np.exp(0.3) * 1.7, 2 * np.exp(0.3) - np.sin(1.7)]])
    assert np.allclose(H, exact, rtol=1e-8)
    J = numderiv.jacobian(lambda x: np.array([x[0] * x[1], x[1] ** 3]), x)
    assert np.allclose(J, [[1.7, 0.3], [0, 3 * 1.7**2]], rtol=1e-9)


def test_doolittle_is_lu_without_pivoting():
    A = np.array([[4.0, 2, 1], [2, 5, 3], [1, 3, 6]])
    L, U = ctr.doolittle(A)
    assert np.allclose(L @ U, A)
    assert np.allclose(np.diag(L), 1)


def _native(spec, **options):
    return analysis.run({**spec, "options": {**spec.get("options", {}), **options}})


def test_type3_contrasts_do_not_depend_on_coding():
    c = cases()
    treat = _native(c["ex-tenthirty"]).table("anova").rows
    summ = _native(c["tenthirty-sum"]).table("anova").rows
    for a, b in zip(treat, summ):
        assert a["statistic"] == pytest.approx(b["statistic"], rel=1e-6)
        assert a["DenDF"] == pytest.approx(b["DenDF"], rel=1e-5)


def test_kr_blocks_match_dense_sigma():
    """Φ_A from the q×q/p×p route equals the textbook n×n computation."""
    res = _native(cases()["sleepstudy-slopes"])
    model = res.fit.backend.model
    adj = kr.vcov_adjusted(model)
    # dense reference
    structure = model.structure
    Z = structure.z_matrix().toarray()
    theta = model.theta
    Lam = structure.lambda_matrix(theta).toarray()
    s2 = model.sigma**2
    Sigma = s2 * (np.eye(model.n) + Z @ Lam @ Lam.T @ Z.T)
    Si = np.linalg.inv(Sigma)
    X = model.X
    G = []
    for h in kr._params(structure.terms, structure.Gp[:-1]):
        if h is None:
            G.append(np.eye(model.n))
            continue
        E = np.zeros((Z.shape[1], Z.shape[1]))
        for i, j in h:
            E[i, j] = 1.0
        G.append(Z @ E @ Z.T)
    Phi = np.linalg.inv(X.T @ Si @ X)
    P = [-X.T @ Si @ g @ Si @ X for g in G]
    Q = [[X.T @ Si @ a @ Si @ b @ Si @ X for b in G] for a in G]
    k = len(G)
    I2 = np.array([[np.trace(Si @ G[r] @ Si @ G[s]) - 2 * np.trace(Phi @ Q[r][s]) + np.trace(Phi @ P[r] @ Phi @ P[s])
                    for s in range(k)] for r in range(k)])
    W = 2 * np.linalg.inv(I2)
    U = sum(W[r, s] * (Q[r][s] - P[r] @ Phi @ P[s]) for r in range(k) for s in range(k))
    PhiA = Phi + 2 * Phi @ U @ Phi
    assert np.allclose(adj.PhiA, PhiA, rtol=1e-7)
    assert np.allclose(adj.W, W, rtol=1e-6)


def test_bootstrap_reproducible_for_a_seed():
    spec = {**cases()["dyestuff"], "options": {"confint": {"method": "bootstrap", "nsim": 8, "seed": 3}}}
    a = analysis.run(spec).table("confint").rows
    b = analysis.run(spec).table("confint").rows
    assert a == b
    other_seed = {"confint": {"method": "bootstrap", "nsim": 8, "seed": 4}}
    c = analysis.run({**spec, "options": other_seed}).table("confint").rows
    assert a != c


def test_parametric_bootstrap_term_test():
    spec = {**cases()["ex-tenthirty"], "options": {"anova": {"method": "bootstrap", "nsim": 5, "seed": 1}}}
    rows = analysis.run(spec).table("anova").rows
    assert [r["term"] for r in rows] == ["time", "group", "time:group"]
    assert all(1 / 6 <= r["p.value.pb"] <= 1 for r in rows)
    again = analysis.run(spec).table("anova").rows
    assert rows == again


@pytest.mark.parametrize("spec, path", [
    ({"analysis": "lm", **TENTHIRTY, "formula": "load ~ time * group", "options": {"df_method": "kenward-roger"}},
     "/options/df_method"),
    ({"analysis": "lm", **TENTHIRTY, "formula": "load ~ time * group", "options": {"df_method": "satterthwaite"}},
     "/options/df_method"),
    ({"analysis": "lm", **TENTHIRTY, "formula": "load ~ time * group",
      "options": {"anova": {"method": "kenward-roger"}}}, "/options/anova/method"),
    ({**cases()["ex-tenthirty"], "options": {"anova": {"terms": ["time", "sets"]}}}, "/options/anova/terms/1"),
    ({**cases()["ex-tenthirty"], "options": {"anova": {"method": "bootstrap", "nsim": 0}}}, "/options/anova/nsim"),
    ({**cases()["ex-tenthirty"], "options": {"confint": {"method": "bootstrap", "nsim": 0}}}, "/options/confint/nsim"),
    ({**cases()["ex-tenthirty"], "options": {"reml": False, "df_method": "kenward-roger"}}, "/options/df_method"),
    ({**cases()["ex-tenthirty"], "options": {"confint": {"level": 1.5}}}, "/options/confint/level"),
])
def test_bad_inference_options(spec, path):
    with pytest.raises(SpecError) as err:
        analysis.run(spec)
    assert err.value.path == path


def test_compare_needs_the_same_rows():
    data = [{"y": float(i % 7), "x": float(i), "z": (None if i == 3 else float(i % 3)), "g": f"g{i % 5}"}
            for i in range(40)]
    spec = {"analysis": "lmm", "data": {"records": data}, "formula": "y ~ x + (1 | g)",
            "compare": [{"formula": "y ~ x + z + (1 | g)"}]}
    with pytest.raises(SpecError) as err:
        analysis.run(spec)
    assert err.value.path == "/compare/0"


def test_anova_terms_subset_and_lm_anova():
    rows = _native(cases()["ex-tenthirty"], anova={"terms": ["time:group"]}).table("anova").rows
    assert [r["term"] for r in rows] == ["time:group"]
    lm = _native({"analysis": "lm", **TENTHIRTY, "formula": "load ~ time * group"}, anova=True)
    a = lm.table("anova").rows
    p = {r["term"]: r for r in lm.table("parameters").rows}
    # a 1-df F test is the square of the t test of the same coefficient (last term)
    assert a[-1]["statistic"] == pytest.approx(p["timepost:groupRM30"]["statistic"] ** 2)
    assert a[-1]["DenDF"] == lm.fit.df_residual
