"""lme4 formula syntax becomes one model description; nothing in it is evaluated."""
from __future__ import annotations

import pytest

from mixedbridge.errors import FormulaError
from mixedbridge.formula import parse_formula


def labels(text: str) -> tuple[str, list[str]]:
    d = parse_formula(text)
    return d.fixed_formula(), [r.label for r in d.random]


@pytest.mark.parametrize("text,fixed,random", [
    ("load ~ time * group + (1 | participant)", "load ~ 1 + time + group + time:group", ["1 | participant"]),
    ("Reaction ~ Days + (Days | Subject)", "Reaction ~ 1 + Days", ["1 + Days | Subject"]),
    ("Reaction ~ Days + (1 + Days | Subject)", "Reaction ~ 1 + Days", ["1 + Days | Subject"]),
    ("Reaction ~ Days + (0 + Days | Subject)", "Reaction ~ 1 + Days", ["0 + Days | Subject"]),
    ("Reaction ~ Days + (Days || Subject)", "Reaction ~ 1 + Days", ["1 | Subject", "0 + Days | Subject"]),
    ("strength ~ 1 + (1 | batch/cask)", "strength ~ 1", ["1 | batch", "1 | cask:batch"]),
    ("angle ~ recipe * temperature + (1 | recipe:replicate)",
     "angle ~ 1 + recipe + temperature + recipe:temperature", ["1 | recipe:replicate"]),
    ("diameter ~ 1 + (1 | plate) + (1 | sample)", "diameter ~ 1", ["1 | plate", "1 | sample"]),
    ("y ~ x - 1 + (1 | g) + (0 + x | g)", "y ~ 0 + x", ["1 | g", "0 + x | g"]),
    ("y ~ (a + b + c)^2", "y ~ 1 + a + b + c + a:b + a:c + b:c", []),
    ("y ~ a/b", "y ~ 1 + a + a:b", []),
    ("log(y) ~ I(x^2) + sqrt(x + 1)", "log(y) ~ 1 + I(x^2) + sqrt(x + 1)", []),
    ("y ~ `odd name` + x", "y ~ 1 + `odd name` + x", []),
    ("y ~ I(x/2) + log(x,base=2) + relevel(f,ref='B') + I(a>1&!b)",
     'y ~ 1 + I(x/2) + log(x, base = 2) + relevel(f, ref = "B") + I(a > 1 & !b)', []),
    ("y ~ a + b %in% a", "y ~ 1 + a + a:b", []),
])
def test_term_forms(text, fixed, random):
    assert labels(text) == (fixed, random)


def test_columns_include_grouping_factors():
    assert parse_formula("y ~ x + (1 | a/b)").columns == ["y", "x", "a", "b"]


@pytest.mark.parametrize("text,words", [
    ("y ~ eval(x)", "unknown function 'eval'"),
    ("y ~ x$a", "unexpected character '$'"),
    ("y ~ \"x\"", "can only be an argument of a function"),
    ("y ~ x; z", "unexpected character ';'"),
    ("y ~ (1 | )", "unexpected ')' at position 10"),
    ("y ~ x + (1 | g", "expected ')'"),
    ("y ~ base::system(x)", "unknown function 'base::system'"),
    ("y ~ stats::log(x)", "unknown function 'stats::log'"),
    ("y ~ log(base = 2, x)", "must not be named"),
    ("y ~ x > 2", "unexpected '>'"),
    ("y ~ 3", "cannot be a term"),
    ("y ~ x ~ z", "exactly one '~'"),
    ("y ~ (x + (1 | g))", "top level"),
    ("y ~ (0 | g)", "no effects"),
])
def test_syntax_errors_are_clear(text, words):
    with pytest.raises(FormulaError, match=None) as info:
        parse_formula(text)
    assert words in info.value.message
    assert info.value.path == "/formula"
