"""Each option's allowed values and default are declared once, in the shipped JSON Schemas; the
inference settings, the emmeans request, the spec's defaults and the plot requests read them
from there (a changed schema is picked up) and keep only the rules that join options."""
from __future__ import annotations

import pytest

from mixedbridge import analysis
from mixedbridge import spec as specmod
from mixedbridge.emmeans.request import parse
from mixedbridge.errors import SpecError
from mixedbridge.inference.options import settings
from mixedbridge.options import default, defaults, enum, node, option
from mixedbridge.plots import check_request
from mixedbridge.spec import schema

from .conftest import TENTHIRTY_LEGPRESS

#: Settings field → the option it comes from.
SETTINGS_FIELDS = {
    "reml": "/options/reml",
    "anova_type": "/options/anova/type",
    "anova_intercept": "/options/anova/intercept",
    "anova_nsim": "/options/anova/nsim",
    "anova_seed": "/options/anova/seed",
    "confint_method": "/options/confint/method",
    "confint_level": "/options/confint/level",
    "confint_nsim": "/options/confint/nsim",
    "confint_seed": "/options/confint/seed",
}


def _options() -> dict:
    return schema("spec")["$defs"]["options"]["properties"]


@pytest.fixture(scope="module")
def problem():
    spec = specmod.validate({"analysis": "lm", "formula": "load ~ time * group", **TENTHIRTY_LEGPRESS})
    return analysis.prepare(spec)


def test_options_are_found_by_their_path_in_the_spec():
    assert option("spec", "/options/anova/nsim") is _options()["anova"]["properties"]["nsim"]
    assert default("spec", "/options/confint/level") == _options()["confint"]["properties"]["level"]["default"]
    assert enum("spec", "/options/df_method") == tuple(_options()["df_method"]["enum"])
    # through $ref into the other shipped schemas, one block or a list of blocks
    assert option("spec", "/options/emmeans/adjust") == schema("emmeans")["properties"]["adjust"]
    assert enum("spec", "/options/emmeans/2/df") == enum("emmeans", "/df")
    plot_types = schema("plots")["$defs"]["request"]["properties"]["type"]["enum"]
    assert enum("spec", "/options/plots/0/type") == tuple(plot_types)
    # $ref followed inside a schema, its own keywords kept
    level = node("plots", "/$defs/caterpillar/properties/ci_level")
    assert level["default"] == schema("plots")["$defs"]["level"]["default"]
    assert defaults("plots", "/$defs/caterpillar")["ci_level"] == level["default"]


@pytest.mark.parametrize("call", [lambda: option("spec", "/options/colour"),
                                  lambda: default("spec", "/options/df_method"),
                                  lambda: enum("spec", "/options/anova/nsim")])
def test_what_the_schema_does_not_declare_is_a_key_error(call):
    with pytest.raises(KeyError):
        call()


@pytest.mark.parametrize("analysis_", ["lm", "lmm"])
def test_settings_defaults_are_the_schemas(analysis_):
    for opts in ({}, {"anova": True, "confint": True}):
        s = settings(analysis_, opts)
        for name, path in SETTINGS_FIELDS.items():
            if name != "confint_method" or opts:  # no intervals asked: no method
                assert getattr(s, name) == default("spec", path), name
    assert settings(analysis_, {}).confint_method is None


def test_emmeans_request_defaults_are_the_schemas(problem):
    req = parse(problem, {"specs": "group"})
    assert (req.level, req.df, req.adjust) == (default("emmeans", "/level"), default("emmeans", "/df"),
                                               default("emmeans", "/adjust"))
    assert parse(problem, {}).specs == ["1"]  # the schema's default (no specs): the overall mean


def test_spec_defaults_are_the_schemas():
    spec = specmod.validate({"analysis": "lm", "formula": "load ~ time", "data": {"dataset": "tenthirty"}})
    assert (spec["engine"], spec["filter"], spec["levels"]) == (default("spec", "/engine"), [], {})
    assert spec["options"] == defaults("spec", "/$defs/options") == {"reml": True, "contrasts": "treatment", "nAGQ": 1}


def test_plot_requests_get_the_schemas_defaults():
    for kind in enum("plots", "/0/type"):
        request = check_request({"type": kind})
        assert request == {**defaults("plots", f"/$defs/{kind}"), "type": kind}
    # the lowess span is exactly 2/3, as R's lowess (and as before it was read from the schema)
    assert check_request({"type": "residuals"})["span"] == 2 / 3
    assert check_request({"type": "cluster_fits"})["max_panels"] == 36


def test_changed_schema_defaults_are_picked_up(monkeypatch, problem):
    anova, confint = _options()["anova"]["properties"], _options()["confint"]["properties"]
    monkeypatch.setitem(anova["nsim"], "default", 7)
    monkeypatch.setitem(anova["type"], "default", "II")
    monkeypatch.setitem(confint["level"], "default", 0.9)
    monkeypatch.setitem(confint["method"], "default", "profile")
    s = settings("lmm", {"anova": {"method": "bootstrap"}, "confint": True})
    assert (s.anova_nsim, s.anova_type, s.confint_level, s.confint_method) == (7, "II", 0.9, "profile")

    emm = schema("emmeans")["properties"]
    monkeypatch.setitem(emm["adjust"], "default", "sidak")
    monkeypatch.setitem(emm["level"], "default", 0.8)
    monkeypatch.setitem(emm["df"], "default", "asymptotic")
    req = parse(problem, {"specs": "group"})
    assert (req.adjust, req.level, req.df) == ("sidak", 0.8, "asymptotic")

    monkeypatch.setitem(schema("spec")["properties"]["engine"], "default", "lme4")
    monkeypatch.setitem(_options()["contrasts"], "default", "sum")
    spec = specmod.validate({"analysis": "lm", "formula": "load ~ time", "data": {"dataset": "tenthirty"}})
    assert (spec["engine"], spec["options"]["contrasts"]) == ("lme4", "sum")

    monkeypatch.setitem(schema("plots")["$defs"]["level"], "default", 0.8)
    monkeypatch.setitem(schema("plots")["$defs"]["caterpillar"]["properties"]["order"], "default", "none")
    monkeypatch.setitem(schema("plots")["$defs"]["image_dpi"], "default", 72)
    assert check_request({"type": "caterpillar"}) == {"type": "caterpillar", "ci_level": 0.8, "order": "none",
                                                      "format": "both", "dpi": 72}


def test_changed_schema_enums_are_picked_up(monkeypatch, problem):
    monkeypatch.setitem(_options()["df_method"], "enum", ["satterthwaite", "kenward-roger"])
    with pytest.raises(SpecError) as err:
        settings("lmm", {"df_method": "asymptotic"})
    assert err.value.path == "/options/df_method" and "'asymptotic' is not allowed" in err.value.message
    # no Python list of adjust methods stands in the way of a value the schema allows
    adjust = schema("emmeans")["properties"]["adjust"]
    monkeypatch.setitem(adjust, "enum", [*adjust["enum"], "mvt"])
    assert parse(problem, {"specs": "group", "adjust": "mvt"}).adjust == "mvt"


@pytest.mark.parametrize("opts, path", [
    ({"anova": {"seed": -1}}, "/options/anova/seed"),
    ({"anova": {"method": "bootstrap", "nsim": 0}}, "/options/anova/nsim"),
    ({"anova": {"type": "IV"}}, "/options/anova/type"),
    ({"anova": 3}, "/options/anova"),
    ({"confint": {"level": float("nan")}}, "/options/confint/level"),
    ({"confint": {"method": "boot"}}, "/options/confint/method"),
    ({"df_method": "wald"}, "/options/df_method"),
])
def test_settings_check_options_built_without_the_spec(opts, path):
    """The JASP adapter builds options itself: the schema still checks them, with the same path."""
    with pytest.raises(SpecError) as err:
        settings("lmm", opts)
    assert err.value.path == path and err.value.message.startswith(path + ":")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_numbers_are_refused_by_the_schema(value):
    spec = {"analysis": "lm", "formula": "load ~ time", "data": {"dataset": "tenthirty"},
            "options": {"confint": {"level": value}}}
    with pytest.raises(SpecError) as err:
        specmod.validate(spec)
    assert err.value.path == "/options/confint/level" and "expected number" in err.value.message
