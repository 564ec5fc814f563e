"""JASP option documents: schema check, defaults, and one plain shape.

JASP sends variable lists either as ``{"value": ..., "types": [...]}`` objects (JASP >= 0.19) or
as plain strings and lists (jaspTools, older files); term lists as ``{"components": [...]}`` rows,
possibly wrapped in ``{"optionKey": "components", "value": [...]}``. :func:`normalize` turns every
shape into plain Python values (``str``, ``list[str]``, ``list[list[str]]``) and records the
column types JASP declared, so the rest of the package reads one shape.
"""
from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from importlib import resources

import jsonschema

from .errors import JaspOptionError

#: Options this translation does not act on: a value other than the default gets a note.
NOT_APPLIED = ("plotLevelsByColor", "plotLevelsByShape", "plotLevelsByLinetype",
               "plotLevelsByFill", "plotTransparency", "plotJitterWidth", "plotJitterHeight",
               "plotElementWidth", "plotDodge", "plotTheme", "plotLegendPosition", "plotBackgroundColor",
               "plotRelativeSizeText", "plotRelativeSizeData", "plotHeight", "plotWidth")
#: Keys JASP adds around the options; accepted without a note.
META_KEYS = {".meta", "allVariablesList"}

VARIABLE_OPTIONS = ("dependent", "trendsTrendVariable")
VARIABLE_LIST_OPTIONS = ("fixedVariables", "randomVariables", "plotHorizontalAxis", "plotSeparateLines",
                         "plotSeparatePlots", "plotBackgroundData", "marginalMeansTerms", "trendsVariables")
#: Variable options whose declared column types decide what is a factor.
TYPED_OPTIONS = ("dependent", "fixedVariables", "randomVariables")
#: Options that exist for the GLMM only; an LMM document carrying them gets a note.
GLMM_ONLY = {"family", "link", "dependentAggregation", "marginalMeansResponse"}
#: Largest power of ten a contrast weight written as text may carry before it is read (beyond
#: it the weight is outside double precision: too large, or zero).
MAX_WEIGHT_EXPONENT = 400
#: Longest contrast weight written as text.
MAX_WEIGHT_CHARS = 100
_WEIGHT = re.compile(r"(?P<mantissa>[-+]?(?:\d+\.?\d*|\.\d+))(?:[eE](?P<exponent>[-+]?\d+))?|[-+]?\d+/[-+]?\d+")


# ------------------------------------------------------------------------- option values
@dataclass(frozen=True)
class TestMethod:
    """What one value of JASP's ``testMethod`` means here.

    Fields: ``anova`` the spec's ``options.anova.method``; ``title`` the method as the ANOVA
    footnote names it; ``reml`` whether the model is fitted by REML (otherwise by ML).
    """

    anova: str
    title: str
    reml: bool


#: ``testMethod`` (the schema's enum) → its meaning. Every use of a test method reads this table.
TEST_METHODS = {
    "satterthwaite": TestMethod("satterthwaite", "Satterthwaite", True),
    "kenwardRoger": TestMethod("kenward-roger", "Kenward-Roger", True),
    "likelihoodRatioTest": TestMethod("lrt", "likelihood ratio tests", False),
    "parametricBootstrap": TestMethod("bootstrap", "parametric bootstrap", False),
}
#: ``type`` (after :func:`normalize`: ``"2"``, ``"3"``) → the sums of squares' type.
SS_TYPES = {"2": "II", "3": "III"}
#: ``marginalMeansDf`` / ``trendsDf`` → the ``df`` of an emmeans request.
DF_METHODS = {"asymptotic": "asymptotic", "satterthwaite": "satterthwaite", "kenwardRoger": "kenward-roger",
              "Kenward-Roger": "kenward-roger", "kenward-roger": "kenward-roger"}
#: emmeans's ``pbkrtest.limit`` and ``lmerTest.limit``: above this many rows it computes no df
#: unless the limit is lifted.
EMMEANS_DF_LIMIT = 3000
#: ``marginalMeansPAdjustment`` / ``trendsPAdjustment`` → the adjustment as the footnote names it
#: (None: not adjusted).
P_ADJUSTMENTS = {"holm": "Holm", "bonferroni": "Bonferroni", "hommel": "Hommel", "tukey": "Tukey",
                 "scheffe": "Scheffé", "mvt": "multivariate-t", "none": None}
#: ``plotCiType`` → the intervals the plot draws (``within``/``between`` stand in as noted).
CI_TYPES = {"model": "model", "mean": "mean", "none": "none", "within": "model", "between": "mean"}


@dataclass(frozen=True)
class Estimates:
    """JASP's option names of one kind of estimates: marginal means or trends.

    Fields: ``what`` (``Means``/``Trends``, as in the table names ``contrastsMeans``);
    ``prefix`` of its options (``marginalMeans``/``trends``); ``variables`` the option listing
    its variables; ``contrasts`` the option holding its custom contrasts.
    """

    what: str
    prefix: str
    variables: str
    contrasts: str

    def option(self, suffix: str) -> str:
        """The full option name: ``option("Sd")`` → ``marginalMeansSd``."""
        return self.prefix + suffix


MEANS = Estimates("Means", "marginalMeans", "marginalMeansTerms", "contrasts")
TRENDS = Estimates("Trends", "trends", "trendsVariables", "trendsContrasts")


#: Option names of older JASP versions → today's, as jaspMixedModels' ``Upgrades.qml`` renames
#: them for the LMM on load (0.14.3 → 0.15 and 0.16.4 → 0.17.0).
LEGACY_NAMES = {
    "bootstrap_samples": "bootstrapSamples", "dependentVariable": "dependent", "test_intercept": "interceptTest",
    "method": "testMethod", "fitStats": "modelSummary", "showFE": "fixedEffectEstimate",
    "showRE": "varianceCorrelationEstimate", "showREEstimates": "randomEffectEstimate", "pvalVS": "vovkSellke",
    "plotsX": "plotHorizontalAxis", "plotsTrace": "plotSeparateLines", "plotsPanel": "plotSeparatePlots",
    "plotsAgregatedOver": "plotBackgroundData", "plotsCImethod": "plotCiType", "plotsCIwidth": "plotCiLevel",
    "plotsMappingColor": "plotLevelsByColor", "plotsMappingShape": "plotLevelsByShape",
    "plotsMappingLineType": "plotLevelsByLinetype", "plotsMappingFill": "plotLevelsByFill",
    "plotsGeom": "plotBackgroundElement", "plotAlpha": "plotTransparency", "plotGeomWidth": "plotElementWidth",
    "plotsTheme": "plotTheme", "plotsBackgroundColor": "plotBackgroundColor",
    "plotRelativeSize": "plotRelativeSizeData",
    "plotsEstimatesTable": "plotEstimatesTable", "marginalMeans": "marginalMeansTerms",
    "marginalMeansCIwidth": "marginalMeansCiLevel", "marginalMeansSD": "marginalMeansSd",
    "marginalMeansOverride": "marginalMeansDfEstimated", "marginalMeansCompare": "marginalMeansComparison",
    "marginalMeansCompareTo": "marginalMeansComparisonWith", "marginalMeansAdjustment": "marginalMeansPAdjustment",
    "Contrasts": "contrasts", "trendsTrend": "trendsTrendVariable", "trendsCIwidth": "trendsCiLevel",
    "trendsSD": "trendsSd", "trendsOverride": "trendsDfEstimated", "trendsCompare": "trendsComparison",
    "trendsCompareTo": "trendsComparisonWith", "trendsAdjustment": "trendsPAdjustment",
}
#: Values Upgrades.qml converts along with the renames.
LEGACY_VALUES = {
    "testMethod": {"S": "satterthwaite", "KR": "kenwardRoger", "LRT": "likelihoodRatioTest",
                   "PB": "parametricBootstrap"},
    "marginalMeansDf": {"kenward-roger": "kenwardRoger"},
    "trendsDf": {"kenward-roger": "kenwardRoger"},
}


def upgrade(options: dict) -> tuple[dict, list[str]]:
    """An option document from an older JASP with its options renamed and values converted as
    JASP's ``Upgrades.qml`` does on load, and a note naming what was upgraded. A legacy name
    is left alone when the document also carries today's name."""
    if not isinstance(options, dict):
        return options, []
    out = dict(options)
    renamed = []
    for old, new in LEGACY_NAMES.items():
        if old in out and new not in options:
            out[new] = out.pop(old)
            renamed.append(f"{old} → {new}")
    for name, values in LEGACY_VALUES.items():
        if isinstance(out.get(name), str) and out[name] in values:
            out[name] = values[out[name]]
    for name, convert in (("plotBackgroundElement", _legacy_element), ("plotTheme", _legacy_theme)):
        if isinstance(out.get(name), str):
            out[name] = convert(out[name])
    note = ["Options of an older JASP version were upgraded as JASP does on load: " + ", ".join(renamed) + "."]
    return out, note if renamed else []


def _legacy_element(value: str) -> str:
    """``geom_jitter`` → ``jitter`` (Upgrades.qml strips the ``geom_`` prefix)."""
    return value[5:] if value.startswith("geom_") else value


def _legacy_theme(value: str) -> str:
    """``JASP`` → ``jasp``, ``theme_bw`` → ``whiteBackground``, ``jtools::theme_apa`` →
    ``apa``, ``ggpubr::theme_pubr`` → ``pubr``, else ``theme_`` stripped (both upgrades)."""
    value = {"jtools::theme_apa": "theme_apa", "ggpubr::theme_pubr": "theme_pubr"}.get(value, value)
    if value == "JASP":
        return "jasp"
    if value == "theme_bw":
        return "whiteBackground"
    return value.replace("theme_", "")


@cache
def schema() -> dict:
    """``schemas/jasp-lmm-options.schema.json``."""
    path = resources.files("mixedbridge.schemas").joinpath("jasp-lmm-options.schema.json")
    return json.loads(path.read_text(encoding="utf-8"))


def defaults() -> dict:
    """Every option with JASP's default (the wrapper's formals)."""
    return {k: copy.deepcopy(v["default"]) for k, v in schema()["properties"].items()}


def _where(error: jsonschema.ValidationError) -> tuple[str, str]:
    parts = list(error.absolute_path)
    option = str(parts[0]) if parts else ""
    return option, "".join(f"/{p}" for p in parts)


def _describe(error: jsonschema.ValidationError) -> str:
    option, path = _where(error)
    got = json.dumps(error.instance, ensure_ascii=False)
    got = got if len(got) <= 80 else got[:77] + "..."
    if error.validator == "enum" and isinstance(error.validator_value, list):
        allowed = ", ".join(json.dumps(v) for v in error.validator_value)
        return f"option '{option}' ({path}): {got} is not allowed; expected one of {allowed}"
    spec = schema()["properties"].get(option, {})
    hint = spec.get("description", "")
    if error.validator == "type":
        return f"option '{option}' ({path}): expected {error.validator_value}, got {got}"
    if error.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        return f"option '{option}' ({path}): {got} is out of range ({error.message})"
    return f"option '{option}' ({path}): {got} does not have the expected shape. {hint}".rstrip()


def validate(options: dict) -> None:
    """Check the document against the schema; JaspOptionError names the first bad option."""
    if not isinstance(options, dict):
        raise JaspOptionError("", f"the options must be a JSON object, not {type(options).__name__}")
    validator = jsonschema.Draft202012Validator(schema())
    errors = list(validator.iter_errors(options))
    if errors:
        err = min(errors, key=lambda e: (len(e.absolute_path) == 0, list(map(str, e.absolute_path))))
        best = jsonschema.exceptions.best_match([e for e in errors if _where(e)[0] == _where(err)[0]])
        option, path = _where(best)
        raise JaspOptionError(option, _describe(best), path)


def _names(value, option: str) -> tuple[list[str], list]:
    """A variable list in any JASP shape: names and declared types (``None`` where absent)."""
    types: list = []
    if isinstance(value, dict):
        types = list(value.get("types") or [])
        value = value.get("value")
    out = [v for item in _items(value) for v in _item_names(item)]
    if len(set(out)) != len(out):
        dup = next(v for v in out if out.count(v) > 1)
        raise JaspOptionError(option, f"option '{option}': variable '{dup}' is listed twice")
    types = [t if isinstance(t, str) else None for t in types]
    return out, types if len(types) == len(out) else [None] * len(out)


def _items(value) -> list:
    """The entries of a variable list given as nothing, one name or a list."""
    if value is None or value == "":
        return []
    return [value] if isinstance(value, str) else list(value)


def _item_names(item) -> list[str]:
    """The names in one entry: a name, or a ``{"variable": name or [names]}`` row."""
    if not isinstance(item, dict):
        return [] if item == "" else [item]
    inner = item.get("variable")
    inner = [inner] if isinstance(inner, str) else list(inner or [])
    return [v for v in inner if v != ""]


def _terms(value) -> list[list[str]]:
    if isinstance(value, dict):
        value = value.get("value") or []
    out = []
    for row in value:
        comp = row["components"]
        out.append([comp] if isinstance(comp, str) else list(comp))
    return out


def _random_effects(value, option: str = "randomEffects") -> list[dict]:
    out = []
    for i, row in enumerate(value):
        group, _ = _names(row["value"], f"{option}")
        if len(group) != 1:
            raise JaspOptionError(option, f"option '{option}' (/{option}/{i}/value): expected one grouping "
                                  f"variable, got {group!r}", f"/{option}/{i}/value")
        comps = row.get("randomComponents") or []
        if isinstance(comps, dict):
            comps = comps.get("value") or []
        components = []
        for c in comps:
            v = c["value"]
            components.append(([v] if isinstance(v, str) else list(v), bool(c.get("randomSlopes", True))))
        out.append({"group": group[0], "correlations": bool(row.get("correlations", True)),
                    "components": components, "index": i})
    return out


def contrast_weights(table: list, option: str) -> tuple[list[dict], list[tuple[str, list[float]]]]:
    """Grid columns and the non-zero contrasts ``(name, weights)`` of a CustomContrastsTableView.
    Weights may be numbers or strings holding a number or a simple fraction (``"1/3"``, ``"-.5"``);
    nothing is evaluated as code."""
    grid: list[dict] = []
    contrasts: list[tuple[str, list[float]]] = []
    for j, col in enumerate(table or []):
        if not col.get("isContrast"):
            grid.append(col)
            continue
        weights = []
        for k, w in enumerate(col.get("values") or []):
            weights.append(_weight(w, option, f"/{option}/{j}/values/{k}"))
        if weights and any(w != 0 for w in weights):
            contrasts.append((col.get("name") or f"Contrast {len(contrasts) + 1}", weights))
    return grid, contrasts


def _weight(w, option: str, path: str) -> float:
    """A contrast weight as a finite float; text is a decimal number or a fraction of two
    integers, read exactly (``Fraction``) once its exponent is known to be small."""
    if isinstance(w, bool):
        raise JaspOptionError(option, f"option '{option}' ({path}): a contrast weight must be a number, got {w!r}",
                              path)
    if isinstance(w, (int, float)):
        try:
            value = float(w)
        except OverflowError:
            value = math.inf
    else:
        value = _weight_text(str(w).strip().replace(" ", ""), option, path)
    if not math.isfinite(value):
        raise JaspOptionError(option, f"option '{option}' ({path}): contrast weight {_short(w)} is not a finite "
                              "number (double precision reaches about ±1.8e308); use smaller weights", path)
    return value


def _weight_text(text: str, option: str, path: str) -> float:
    """A weight written as text: ``""`` (0), ``-.5``, ``2e-3``, ``1/3``."""
    if text == "":
        return 0.0
    m = _WEIGHT.fullmatch(text) if len(text) <= MAX_WEIGHT_CHARS else None
    if not m:
        raise JaspOptionError(option, f"option '{option}' ({path}): contrast weight {_short(text)} is not a number "
                              f"or a fraction such as 1/3 (of at most {MAX_WEIGHT_CHARS} characters)", path)
    exponent = m.group("exponent") or "0"
    if len(exponent.lstrip("+-")) > len(str(MAX_WEIGHT_EXPONENT)) or abs(int(exponent)) > MAX_WEIGHT_EXPONENT:
        return 0.0 if exponent.startswith("-") or float(m.group("mantissa")) == 0 else math.inf
    try:
        return float(Fraction(text))
    except ZeroDivisionError:
        raise JaspOptionError(option, f"option '{option}' ({path}): contrast weight {_short(text)} divides by zero",
                              path) from None
    except OverflowError:
        return math.inf


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_column_types(types) -> dict[str, str]:
    """The column-type map sent beside the data (``$defs/columnTypes`` of the options
    schema); JaspOptionError naming the column when it does not fit."""
    if types is None:
        return {}
    validator = jsonschema.Draft202012Validator(schema()["$defs"]["columnTypes"])
    for error in validator.iter_errors(types):
        where = "".join(f"/{p}" for p in error.absolute_path)
        got = json.dumps(error.instance, ensure_ascii=False)
        raise JaspOptionError("columnTypes", f"columnTypes{where}: {got[:80]} is not a column type; expected an "
                              "object mapping column names to 'scale', 'ordinal', 'nominal' or 'nominalText'",
                              f"/columnTypes{where}")
    return dict(types)


def normalize(options: dict, column_types: dict | None = None) -> tuple[dict, list[str]]:
    """Upgrade legacy names, validate, fill defaults and flatten a JASP option document.

    Returns the plain options (variable lists as lists of names, ``fixedEffects`` as lists of
    variable names, ``randomEffects`` as ``{group, correlations, components: [(vars, slopes)]}``,
    ``types``: column type per variable, declared in the options or else in ``column_types``)
    and notes about options upgraded or not acted on.
    """
    options, upgraded = upgrade(options)
    validate(options)
    out = defaults()
    notes = upgraded + _unused_notes(options, out)
    out.update({k: copy.deepcopy(v) for k, v in options.items() if k in out})
    out["types"] = {**check_column_types(column_types), **_flatten_variables(out, options)}
    out["dependent"] = _single(out, "dependent", "option 'dependent': expected one variable, got "
                               f"{out['dependent']!r}")
    out["trendsTrendVariable"] = _single(out, "trendsTrendVariable",
                                         "option 'trendsTrendVariable': expected one variable")
    out["fixedEffects"] = _terms(out["fixedEffects"])
    out["randomEffects"] = _random_effects(out["randomEffects"])
    out["type"] = str(out["type"])
    return out, notes


def _unused_notes(options: dict, default: dict) -> list[str]:
    """Notes on options that are not acted on: unknown ones, the GLMM's, plot styles."""
    notes = []
    unknown = sorted(k for k in options if not _known(k, default))
    glmm = [k for k in unknown if k in GLMM_ONLY]
    other = [k for k in unknown if k not in GLMM_ONLY]
    if glmm:
        notes.append("Options of the generalized linear mixed model were ignored (this is a linear mixed "
                     "model): " + ", ".join(glmm) + ".")
    if other:
        notes.append("Unknown options were ignored: " + ", ".join(other) + ".")
    changed = [k for k in NOT_APPLIED if k in options and options[k] != default.get(k)]
    if changed:
        notes.append("Plot style options were not applied (the estimated-means plot has one style; no "
                     "estimates table is drawn): " + ", ".join(changed) + ".")
    return notes


def _known(key: str, default: dict) -> bool:
    """Whether a key is an option, JASP's metadata, or an option's ``.types``."""
    return key in default or key in META_KEYS or (key.endswith(".types") and key[:-6] in default)


def _flatten_variables(out: dict, options: dict) -> dict[str, str]:
    """Variable options as lists of names (in place); returns the column types JASP declared
    for the dependent, fixed and random variables."""
    types: dict[str, str] = {}
    for key in VARIABLE_OPTIONS + VARIABLE_LIST_OPTIONS:
        names, declared = _names(out[key], key)
        declared = _declared_types(options.get(f"{key}.types"), names, declared)
        if key in TYPED_OPTIONS:
            for n, t in zip(names, declared):
                if isinstance(t, str):
                    types.setdefault(n, t)
        out[key] = names
    return types


def _declared_types(old, names: list[str], declared: list) -> list:
    """Types from an older document's ``<option>.types`` key, when it fits the names."""
    if isinstance(old, list) and len(old) == len(names):
        return old
    if isinstance(old, str) and len(names) == 1:
        return [old]
    return declared


def _single(out: dict, option: str, message: str) -> str:
    """The one variable of a single-variable option ("" when none)."""
    names = out[option]
    if len(names) > 1:
        raise JaspOptionError(option, message, f"/{option}")
    return names[0] if names else ""
