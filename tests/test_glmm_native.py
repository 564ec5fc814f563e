"""The native GLMM estimator against lme4 1.1-31's ``glmer``/``glmer.nb`` (R 4.2).

Every reference number is in ``tests/data/glmm/glmm_reference.json``, written by
``Rscript glmm_reference.R`` run in ``tests/data/glmm/`` (the data sets there are exported by the
same script from lme4, mlmRev and MASS and read back by both sides; provenance in README.md).
X and the random-effects terms are built with the project's own formula, frame and design code.

Tolerances (issue #15): criterion never above glmer's (1e-6 relative slack for rounding);
fixed effects 1e-3 (relative to max(|β|, SE)); standard errors and variance components 2e-3.
Where glmer itself reports "failed to converge" (epil_nb: max|grad| = 0.0033, contraception:
0.0028) its β is determined only to a few 1e-3 along the flat direction, and β is compared to
5e-3 there (our criterion is lower in both).

glmer's criterion at its optimum carries its PIRLS tolerance (relative change of the penalized
deviance below 1e-7, log|L|² from the step before): 3e-6 to 5e-6 relative above the
converged criterion in the cbpp models. The native fit converges PIRLS fully, so its optimum is lower by that much;
that glmer's number is this same criterion evaluated lme4's way is checked separately
(``test_glmer_criterion_reproduced``), and the standard errors come, as in lme4, from the
finite-difference Hessian of the criterion evaluated lme4's way.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mixedbridge.design import ReTermData, fixed_design, random_designs
from mixedbridge.errors import ModelError
from mixedbridge.formula import parse_formula
from mixedbridge.frame import model_frame
from mixedbridge.glmm import fit_glmm, make_family

from .listeners import Listener

DATA = Path(__file__).resolve().parent / "data" / "glmm"
REF = json.loads((DATA / "glmm_reference.json").read_text(encoding="utf-8"))
ABOUT = REF.pop("_about")
FAMILIES = REF.pop("_families")


def _cbpp(d: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    return (d["incidence"] / d["size"]).to_numpy(float), d["size"].to_numpy(float)


def _yes(column: str) -> Callable[[pd.DataFrame], tuple[np.ndarray, None]]:
    return lambda d: ((d[column] == "Y").to_numpy(float), None)


def _count(column: str) -> Callable[[pd.DataFrame], tuple[np.ndarray, None]]:
    return lambda d: (d[column].to_numpy(float), None)


def _scaled(column: str, by: float) -> Callable[[pd.DataFrame], tuple[np.ndarray, None]]:
    return lambda d: ((d[column] / by).to_numpy(float), None)


_CB = ("cbpp.csv", "period + (1 | herd)", {"herd", "period"}, _cbpp)
#: name -> (file, right-hand side, factor columns, response (y, weights), fit options)
CASES: dict[str, tuple[str, str, set[str], Callable, dict[str, Any]]] = {
    "cbpp_laplace": (*_CB, {"family": "binomial"}),
    "cbpp_nagq0": (*_CB, {"family": "binomial", "nagq": 0}),
    "cbpp_nagq25": (*_CB, {"family": "binomial", "nagq": 25}),
    "cbpp_probit": (*_CB, {"family": "binomial", "link": "probit"}),
    "cbpp_cloglog": (*_CB, {"family": "binomial", "link": "cloglog"}),
    "verbagg": ("VerbAgg.csv.gz", "Anger + Gender + btype + situ + (1 | id) + (1 | item)",
                {"Gender", "item", "id", "btype", "situ"}, _yes("r2"), {"family": "binomial"}),
    "grouseticks": ("grouseticks.csv", "YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
                    {"INDEX", "BROOD", "YEAR", "LOCATION"}, _count("TICKS"), {"family": "poisson"}),
    "contraception_slope": ("Contraception.csv", "age + urban + livch + (urban | district)",
                            {"woman", "district", "livch", "urban"}, _yes("use"), {"family": "binomial"}),
    "scotssec_crossed": ("ScotsSec.csv", "verbal + sex + (1 | primary) + (1 | second)",
                         {"primary", "sex", "second"}, _count("attain"), {"family": "poisson"}),
    "sleep_gamma_log": ("sleepstudy.csv", "Days + (Days | Subject)", {"Subject"}, _count("Reaction"),
                        {"family": "Gamma", "link": "log"}),
    "cbpp_cauchit": (*_CB, {"family": "binomial", "link": "cauchit"}),
    "cbpp_log_link": (*_CB, {"family": "binomial", "link": "log"}),
    "cbpp_no_fixed": ("cbpp.csv", "0 + (1 | herd)", {"herd"}, _cbpp, {"family": "binomial"}),
    "cbpp_poisson_offset": ("cbpp.csv", "period + (1 | herd)", {"herd", "period"}, _count("incidence"),
                            {"family": "poisson", "offset": "log_size"}),
    "sleep_invgauss": ("sleepstudy.csv", "Days + (1 | Subject)", {"Subject"}, _scaled("Reaction", 100.0),
                       {"family": "inverse.gaussian"}),
    "epil_nb": ("epil.csv", "lbase * trt + lage + V4 + (1 | subject)", {"trt", "subject"}, _count("y"),
                {"family": "negative.binomial"}),
}
NAMES = list(CASES)


def _inputs(name: str) -> tuple[np.ndarray, list[str], np.ndarray, list, np.ndarray | None]:
    file, rhs, factors, response, _ = CASES[name]
    df = pd.read_csv(DATA / file)
    df["log_size"] = np.log(df["size"]) if "size" in df else 0.0
    y, w = response(df)
    df["y_"] = y
    desc = parse_formula("y_ ~ " + rhs)
    frame = model_frame(df, desc, {}, set(factors))
    fd = fixed_design(desc, frame)
    weights = None if w is None else w[frame.data.index.to_numpy()]
    return fd.X, fd.names, frame.response(desc), random_designs(desc, frame), weights


def _offset(name: str, column: str) -> np.ndarray:
    df = pd.read_csv(DATA / CASES[name][0])
    return np.log(df["size"].to_numpy(float)) if column == "log_size" else df[column].to_numpy(float)


@pytest.fixture(scope="module")
def fits() -> dict:
    return {}


def _get(fits: dict, name: str):
    if name not in fits:
        X, names, y, reterms, w = _inputs(name)
        opts = dict(CASES[name][4])
        if "offset" in opts:
            opts["offset"] = _offset(name, opts["offset"])
        fits[name] = fit_glmm(X, names, y, reterms, weights=w, **opts)
    return fits[name]


def test_suite_covers_required_forms():
    assert set(CASES) <= set(REF)
    assert ABOUT["lme4"] == "1.1.31"
    fams = {(REF[n]["family"], REF[n]["link"]) for n in CASES}
    assert {("binomial", "logit"), ("binomial", "probit"), ("poisson", "log"), ("Gamma", "log")} <= fams


@pytest.mark.parametrize("name", NAMES)
def test_criterion_not_above_glmer(fits, name):
    fit, ref = _get(fits, name), REF[name]
    rel = (fit.deviance - ref["crit"]) / abs(ref["crit"])
    assert rel <= 1e-6
    assert rel >= -2e-5  # glmer's PIRLS tolerance (see the module docstring)
    assert fit.loglik == pytest.approx(-fit.deviance / 2.0)
    assert fit.aic - fit.deviance == pytest.approx(2 * ref["df"])
    assert fit.bic - fit.deviance == pytest.approx(ref["df"] * np.log(ref["nobs"]))
    assert fit.aic == pytest.approx(ref["aic"], rel=2e-5)
    assert fit.bic == pytest.approx(ref["bic"], rel=2e-5)
    assert fit.df_residual == ref["df_residual"]
    assert fit.nobs == ref["nobs"]
    nb = ref["family"].startswith("Negative Binomial")
    assert (fit.family, fit.link) == ("negative.binomial" if nb else ref["family"], ref["link"])


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n][4].get("nagq", 1) == 1
                                  and CASES[n][4]["family"] != "negative.binomial"])
def test_glmer_criterion_reproduced(fits, name):
    """At glmer's (θ, β), the criterion evaluated lme4's way (PIRLS from stage 1's linear
    predictor, tolerance 1e-7) is glmer's reported deviance."""
    fit, ref = _get(fits, name), REF[name]
    model = fit.backend.model
    pars = np.concatenate([np.atleast_1d(ref["theta"]), ref["beta"] or []])
    assert model.deviance_as_lme4(pars) == pytest.approx(ref["crit"], rel=1e-7)
    assert model.deviance(pars) <= ref["crit"] * (1 + 1e-9)


def _glmer_unconverged(ref: dict) -> bool:
    """Whether glmer's own fit failed its gradient check (its optimum is then determined only to
    about 1e-3 along the flat direction; ours has the lower criterion, checked above)."""
    warnings = [ref["warnings"]] if isinstance(ref["warnings"], str) else ref["warnings"]
    return any("failed to converge" in w for w in warnings)


@pytest.mark.parametrize("name", NAMES)
def test_fixed_effects_and_standard_errors(fits, name):
    fit, ref = _get(fits, name), REF[name]
    if ref["beta_names"] is None:  # no fixed effects
        assert fit.coef_names == [] and fit.vcov.shape == (0, 0)
        return
    assert fit.coef_names == ref["beta_names"]
    beta, se = np.array(ref["beta"]), np.array(ref["se"])
    tol = 5e-3 if _glmer_unconverged(ref) else 1e-3
    assert np.all(np.abs(fit.beta - beta) <= tol * np.maximum(np.abs(beta), se))
    np.testing.assert_allclose(fit.se, ref["se"], rtol=2e-3)


def _vc_values(fit) -> list[float]:
    """Our VarCorr in the row order of R's as.data.frame(VarCorr(fm)) (sds, then correlations,
    per term; σ last for families with a scale)."""
    out = []
    for v in fit.varcorr:
        out += list(v.sd)
        p = len(v.sd)
        out += [v.corr[j, i] for i in range(p) for j in range(i + 1, p)]
    return out


@pytest.mark.parametrize("name", NAMES)
def test_variance_components(fits, name):
    fit, ref = _get(fits, name), REF[name]
    rows = [r for r in ref["vc"] if r[0] != "Residual"]
    values = np.array([r[3] for r in rows])
    is_corr = np.array([r[2] != "" for r in rows])
    ours = np.array(_vc_values(fit))
    assert [v.group for v in fit.varcorr for _ in v.sd] == [r[0] for r in rows if r[2] == ""]
    np.testing.assert_allclose(ours[~is_corr], values[~is_corr], rtol=2e-3, atol=1e-4)
    np.testing.assert_allclose(ours[is_corr], values[is_corr], atol=2e-3)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=2e-3)
    assert fit.ngroups == ref["ngrps"]
    assert fit.optinfo["singular"] == ref["singular"]


@pytest.mark.parametrize("name", NAMES)
def test_random_effects_fitted_and_residuals(fits, name):
    fit, ref = _get(fits, name), REF[name]
    for rr in ref["ranef"]:
        terms = [str(t) for t in np.atleast_1d(rr["terms"])]
        block = next(b for b in fit.ranef if b.group == rr["group"] and b.terms == terms)
        idx = [block.levels.index(str(lev)) for lev in rr["levels"]]
        sd = np.array(rr["condsd"]).reshape(len(idx), -1)
        modes = np.array(rr["modes"]).reshape(sd.shape)
        np.testing.assert_allclose(block.modes[idx], modes, rtol=5e-3, atol=5e-3 * sd.max())
        np.testing.assert_allclose(block.condsd[idx], sd, rtol=5e-3)
    np.testing.assert_allclose(fit.fitted[:6], ref["fitted"], rtol=1e-3)
    np.testing.assert_allclose(fit.residuals[:6], ref["resid_deviance"], rtol=5e-3, atol=1e-3)
    np.testing.assert_allclose(fit.pearson_residuals[:6], ref["resid_pearson"], rtol=5e-3, atol=1e-3)
    assert fit.optinfo["residual_deviance"] == pytest.approx(ref["deviance_fn"], rel=1e-3)
    assert fit.analysis == "glmm" and fit.engine == "native"


def test_negative_binomial_theta(fits):
    """glmer.nb's θ (lme4's optimize on log θ, tolerance 5e-5) and its parameter count."""
    fit, ref = _get(fits, "epil_nb"), REF["epil_nb"]
    assert fit.optinfo["nb_theta"] == pytest.approx(ref["nb_theta"], rel=2e-3)
    assert ref["df"] == len(fit.beta) + len(fit.theta) + 1
    assert fit.sigma == 1.0


def test_convergence_and_overdispersion_in_words(fits):
    fit = _get(fits, "cbpp_laplace")
    assert fit.optinfo["converged"]
    assert not fit.warnings
    assert any("overdispersion" in n for n in fit.notes)
    gt = _get(fits, "grouseticks")
    assert any(n.startswith("No sign of overdispersion") for n in gt.notes)


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f"{f['family']}-{f['link']}")
def test_family_functions_match_r(fam):
    f = make_family(fam["family"], fam["link"], fam.get("theta"))
    eta, mu, y, wt = (np.array(fam[k], dtype=float) for k in ("eta", "mu", "y", "wt"))
    np.testing.assert_allclose(f.linkinv(eta), fam["linkinv"], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(f.mu_eta(eta), fam["mu_eta"], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(f.variance(mu), fam["variance"], rtol=1e-12)
    np.testing.assert_allclose(f.linkfun(mu), fam["linkfun"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(f.dev_resids(y, mu, wt), fam["dev_resids"], rtol=1e-10, atol=1e-14)
    assert f.aic(y, mu, wt) == pytest.approx(fam["aic"], rel=1e-10)


def _cbpp_inputs():
    return _inputs("cbpp_laplace")


def test_bad_inputs_are_clear_errors():
    X, names, y, reterms, w = _cbpp_inputs()
    with pytest.raises(ModelError, match="between 0 and 1"):
        fit_glmm(X, names, y * 2.0 + 0.5, reterms, family="binomial", weights=w)
    with pytest.raises(ModelError, match="non-negative count"):
        fit_glmm(X, names, y - 1.0, reterms, family="poisson")
    with pytest.raises(ModelError, match="strictly positive"):
        fit_glmm(X, names, y, reterms, family="Gamma")
    with pytest.raises(ModelError, match="not available for the poisson family"):
        fit_glmm(X, names, y, reterms, family="poisson", link="logit")
    with pytest.raises(ModelError, match="unknown family"):
        fit_glmm(X, names, y, reterms, family="binomal")
    with pytest.raises(ModelError, match="nAGQ must be between 0 and 25"):
        fit_glmm(X, names, y, reterms, family="binomial", weights=w, nagq=30)
    with pytest.raises(ModelError, match="single, scalar random-effects term"):
        fit_glmm(X, names, y, reterms + reterms, family="binomial", weights=w, nagq=5)


def test_non_integer_successes_warned_in_words():
    X, names, y, reterms, w = _cbpp_inputs()
    fit = fit_glmm(X, names, y, reterms, family="binomial", weights=w + 0.5)
    assert any("non-integer #successes" in n for n in fit.notes)


def test_separation_reported_in_words():
    """A predictor that always gives a success: its coefficient diverges; said in words."""
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(20), 10)
    x = np.tile(np.r_[np.zeros(5), np.ones(5)], 20)
    y = np.where(x == 1, 1.0, (rng.random(200) < 0.4).astype(float))
    X = np.column_stack([np.ones(200), x])
    reterms = [ReTermData("g", [str(i) for i in range(20)], g, np.ones((200, 1)), ["(Intercept)"])]
    fit = fit_glmm(X, ["(Intercept)", "x"], y, reterms, family="binomial")
    assert fit.beta[1] > 10
    assert any("The fixed effect x is diverging" in w for w in fit.warnings)
    assert any("numerically 0 or 1" in w for w in fit.warnings)


def test_refit_same_response_reproduces_the_fit(fits):
    """``refit`` (the parametric bootstrap's step) on the fitted response finds the same optimum."""
    fit = _get(fits, "cbpp_laplace")
    model = fit.backend.model
    again = model.refit(model.resp.y)
    assert again.fval == pytest.approx(fit.deviance, rel=1e-9, abs=1e-7)
    np.testing.assert_allclose(again.beta, fit.beta, atol=1e-4)


def test_the_optimizer_ticks_once_per_evaluation_and_profile_is_a_stage(fits):
    from mixedbridge import progress
    from mixedbridge.inference.glmm_profile import confint

    X, names, y, reterms, w = _inputs("cbpp_laplace")
    listener = Listener()
    with progress.listening(listener):
        fit = fit_glmm(X, names, y, reterms, weights=w, family="binomial")
    rec = fit.backend.model.record
    assert [d for d, _, s in listener.seen if s == "fit"] == list(range(1, rec.stage1.feval + rec.stage2.feval + 1))
    small = _get(fits, "cbpp_no_fixed")  # one parameter (.sig01): a short profile
    listener = Listener()
    with progress.listening(listener):
        confint(small, 0.95)
    assert [(d, t) for d, t, s in listener.seen if s == "profile"] == [(0, 1), (1, 1)]


def test_bootstrap_refits_start_from_the_fit_and_agree_with_a_cold_start(fits):
    """The parametric bootstrap refits a simulated response by glmer's second stage from the
    fitted (θ, β) (lme4's ``refit``): the same optimum as both stages from scratch."""
    from mixedbridge.inference.glmm_tests import refit, simulate

    model = _get(fits, "cbpp_laplace").backend.model
    y = simulate(model, np.random.default_rng(3))
    cold = refit(model, model.X, model.names, y)
    warm = refit(model, model.X, model.names, y, np.concatenate([model.theta, model.beta]))
    assert warm.record.stage1.return_code == "SKIPPED" and cold.record.stage1.feval > 0
    assert warm.fval == pytest.approx(cold.fval, rel=1e-8)
    np.testing.assert_allclose(warm.beta, cold.beta, atol=1e-4)
    before = model.unscaled_vcov()  # the shared penalized system is put back at the fit's θ
    assert model.deviance(np.concatenate([model.theta, model.beta])) == pytest.approx(model.fval, rel=1e-12)
    np.testing.assert_allclose(model.unscaled_vcov(), before)


#: glmer(incidence ~ period + (1 | herd), cb, poisson(link = "sqrt"), offset = log(size)) (lme4
#: 1.1-31; cb <- read.csv("tests/data/glmm/cbpp.csv"), herd and period factors):
#: -2 * c(logLik(m)), c(getME(m, "theta"), fixef(m)), sqrt(diag(vcov(m))), ranef(m)$herd[[1]][1:6],
#: each printed with sprintf("%.10f").
SQRT_GLMER = {
    "crit": 194.104050832073,
    "pars": [0.468761631943995, -0.952977561081114, -0.556152883495618, -0.593601840333278,
             -0.504204619385501],
    "se": [0.1785335112, 0.1958697556, 0.1966763494, 0.1954218759],
    "ranef": [0.4839994209, -0.3055446912, 0.0457659245, 0.1271006742, 0.2826663294, -0.4785352987],
}


@pytest.fixture(scope="module")
def sqrt_fit():
    X, names, y, reterms, _ = _inputs("cbpp_poisson_offset")
    return fit_glmm(X, names, y, reterms, family="poisson", link="sqrt",
                    offset=_offset("cbpp_poisson_offset", "log_size"))


def test_sqrt_link_counts_find_glmers_mode(sqrt_fit):
    """With the sqrt link μ = η² also fits at negative η, so PIRLS's modes depend on its start;
    started as glmer starts it (o + linkfun(mustart), then stage 1's linear predictor, lme4's
    stopping rule) the fit is glmer's: before, warm-started PIRLS reached a mirror-image mode
    (−2 logLik 180.65, a lower value of glmer's own deviance function at other β)."""
    fit = sqrt_fit
    model = fit.backend.model
    assert fit.deviance == pytest.approx(SQRT_GLMER["crit"], rel=1e-6)
    assert fit.deviance <= SQRT_GLMER["crit"] * (1 + 1e-6)
    pars = np.array(SQRT_GLMER["pars"])
    scale = np.maximum(np.abs(pars), np.r_[0.0, SQRT_GLMER["se"]])
    assert np.all(np.abs(np.r_[model.theta, model.beta] - pars) <= 1e-3 * scale)
    np.testing.assert_allclose(model.b_terms()[0][:6, 0], SQRT_GLMER["ranef"], atol=2e-3 * 0.47)
    assert model.modes.converged


@pytest.mark.xfail(strict=True, reason="period4's SE 0.19623 vs glmer's 0.19542 (4e-3 relative; the "
                   "other three within 2e-5)")
def test_sqrt_link_counts_standard_errors(sqrt_fit):
    np.testing.assert_allclose(sqrt_fit.se, SQRT_GLMER["se"], rtol=2e-3)
