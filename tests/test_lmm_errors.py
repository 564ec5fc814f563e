"""Models lme4 refuses are refused with a ModelError naming the factor or term."""
from __future__ import annotations

import numpy as np
import pytest

from mixedbridge import datasets
from mixedbridge.design import fixed_design, random_designs
from mixedbridge.errors import ModelError
from mixedbridge.formula import parse_formula
from mixedbridge.frame import model_frame
from mixedbridge.lmm import fit_lmm


def _inputs(ds, formula, spec=None, df=None):
    data, factors = datasets.load(ds)
    if df is not None:
        data = df(data)
    desc = parse_formula(formula)
    frame = model_frame(data, desc, spec or {}, factors)
    fd = fixed_design(desc, frame)
    return fd.X, fd.names, frame.response(desc), random_designs(desc, frame)


def _raises(match, *args, **kw):
    with pytest.raises(ModelError, match=match) as info:
        fit_lmm(*args, **kw)
    assert info.value.path == "/formula"
    return info.value


def test_one_level_grouping_factor():
    args = _inputs("sleepstudy", "Reaction ~ Days + (1 | Subject)",
                   {"filter": [{"column": "Subject", "eq": 308}]})
    err = _raises("only 1 level", *args)
    assert "'Subject'" in err.message


def test_as_many_levels_as_observations():
    # R: lmer(Reaction ~ Days + (1 | obs), transform(sleepstudy, obs = factor(seq_along(Days))))
    # Error: number of levels of each grouping factor must be < number of observations (problems: obs)
    args = _inputs("sleepstudy", "Reaction ~ Days + (1 | obs)",
                   df=lambda d: d.assign(obs=[f"o{i}" for i in range(len(d))]))
    err = _raises("must be < number of observations", *args)
    assert "'obs'" in err.message


def test_more_random_effects_than_observations():
    # R: lmer(load ~ time * group + (1 + time | participant), tt3)  (legpress, pre/mid/post)
    # Error: number of observations (=78) <= number of random effects (=81) for term (1 + time | participant)
    spec = {"filter": [{"column": "exercise", "eq": "legpress"}], "levels": {"time": ["pre", "mid", "post"]}}
    args = _inputs("tenthirty", "load ~ time * group + (1 + time | participant)", spec)
    err = _raises(r"number of observations \(=78\) <= number of random effects \(=81\)", *args)
    assert "participant" in err.message


def test_constant_response():
    X, names, y, re = _inputs("sleepstudy", "Reaction ~ Days + (1 | Subject)")
    err = _raises("zero variance", X, names, np.full_like(y, 3.0), re)
    assert "response" in err.message


def test_no_random_terms():
    X, names, y, _ = _inputs("sleepstudy", "Reaction ~ Days + (1 | Subject)")
    _raises("no random-effects term", X, names, y, [])


def test_bad_weights():
    X, names, y, re = _inputs("sleepstudy", "Reaction ~ Days + (1 | Subject)")
    with pytest.raises(ModelError, match="weights"):
        fit_lmm(X, names, y, re, weights=-np.ones_like(y))


def test_convergence_failure_is_reported_in_words():
    from mixedbridge.lmm import LinearMixedModel
    from mixedbridge.lmm.api import warnings_in_words

    X, names, y, re = _inputs("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    model = LinearMixedModel(X, names, y, re).fit()
    model.check.grad_ok = False
    model.check.max_grad = 0.02
    text = " ".join(warnings_in_words(model))
    assert "did not converge" in text and "0.02" in text
    model.check.grad_ok = True
    model.optsum.return_code = "MAXEVAL_REACHED"
    assert "stopped without reaching" in " ".join(warnings_in_words(model))


def test_pearson_residuals_and_group_coefficients():
    X, names, y, re = _inputs("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    w = np.linspace(0.5, 2.0, len(y))
    fit = fit_lmm(X, names, y, re, weights=w)
    np.testing.assert_allclose(fit.pearson_residuals, fit.residuals * np.sqrt(w) / fit.sigma)
    cg = fit.coef_groups["Subject"]
    assert cg.names == ["(Intercept)", "Days"]
    np.testing.assert_allclose(cg.values, fit.beta + fit.ranef[0].modes)
