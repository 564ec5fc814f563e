"""The anova under ``df_method: asymptotic``: Wald tests with infinite denominator df (issue #16).

F is the Wald chi-square over NumDF (the F value of lmerTest's table, whose DenDF is then
infinite), there is no DenDF, and p is the chi-square(NumDF) tail - car::Anova(test = "Chisq")'s.
No Satterthwaite quantity is computed. Reference values (R 4.2, lme4 1.1-31, lmerTest):

    library(lmerTest)
    d <- read.csv("module/datasets/Orthodont.csv", stringsAsFactors = TRUE)
    fo <- lmer(distance ~ age * Sex + (age | Subject), d)
    for (ty in c("III", "II", "I")) {
      a <- anova(fo, type = ty)
      print(data.frame(F = sprintf("%.10g", a[["F value"]]), NumDF = a$NumDF,
                       p = sprintf("%.10g", pchisq(a[["F value"]] * a$NumDF, a$NumDF, lower.tail = FALSE))))
    }
    # type III agrees with car::Anova(fo2, type = 3, test = "Chisq") under contr.sum
    d <- read.csv("module/datasets/cake.csv", stringsAsFactors = TRUE)
    d$temperature <- factor(d$temperature)
    fc <- lmer(angle ~ recipe * temperature + (1 | replicate), d)
    a <- anova(fc, type = "III")   # then as above
"""
from __future__ import annotations

import numpy as np
import pytest

import mixedbridge
from mixedbridge.inference import satterthwaite

ORTHODONT = {  # term: (F, NumDF, p) per type
    "III": {"age": (88.03727924, 1, 6.423240849e-21), "Sex": (0.418570171, 1, 0.5176513647),
            "age:Sex": (5.120840451, 1, 0.02364016457)},
    "II": {"age": (99.48864983, 1, 1.972907944e-23), "Sex": (0.418570171, 1, 0.5176513647),
           "age:Sex": (5.120840451, 1, 0.02364016457)},
    "I": {"age": (99.48864983, 1, 1.972907944e-23), "Sex": (9.292536391, 1, 0.002300893627),
          "age:Sex": (5.120840451, 1, 0.02364016457)},
}
CAKE = {"recipe": (2.924238159, 2, 0.05370559145), "temperature": (18.18588589, 5, 4.285967668e-18),
        "recipe:temperature": (0.8917507815, 10, 0.5399499239)}


def _spec(dataset: str, formula: str, **options) -> dict:
    return {"analysis": "lmm", "data": {"dataset": dataset}, "formula": formula,
            "options": {"df_method": "asymptotic", **options}}


#: Orthodont's REML optimum is flat: the native θ̂ (REML criterion equal to lme4's to 1e-9) gives
#: F values 4e-4 (relative) from lmerTest's, with Satterthwaite's df as with these; cake is tight.
ORTHODONT_REL = 1e-3


def _check(rows: list[dict], expected: dict, rel: float = 1e-6) -> None:
    assert [r["term"] for r in rows] == list(expected)
    for r in rows:
        F, numdf, p = expected[r["term"]]
        assert r["NumDF"] == numdf and r["DenDF"] is None
        assert r["statistic"] == pytest.approx(F, rel=rel)
        assert r["p.value"] == pytest.approx(p, rel=50 * rel)


@pytest.mark.parametrize("kind", ["III", "II", "I"])
def test_orthodont_wald_anova_matches_r(kind):
    res = mixedbridge.run(_spec("Orthodont", "distance ~ age * Sex + (age | Subject)", anova={"type": kind}))
    table = res.table("anova")
    _check(table.rows, ORTHODONT[kind], ORTHODONT_REL)
    assert "Wald" in table.title
    spec = _spec("Orthodont", "distance ~ age * Sex + (age | Subject)", anova={"type": kind})
    spec["options"]["df_method"] = "satterthwaite"  # the same F, with finite DenDF
    sat_rows = mixedbridge.run(spec).table("anova").rows
    for r, s in zip(table.rows, sat_rows):
        assert r["statistic"] == pytest.approx(s["statistic"], rel=1e-12) and s["DenDF"] > 20


def test_multi_df_terms_match_r():
    spec = _spec("cake", "angle ~ recipe * temperature + (1 | replicate)")
    spec["levels"] = {"temperature": ["175", "185", "195", "205", "215", "225"]}
    _check(mixedbridge.run(spec).table("anova").rows, CAKE)


def test_no_satterthwaite_quantity_is_computed(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("Satterthwaite's machinery ran under asymptotic df")

    monkeypatch.setattr(satterthwaite, "varpar_covariance", refuse)
    monkeypatch.setattr(satterthwaite, "contest_md", refuse)
    res = mixedbridge.run(_spec("sleepstudy", "Reaction ~ Days + (Days | Subject)"))
    row = res.table("anova").rows[0]
    assert row["DenDF"] is None and np.isfinite(row["statistic"])


def test_explicit_method_under_satterthwaite_df():
    """anova.method 'asymptotic' may be asked for beside Satterthwaite t tests."""
    spec = _spec("Orthodont", "distance ~ age * Sex + (age | Subject)", anova={"method": "asymptotic"})
    spec["options"].pop("df_method")
    res = mixedbridge.run(spec)
    _check(res.table("anova").rows, ORTHODONT["III"], ORTHODONT_REL)
    assert res.table("parameters").rows[1]["df"] is not None


@pytest.mark.r
def test_both_engines_agree():
    spec = _spec("Orthodont", "distance ~ age * Sex + (age | Subject)")
    spec["engine"] = "lme4"
    _check(mixedbridge.run(spec).table("anova").rows, ORTHODONT["III"], 1e-8)
    spec = _spec("cake", "angle ~ recipe * temperature + (1 | replicate)", anova={"type": "III"})
    spec.update(engine="lme4", levels={"temperature": ["175", "185", "195", "205", "215", "225"]})
    _check(mixedbridge.run(spec).table("anova").rows, CAKE, 1e-8)
