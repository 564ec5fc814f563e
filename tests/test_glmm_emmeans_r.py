"""GLMM marginal means through R: the lme4 engine's glmer fit and R's emmeans (type =
"response", regrid) give the values of ``tests/data/glmm/emmeans_reference.R``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mixedbridge.analysis import run

pytestmark = pytest.mark.r

REF = json.loads((Path(__file__).parent / "data" / "glmm" / "emmeans_reference.json").read_text())
CBPP = {"analysis": "glmm", "engine": "lme4", "formula": "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "data": {"dataset": "cbpp"}}


def _tables(emmeans: dict, family: str = "binomial", link: str = "logit") -> dict:
    spec = {**CBPP, "options": {"family": family, "link": link, "emmeans": emmeans}}
    res = run(spec)
    return {t.name: t.to_pandas() for t in res.tables}


def _close(df, ref: dict, est: str) -> None:
    np.testing.assert_allclose(df[est].astype(float), ref[est], rtol=1e-5)
    np.testing.assert_allclose(df["SE"].astype(float), ref["SE"], rtol=1e-5)
    np.testing.assert_allclose(df["lower.CL"].astype(float), ref["asymp.LCL"], rtol=1e-5)
    np.testing.assert_allclose(df["upper.CL"].astype(float), ref["asymp.UCL"], rtol=1e-5)
    np.testing.assert_allclose(df["z.ratio"].astype(float), ref["z.ratio"], rtol=1e-5)


def test_response_scale_means_and_odds_ratios_through_r():
    t = _tables({"specs": "period", "type": "response", "null": 0.1, "contrasts": "pairwise", "adjust": "holm"})
    _close(t["emmeans"], REF["cbpp_logit"]["response"], "prob")
    _close(t["contrasts"], REF["cbpp_logit"]["response_pairs"], "odds.ratio")
    assert list(t["contrasts"]["contrast"])[0] == "1 / 2"


def test_regridded_differences_through_r():
    t = _tables({"specs": "period", "regrid": True, "null": 0.1, "contrasts": "pairwise", "adjust": "holm"},
                link="probit")
    _close(t["emmeans"], REF["cbpp_probit"]["regrid"], "prob")
    _close(t["contrasts"], REF["cbpp_probit"]["regrid_pairs"], "estimate")
