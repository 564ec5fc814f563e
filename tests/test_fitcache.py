"""Reuse of fits across requests (mixedbridge.fitcache, issue #16): a request that changes only
what is computed after the fit gets the same answer as a fresh process would give, without a
refit; a change of data, rows or fitting options refits; the cache is bounded."""
from __future__ import annotations

import json

import numpy as np
import pytest

import mixedbridge
from mixedbridge import fitcache
from mixedbridge.engines import get_engine

from .conftest import require_r

SLEEP = {"analysis": "lmm", "data": {"dataset": "sleepstudy"}, "formula": "Reaction ~ Days + (Days | Subject)"}
POST_FIT_CHANGES = [
    {},
    {"df_method": "kenward-roger"},
    {"emmeans": {"specs": ["Days"], "at": {"Days": [0, 9]}}},
    {"anova": False, "confint": True},
    {"df_method": "asymptotic", "emmeans": {"specs": ["Days"], "at": {"Days": [1]}}},
]


def _doc(results) -> dict:
    doc = json.loads(results.to_json())
    doc.pop("timing")
    return doc


@pytest.fixture(autouse=True)
def fresh_cache():
    fitcache.FITS.clear()
    fitcache.PREPARED.clear()
    yield
    fitcache.FITS.clear()
    fitcache.PREPARED.clear()


def test_post_fit_changes_reuse_the_fit_and_answer_as_without_the_cache():
    first = mixedbridge.run(SLEEP).outcome.lead.fit
    for options in POST_FIT_CHANGES:
        spec = {**SLEEP, "options": options}
        cached = mixedbridge.run(spec)
        with fitcache.disabled():
            fresh = mixedbridge.run(spec)
        assert cached.outcome.lead.fit is first, options
        assert fresh.outcome.lead.fit is not first
        assert _doc(cached) == _doc(fresh), options


def test_inference_is_reused_for_the_same_settings_only():
    a = mixedbridge.run(SLEEP).outcome.lead
    b = mixedbridge.run({**SLEEP, "options": {"emmeans": {"specs": ["Days"]}}}).outcome.lead
    c = mixedbridge.run({**SLEEP, "options": {"df_method": "kenward-roger"}}).outcome.lead
    assert b.inference is a.inference and c.inference is not a.inference
    assert c.fit is a.fit


@pytest.mark.parametrize("change", [
    {"options": {"reml": False}},
    {"options": {"contrasts": "sum"}},
    {"filter": [{"column": "Days", "gte": 1}]},
    {"formula": "Reaction ~ Days + (1 | Subject)"},
])
def test_a_change_of_model_rows_or_fitting_options_refits(change):
    first = mixedbridge.run(SLEEP).outcome.lead.fit
    again = mixedbridge.run({**SLEEP, **change}).outcome.lead.fit
    assert again is not first


def test_changed_data_refits_and_equal_data_reuses():
    from mixedbridge.datasets import load
    df = load("sleepstudy")[0]
    first = mixedbridge.run(SLEEP, data=df).outcome.lead.fit
    assert mixedbridge.run(SLEEP, data=df.copy()).outcome.lead.fit is first
    changed = df.copy()
    changed.loc[3, "Reaction"] += 1.0
    second = mixedbridge.run(SLEEP, data=changed).outcome.lead.fit
    assert second is not first and not np.allclose(second.beta, first.beta, rtol=0, atol=0)
    relabelled = df.copy()
    relabelled["Subject"] = relabelled["Subject"].astype(str) + "x"
    assert mixedbridge.run(SLEEP, data=relabelled).outcome.lead.fit is not first


def test_the_cache_is_bounded():
    fits = []
    for day in range(fitcache.MAX_FITS + 3):
        spec = {**SLEEP, "filter": [{"column": "Days", "gte": 0}, {"column": "Days", "lte": 9 - day % 10}]}
        fits.append(mixedbridge.run(spec).outcome.lead.fit)
        assert len(fitcache.FITS) <= fitcache.MAX_FITS
    assert len(fitcache.FITS) == fitcache.MAX_FITS
    first_spec = {**SLEEP, "filter": [{"column": "Days", "gte": 0}, {"column": "Days", "lte": 9}]}
    assert mixedbridge.run(first_spec).outcome.lead.fit is not fits[0]  # evicted: refitted
    last_spec = {**SLEEP, "filter": [{"column": "Days", "gte": 0},
                                     {"column": "Days", "lte": 9 - (fitcache.MAX_FITS + 2) % 10}]}
    assert mixedbridge.run(last_spec).outcome.lead.fit is fits[-1]


def test_a_reused_native_model_is_put_back_at_its_optimum():
    fit = mixedbridge.run(SLEEP).outcome.lead.fit
    model = fit.backend.model
    model.set_theta(np.asarray(fit.theta) * 1.5)  # as a computation might leave it
    again = mixedbridge.run({**SLEEP, "options": {"emmeans": {"specs": ["Days"]}}})
    assert again.outcome.lead.fit is fit and np.array_equal(model.theta, fit.theta)


def test_off_switch(monkeypatch):
    monkeypatch.setenv("MIXEDBRIDGE_FIT_CACHE", "0")
    assert mixedbridge.run(SLEEP).outcome.lead.fit is not mixedbridge.run(SLEEP).outcome.lead.fit


@pytest.mark.r
def test_a_kept_r_fit_is_still_held_by_the_worker_when_reused():
    require_r()
    spec = {**SLEEP, "engine": "lme4"}
    first = mixedbridge.run(spec).outcome.lead
    # more fits than the R worker keeps unpinned, none of them through the cache
    engine = get_engine("lme4")
    problem = mixedbridge.run(spec).outcome.problem
    for _ in range(10):
        engine.fit(problem)
    again = mixedbridge.run({**spec, "options": {"emmeans": {"specs": ["Days"]}}})
    assert again.outcome.lead.fit is first.fit
    with fitcache.disabled():
        fresh = mixedbridge.run({**spec, "options": {"emmeans": {"specs": ["Days"]}}})
    assert _doc(again) == _doc(fresh)
    # a worker that lost the model (here: told to forget it) means a refit, not an error
    engine.session.call({"op": "forget", "handle": first.fit.backend.handle})
    third = mixedbridge.run({**spec, "options": {"df_method": "kenward-roger"}})
    assert third.outcome.lead.fit is not first.fit


CBPP = {"analysis": "glmm", "data": {"dataset": "cbpp"},
        "formula": "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "options": {"family": "binomial"}}


def test_a_glmm_fit_is_reused_for_post_fit_changes():
    first = mixedbridge.run(CBPP).outcome.lead.fit
    for options in [{"emmeans": {"specs": ["period"], "type": "response"}}, {"anova": {"method": "lrt"}}]:
        spec = {**CBPP, "options": {**CBPP["options"], **options}}
        cached = mixedbridge.run(spec)
        with fitcache.disabled():
            fresh = mixedbridge.run(spec)
        assert cached.outcome.lead.fit is first, options
        assert _doc(cached) == _doc(fresh), options
