"""Issue #19: tiny inputs with unbounded cost are checked against a limit before work starts,
internal labels do not collide with column names, and names that need quoting work everywhere.
Each test reproduces an input from the issue."""
from __future__ import annotations

import resource
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedbridge
from mixedbridge import guard
from mixedbridge.errors import DataError, FormulaError, MixedBridgeError, ModelError
from mixedbridge.formula import MAX_INTERACTION, MAX_NESTING, MAX_TERMS, parse_formula

SLEEP = {"data": {"dataset": "sleepstudy"}}


def _error(spec: dict, data: pd.DataFrame | None = None) -> MixedBridgeError:
    start = time.monotonic()
    with pytest.raises(MixedBridgeError) as info:
        mixedbridge.run(spec, data=data)
    assert time.monotonic() - start < 5, "the limit must be checked before the work starts"
    return info.value


# ------------------------------------------------------------------------------- formulas
def test_a_huge_power_is_refused_at_once():
    err = _error({"analysis": "lmm", "formula": "Reaction ~ Days^1e300 + (1 | Subject)", **SLEEP})
    assert isinstance(err, FormulaError) and err.path == "/formula"
    assert "Days^1e+300" in err.message and "2,147,483,647" in err.message


def test_a_power_above_the_number_of_terms_means_all_interactions():
    assert parse_formula("y ~ (a + b)^5").fixed_formula() == parse_formula("y ~ a * b").fixed_formula()
    assert parse_formula("y ~ Days^2147483647").fixed_formula() == "y ~ 1 + Days"


def test_crossing_21_variables_is_refused_before_it_is_expanded():
    formula = "Reaction ~ " + "*".join(f"x{i}" for i in range(21))
    err = _error({"analysis": "lm", "formula": formula, **SLEEP})
    assert isinstance(err, FormulaError)
    assert f"more than {MAX_TERMS:,} terms" in err.message and "x0 * x1" in err.message


def test_a_ten_way_factorial_is_within_the_limits():
    assert len(parse_formula("y ~ " + "*".join("abcdefghij")).fixed) == 1023
    assert parse_formula("y ~ " + ":".join(f"x{i}" for i in range(MAX_INTERACTION))).fixed[0].order == MAX_INTERACTION


def test_200_nested_parentheses_are_refused_with_the_limit():
    err = _error({"analysis": "lm", "formula": "Reaction ~ " + "(" * 200 + "Days" + ")" * 200, **SLEEP})
    assert isinstance(err, FormulaError) and f"more than {MAX_NESTING} deep" in err.message


def test_nesting_within_the_limit_works():
    text = "Reaction ~ " + "(" * MAX_NESTING + "Days" + ")" * MAX_NESTING
    assert parse_formula(text).fixed_formula() == "Reaction ~ 1 + Days"


@pytest.mark.parametrize("n", [1500, 5000])
def test_thousands_of_terms_parse_without_recursion(n):
    res = mixedbridge.run({"analysis": "lm", "formula": "Reaction ~ " + " + ".join(["Days"] * n), **SLEEP})
    assert res.table("parameters").to_pandas()["term"].tolist() == ["(Intercept)", "Days"]


def test_a_long_sum_inside_a_transformation_is_evaluated():
    desc = parse_formula("y ~ I(" + " + ".join(["x"] * 3000) + ")")
    recs = [{"y": float(i * i % 7), "x": float(i)} for i in range(10)]
    res = mixedbridge.run({"analysis": "lm", "formula": "y ~ I(" + " + ".join(["x"] * 3000) + ")",
                           "data": {"records": recs}})
    assert len(desc.fixed) == 1 and res.table("parameters").to_pandas().shape[0] == 2


@pytest.mark.parametrize("formula,words", [
    ("y ~ " + ":".join(f"x{i}" for i in range(2000)), "interaction of more than"),
    ("y ~ (1 | " + "/".join(f"g{i}" for i in range(2000)) + ")", "interaction of more than"),
    ("y ~ (1 | " + "+".join(f"g{i}" for i in range(2000)) + ")", "more than 1,024 terms"),
    ("y ~ " + " + ".join(f"(1 | g{i})" for i in range(2000)), "more than 1,024 terms"),
    ("y ~ " + "-" * 2000 + "x", "more than 50 deep"),
])
def test_long_chains_are_refused_with_a_limit_not_a_recursion_error(formula, words):
    with pytest.raises(FormulaError, match=words):
        parse_formula(formula)


def test_too_many_distinct_terms_are_refused():
    err = _error({"analysis": "lm", "formula": "Reaction ~ " + " + ".join(f"x{i}" for i in range(MAX_TERMS + 1)),
                  **SLEEP})
    assert isinstance(err, FormulaError) and "terms" in err.message


# ----------------------------------------------------------------- names that need quoting
def _fit_both(formula: str, column: str) -> list[list[float]]:
    recs = [{"y": 1.0, column: 1.0}, {"y": 2.0, column: 3.0}, {"y": 3.5, column: 2.0}, {"y": 3.0, column: 4.0}]
    out = []
    for engine in ("native", "lme4"):
        res = mixedbridge.run({"analysis": "lm", "engine": engine, "formula": formula, "data": {"records": recs}})
        out.append(res.table("parameters").to_pandas()["estimate"].tolist())
    return out


@pytest.mark.r
@pytest.mark.parametrize("formula,column", [("y ~ `a~b`", "a~b"), ("y ~ `a\\`b`", "a`b"),
                                            ("y ~ log(`a\\`b`)", "a`b"), ("y ~ `a\\\\b`", "a\\b")])
def test_tilde_and_backtick_in_a_quoted_name(formula, column):
    pytest.importorskip("rpy2")
    native, lme4 = _fit_both(formula, column)
    assert native == pytest.approx(lme4, rel=1e-9)
    assert parse_formula(formula).columns == ["y", column]


def test_a_quoted_name_is_spelled_back_as_r_does():
    assert parse_formula("y ~ `a\\`b` + `c d`").fixed_formula() == "y ~ 1 + `a\\`b` + `c d`"


def test_a_quoted_tilde_is_not_a_second_tilde():
    assert parse_formula("y ~ `a~b`").columns == ["y", "a~b"]
    with pytest.raises(FormulaError, match="exactly one '~'"):
        parse_formula("y ~ a ~ b")


# ------------------------------------------------------------------- internal labels
def _grouped(extra: dict) -> list[dict]:
    return [{"y": float(i % 5 + i * 0.3), "x": float(i % 6), "f": i % 3, **{k: v(i) for k, v in extra.items()}}
            for i in range(24)]


@pytest.mark.parametrize("name", ["(weights)", "(offset)"])
def test_a_grouping_column_named_like_the_weights_is_refused(name):
    recs = _grouped({name: lambda i: 1 + i % 4})
    err = _error({"analysis": "lmm", "formula": f"y ~ x + (1 | `{name}`)", "data": {"records": recs}})
    assert isinstance(err, DataError) and err.path == "/formula"
    assert repr(name) in err.message and "rename the column" in err.message


@pytest.mark.parametrize("engine", ["native", "lme4"])
def test_a_grouping_column_named_like_a_transformation_is_refused(engine):
    if engine == "lme4":
        pytest.importorskip("rpy2")
    recs = _grouped({"factor(f)": lambda i: f"g{i % 4}"})
    err = _error({"analysis": "lmm", "engine": engine, "formula": "y ~ factor(f) + (1 | `factor(f)`)",
                  "data": {"records": recs}})
    assert isinstance(err, DataError) and "'factor(f)'" in err.message and "rename the column" in err.message


def test_such_a_grouping_column_alone_is_used_as_itself():
    recs = _grouped({"factor(f)": lambda i: f"g{i % 4}"})
    res = mixedbridge.run({"analysis": "lmm", "formula": "y ~ f + (1 | `factor(f)`)", "data": {"records": recs}})
    assert res.table("groups").to_pandas()["levels"].tolist() == [4]


# ------------------------------------------------------------------------------ numbers
def test_a_response_beyond_64_bit_integers_is_a_number():
    recs = [{"y": 10**30, "x": 1}, {"y": 2, "x": 3}, {"y": 3, "x": 2}]
    res = mixedbridge.run({"analysis": "lm", "formula": "y ~ x", "data": {"records": recs}})
    # R: coef(lm(y ~ x, data.frame(y = c(1e30, 2, 3), x = c(1, 3, 2))))
    assert res.table("parameters").to_pandas()["estimate"].tolist() == pytest.approx(
        [1.3333333333333341e+30, -5.0000000000000015e+29], rel=1e-12)


def test_a_number_beyond_double_range_is_named():
    recs = [{"y": 10**400, "x": 1}, {"y": 2, "x": 3}, {"y": 3, "x": 2}]
    err = _error({"analysis": "lm", "formula": "y ~ x", "data": {"records": recs}})
    assert isinstance(err, DataError) and "'y'" in err.message and "too large" in err.message


def test_an_all_missing_column_is_named_as_empty():
    recs = [{"y": 1.0, "x": None}, {"y": 2.0, "x": None}, {"y": 3.0, "x": None}]
    err = _error({"analysis": "lm", "formula": "y ~ x", "data": {"records": recs}})
    assert isinstance(err, DataError) and "'x' has no values" in err.message


# --------------------------------------------------------------------------- the guard
def test_wide_interactions_are_refused_before_the_design_is_built():
    rng = np.random.default_rng(1)
    n = 2000
    df = pd.DataFrame({"y": rng.normal(size=n), **{k: rng.integers(0, 100, n).astype(str) for k in "abc"}})
    err = _error({"analysis": "lm", "formula": "y ~ a:b:c", "data": {"records": [{}]}}, data=df)
    assert isinstance(err, ModelError) and "970,299" in err.message and "a:b:c" in err.message


def test_the_budget_follows_the_process_limits(monkeypatch):
    monkeypatch.setenv(guard.LIMIT_ENV, "300")
    assert guard.available_bytes() <= 300 * 1024**2
    monkeypatch.setenv(guard.LIMIT_ENV, "not a number")
    assert guard.available_bytes() > 0


_CROSSED = """
import resource, numpy as np, pandas as pd, mixedbridge
resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3, 3 * 1024**3))
rng = np.random.default_rng(1)
n = 40000
df = pd.DataFrame({"y": rng.normal(size=n), "a": rng.integers(0, 12000, n).astype(str),
                   "b": rng.integers(0, 12000, n).astype(str)})
try:
    mixedbridge.run({"analysis": "lmm", "formula": "y ~ 1 + (1 | a) + (1 | b)", "data": {"records": [{}]}}, data=df)
except mixedbridge.MixedBridgeError as e:
    print(e.code, e.message)
"""


@pytest.mark.subprocess
@pytest.mark.skipif(resource.getrlimit(resource.RLIMIT_AS)[0] != resource.RLIM_INFINITY,
                    reason="the test sets its own address-space limit")
def test_crossed_12k_by_12k_is_refused_under_an_address_space_limit():
    out = subprocess.run([sys.executable, "-c", _CROSSED], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.stdout.startswith("model this random-effects structure would need"), out.stdout + out.stderr
    assert "this process can give a fit" in out.stdout


# ---------------------------------------------------------------------- spec maxima
@pytest.mark.parametrize("where,value,words", [
    ("anova", {"method": "bootstrap", "nsim": 40_000_000}, "maximum of 100000"),
    ("anova", {"method": "bootstrap", "seed": 2**31}, "maximum of 2147483647"),
    ("confint", {"method": "bootstrap", "nsim": 40_000_000}, "maximum of 100000"),
    ("confint", {"method": "bootstrap", "seed": 2**31}, "maximum of 2147483647"),
])
def test_bootstrap_sizes_and_seeds_have_a_maximum(where, value, words):
    spec = {"analysis": "lmm", "engine": "lme4", "formula": "Reaction ~ Days + (1 | Subject)", **SLEEP,
            "options": {"reml": False, where: value}}
    err = _error(spec)
    key = next(k for k in value if k != "method")
    assert err.code == "spec" and err.path == f"/options/{where}/{key}" and words in err.message


# --------------------------------------------------------------------------- emmeans
def _three_factors(levels: int, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"y": rng.normal(size=n), **{k: rng.integers(0, levels, n).astype(str) for k in "abc"}})


@pytest.mark.parametrize("engine", ["native", "lme4"])
def test_a_reference_grid_beyond_rg_limit_is_refused_before_the_fit(engine, monkeypatch):
    if engine == "lme4":
        pytest.importorskip("rpy2")
    from mixedbridge import engines

    monkeypatch.setattr(engines, "engines_for", lambda name: pytest.fail("the model was fitted"))
    err = _error({"analysis": "lm", "engine": engine, "formula": "y ~ a + b + c", "data": {"records": [{}]},
                  "options": {"emmeans": {"specs": "a"}}}, data=_three_factors(30))
    assert err.code == "spec" and err.path == "/options/emmeans"
    assert "27,000 rows" in err.message and "10,000" in err.message


def test_too_many_pairwise_comparisons_are_refused():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"y": rng.normal(size=600), "a": [f"a{i % 200}" for i in range(600)]})
    err = _error({"analysis": "lm", "formula": "y ~ a", "data": {"records": [{}]},
                  "options": {"emmeans": {"specs": "a", "contrasts": "pairwise"}}}, data=df)
    assert err.path == "/options/emmeans/contrasts" and "19,900 rows" in err.message


def test_grids_within_the_limits_are_answered():
    res = mixedbridge.run({"analysis": "lm", "formula": "y ~ a + b", "data": {"records": [{}]},
                           "options": {"emmeans": {"specs": "a", "contrasts": "pairwise"}}}, data=_three_factors(20))
    assert len(res.table("contrasts").rows) == 190


# -------------------------------------------------------------------- text, markdown, plots
_LEVELS = ["$\\bad{$", "a\x1b[31mred\x1b[0m", "two\nlines", "p|q"]


@pytest.fixture(scope="module")
def odd_levels() -> mixedbridge.Results:
    rng = np.random.default_rng(1)
    recs = [{"y": float(rng.normal() + i % 4), "f": _LEVELS[i % 4], "g": f"g{i % 6}", "$x$": float(i)}
            for i in range(48)]
    return mixedbridge.run({"analysis": "lmm", "formula": "y ~ f + `$x$` + (1 | g)", "data": {"records": recs},
                            "options": {"plots": [{"type": "emmeans", "horizontal": "f"},
                                                  {"type": "cluster_fits"}]}})


def test_ansi_escapes_and_newlines_in_levels_are_escaped_in_text(odd_levels):
    text = odd_levels.to_text()
    assert "\x1b" not in text and "fa\\x1b[31mred\\x1b[0m" in text
    assert "ftwo\\nlines" in text
    rows = [line for line in text.splitlines() if line.startswith("fixed")]
    assert len(rows) == 5


def test_markdown_rows_stay_rows(odd_levels):
    md = odd_levels.to_markdown()
    table = md.split("**Parameter estimates**")[1].split("*Note.*")[0].strip().splitlines()
    assert len(table) == 2 + 7 and all(line.startswith("| ") and line.endswith(" |") for line in table)
    assert "fp\\|q" in md and "\x1b" not in md
    assert md.splitlines()[0] == "### lmm: `` y ~ f + `$x$` + (1 | g) `` (native)"


def test_the_json_keeps_the_levels_as_they_are(odd_levels):
    terms = [r["term"] for r in odd_levels.table("parameters").rows]
    assert "fa\x1b[31mred\x1b[0m" in terms and "ftwo\nlines" in terms


def test_dollar_signs_in_levels_and_names_are_drawn_as_written(odd_levels):
    assert [p["name"] for p in odd_levels.plots] == ["emmeans-f", "cluster_fits-__x__"]
    assert not any("not drawn" in n for n in odd_levels.notes)


def test_plot_text_is_never_mathtext():
    from mixedbridge.plots.render import literal_text, new_figure, to_bytes

    fig, ax = new_figure(3, 2)
    ax.set_xlabel("$\\frac{$")
    ax.set_title("cost $5 and $6 \x1b[31m")
    ax.bar([0, 1], [1, 2])
    ax.set_xticks([0, 1], ["$a$", "b\x1b[0m"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no missing glyph for a control character
        assert to_bytes(fig, "png")[:4] == b"\x89PNG"
        assert to_bytes(fig, "svg")[:5] == b"<?xml"
    literal_text(fig)
    assert not ax.xaxis.label.get_parse_math() and not ax.title.get_parse_math()
    assert ax.get_title() == "cost $5 and $6 \\x1b[31m"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["$a$", "b\\x1b[0m"]


def test_printable_text():
    from mixedbridge.table import markdown_code, printable

    assert printable("a\x1b[1mb\u202ec\td") == "a\\x1b[1mb\\u202ec\\td"
    assert printable("Résumé ✓") == "Résumé ✓"
    assert markdown_code("y ~ x") == "`y ~ x`" and markdown_code("a``b") == "``` a``b ```"


# ------------------------------------------------------------------------------------ CLI
@pytest.mark.subprocess
def test_the_cli_exits_2_on_each_limit(tmp_path):
    import json

    recs = _grouped({"(weights)": lambda i: 1 + i % 4})
    jasp_weights = {"dependent": "Reaction", "fixedVariables": ["Days"], "randomVariables": ["Subject"],
                    "fixedEffects": [{"components": ["Days"]}],
                    "randomEffects": [{"value": ["Subject"], "randomComponents": [{"value": "Intercept"}]}],
                    "marginalMeansTerms": ["Days"], "marginalMeansContrast": True,
                    "contrasts": [{"isContrast": True, "name": "c", "values": ["1e1000000000", "0", "1"]}]}
    specs = {
        "power.json": {"analysis": "lmm", "formula": "Reaction ~ Days^1e300 + (1 | Subject)", **SLEEP},
        "parens.json": {"analysis": "lm", "formula": "Reaction ~ " + "(" * 200 + "Days" + ")" * 200, **SLEEP},
        "weights.json": {"analysis": "lmm", "formula": "y ~ x + (1 | `(weights)`)", "data": {"records": recs}},
        "jasp.json": {"jasp": "lmm", "options": jasp_weights, "data": {"dataset": "sleepstudy"}},
    }
    paths = []
    for name, spec in specs.items():
        (tmp_path / name).write_text(json.dumps(spec))
        paths.append(str(tmp_path / name))
    out = subprocess.run([sys.executable, "-m", "mixedbridge.cli", "run", *paths], capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.count("error in ") == 3
    assert json.loads(out.stdout)["error"]["option"] == "contrasts"
