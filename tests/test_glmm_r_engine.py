"""The lme4 engine's glmm fits equal plain glmer / glmer.nb (R 4.2, lme4 1.1-31).

The reference numbers are in ``tests/data/glmm_r/reference.json``, written by
``Rscript tests/data/glmm_r/reference.R``, which reads the bundled CSV files and calls glmer as
a user would (``cbind(incidence, size - incidence)``, a factor response, ``binomial(link =
"probit")``, ``glmer.nb``) and sources none of the bridge's R code. Each case of
:data:`tests.glmm_cases.CASES` runs through :func:`mixedbridge.run` with ``engine: "lme4"``:
coefficients with their Wald tests, log-likelihood, AIC, BIC, deviance (−2 log-likelihood, and
lme4's ``deviance()`` in ``optinfo["residual_deviance"]``), residual df, σ, θ,
VarCorr, conditional modes and sds, fitted values, deviance and Pearson residuals must equal R's
(the same computation, so the spec's response forms must reach glmer as the same model): the
log-likelihood, AIC and BIC to 1e-9 relative, the rest to 1e-4 relative (of each vector's
largest value, for values near 0). glmer's second stage
(Nelder-Mead) stops when θ moves by less than ``xt`` = 1e-5, so on a flat optimum (grouseticks)
rounding moves θ by that much while the log-likelihood agrees to 1e-12: three runs of the same
plain glmer call in fresh R processes here gave θ₁ = 0.541506 once and 0.541508 twice
(multithreaded BLAS sums in varying order).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import mixedbridge

from .glmm_cases import CASES, SLOW, spec

pytestmark = pytest.mark.r

REFERENCE = Path(__file__).resolve().parent / "data" / "glmm_r" / "reference.json"
R = json.loads(REFERENCE.read_text(encoding="utf-8"))
ABOUT = R.pop("_about")
RTOL = 1e-4
OBJECTIVE_RTOL = 1e-9


def _close(ours, ref, rtol=RTOL, atol=None):
    """Relative agreement, with an absolute floor of rtol times the largest |reference| of the
    vector (a conditional mode or z statistic near 0 is compared on its vector's scale)."""
    ref = np.asarray(ref, float).ravel()
    floor = rtol * float(np.max(np.abs(ref), initial=0.0)) if atol is None else atol
    np.testing.assert_allclose(np.asarray(ours, float).ravel(), ref, rtol=rtol, atol=floor)


def test_every_case_has_its_recorded_r_call():
    assert ABOUT["script"] == "tests/data/glmm_r/reference.R"
    assert set(R) == set(CASES)
    for name, (call, _) in CASES.items():
        assert R[name]["call"] == call, name


@pytest.fixture(scope="module")
def results(with_r):
    return {}


def _run(results, name):
    if name not in results:
        results[name] = mixedbridge.run(spec(name, "lme4"))
    return results[name]


PARAMS = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in CASES]


@pytest.mark.parametrize("name", PARAMS)
def test_fit_equals_plain_glmer(results, name):
    ref = R[name]
    res = _run(results, name)
    fit = res.outcome.lead.fit
    assert (fit.family, fit.link) == (CASES[name][1]["options"]["family"], ref["link"])
    assert fit.coef_names == ref["coef_names"]
    _close(fit.beta, ref["estimate"])
    _close(fit.se, ref["std_error"])
    for key, value in (("loglik", fit.loglik), ("aic", fit.aic), ("bic", fit.bic)):
        _close(value, ref[key], rtol=OBJECTIVE_RTOL)
    _close(fit.deviance, -2.0 * ref["loglik"], rtol=OBJECTIVE_RTOL)  # summary(glmer)'s deviance
    for key, value in (("deviance", fit.optinfo["residual_deviance"]), ("df_residual", fit.df_residual),
                       ("nobs", fit.nobs), ("sigma", fit.sigma)):
        _close(value, ref[key])
    _close(fit.theta, ref["theta"])
    sds = [s for vc in fit.varcorr for s in vc.sd]
    ref_sd = [v for v, b in zip(np.atleast_1d(ref["varcorr"]["sdcor"]), np.atleast_1d(ref["varcorr"]["var2"]))
              if b == ""]
    _close(sds + ([fit.sigma] if len(ref_sd) > len(sds) else []), ref_sd)
    _close(fit.fitted[:5], ref["fitted"])
    _close(fit.residuals[:5], ref["residuals"])
    _close(fit.pearson_residuals[:5], ref["pearson"])
    if isinstance(ref.get("nb_theta"), float):
        _close(fit.optinfo["nb_theta"], ref["nb_theta"])
    assert fit.optinfo["converged"] == ref["converged"]


@pytest.mark.parametrize("name", PARAMS)
def test_conditional_modes_equal_plain_glmer(results, name):
    fit = _run(results, name).outcome.lead.fit
    blocks = {(b.group, t): (b.levels, b.modes[:, j], b.condsd[:, j]) for b in fit.ranef for j, t in enumerate(b.terms)}
    for block in R[name]["ranef"]:
        levels, modes, condsd = blocks[(block["group"], block["term"])]
        k = len(np.atleast_1d(block["modes"]))
        assert levels[:k] == list(np.atleast_1d(block["levels"]))
        _close(modes[:k], block["modes"])
        _close(condsd[:k], block["condsd"])


@pytest.mark.parametrize("name", PARAMS)
def test_parameters_table_is_summary_glmer(results, name):
    """Wald tests as summary(glmer): its statistic's name (z, or t for a family with a scale) and
    normal p-values."""
    ref = R[name]
    table = _run(results, name).table("parameters")
    fixed = [r for r in table.rows if r["effect"] == "fixed"]
    assert [r["term"] for r in fixed] == ref["coef_names"]
    _close([r["statistic"] for r in fixed], ref["statistic"])
    z = np.array([r["statistic"] for r in fixed])
    np.testing.assert_allclose([r["p.value"] for r in fixed], 2 * stats.norm.sf(np.abs(z)), rtol=1e-12)  # summary's p
    _close([r["p.value"] for r in fixed], ref["p_value"], rtol=1e-2, atol=1e-4)  # z's last digits move p
    column = next(c for c in table.columns if c.name == "statistic")
    assert f"{column.title} value" == ref["statistic_name"]
    residual = [r for r in table.rows if r["group"] == "Residual"]
    assert len(residual) == (ref["statistic_name"] == "t value")


def test_response_forms_reach_glmer_as_one_model(results):
    """cbind(successes, failures) and the proportion with the trials as weights: one fit."""
    a = _run(results, "cbpp_trials").outcome.lead.fit
    b = _run(results, "cbpp_proportion").outcome.lead.fit
    _close(a.beta, b.beta, rtol=1e-8)
    _close(a.loglik, b.loglik, rtol=1e-10)


def test_glmer_convergence_messages_reach_the_results(results):
    """Contraception: glmer's gradient check fails; the warning says so, in the user's names."""
    res = _run(results, "contraception")
    assert any("failed to converge" in w for w in res.warnings)


def test_overdispersion_is_said_in_words(results):
    """grouseticks' Poisson fit: Pearson χ²/df in a note (as the native engine gives it); none for
    the 0/1 responses of bacteria."""
    assert any("Pearson chi-square / df" in n for n in _run(results, "grouseticks").notes)
    assert not any("Pearson chi-square / df" in n for n in _run(results, "bacteria_probit").notes)
