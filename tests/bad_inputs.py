"""The catalogue of named bad inputs: each spec, and the error it must give.

Used by tests/test_bad_input.py and by ``python -m tests.bad_inputs`` to regenerate
docs/bad-inputs.md, so the documented messages are the ones the code gives.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

TENTHIRTY = {
    "data": {"dataset": "tenthirty"},
    "filter": [{"column": "exercise", "in": ["legpress"]}, {"column": "time", "in": ["pre", "post"]}],
    "levels": {"time": ["pre", "post"]},
}
LM = {"analysis": "lm", "formula": "load ~ time * group", **TENTHIRTY}
LMM = {"analysis": "lmm", "formula": "load ~ time * group + (1 | participant)", **TENTHIRTY}


def records(rows: list[dict]) -> dict:
    """Inline data, with no filter or levels from the tenthirty base."""
    return {"data": {"records": rows}, "filter": [], "levels": {}}


def _drop(spec: dict, key: str) -> dict:
    return {k: v for k, v in spec.items() if k != key}


#: A small glmm: counts y of s successes in n trials, x, a factor f, groups g (inline rows).
GLMM_ROWS = [{"y": float(i % 4), "s": float(i % 3), "n": 3.0, "x": float(i % 5), "f": "abc"[i % 3],
              "b": "no" if i % 2 else "yes", "g": f"g{i % 4}"} for i in range(16)]
GLMM: dict[str, Any] = {"analysis": "glmm", "formula": "y ~ x + (1 | g)", "data": {"records": GLMM_ROWS},
        "options": {"family": "poisson"}}


def glmm(formula: str, rows: list[dict] | None = None, **options) -> dict:
    """The small glmm with another formula, rows or options."""
    return {**GLMM, "formula": formula, "data": {"records": rows or GLMM_ROWS},
            "options": {**GLMM["options"], **options}}


#: (name, spec, error code, JSON path, words the message must contain); a spec may be any JSON value.
CATALOGUE: list[tuple[str, Any, str, str, list[str]]] = [
    # -- the spec document ---------------------------------------------------------------------
    ("spec is not an object", [1, 2], "spec", "", ["JSON object"]),
    ("unknown analysis", {**LM, "analysis": "glm"}, "spec", "/analysis", ["'glm'", "'lm'", "'lmm'"]),
    ("formula of the wrong type", {**LM, "formula": 42}, "spec", "/formula", ["expected string"]),
    ("empty formula", {**LM, "formula": ""}, "spec", "/formula", ["non-empty"]),
    ("unknown key", {**LM, "color": "red"}, "spec", "", ["'color'"]),
    ("unknown engine", {**LM, "engine": "sas"}, "spec", "/engine", ["'sas'", "'native'"]),
    ("missing formula", _drop(LM, "formula"), "spec", "", ["'formula' is a required"]),
    ("missing data", _drop(LM, "data"), "spec", "", ["'data' is a required"]),
    ("data of an unknown kind", {**LM, "data": {"file": "x.csv"}}, "spec", "/data", ["path", "dataset", "records"]),
    ("empty records", {**LM, "data": {"records": []}}, "spec", "/data/records", ["non-empty"]),
    ("records that are not objects", {**LM, "data": {"records": [1, 2]}}, "spec", "/data/records/0",
     ["expected object"]),
    ("filter with an unknown operator", {**LM, "filter": [{"column": "load", "between": [1, 2]}]}, "spec",
     "/filter/0", ["'between'"]),
    ("filter without an operator", {**LM, "filter": [{"column": "load"}]}, "spec", "/filter/0",
     ["enough properties"]),
    ("empty level list", {**LM, "levels": {"time": []}}, "spec", "/levels/time", ["non-empty"]),
    ("repeated level", {**LM, "levels": {"time": ["pre", "pre"]}}, "spec", "/levels/time", ["non-unique"]),
    ("unknown contrasts", {**LM, "options": {"contrasts": "helmert"}}, "spec", "/options/contrasts",
     ["'helmert'", "'sum'"]),
    ("reml as text", {**LMM, "options": {"reml": "yes"}}, "spec", "/options/reml", ["expected boolean"]),
    ("negative time limit", {**LM, "options": {"timeout": -1}}, "spec", "/options/timeout", ["minimum"]),
    # -- the data ----------------------------------------------------------------------------
    ("unknown dataset", {**LM, "data": {"dataset": "iris"}}, "data", "/data/dataset", ["'iris'", "sleepstudy"]),
    ("missing data file", {**LM, "data": {"path": "nonexistent/x.csv"}}, "data", "/data/path",
     ["'nonexistent/x.csv'", "does not exist"]),
    ("data path outside the data folder", {**LM, "data": {"path": "/etc/passwd"}}, "data", "/data/path",
     ["'/etc/passwd'", "outside the folders", "--data-root"]),
    ("data path leaving the data folder by ..", {**LM, "data": {"path": "../../../../etc/shadow"}}, "data",
     "/data/path", ["outside the folders"]),
    ("data path of a procfs file", {**LM, "data": {"path": "/proc/self/environ"}}, "data", "/data/path",
     ["outside the folders"]),
    ("data path naming a folder", {**LM, "data": {"path": "."}}, "data", "/data/path", ["is a folder"]),
    ("data file that is not CSV", {**LM, "data": {"path": "settings.env"}}, "data", "/data/path",
     ["'settings.env'", "not a CSV file"]),
    ("records that are not a list", {**LM, "data": {"records": 5}}, "spec", "/data/records", ["expected array"]),
    ("time limit of zero", {**LM, "options": {"timeout": 0}}, "spec", "/options/timeout", ["minimum"]),
    ("unknown column in the formula", {**LM, "formula": "load ~ tme * group"}, "data", "/formula",
     ["'tme'", "not in the data"]),
    ("unknown column in a filter", {**LM, "filter": [{"column": "exercize", "in": ["legpress"]}]}, "data",
     "/filter/0/column", ["'exercize'"]),
    ("unknown column in levels", {**LM, "levels": {"tim": ["pre", "post"]}}, "data", "/levels/tim", ["'tim'"]),
    ("listed level that does not occur", {**LM, "levels": {"time": ["pre", "postt"]}}, "data", "/levels/time/1",
     ["'postt'", "does not occur"]),
    ("occurring level not listed", {**LM, "levels": {"time": ["pre"]}}, "data", "/levels/time",
     ["'post'", "not listed"]),
    ("text response", {**LM, "formula": "group ~ time"}, "data", "/formula", ["'group'", "numeric"]),
    ("factor() response", {**LM, "formula": "factor(load) ~ time"}, "data", "/formula", ["numeric"]),
    ("filter that leaves no rows", {**LM, "filter": [{"column": "exercise", "in": ["squat"]}]}, "data",
     "/filter/0", ["no rows"]),
    ("filter value of the wrong type", {**LM, "filter": [{"column": "load", "in": ["heavy"]}]}, "data",
     "/filter/0/in", ["numeric"]),
    ("numeric filter on text", {**LM, "filter": [{"column": "group", "gte": 3}]}, "data", "/filter/0/gte",
     ["text"]),
    ("every row incomplete", {**LM, "formula": "y ~ x", **records([{"y": None, "x": 1}, {"y": 2, "x": None}])},
     "data", "/data", ["no complete rows"]),
    ("weights column of text", {**LM, "options": {"weights": "group"}}, "data", "/options/weights", ["numeric"]),
    ("negative weights", {**LM, "formula": "y ~ x", "options": {"weights": "w"},
                          **records([{"y": 1.0, "x": 1, "w": -1}, {"y": 2.0, "x": 2, "w": 1},
                                     {"y": 2.5, "x": 3, "w": 1}])},
     "data", "/options/weights", ["negative"]),
    ("unknown offset column", {**LM, "options": {"offset": "nope"}}, "data", "/options/offset", ["'nope'"]),
    # -- the formula -------------------------------------------------------------------------
    ("formula ends early", {**LM, "formula": "load ~ time * "}, "formula", "/formula", ["ends too early"]),
    ("formula without a tilde", {**LM, "formula": "load time"}, "formula", "/formula", ["'~'"]),
    ("unbalanced parenthesis", {**LM, "formula": "load ~ (time + group"}, "formula", "/formula", ["')'"]),
    ("unknown function", {**LM, "formula": "load ~ system(time)"}, "formula", "/formula", ["'system'", "allowed"]),
    ("Python code in the formula", {**LM, "formula": "load ~ __import__('os')"}, "formula", "/formula",
     ["unexpected character"]),
    ("R code in the formula", {**LM, "formula": "load ~ time; system('id')"}, "formula", "/formula",
     ["unexpected character ';'"]),
    ("bar outside parentheses", {**LM, "formula": "load ~ time | participant"}, "formula", "/formula",
     ["parentheses"]),
    ("random term in an lm", {**LM, "formula": "load ~ time + (1 | participant)"}, "formula", "/formula",
     ["'lmm'"]),
    ("lmm without a random term", {**LM, "analysis": "lmm"}, "formula", "/formula", ["random-effects"]),
    ("response among the predictors", {**LM, "formula": "load ~ load + time"}, "formula", "/formula",
     ["also appears"]),
    ("fractional power", {**LM, "formula": "load ~ (time + group)^0.5"}, "formula", "/formula",
     ["positive whole number"]),
    ("expression as grouping factor", {**LMM, "formula": "load ~ time + (1 | log(participant))"}, "formula",
     "/formula", ["not a grouping factor"]),
    # -- the model ---------------------------------------------------------------------------
    ("grouping factor with one level", {**LMM, "formula": "load ~ time + (1 | exercise)"}, "model", "/formula",
     ["'exercise'", "only 1 level"]),
    ("one group per observation", {**LMM, "formula": "y ~ x + (1 | obs)",
                                   **records([{"y": float(i % 7), "x": i % 3, "obs": f"o{i}"} for i in range(20)])},
     "model", "/formula", ["'obs'", "20 levels for 20 observations"]),
    ("more random effects than observations", {**LMM, "formula": "y ~ 1 + (x | g)",
                                               **records([{"y": float(i), "x": float(i * i % 5), "g": f"g{i % 4}"}
                                                          for i in range(7)])},
     "model", "/formula", ["8 random effects for 7 observations"]),
    ("response with zero variance", {**LMM, "formula": "y ~ 1 + (1 | g)",
                                     **records([{"y": 1.0, "g": f"g{i % 3}"} for i in range(12)])},
     "model", "/formula", ["zero variance"]),
    ("random slope of a missing variable", {**LMM, "formula": "load ~ time + (dose | participant)"}, "data",
     "/formula", ["'dose'"]),
    ("non-finite value", {**LM, "formula": "y ~ x", **records([{"y": 1.0, "x": 1.0}, {"y": float("inf"), "x": 2.0},
                                                               {"y": 3.0, "x": 3.0}])},
     "model", "/formula", ["non-finite"]),
    ("log of a non-positive value", {**LM, "formula": "y ~ log(x)",
                                     **records([{"y": 1.0, "x": -1.0}, {"y": 2.0, "x": 2.0}, {"y": 3.0, "x": 3.0}])},
     "model", "/formula", ["'log(x)'", "undefined"]),
    ("more coefficients than observations", {**LM, "formula": "y ~ x + z",
                                             **records([{"y": 1.0, "x": 1.0, "z": 0.0},
                                                        {"y": 2.0, "x": 0.0, "z": 1.0}])},
     "model", "/formula", ["cannot estimate"]),
    # -- issue #19: sizes that grow from a small input, internal labels, names (limits) ---------
    ("huge power", {**LM, "formula": "load ~ time^1e300"}, "formula", "/formula",
     ["time^1e+300", "2,147,483,647"]),
    ("crossing 21 variables", {**LM, "formula": "load ~ " + "*".join(f"x{i}" for i in range(21))}, "formula",
     "/formula", ["more than 1,024 terms"]),
    ("interaction of 60 variables", {**LM, "formula": "load ~ " + ":".join(f"x{i}" for i in range(60))}, "formula",
     "/formula", ["more than 50 variables"]),
    ("200 nested parentheses", {**LM, "formula": "load ~ " + "(" * 200 + "time" + ")" * 200}, "formula",
     "/formula", ["more than 50 deep"]),
    ("bootstrap of 40 million samples", {**LMM, "options": {"reml": False, "anova": {"method": "bootstrap",
                                                                                     "nsim": 40_000_000}}},
     "spec", "/options/anova/nsim", ["maximum of 100000"]),
    ("seed beyond R's integers", {**LMM, "options": {"confint": {"method": "bootstrap", "seed": 2**31}}}, "spec",
     "/options/confint/seed", ["maximum of 2147483647"]),
    ("reference grid beyond rg.limit", {**LM, "formula": "y ~ a + b + c", "options": {"emmeans": {"specs": "a"}},
                                        **records([{"y": float(i % 7), "a": f"a{i % 30}", "b": f"b{i // 10 % 30}",
                                                    "c": f"c{i % 29}"} for i in range(300)])},
     "spec", "/options/emmeans", ["26,100 rows", "rg.limit"]),
    ("pairwise comparisons of 200 means", {**LM, "formula": "y ~ a", "options": {"emmeans": {
        "specs": "a", "contrasts": "pairwise"}}, **records([{"y": float(i % 7), "a": f"a{i % 200}"}
                                                            for i in range(400)])},
     "spec", "/options/emmeans/contrasts", ["19,900 rows"]),
    ("Kenward-Roger with prior weights", {**LMM, "formula": "load ~ time + (1 | participant)",
                                          "options": {"weights": "load", "df_method": "kenward-roger"}},
     "spec", "/options/df_method", ["prior weights", "satterthwaite"]),
    ("grouping column named (weights)", {**LMM, "formula": "y ~ x + (1 | `(weights)`)",
                                         **records([{"y": float(i % 5), "x": i, "(weights)": i % 4}
                                                    for i in range(24)])},
     "data", "/formula", ["'(weights)'", "rename the column"]),
    ("grouping column named factor(f)", {**LMM, "formula": "y ~ factor(f) + (1 | `factor(f)`)",
                                         **records([{"y": float(i % 5), "f": i % 3, "factor(f)": f"g{i % 4}"}
                                                    for i in range(24)])},
     "data", "/formula", ["'factor(f)'", "rename the column"]),
    ("number beyond double precision", {**LM, "formula": "y ~ x", **records([{"y": 10**400, "x": 1}, {"y": 2, "x": 3},
                                                                            {"y": 3, "x": 2}])},
     "data", "/data", ["'y'", "too large"]),
    ("all-missing column", {**LM, "formula": "y ~ x", **records([{"y": 1.0, "x": None}, {"y": 2.0, "x": None}])},
     "data", "/formula", ["'x' has no values"]),
    # -- generalized linear mixed models ------------------------------------------------------
    ("unknown glmm family", glmm("y ~ x + (1 | g)", family="weibull"), "spec", "/options/family",
     ["'weibull'", "'binomial'", "'negative.binomial'"]),
    ("glmm without a family", {**GLMM, "options": {}}, "spec", "/options/family", ["needs a family", "'poisson'"]),
    ("family on a linear mixed model", {**LMM, "options": {"family": "poisson"}}, "spec", "/options/family",
     ["'glmm'", "'lmm'"]),
    ("exact optimum on a glmm", {**GLMM, "options": {**GLMM["options"], "exact_optimum": True}}, "spec",
     "/options/exact_optimum", ["'lmm'", "'glmm'"]),
    ("exact optimum not a boolean", {**LMM, "options": {"exact_optimum": "yes"}}, "spec",
     "/options/exact_optimum", ["boolean", '"yes"']),
    ("link the family does not take", glmm("y ~ x + (1 | g)", link="logit"), "spec", "/options/link",
     ["poisson", "'logit'", "'log'", "'sqrt'"]),
    ("unknown link", glmm("y ~ x + (1 | g)", link="probability"), "spec", "/options/link", ["'probability'"]),
    ("gaussian glmm with the identity link", glmm("y ~ x + (1 | g)", family="gaussian"), "spec", "/options/link",
     ["identity", "'lmm'"]),
    ("negative binomial with a link glmer.nb lacks", glmm("y ~ x + (1 | g)", family="negative.binomial",
                                                            link="sqrt"), "spec", "/options/link", ["'sqrt'", "'log'"]),
    ("too many quadrature points", glmm("y ~ x + (1 | g)", nAGQ=30), "spec", "/options/nAGQ", ["maximum"]),
    ("quadrature with a random slope", glmm("y ~ x + (1 + x | g)", nAGQ=5), "spec", "/options/nAGQ",
     ["single scalar", "(1 + x | g)"]),
    ("glmm without random effects", glmm("y ~ x"), "formula", "/formula", ["'glmm'", "random-effects"]),
    ("binomial response outside 0 and 1", glmm("y ~ x + (1 | g)", family="binomial"), "data", "/formula",
     ["'y'", "[0, 1]", "weights"]),
    ("more successes than trials", glmm("cbind(s, n - 4) ~ x + (1 | g)", family="binomial"), "data", "/formula",
     ["cbind(s, n - 4)", "more successes than trials"]),
    ("binomial factor response with three levels", glmm("f ~ x + (1 | g)", family="binomial"), "data", "/formula",
     ["'f'", "3 level", "two"]),
    ("negative Poisson counts", glmm("I(y - 2) ~ x + (1 | g)"), "data", "/formula",
     ["'I(y - 2)'", "negative", "Poisson"]),
    ("non-positive Gamma response", glmm("y ~ x + (1 | g)", family="Gamma"), "data", "/formula",
     ["'y'", "<= 0", "Gamma"]),
    ("text response of a Poisson glmm", glmm("b ~ x + (1 | g)"), "data", "/formula", ["'b'", "poisson", "binomial"]),
    ("successes and failures in a linear mixed model", {**GLMM, "analysis": "lmm",
                                                         "formula": "cbind(s, n - s) ~ x + (1 | g)", "options": {}},
     "data", "/formula", ["cbind(s, n - s)", "'glmm'", "'binomial'"]),
    ("successes and failures among the predictors", glmm("y ~ cbind(s, n) + (1 | g)"), "formula", "/formula",
     ["cbind", "left of '~'"]),
    ("Satterthwaite df for a glmm", glmm("y ~ x + (1 | g)", df_method="satterthwaite"), "spec",
     "/options/df_method", ["'satterthwaite'", "Wald z"]),
    ("F tests for a glmm", glmm("y ~ x + (1 | g)", anova={"method": "kenward-roger"}), "spec",
     "/options/anova/method", ["'kenward-roger'", "glmm"]),
    ("glmm compared with a linear mixed model", {**GLMM, "compare": [{"formula": "y ~ 1 + (1 | g)",
                                                                       "analysis": "lmm"}]},
     "spec", "/compare/0/analysis", ["glmm", "same family"]),
]


def document() -> str:
    """The catalogue as markdown, each case with the error it gives now."""

    import mixedbridge
    from mixedbridge.errors import MixedBridgeError

    lines = ["# Bad inputs and the errors they give", "",
             "Generated by `python -m tests.bad_inputs` from the catalogue the tests run "
             "(tests/bad_inputs.py). Each row is a spec the worker refuses, with the error code, "
             "the JSON path and the exact message.", "",
             f"{len(CATALOGUE)} cases.", "", "| # | case | code | path | message |", "|---:|---|---|---|---|"]
    for i, (name, spec, *_rest) in enumerate(CATALOGUE, 1):
        try:
            mixedbridge.run(spec)
            code, path, message = "-", "-", "NO ERROR"
        except MixedBridgeError as exc:
            code, path, message = exc.code, exc.path or "(document)", exc.message
        message = message.replace("|", "\\|")
        lines.append(f"| {i} | {name} | `{code}` | `{path}` | {message} |")
    return "\n".join(lines) + "\n"


DOC = Path(__file__).resolve().parents[1] / "docs" / "bad-inputs.md"

if __name__ == "__main__":
    DOC.write_text(document(), encoding="utf-8")
    print(f"wrote {DOC}")
