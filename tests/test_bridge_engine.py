"""The lme4 engine (R through rpy2) against numbers printed by plain R, injection safety,
and error handling.

Reference values come from running Rscript directly on module/datasets/*.csv with R 4.2.2,
lme4 1.1-31; each block records the exact R call. Every lmer call used
``ctrl <- lmerControl(optimizer = "nloptwrap", optCtrl = list(xtol_abs = 1e-8, ftol_abs = 1e-8,
maxeval = 1e5))``, as the engine does.

Without R: skipped outside CI, failed under CI=true (see the ``engine`` fixture).
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mixedbridge import datasets
from mixedbridge.bridge.engine import Lme4Engine, SafeNames, r_formula
from mixedbridge.bridge.session import RSession
from mixedbridge.errors import EngineError, FormulaError, MixedBridgeError, ModelError
from mixedbridge.formula import parse_formula
from mixedbridge.frame import model_frame
from mixedbridge.problem import Problem

from .conftest import require_r

pytestmark = pytest.mark.r

RTOL = 1e-6

TENTHIRTY = {"filter": [{"column": "exercise", "eq": "legpress"}, {"column": "time", "in": ["pre", "post"]}],
             "levels": {"time": ["pre", "post"]}}


@pytest.fixture(scope="module")
def engine() -> Lme4Engine:
    require_r()
    return Lme4Engine()


def problem_for(data, formula: str, spec: dict | None = None, analysis: str = "lmm",
                reml: bool = True, contrasts: str = "treatment", factors=None) -> Problem:
    if isinstance(data, str):
        df, factors = datasets.load(data)
    else:
        df = data
    desc = parse_formula(formula)
    frame = model_frame(df, desc, spec or {}, factors or set())
    return Problem.build(analysis, desc, frame, {"reml": reml, "contrasts": contrasts})


def close(actual, expected, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol)


# ------------------------------------------------------------------------------------------
# Values equal what plain R prints
# ------------------------------------------------------------------------------------------

def test_sleepstudy_correlated_slopes(engine):
    # d <- read.csv("sleepstudy.csv"); d$Subject <- factor(d$Subject)
    # fm <- lmer(Reaction ~ Days + (Days | Subject), data = subset(d, Days >= 2), REML = TRUE, control = ctrl)
    # fixef(fm); sqrt(diag(vcov(fm))); sigma(fm); getME(fm, "theta"); logLik(fm); AIC(fm); BIC(fm);
    # REMLcrit(fm); df.residual(fm); VarCorr(fm); ranef(fm, condVar = TRUE)
    problem = problem_for("sleepstudy", "Reaction ~ Days + (Days | Subject)",
                          {"filter": [{"column": "Days", "gte": 2}]})
    fit = engine.fit(problem)
    assert fit.engine == "lme4" and fit.analysis == "lmm" and fit.reml
    assert fit.coef_names == ["(Intercept)", "Days"] == problem.fixed.names
    close(fit.beta, [245.0965615740747, 11.4354287037036])
    close(fit.se, [9.25995618101826, 1.84524235731073])
    close(fit.sigma, 25.5263136225565)
    close(fit.theta, [1.2342950631475278, -0.0675532849923898, 0.2562940328573329])
    close([fit.loglik, fit.aic, fit.bic, fit.reml_crit, fit.deviance],
          [-702.047182712246, 1416.094365424491, 1433.913245221947, 1404.094365424491, 1404.094365424491])
    assert fit.nobs == 144 and fit.df_residual == 138
    assert fit.ngroups == {"Subject": 18}
    (vc,) = fit.varcorr
    assert vc.group == "Subject" and vc.terms == ["(Intercept)", "Days"]
    close(vc.sd, [31.50700288467699, 6.76568081059597])
    close(vc.corr, [[1, -0.254872552699953], [-0.254872552699953, 1]])
    (block,) = fit.ranef
    assert block.group == "Subject" and block.terms == ["(Intercept)", "Days"]
    assert block.levels[:2] == ["308", "309"] and len(block.levels) == 18
    close(block.modes[:2], [[7.29698512594941, 8.60174874490823], [-43.11882009422085, -8.12749551107710]])
    close(block.condsd[0], [18.1199181524761, 3.09006413058185])
    assert fit.fitted.shape == (144,) and fit.residuals.shape == (144,)
    close(fit.fitted + fit.residuals, problem.y)
    assert fit.optinfo["optimizer"] == "nloptwrap" and fit.optinfo["converged"]
    assert fit.optinfo["feval"] > 0 and not fit.optinfo["singular"]
    assert fit.warnings == []


def test_tenthirty_chapter_model(engine):
    # t <- read.csv("tenthirty.csv"); t <- subset(t, exercise == "legpress" & time %in% c("pre", "post"))
    # t$time <- factor(t$time, levels = c("pre", "post")); t$group <- factor(t$group)
    # t$participant <- factor(t$participant); t <- t[complete.cases(t[, c("load","time","group","participant")]), ]
    # fm <- lmer(load ~ time * group + (1 | participant), data = t, REML = TRUE, control = ctrl)
    problem = problem_for("tenthirty", "load ~ time * group + (1 | participant)", TENTHIRTY)
    fit = engine.fit(problem)
    assert fit.coef_names == ["(Intercept)", "timepost", "groupRM30", "timepost:groupRM30"] == problem.fixed.names
    close(fit.beta, [273.9285714285738, 77.0973806121146, 7.6098901098889, -39.4285010206920])
    close(fit.se, [19.6847565525680, 11.2623527271586, 28.3687535237878, 16.6070452334831])
    close(fit.sigma, 28.792153763245)
    close(fit.theta, [2.35455893813595])
    close([fit.loglik, fit.aic, fit.bic, fit.reml_crit],
          [-259.930434938595, 531.860869877190, 543.451823673536, 519.860869877190])
    assert fit.nobs == 51 and fit.df_residual == 45
    close(fit.varcorr[0].sd, [67.7928229914333])
    close(fit.varcorr[0].corr, [[1.0]])
    block = fit.ranef[0]
    assert block.group == "participant" and block.levels[:2] == ["1", "2"]
    close(block.modes[:2, 0], [-101.2420397589666, -80.6034059363415])
    close(block.condsd[0, 0], 19.4988217407243)


def test_tenthirty_lm(engine):
    # lf <- lm(load ~ time * group, data = t)   # t as in test_tenthirty_chapter_model
    # coef(lf); sqrt(diag(vcov(lf))); sigma(lf); logLik(lf); AIC(lf); BIC(lf); deviance(lf);
    # df.residual(lf); summary(lf)$r.squared; summary(lf)$adj.r.squared
    problem = problem_for("tenthirty", "load ~ time * group", TENTHIRTY, analysis="lm")
    fit = engine.fit(problem)
    assert fit.analysis == "lm" and fit.coef_names == problem.fixed.names
    close(fit.beta, [273.9285714285714, 75.3983516483516, 7.6098901098901, -40.5731768231768])
    close(fit.se, [20.0399819916366, 28.8806878674716, 28.8806878674716, 42.1629668742590])
    close([fit.sigma, fit.loglik, fit.aic, fit.bic, fit.deviance],
          [74.9827466498238, -290.463235565126, 590.926471130251, 600.585599293873, 264253.377872128])
    assert fit.df_residual == 47 and fit.nobs == 51
    close([fit.r_squared, fit.adj_r_squared], [0.152652793622160, 0.0985668017257026])
    assert fit.theta is None and fit.varcorr == [] and fit.ranef == []


def test_pastes_nested(engine):
    # p <- read.csv("Pastes.csv"); p$batch <- factor(p$batch); p$cask <- factor(p$cask)
    # fm <- lmer(strength ~ 1 + (1 | batch/cask), data = p, REML = TRUE, control = ctrl)
    # fixef(fm); sqrt(diag(vcov(fm))); sigma(fm); getME(fm, "theta"); ngrps(fm); VarCorr(fm)
    # ranef(fm, condVar = TRUE)[["cask:batch"]]
    problem = problem_for("Pastes", "strength ~ 1 + (1 | batch/cask)")
    fit = engine.fit(problem)
    close(fit.beta, [60.0533333333354])
    close(fit.se, [0.676870215074031])
    close(fit.sigma, 0.823407523446778)
    close(fit.theta, [3.52690178773174, 1.56346140209686])
    close([fit.loglik, fit.reml_crit, fit.aic, fit.bic],
          [-123.495372926744, 246.990745853487, 254.990745853487, 263.368124102375])
    assert fit.df_residual == 56
    assert fit.ngroups == {"cask:batch": 30, "batch": 10}
    assert [v.group for v in fit.varcorr] == ["cask:batch", "batch"]
    close([v.sd[0] for v in fit.varcorr], [2.904077466476204, 1.287365881105199])
    nested = fit.ranef[0]
    assert nested.group == "cask:batch" and nested.levels[:2] == ["a:A", "a:B"]
    close(nested.modes[:2, 0], [1.774686285371947, 0.883655895342906])
    close(nested.condsd[0, 0], 1.14172104389731)
    assert fit.ranef[1].group == "batch" and fit.ranef[1].levels[:2] == ["A", "B"]


def test_pastes_ml_deviance(engine):
    # fm2 <- update(fm, REML = FALSE); deviance(fm2); logLik(fm2)   # fm as in test_pastes_nested
    fit = engine.fit(problem_for("Pastes", "strength ~ 1 + (1 | batch/cask)", reml=False))
    assert not fit.reml and fit.reml_crit is None
    close([fit.deviance, fit.loglik], [247.994465862897, -123.997232931448])


def test_weights_and_offset(engine):
    # d$w <- 1 + d$Days %% 3; d$off <- 0.5 * d$Days
    # fm <- lmer(Reaction ~ Days + (1 | Subject), data = d, weights = w, offset = off, REML = FALSE, control = ctrl)
    # fixef(fm); sigma(fm); getME(fm, "theta"); deviance(fm); logLik(fm); df.residual(fm)
    df, factors = datasets.load("sleepstudy")
    df = df.assign(w=1 + df["Days"] % 3, off=0.5 * df["Days"])
    desc = parse_formula("Reaction ~ Days + (1 | Subject)")
    frame = model_frame(df, desc, {"options": {"weights": "w", "offset": "off"}}, factors)
    fit = engine.fit(Problem.build("lmm", desc, frame, {"reml": False, "contrasts": "treatment"}))
    close(fit.beta, [249.9507015059436, 10.1773686366322])
    close([fit.sigma, fit.theta[0]], [40.3739785117628, 0.900194932114813])
    close([fit.deviance, fit.loglik], [1795.757039772865, -897.878519886433])
    assert fit.df_residual == 176


def test_weighted_lm_agrees_with_native(engine):
    from mixedbridge.ols import fit_lm

    df, factors = datasets.load("sleepstudy")
    df = df.assign(w=1 + df["Days"] % 4, off=0.25 * df["Days"])
    desc = parse_formula("Reaction ~ Days + log(Days + 1)")
    for options in ({"weights": "w", "offset": "off"}, {"weights": "w"}):
        frame = model_frame(df, desc, {"options": options}, factors)
        problem = Problem.build("lm", desc, frame, {"contrasts": "treatment"})
        ours, theirs = fit_lm(problem), engine.fit(problem)
        assert theirs.coef_names == ours.coef_names == ["(Intercept)", "Days", "log(Days + 1)"]
        close(theirs.beta, ours.beta, 1e-9)
        close(theirs.se, ours.se, 1e-9)
        close([theirs.loglik, theirs.aic, theirs.deviance], [ours.loglik, ours.aic, ours.deviance], 1e-9)
        close(theirs.fitted, ours.fitted, 1e-9)
    # R 4.2's summary.lm does not take the offset out of the fitted values for r² (R >= 4.3
    # does), so r² is compared without an offset.
    close(theirs.r_squared, ours.r_squared, 1e-9)


def test_sum_contrasts_in_fixed_and_random_parts(engine):
    df, factors = datasets.load("sleepstudy")
    df = df.assign(phase=np.where(df["Days"] >= 5, "late", "early"))
    problem = problem_for(df, "Reaction ~ phase * Days + (phase | Subject)", contrasts="sum", factors=factors)
    fit = engine.fit(problem)
    assert fit.coef_names == ["(Intercept)", "phase1", "Days", "phase1:Days"] == problem.fixed.names
    assert fit.varcorr[0].terms == ["(Intercept)", "phase1"] == problem.reterms[0].names
    # R's global contrasts are restored: the next treatment fit names treatment columns.
    fit2 = engine.fit(problem_for(df, "Reaction ~ phase * Days + (phase | Subject)", factors=factors))
    assert fit2.coef_names[1] == "phaselate" and fit2.varcorr[0].terms == ["(Intercept)", "phaselate"]
    # Same model, another parametrization: the fit is the same (the REML criterion is not: it
    # shifts by the log-determinant of the change of fixed-effects basis).
    close(fit2.sigma, fit.sigma, 1e-5)
    close(fit2.fitted, fit.fitted, 1e-5)


def test_singular_fit_is_reported(engine):
    fit = engine.fit(problem_for("Dyestuff2", "Yield ~ 1 + (1 | Batch)"))
    assert fit.optinfo["singular"]
    assert any(w.startswith("lme4: boundary (singular) fit") for w in fit.warnings)


def test_uncorrelated_terms_of_one_factor(engine):
    fit = engine.fit(problem_for("sleepstudy", "Reaction ~ Days + (Days || Subject)"))
    assert [(v.group, v.terms) for v in fit.varcorr] == [("Subject", ["(Intercept)"]), ("Subject", ["Days"])]
    assert [(b.group, b.terms) for b in fit.ranef] == [("Subject", ["(Intercept)"]), ("Subject", ["Days"])]
    assert all(b.condsd.shape == (18, 1) for b in fit.ranef)


@pytest.mark.parametrize("analysis", ["lm", "lmm"])
def test_aliased_columns_are_dropped_as_in_the_design(engine, analysis):
    formula = "Reaction ~ Days + I(2 * Days)" + (" + (1 | Subject)" if analysis == "lmm" else "")
    problem = problem_for("sleepstudy", formula, analysis=analysis)
    fit = engine.fit(problem)
    assert fit.coef_names == problem.fixed.names == ["(Intercept)", "Days"]
    assert fit.dropped == problem.fixed.dropped == ["I(2 * Days)"]
    assert fit.vcov.shape == (2, 2)
    if analysis == "lmm":
        assert any("rank deficient" in w for w in fit.warnings)


def test_kept_models_get_a_handle():
    require_r()
    fit = Lme4Engine(keep_models=True).fit(problem_for("Dyestuff", "Yield ~ 1 + (1 | Batch)"))
    assert isinstance(fit.backend.handle, int)
    assert fit.backend.timing["total"] >= fit.backend.timing["r"] > 0


def test_get_engine_uses_bridge(engine):
    from mixedbridge.engines import get_engine

    fit = get_engine("lme4").fit(problem_for("Dyestuff", "Yield ~ 1 + (1 | Batch)"))
    assert fit.engine == "lme4" and fit.ngroups == {"Batch": 6}


# ------------------------------------------------------------------------------------------
# No user text is ever evaluated by R
# ------------------------------------------------------------------------------------------

def test_safe_formula_and_names():
    df = pd.DataFrame({"y y": [1.0, 2, 3, 4], "x');q(": ["a", "b", "a", "b"], "g": ["1", "1", "2", "2"]})
    problem = problem_for(df, "`y y` ~ `x');q(` + (1 | g)", factors={"g"})
    names = SafeNames(problem.frame.data)
    assert r_formula(problem, names) == "v0_ ~ 1 + v1_ + (1 | v2_)"
    assert names.coef("v1_L1") == "`x');q(`b"  # R keeps backticks around non-syntactic names
    assert names.coef("v1_1:v0_") == "`x');q(`1:`y y`"
    assert names.group("v2_") == "g" and names.levels("v2_", ["L1"]) == ["2"]
    assert names.text("problems: v2_, v1_L1") == "problems: g, `x');q(`b"


def frame_names(desc, frame) -> list[str]:
    fixed = Problem.build("lmm", desc, frame, {}).fixed
    assert fixed is not None
    return fixed.names


def _evil_sleepstudy(sentinel: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    df, _ = datasets.load("sleepstudy")
    days = f'Days");system("touch {sentinel}");("'
    subject = f"Subj'; system('touch {sentinel}'); x <- ('"
    weight = f"a`);system('touch {sentinel}');(`"
    levels = {str(s): f'{s}"); system("touch {sentinel}"); ("' for s in df["Subject"].unique()}
    evil = pd.DataFrame({"Reaction": df["Reaction"], days: df["Days"],
                         subject: df["Subject"].astype(str).map(levels), weight: 1.0})
    return evil, {"days": days, "subject": subject, "weight": weight, "levels": levels}


def test_injection_in_names_and_levels_is_never_executed(engine, tmp_path):
    sentinel = str(tmp_path / "SENTINEL")
    evil, n = _evil_sleepstudy(sentinel)
    formula = f"Reaction ~ `{n['days']}` + (`{n['days']}` | `{n['subject']}`)"
    desc = parse_formula(formula)
    frame = model_frame(evil, desc, {"options": {"weights": n["weight"]}}, {n["subject"]})
    fit = engine.fit(Problem.build("lmm", desc, frame, {"reml": True, "contrasts": "treatment"}))
    assert not os.path.exists(sentinel)
    plain = engine.fit(problem_for("sleepstudy", "Reaction ~ Days + (Days | Subject)"))
    assert fit.coef_names == ["(Intercept)", f"`{n['days']}`"] == frame_names(desc, frame)
    close(fit.beta, plain.beta, 1e-8)
    close(fit.theta, plain.theta, 1e-8)
    assert fit.varcorr[0].group == n["subject"] and fit.varcorr[0].terms == ["(Intercept)", f"`{n['days']}`"]
    assert list(fit.ngroups) == [n["subject"]]
    assert fit.ranef[0].levels == [n["levels"][s] for s in plain.ranef[0].levels]
    close(fit.ranef[0].modes, plain.ranef[0].modes, 1e-6)


def test_injection_in_fixed_factor_levels(engine, tmp_path):
    sentinel = str(tmp_path / "SENTINEL")
    df, factors = datasets.load("tenthirty")
    bad = {"RM10": f'RM10`"); system("touch {sentinel}"); ("', "RM30": f"RM30'); system('touch {sentinel}');('"}
    df = df.assign(group=df["group"].map(bad))
    fit = engine.fit(problem_for(df, "load ~ time * group + (1 | participant)", TENTHIRTY, factors=factors))
    assert not os.path.exists(sentinel)
    assert fit.coef_names == ["(Intercept)", "timepost", "group" + bad["RM30"], "timepost:group" + bad["RM30"]]
    close(fit.beta, [273.9285714285738, 77.0973806121146, 7.6098901098889, -39.4285010206920])


@pytest.mark.parametrize("formula", [
    'Reaction ~ Days + system("touch SENTINEL")',
    "Reaction ~ Days; system('touch SENTINEL')",
    "Reaction ~ `Days` + (1 | Subject)); system('touch SENTINEL'); (y ~ x",
])
def test_formula_injection_is_refused_before_r(formula, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MixedBridgeError):
        desc = parse_formula(formula)
        df, factors = datasets.load("sleepstudy")
        Problem.build("lmm", desc, model_frame(df, desc, {}, factors), {})
    assert not (tmp_path / "SENTINEL").exists()
    with pytest.raises(FormulaError):
        parse_formula(formula)


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------

def test_r_error_is_structured_and_next_call_works(engine):
    # lmer(Reaction ~ Days + (1 | Subject), data = d[d$Days == 0, ]) stops with
    # "number of levels of each grouping factor must be < number of observations (problems: Subject)"
    problem = problem_for("sleepstudy", "Reaction ~ 1 + (1 | Subject)", {"filter": [{"column": "Days", "eq": 0}]})
    with pytest.raises(ModelError) as info:
        engine.fit(problem)
    assert "number of levels of each grouping factor" in info.value.message
    assert "(problems: Subject)" in info.value.message  # safe name mapped back
    assert info.value.to_dict()["code"] == "model"
    fit = engine.fit(problem_for("Dyestuff", "Yield ~ 1 + (1 | Batch)"))
    assert fit.ngroups == {"Batch": 6}


def test_dead_worker_is_replaced_on_the_next_call():
    require_r()
    own = RSession()
    engine = Lme4Engine(own)
    problem = problem_for("Dyestuff", "Yield ~ 1 + (1 | Batch)")
    try:
        first = engine.fit(problem)
        pid = own.proc.pid
        os.kill(pid, signal.SIGKILL)
        own.proc.wait()
        again = engine.fit(problem)
        assert own.proc.pid != pid
        close(again.beta, first.beta, 1e-12)
    finally:
        own.close()


def test_missing_r_names_what_to_install():
    with pytest.raises(EngineError) as info:
        RSession(env={"R_HOME": "/nonexistent/R"}).start()
    assert "r-base-core" in info.value.message and "mixedbridge[r]" in info.value.message


def test_missing_rpy2_names_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "rpy2" else real(name, *a))
    with pytest.raises(EngineError) as info:
        Lme4Engine(RSession(python=sys.executable)).fit(problem_for("Dyestuff", "Yield ~ 1 + (1 | Batch)"))
    assert "rpy2" in info.value.message and "r-cran-lme4" in info.value.message
