"""GLMM inference through R on the lme4 engine's glmer fits: per-term likelihood-ratio tests
(afex's type III reduced models), model comparison and profile intervals give the values of
``tests/data/glmm/inference_reference.R`` (afex, lme4)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mixedbridge import spec as specmod
from mixedbridge.analysis import prepare
from mixedbridge.engines import get_engine
from mixedbridge.inference.options import settings

pytestmark = pytest.mark.r

REF = json.loads((Path(__file__).parent / "data" / "glmm" / "inference_reference.json").read_text())
MODELS = {"cbpp": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial", "cbpp"),
          "grouse": ("TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)", "poisson", "grouseticks")}


def _fit(case: str, formula: str | None = None):
    f, family, data = MODELS[case]
    spec = specmod.validate({"analysis": "glmm", "engine": "lme4", "formula": formula or f,
                             "data": {"dataset": data}, "options": {"family": family, "contrasts": "sum"}})
    pr = prepare(spec)
    return pr, get_engine("lme4").fit(pr)


@pytest.mark.parametrize("case", list(MODELS))
def test_term_lrts_through_r_match_afex(case):
    pr, fit = _fit(case)
    s = settings("glmm", {"family": MODELS[case][1], "anova": {"method": "lrt", "intercept": True}})
    rows = get_engine("lme4").infer(pr, fit, s).anova
    ref = REF[case]["lrt"]
    assert [r["term"] for r in rows] == ref["term"]
    np.testing.assert_allclose([r["Chisq"] for r in rows], ref["chisq"], rtol=1e-6)
    assert [r["Df"] for r in rows] == ref["df"]


def test_model_comparison_through_r_matches_lme4():
    pr1, f1 = _fit("grouse")
    pr0, f0 = _fit("grouse", "TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)")
    rows = get_engine("lme4").compare([("m0", "small", pr0, f0), ("m1", "big", pr1, f1)])
    np.testing.assert_allclose([r["logLik"] for r in rows], REF["grouse_compare"]["loglik"], rtol=1e-9)
    assert rows[1]["Chisq"] == pytest.approx(REF["grouse_compare"]["chisq"][1], rel=1e-7)


@pytest.mark.slow
def test_profile_intervals_through_r_match_lme4():
    pr, fit = _fit("cbpp")
    s = settings("glmm", {"family": "binomial", "confint": {"method": "profile"}})
    rows = get_engine("lme4").infer(pr, fit, s).confint
    ref = REF["cbpp"]["profile"]
    assert [r["parameter"] for r in rows] == ref["names"]
    np.testing.assert_allclose([r["lower"] for r in rows], ref["lower"], rtol=1e-6)
    np.testing.assert_allclose([r["upper"] for r in rows], ref["upper"], rtol=1e-6)
