"""Issue #19, item 12: the lme4 engine with prior weights. Likelihood-ratio and parametric
bootstrap tests refit with the weights (as plain lme4 does), bootstrap intervals run on the
stored fit, and Kenward-Roger with weights is refused on both engines, with the reason."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import mixedbridge
from mixedbridge.errors import MixedBridgeError, SpecError

pytestmark = pytest.mark.r


@pytest.fixture(scope="module")
def r_available():
    try:
        from mixedbridge.bridge.session import session
        session().start()
    except (MixedBridgeError, ImportError) as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"R with lme4, lmerTest and pbkrtest is required under CI: {exc}")
        pytest.skip(f"R not available: {exc}")
    return True


@pytest.fixture(scope="module")
def weighted() -> pd.DataFrame:
    """40 rows, 8 groups, prior weights between 0.5 and 2."""
    rng = np.random.default_rng(3)
    n = 40
    df = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n), "g": [f"g{i % 8}" for i in range(n)],
                       "w": rng.uniform(0.5, 2, n)})
    df["y"] += 1.5 * rng.normal(size=8)[np.arange(n) % 8]
    return df


def _run(engine: str, data: pd.DataFrame, weights: bool = True, **options) -> mixedbridge.Results:
    options = {"weights": "w", **options} if weights else options
    return mixedbridge.run({"analysis": "lmm", "engine": engine, "formula": "y ~ x + (1 | g)",
                            "data": {"records": [{}]}, "options": options}, data=data)


@pytest.mark.parametrize("method", ["lrt", "bootstrap"])
def test_likelihood_ratio_tests_with_weights_agree_across_engines(r_available, weighted, method):
    options = {"reml": False, "anova": {"method": method, "nsim": 40, "seed": 2}}
    native, lme4 = (_run(e, weighted, **options).table("anova").rows[0] for e in ("native", "lme4"))
    for key in ("logLik", "Chisq", "p.value"):
        assert lme4[key] == pytest.approx(native[key], rel=1e-5), key
    if method == "bootstrap":
        assert 0 < lme4["p.value.pb"] <= 1


@pytest.mark.parametrize("weights", [True, False])
def test_bootstrap_intervals_on_the_lme4_engine(r_available, weighted, weights):
    res = _run("lme4", weighted, weights, confint={"method": "bootstrap", "nsim": 30, "seed": 4})
    rows = {r["parameter"]: r for r in res.table("confint").rows}
    est = {r["term"]: r["estimate"] for r in res.table("parameters").rows if r["effect"] == "fixed"}
    for term, value in est.items():
        assert rows[term]["lower"] < value < rows[term]["upper"]
    assert 0 <= rows[".sig01"]["lower"] < rows[".sig01"]["upper"]


@pytest.mark.parametrize("engine", ["native", "lme4"])
@pytest.mark.parametrize("options,path", [
    ({"df_method": "kenward-roger"}, "/options/df_method"),
    ({"anova": {"method": "kenward-roger"}}, "/options/anova/method"),
    ({"emmeans": {"specs": "1", "df": "kenward-roger"}}, "/options/emmeans/df"),
])
def test_kenward_roger_with_weights_is_refused_on_both_engines(r_available, weighted, engine, options, path):
    with pytest.raises(SpecError) as info:
        _run(engine, weighted, **options)
    assert info.value.path == path
    assert "pbkrtest ignores the weights" in info.value.message and "satterthwaite" in info.value.message
