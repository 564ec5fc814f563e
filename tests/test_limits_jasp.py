"""Issue #19, the JASP adapter: variable names that need quoting work with marginal means,
trends, contrasts and the plot; contrast weights that would be huge numbers, seeds out of R's
range, all-missing or duplicated columns are option errors naming the option."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixedbridge import jasp
from mixedbridge.formula import parse_formula
from mixedbridge.jasp.model import build
from mixedbridge.jasp.options import normalize

from .jasp_cases import contrast_table, re_row, terms, var, varlist, vars_

N = 60


def _data(condition: str = "my condition", covariate: str = "Age (years)") -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"rt score": rng.normal(size=N) + np.repeat([0, 1], N // 2),
                         condition: np.tile(["a", "b", "c"], N // 3), covariate: rng.normal(40, 5, N),
                         "sub ject": np.repeat([f"s{i}" for i in range(10)], N // 10)})


def _options(condition: str = "my condition", covariate: str = "Age (years)", **extra) -> dict:
    return {"dependent": var("rt score"), "fixedVariables": vars_([condition, covariate], ["nominal", "scale"]),
            "randomVariables": vars_(["sub ject"], ["nominal"]), "fixedEffects": terms((condition,), (covariate,)),
            "randomEffects": [re_row("sub ject", [(("Intercept",), True)])], **extra}


def _error(doc: dict) -> dict:
    assert doc["status"] == "error", "expected an error document"
    return doc["error"]


# ------------------------------------------------------------------------ non-syntactic names
@pytest.mark.parametrize("engine", ["native", pytest.param("lme4", marks=pytest.mark.r)])
def test_marginal_means_and_plot_of_names_with_spaces(engine):
    if engine == "lme4":
        pytest.importorskip("rpy2")
    doc = jasp.run_jasp(_options(marginalMeansTerms=varlist(["my condition"]),
                                 plotHorizontalAxis=varlist(["my condition"]),
                                 plotBackgroundData=varlist(["sub ject"])), data=_data(), engine=engine)
    assert doc["status"] == "complete", doc.get("error")
    emm = doc["EMMsummary"]
    assert [r["my condition"] for r in emm["data"]] == ["a", "b", "c"]
    assert all(r["estimate"] is not None for r in emm["data"])
    assert doc["plots"]["status"] == "complete" and doc["plots"]["data"]


def test_trends_and_contrasts_of_names_with_parentheses():
    opts = _options(marginalMeansTerms=varlist(["my condition", "Age (years)"]), marginalMeansSd=1,
                    marginalMeansContrast=True,
                    contrasts=contrast_table({"my condition": ["a", "b", "c"] * 3},
                                             {"c1": ["1", "-1", "0"] + ["0"] * 6}),
                    trendsVariables=varlist(["my condition"]), trendsTrendVariable=var("Age (years)"))
    doc = jasp.run_jasp(opts, data=_data())
    assert doc["status"] == "complete", doc.get("error")
    age = _data()["Age (years)"]
    m, s = age.mean(), age.std()
    assert [r["Age (years)"] for r in doc["EMMsummary"]["data"]] == pytest.approx([m - s] * 3 + [m] * 3 + [m + s] * 3)
    assert doc["contrastsMeans"]["data"][0]["estimate"] == pytest.approx(
        doc["EMMsummary"]["data"][0]["estimate"] - doc["EMMsummary"]["data"][1]["estimate"])
    assert [r["my condition"] for r in doc["trendsSummary"]["data"]] == ["a", "b", "c"]
    assert all(r["slope"] is not None for r in doc["trendsSummary"]["data"])


def test_a_backtick_in_a_variable_name_is_quoted_as_r_does():
    data = _data(condition="a`b")
    opts, _ = normalize(_options(condition="a`b"))
    model = build(opts, data)
    assert "`a\\`b`" in model.formula and parse_formula(model.formula) == model.desc
    doc = jasp.run_jasp(_options(condition="a`b", marginalMeansTerms=varlist(["a`b"])), data=data)
    assert doc["status"] == "complete", doc.get("error")
    assert [r["a`b"] for r in doc["EMMsummary"]["data"]] == ["a", "b", "c"]


# --------------------------------------------------------------------------- option values
@pytest.mark.parametrize("weight", ["1e1000000000", "1e400", "1" * 5000, 1e400])
def test_huge_contrast_weights_are_refused_without_being_built(weight):
    opts = _options(marginalMeansTerms=varlist(["my condition"]), marginalMeansContrast=True,
                    contrasts=contrast_table({"my condition": ["a", "b", "c"]}, {"c1": [weight, "-1", "0"]}))
    err = _error(jasp.run_jasp(opts, data=_data()))
    assert err["option"] == "contrasts" and err["path"] == "/contrasts/1/values/0"
    assert "contrast weight" in err["errorMessage"]


def test_tiny_contrast_weights_are_zero_and_fractions_exact():
    from mixedbridge.jasp.options import contrast_weights

    _, contrasts = contrast_weights(contrast_table({"f": ["a", "b", "c"]}, {"c": ["1e-1000000000", "1/3", "-1/3"]}),
                                    "contrasts")
    assert contrasts == [("c", [0.0, 1 / 3, -1 / 3])]


@pytest.mark.parametrize("seed", [-1, 2**31])
def test_a_seed_out_of_range_names_the_seed_option(seed):
    opts = _options(testMethod="parametricBootstrap", setSeed=True, seed=seed)
    err = _error(jasp.run_jasp(opts, data=_data()))
    assert (err["option"], err["path"]) == ("seed", "/seed") and "out of range" in err["errorMessage"]


def test_bootstrap_samples_have_a_maximum():
    err = _error(jasp.run_jasp(_options(testMethod="parametricBootstrap", bootstrapSamples=40_000_000), data=_data()))
    assert err["option"] == "bootstrapSamples" and "100000" in err["errorMessage"]


# --------------------------------------------------------------------------------- columns
def test_an_all_missing_covariate_is_named_as_empty():
    data = _data().assign(**{"Age (years)": None})
    err = _error(jasp.run_jasp(_options(), data=data))
    assert err["option"] == "fixedVariables" and "has no values" in err["errorMessage"]
    assert "text" not in err["errorMessage"]


def test_a_duplicated_column_is_named_as_duplicated():
    data = _data()
    data = pd.concat([data, data[["Age (years)"]]], axis=1)
    err = _error(jasp.run_jasp(_options(), data=data))
    assert err["option"] == "fixedVariables" and "more than one column named 'Age (years)'" in err["errorMessage"]


def test_a_contrast_grid_beyond_rg_limit_is_refused():
    from mixedbridge.emmeans.refgrid import MAX_GRID_ROWS

    rng = np.random.default_rng(2)
    n = 400
    data = pd.DataFrame({"y": rng.normal(size=n), "g": [f"s{i % 20}" for i in range(n)],
                         **{k: [f"{k}{i % 110}" for i in rng.permutation(n)] for k in ("p", "q")}})
    opts = {"dependent": var("y"), "fixedVariables": vars_(["p", "q"], ["nominal", "nominal"]),
            "randomVariables": vars_(["g"], ["nominal"]), "fixedEffects": terms(("p",), ("q",)),
            "randomEffects": [re_row("g", [(("Intercept",), True)])],
            "marginalMeansTerms": varlist(["p", "q"]), "marginalMeansContrast": True,
            "contrasts": contrast_table({"p": ["p0"], "q": ["q0"]}, {"c": ["1"]})}
    err = _error(jasp.run_jasp(opts, data=data))
    assert err["option"] == "contrasts" and f"{MAX_GRID_ROWS:,}" in err["errorMessage"]
