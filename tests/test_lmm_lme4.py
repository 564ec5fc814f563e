"""The native LMM estimator against lme4 1.1-31 (R 4.2): 22 models on 10 data sets.

Every reference number is in ``tests/data/lme4_reference.json``, written by
``Rscript tests/data/lme4_reference.R`` (JSON via jsonlite with ``digits = NA``, at most 4 levels
of ranef per term kept), which reads the bundled CSV files with factors as the project makes them.

Requirements checked: criterion (REMLcrit / ML deviance) never more than 1e-6 relative above
lme4's; β to 1e-4 relative; SEs, standard deviations, correlations and σ to 1e-3 relative
(absolute floors for values near 0); log-likelihood, AIC, BIC, ngrps, singularity, conditional
modes and conditional sds.

Two models (``sleep_same_factor``, ``sleep_quadratic``) sit on a flat ridge: lme4 itself reports
"Model failed to converge with max|grad| = 0.0023 / 0.026" there, and its estimates are only
determined to a few 1e-3. Ours reach a lower criterion (by 1e-8 relative) and pass the gradient
check; for them the variance components are compared to 5e-3 relative.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mixedbridge import datasets
from mixedbridge.design import fixed_design, random_designs
from mixedbridge.formula import parse_formula
from mixedbridge.frame import model_frame
from mixedbridge.lmm import fit_lmm

_LEG = {"filter": [{"column": "exercise", "eq": "legpress"}, {"column": "time", "in": ["pre", "post"]}],
        "levels": {"time": ["pre", "post"]}}
_ISOK = {"filter": [{"column": "exercise", "eq": "isok.60"}, {"column": "time", "in": ["pre", "post"]}],
         "levels": {"time": ["pre", "post"], "sets": ["single", "multiple"]}}

#: name -> (R call, data set, formula, spec, options); options: reml, weights/offset (functions of
#: the frame), rows (first rows of the data set).
CALLS: dict[str, tuple[str, str, str, dict[str, Any], dict[str, Any]]] = {
    "ch_tenthirty": ("lmer(load ~ time * group + (1 | participant), tt_leg)",
                     "tenthirty", "load ~ time * group + (1 | participant)", _LEG, {}),
    "ch_strengthvolume": ("lmer(load ~ time * sets + (1 | participant), sv60)",
                          "strengthvolume", "load ~ time * sets + (1 | participant)", _ISOK, {}),
    "ch_sleepstudy": ("lmer(Reaction ~ Days + (Days | Subject), subset(ss, Days >= 2))", "sleepstudy",
                      "Reaction ~ Days + (Days | Subject)", {"filter": [{"column": "Days", "gte": 2}]}, {}),
    "sleep_reml": ("lmer(Reaction ~ Days + (Days | Subject), ss)", "sleepstudy",
                   "Reaction ~ Days + (Days | Subject)", {}, {}),
    "sleep_ml": ("lmer(Reaction ~ Days + (Days | Subject), ss, REML = FALSE)", "sleepstudy",
                 "Reaction ~ Days + (Days | Subject)", {}, {"reml": False}),
    "sleep_uncorr": ("lmer(Reaction ~ Days + (Days || Subject), ss)", "sleepstudy",
                     "Reaction ~ Days + (Days || Subject)", {}, {}),
    "sleep_slope_only": ("lmer(Reaction ~ Days + (0 + Days | Subject), ss)", "sleepstudy",
                         "Reaction ~ Days + (0 + Days | Subject)", {}, {}),
    "sleep_same_factor": ("lmer(Reaction ~ Days + (Days | Subject) + (0 + I(Days^2) | Subject), ss)",
                          "sleepstudy", "Reaction ~ Days + (Days | Subject) + (0 + I(Days^2) | Subject)", {}, {}),
    "sleep_weights": ("lmer(Reaction ~ Days + (Days | Subject), ss, weights = w)", "sleepstudy",
                      "Reaction ~ Days + (Days | Subject)", {}, {"weights": True}),
    "sleep_weights_ml": ("lmer(Reaction ~ Days + (1 | Subject), ss, weights = w, REML = FALSE)",
                         "sleepstudy", "Reaction ~ Days + (1 | Subject)", {}, {"weights": True, "reml": False}),
    "sleep_offset": ("lmer(Reaction ~ Days + (1 | Subject), ss, offset = off)", "sleepstudy",
                     "Reaction ~ Days + (1 | Subject)", {}, {"offset": True}),
    "dyestuff_reml": ("lmer(Yield ~ 1 + (1 | Batch), ds)", "Dyestuff", "Yield ~ 1 + (1 | Batch)", {}, {}),
    "dyestuff_ml": ("lmer(Yield ~ 1 + (1 | Batch), ds, REML = FALSE)", "Dyestuff",
                    "Yield ~ 1 + (1 | Batch)", {}, {"reml": False}),
    "dyestuff2_singular": ("lmer(Yield ~ 1 + (1 | Batch), ds2)", "Dyestuff2", "Yield ~ 1 + (1 | Batch)", {}, {}),
    "penicillin_reml": ("lmer(diameter ~ 1 + (1 | plate) + (1 | sample), pe)", "Penicillin",
                        "diameter ~ 1 + (1 | plate) + (1 | sample)", {}, {}),
    "penicillin_ml": ("lmer(diameter ~ 1 + (1 | plate) + (1 | sample), pe, REML = FALSE)", "Penicillin",
                      "diameter ~ 1 + (1 | plate) + (1 | sample)", {}, {"reml": False}),
    "pastes_nested": ("lmer(strength ~ 1 + (1 | batch/cask), pa)", "Pastes",
                      "strength ~ 1 + (1 | batch/cask)", {}, {}),
    "cake_interaction": ("lmer(angle ~ recipe * temperature + (1 | recipe:replicate), ck)", "cake",
                         "angle ~ recipe * temperature + (1 | recipe:replicate)", {}, {}),
    "fhch2010_factor_slope": ("lmer(log_rt ~ task * stimulus + (1 + stimulus | id) + (1 | item), fh)",
                              "fhch2010", "log_rt ~ task * stimulus + (1 + stimulus | id) + (1 | item)", {}, {}),
    "sv_slope_and_nested": ("lmer(load ~ time * sets + (1 + time | participant) + (1 | sets:participant), sv60)",
                            "strengthvolume",
                            "load ~ time * sets + (1 + time | participant) + (1 | sets:participant)", _ISOK, {}),
    "sleep_quadratic": ("lmer(Reaction ~ Days + (1 + Days + I(Days^2) | Subject), ss)", "sleepstudy",
                        "Reaction ~ Days + (1 + Days + I(Days^2) | Subject)", {}, {}),
    "insteval_5000": ("lmer(y ~ service + (1 | s) + (1 | d) + (1 | dept:service), ie)", "InstEval",
                      "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", {}, {"rows": 5000}),
}

REFERENCE = Path(__file__).resolve().parent / "data" / "lme4_reference.json"

#: Models where lme4's own fit fails its gradient check (flat ridge): looser variance tolerance.
FLAT = {"sleep_same_factor": 5e-3, "sleep_quadratic": 5e-3}

LME4 = json.loads(REFERENCE.read_text(encoding="utf-8"))
ABOUT = LME4.pop("_about")


def _fit(name: str):
    _, ds, formula, spec, opt = CALLS[name]
    df, factors = datasets.load(ds)
    if "rows" in opt:
        df = df.iloc[: opt["rows"]]
    desc = parse_formula(formula)
    frame = model_frame(df, desc, spec, factors)
    fd = fixed_design(desc, frame)
    weights: np.ndarray | None = None
    offset: np.ndarray | None = None
    if opt.get("weights") or opt.get("offset"):
        days = frame.data["Days"].to_numpy(float)
        weights = 1.0 + days % 3 if opt.get("weights") else None
        offset = 5.0 * np.sqrt(days) if opt.get("offset") else None
    return fit_lmm(fd.X, fd.names, frame.response(desc), random_designs(desc, frame),
                   reml=opt.get("reml", True), weights=weights, offset=offset)


@pytest.fixture(scope="module")
def fits():
    return {}


def _get(fits, name):
    if name not in fits:
        fits[name] = _fit(name)
    return fits[name]


def _close(ours, ref, rtol, atol=0.0):
    ours, ref = np.asarray(ours, float), np.asarray(ref, float)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol)


def _vc_values(fit) -> list[float]:
    """Our VarCorr in the row order of R's as.data.frame(VarCorr(fm))."""
    out = []
    for v in fit.varcorr:
        out += list(v.sd)
        p = len(v.sd)
        out += [v.corr[j, i] for i in range(p) for j in range(i + 1, p)]
    return out + [fit.sigma]


NAMES = list(CALLS)


def test_suite_covers_required_forms():
    assert len(NAMES) >= 15
    assert len({c[1] for c in CALLS.values()}) >= 6
    assert set(LME4) == set(CALLS)
    assert all(LME4[name]["call"] == call for name, (call, *_) in CALLS.items())
    assert ABOUT["lme4"] == "1.1.31"  # the version the docstring names


def test_loose_tolerances_only_where_lme4_fails_its_gradient_check():
    assert set(FLAT) == {name for name, ref in LME4.items() if not ref["lme4_converged"]}


@pytest.mark.parametrize("name", NAMES)
def test_criterion_not_above_lme4(fits, name):
    fit, ref = _get(fits, name), LME4[name]
    assert (fit.deviance - ref["crit"]) / abs(ref["crit"]) <= 1e-6
    assert fit.deviance == pytest.approx(ref["crit"], rel=1e-6)
    crit = fit.reml_crit if fit.reml else fit.deviance
    assert crit == fit.deviance
    assert fit.deviance_ml == pytest.approx(ref["deviance_ml"], rel=1e-6)
    assert fit.loglik == pytest.approx(ref["loglik"], rel=1e-6)
    assert fit.aic == pytest.approx(ref["aic"], rel=1e-6)
    assert fit.bic == pytest.approx(ref["bic"], rel=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_fixed_effects(fits, name):
    fit, ref = _get(fits, name), LME4[name]
    assert fit.coef_names == ref["beta_names"]
    scale = np.max(np.abs(ref["beta"]))
    _close(fit.beta, ref["beta"], rtol=1e-4, atol=1e-6 * scale)
    _close(fit.se, ref["se"], rtol=FLAT.get(name, 1e-3))


@pytest.mark.parametrize("name", NAMES)
def test_variance_components(fits, name):
    fit, ref = _get(fits, name), LME4[name]
    groups = [g for g, *_ in ref["vc"]]
    ours_groups = [v.group for v in fit.varcorr for _ in range(len(v.sd) * (len(v.sd) + 1) // 2)]
    assert [g.split(".")[0] for g in groups[:-1]] == ours_groups
    values = np.array([v for *_, v in ref["vc"]])
    ours = np.array(_vc_values(fit))
    sd_floor = 1e-3 * ref["sigma"]
    is_corr = np.array([b != "" for _, _, b, _ in ref["vc"]])
    ok = ~np.isnan(ours)
    rtol = FLAT.get(name, 1e-3)
    np.testing.assert_allclose(ours[ok & ~is_corr], values[ok & ~is_corr], rtol=rtol, atol=sd_floor)
    np.testing.assert_allclose(ours[ok & is_corr], values[ok & is_corr], rtol=rtol, atol=1e-3)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-3)
    _close(fit.theta, ref["theta"], rtol=10 * rtol, atol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_random_effects_and_groups(fits, name):
    fit, ref = _get(fits, name), LME4[name]
    assert fit.ngroups == ref["ngrps"]
    assert list(fit.ngroups) == list(ref["ngrps"])
    assert fit.optinfo["singular"] == ref["singular"]
    rtol = 10 * FLAT.get(name, 1e-3)
    for group, term, level, mode, condsd in ref["ranef"]:
        block = next(r for r in fit.ranef if r.group == group and term in r.terms)
        i, j = block.levels.index(level), block.terms.index(term)
        scale = max(np.max(np.abs(block.modes[:, j])), 1e-12)
        assert block.modes[i, j] == pytest.approx(mode, rel=rtol, abs=1e-3 * scale)
        assert block.condsd[i, j] == pytest.approx(condsd, rel=rtol, abs=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_fit_record(fits, name):
    fit = _get(fits, name)
    assert fit.analysis == "lmm" and fit.engine == "native"
    n, p = fit.nobs, len(fit.beta)
    # lme4: df.residual(fm) == nobs(fm) - (p + length(getME(fm, "theta")) + 1)
    assert fit.df_residual == n - (p + len(fit.theta) + 1)
    assert fit.residuals.shape == (n,) and fit.fitted.shape == (n,)
    assert fit.optinfo["optimizer"] == "LN_BOBYQA"
    assert fit.optinfo["feval"] > 0
    if not fit.optinfo["singular"]:
        assert fit.optinfo["converged"], fit.optinfo["messages"]
        assert fit.optinfo["max_grad"] < 2e-3
        assert not fit.warnings
    assert fit.backend.model.n == n


def test_singular_fit_warns(fits):
    fit = _get(fits, "dyestuff2_singular")
    assert fit.optinfo["singular"]
    assert fit.varcorr[0].sd[0] == pytest.approx(0.0, abs=1e-8)
    assert fit.optinfo["hessian"].startswith("skipped")
    assert len(fit.warnings) == 1
    text = fit.warnings[0]
    assert "Batch" in text and "singular" in text and "zero" in text


def test_residuals_add_up(fits):
    fit = _get(fits, "sleep_offset")
    model = fit.backend.model
    np.testing.assert_allclose(fit.fitted + fit.residuals, model.y)
    np.testing.assert_allclose(np.sum(fit.residuals), 0.0, atol=1e-6)
