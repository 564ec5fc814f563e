"""The GLMM models of the tests: each R call of ``tests/data/glmm_r/reference.R`` with the spec
that asks mixedbridge for the same model (the response in the form the call writes it)."""
from __future__ import annotations

#: name -> (R call, spec). Specs name the bundled data sets; engine and other options are the test's.
CASES: dict[str, tuple[str, dict]] = {
    "cbpp_trials": (
        "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)",
        {"formula": "cbind(incidence, size - incidence) ~ period + (1 | herd)", "data": {"dataset": "cbpp"},
         "options": {"family": "binomial"}}),
    "cbpp_proportion": (
        "glmer(I(incidence / size) ~ period + (1 | herd), cbpp, binomial, weights = size)",
        {"formula": "I(incidence / size) ~ period + (1 | herd)", "data": {"dataset": "cbpp"},
         "options": {"family": "binomial", "weights": "size"}}),
    "cbpp_agq25": (
        "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, nAGQ = 25)",
        {"formula": "cbind(incidence, size - incidence) ~ period + (1 | herd)", "data": {"dataset": "cbpp"},
         "options": {"family": "binomial", "nAGQ": 25}}),
    "cbpp_agq0": (
        "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, nAGQ = 0)",
        {"formula": "cbind(incidence, size - incidence) ~ period + (1 | herd)", "data": {"dataset": "cbpp"},
         "options": {"family": "binomial", "nAGQ": 0}}),
    "cbpp_cloglog": (
        'glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial(link = "cloglog"))',
        {"formula": "cbind(incidence, size - incidence) ~ period + (1 | herd)", "data": {"dataset": "cbpp"},
         "options": {"family": "binomial", "link": "cloglog"}}),
    "grouseticks": (
        "glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION), grouse, poisson)",
        {"formula": "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
         "data": {"dataset": "grouseticks"}, "options": {"family": "poisson"}}),
    "verbagg": (
        "glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), verb, binomial)",
        {"formula": "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", "data": {"dataset": "VerbAgg"},
         "options": {"family": "binomial"}}),
    "contraception": (
        "glmer(use ~ age + I(age^2) + urban + livch + (1 + urban | district), contra, binomial)",
        {"formula": "use ~ age + I(age^2) + urban + livch + (1 + urban | district)",
         "data": {"dataset": "Contraception"}, "options": {"family": "binomial"}}),
    "bacteria_probit": (
        'glmer(y ~ trt + I(week > 2) + (1 | ID), bact, binomial(link = "probit"))',
        {"formula": "y ~ trt + I(week > 2) + (1 | ID)", "data": {"dataset": "bacteria"},
         "options": {"family": "binomial", "link": "probit"}}),
    "bacteria_cauchit": (
        'glmer(y ~ trt + I(week > 2) + (1 | ID), bact, binomial(link = "cauchit"))',
        {"formula": "y ~ trt + I(week > 2) + (1 | ID)", "data": {"dataset": "bacteria"},
         "options": {"family": "binomial", "link": "cauchit"}}),
    "arabidopsis": (
        "glmer(total.fruits ~ nutrient + amd + rack + status + (1 | popu) + (1 | gen), arab, poisson)",
        {"formula": "total.fruits ~ nutrient + amd + rack + status + (1 | popu) + (1 | gen)",
         "data": {"dataset": "Arabidopsis"}, "options": {"family": "poisson"}}),
    "scotssec_crossed": (
        "glmer(attain ~ verbal + sex + (1 | primary) + (1 | second), scots, poisson)",
        {"formula": "attain ~ verbal + sex + (1 | primary) + (1 | second)", "data": {"dataset": "ScotsSec"},
         "options": {"family": "poisson"}}),
    "orthodont_gamma": (
        'glmer(distance ~ age + Sex + (1 | Subject), ortho, Gamma(link = "log"))',
        {"formula": "distance ~ age + Sex + (1 | Subject)", "data": {"dataset": "Orthodont"},
         "options": {"family": "Gamma", "link": "log"}}),
    "orthodont_gaussian_log": (
        'glmer(distance ~ age + Sex + (1 | Subject), ortho, gaussian(link = "log"))',
        {"formula": "distance ~ age + Sex + (1 | Subject)", "data": {"dataset": "Orthodont"},
         "options": {"family": "gaussian", "link": "log"}}),
    "epil_nb": (
        "glmer.nb(y ~ trt + lbase + lage + V4 + (1 | subject), epil)",
        {"formula": "y ~ trt + lbase + lage + V4 + (1 | subject)", "data": {"dataset": "epil"},
         "options": {"family": "negative.binomial"}}),
}

#: Cases whose glmer fit takes seconds (VerbAgg: 7,584 rows, crossed factors).
SLOW = {"verbagg"}


def spec(name: str, engine: str, **options) -> dict:
    """The spec of case ``name`` for ``engine``, with extra options."""
    base = CASES[name][1]
    return {"analysis": "glmm", **base, "engine": engine, "options": {**base["options"], **options}}
