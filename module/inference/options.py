"""The inference options of a spec (``options.df_method``, ``options.anova``, ``options.confint``)
turned into :class:`Settings`: what to compute, as lmerTest / pbkrtest / lme4 would.

The allowed values and their defaults are declared once, in ``schemas/spec.schema.json``
(``$defs/options``; ``mixedbridge schema spec``), and read from there
(:mod:`mixedbridge.options`). Decided here: the defaults that depend on the analysis (an
``lmm`` gets a type III table with its df method, Satterthwaite unless asked otherwise; an
``lm`` gets no table and uses its residual df) and the rules that join options.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError
from ..options import default
from ..spec import check

#: The df methods that are lmerTest's F/t tests of a mixed model (an ``lm`` refuses them).
MIXED_DF = ("satterthwaite", "kenward-roger")
#: The per-term test methods and interval methods available for a glmm (Wald z or t tests of
#: the coefficients always; ``summary(glmer)`` has no Satterthwaite or Kenward-Roger df).
GLMM_ANOVA_METHODS: tuple[str, ...] = ("lrt", "bootstrap")
GLMM_CONFINT_METHODS: tuple[str, ...] = ("wald", "profile")


@dataclass
class Settings:
    """What to compute. ``anova_method`` None = no anova table; same for ``confint_method``.
    Built by :func:`settings`, which fills every field from the options or the schema's defaults."""

    analysis: str
    df_method: str
    anova_type: str
    anova_method: str | None
    anova_intercept: bool
    anova_nsim: int
    anova_seed: int
    confint_method: str | None
    confint_level: float
    confint_nsim: int
    confint_seed: int
    reml: bool

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _option(block: dict, path: str):
    """``block``'s value of the option at ``path`` (its last part), or the schema's default."""
    key = path.rsplit("/", 1)[1]
    return block[key] if key in block else default("spec", path)


def _df_method(options: dict, lmm: bool, reml: bool) -> str:
    df = options.get("df_method")
    if df is None:
        return "satterthwaite" if lmm else "residual"
    if not lmm and df in MIXED_DF:
        raise SpecError(f"/options/df_method: {df!r} is for mixed models; an 'lm' uses its residual "
                        "degrees of freedom (leave df_method out or use 'asymptotic')", "/options/df_method")
    if df == "kenward-roger" and not reml:
        raise SpecError("/options/df_method: Kenward-Roger needs a REML fit; set options.reml to true "
                        "or use 'satterthwaite'", "/options/df_method")
    return df


def _anova(an: dict | bool, df: str, lmm: bool, reml: bool) -> dict:
    """The anova fields of :class:`Settings` (``an`` False: no table)."""
    block = an if isinstance(an, dict) else {}
    out = {f"anova_{k}": _option(block, f"/options/anova/{k}") for k in ("type", "intercept", "nsim", "seed")}
    if an is False:
        return {**out, "anova_method": None}
    if not lmm and "method" in block:
        raise SpecError(f"/options/anova/method: {block['method']!r} is for mixed models; an 'lm' anova "
                        "uses F tests with the residual degrees of freedom (leave method out)",
                        "/options/anova/method")
    method = block.get("method", df if lmm else "residual")
    if method == "kenward-roger" and not reml:
        raise SpecError("/options/anova/method: Kenward-Roger needs a REML fit; set options.reml to true",
                        "/options/anova/method")
    return {**out, "anova_method": method}


def _confint(ci: dict | bool, lmm: bool) -> dict:
    """The confint fields of :class:`Settings` (``ci`` False: no intervals)."""
    block = ci if isinstance(ci, dict) else {}
    out = {f"confint_{k}": _option(block, f"/options/confint/{k}") for k in ("method", "level", "nsim", "seed")}
    out["confint_level"] = float(out["confint_level"])
    if ci is False:
        return {**out, "confint_method": None}
    if not lmm and out["confint_method"] != "wald":
        raise SpecError(f"/options/confint/method: {out['confint_method']!r} intervals are for mixed models; "
                        "an 'lm' has exact t intervals (method 'wald')", "/options/confint/method")
    return out


def settings(analysis: str, options: dict) -> Settings:
    """Normalize ``options`` (a spec's ``options``) for an ``analysis``.

    The options are checked against the spec schema's ``options`` here too, for callers that
    build them without :func:`mixedbridge.spec.validate` (the JASP adapter); what is left to
    this function are the rules that join options (an ``lm`` refuses the mixed-model df methods,
    Kenward-Roger needs REML) and the defaults that depend on the analysis.
    """
    options = options or {}
    check(options, "spec", "/$defs/options", "/options")
    if analysis == "glmm":
        return _glmm_settings(options)
    lmm = analysis == "lmm"
    reml = _option(options, "/options/reml")
    df = _df_method(options, lmm, reml)
    anova = _anova(options.get("anova", lmm), df, lmm, reml)
    if options.get("weights"):
        _refuse_kr_weights(df, anova["anova_method"])
    return Settings(analysis=analysis, df_method=df, reml=reml, **anova, **_confint(options.get("confint", False), lmm))


#: Why Kenward-Roger is refused with prior weights, on both engines.
KR_WEIGHTS = ("Kenward-Roger is not available with prior weights: pbkrtest ignores the weights, and its "
              "degrees of freedom can exceed the number of rows")


def _refuse_kr_weights(df: str, anova_method: str | None) -> None:
    """Kenward-Roger df with prior weights: refused, naming the option that asks for it."""
    if df == "kenward-roger":
        raise SpecError(f"/options/df_method: {KR_WEIGHTS}; use 'satterthwaite'", "/options/df_method")
    if anova_method == "kenward-roger":
        raise SpecError(f"/options/anova/method: {KR_WEIGHTS}; use 'satterthwaite'", "/options/anova/method")


def _glmm_settings(options: dict) -> Settings:
    """A glmm's settings: Wald tests of the coefficients as ``summary(glmer)`` (z, or t with
    normal p-values for families with a scale); no anova table unless asked for."""
    df = options.get("df_method", "asymptotic")
    if df != "asymptotic":
        raise SpecError(f"/options/df_method: {df!r} degrees of freedom are for linear mixed models; a glmm's "
                        "coefficients get Wald z tests (t for families with a scale, as summary(glmer)); "
                        "leave df_method out or use 'asymptotic'", "/options/df_method")
    an = options.get("anova", False)
    block = an if isinstance(an, dict) else {}
    anova = {f"anova_{k}": _option(block, f"/options/anova/{k}") for k in ("type", "intercept", "nsim", "seed")}
    method = block.get("method") if an is not False else None
    if an is not False and method not in GLMM_ANOVA_METHODS:
        what = f"method {method!r}" if method else "an anova table"
        avail = ", ".join(repr(m) for m in GLMM_ANOVA_METHODS) or "none yet"
        raise SpecError(f"/options/anova: {what} is not available for a glmm (F tests with Satterthwaite or "
                        f"Kenward-Roger df are for linear mixed models); methods for a glmm: {avail}",
                        "/options/anova/method" if method else "/options/anova")
    ci = _confint(options.get("confint", False), True)
    if ci["confint_method"] is not None and ci["confint_method"] not in GLMM_CONFINT_METHODS:
        raise SpecError(f"/options/confint/method: {ci['confint_method']!r} intervals are not available for a "
                        "glmm; use " + " or ".join(repr(m) for m in GLMM_CONFINT_METHODS), "/options/confint/method")
    return Settings(analysis="glmm", df_method="asymptotic", reml=False, anova_method=method, **anova, **ci)
