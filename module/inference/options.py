"""The inference options of a spec, checked and filled with defaults (lmerTest / JASP's).

``options.df_method``: ``satterthwaite`` (default for lmm) | ``kenward-roger`` | ``asymptotic``
(z tests); ``lm`` always uses its residual df and refuses the mixed-model methods.

``options.anova``: ``true`` / ``false`` or ``{"type": "III" | "II" | "I", "method":
"satterthwaite" | "kenward-roger" | "lrt" | "bootstrap", "intercept": false, "nsim": 1000,
"seed": 1}``; default: a type III table with the df method for lmm, none for lm.

``options.confint``: ``true`` / ``false`` or ``{"method": "wald" | "profile" | "bootstrap",
"level": 0.95, "nsim": 1000, "seed": 1}``; default: none (``true`` means Wald).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError

DF_METHODS = ("satterthwaite", "kenward-roger", "asymptotic")
ANOVA_TYPES = ("I", "II", "III")
ANOVA_METHODS = ("satterthwaite", "kenward-roger", "lrt", "bootstrap")
CONFINT_METHODS = ("wald", "profile", "bootstrap")
DEFAULT_NSIM = 1000
DEFAULT_SEED = 1


@dataclass
class Settings:
    """What to compute. ``anova_method`` None = no anova table; same for ``confint_method``."""

    analysis: str
    df_method: str
    anova_type: str = "III"
    anova_method: str | None = None
    anova_intercept: bool = False
    anova_nsim: int = DEFAULT_NSIM
    anova_seed: int = DEFAULT_SEED
    confint_method: str | None = None
    confint_level: float = 0.95
    confint_nsim: int = DEFAULT_NSIM
    confint_seed: int = DEFAULT_SEED
    reml: bool = True

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _nsim(value, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"{path}: the number of bootstrap samples must be a whole number >= 1, "
                        f"got {value!r}", path)
    return value


def _seed(value, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(f"{path}: the seed must be a whole number >= 0, got {value!r}", path)
    return value


def _choice(value, allowed, path: str) -> str:
    if value not in allowed:
        raise SpecError(f"{path}: {value!r} is not allowed; expected one of "
                        + ", ".join(repr(a) for a in allowed), path)
    return value


def settings(analysis: str, options: dict) -> Settings:
    """Normalize ``options`` (a validated spec's) for an ``analysis``."""
    options = options or {}
    lmm = analysis == "lmm"
    df = options.get("df_method")
    if df is None:
        df = "satterthwaite" if lmm else "residual"
    else:
        _choice(df, DF_METHODS, "/options/df_method")
        if not lmm and df in ("satterthwaite", "kenward-roger"):
            raise SpecError(f"/options/df_method: {df!r} is for mixed models; an 'lm' uses its residual "
                            "degrees of freedom (leave df_method out or use 'asymptotic')",
                            "/options/df_method")
    s = Settings(analysis, df, reml=bool(options.get("reml", True)))
    if df == "kenward-roger" and not s.reml:
        raise SpecError("/options/df_method: Kenward-Roger needs a REML fit; set options.reml to true "
                        "or use 'satterthwaite'", "/options/df_method")

    an = options.get("anova", lmm)
    if isinstance(an, dict) or an is True:
        an = {} if an is True else an
        s.anova_type = _choice(an.get("type", "III"), ANOVA_TYPES, "/options/anova/type")
        default = df if df in ("satterthwaite", "kenward-roger") else ("residual" if not lmm else "satterthwaite")
        method = an.get("method", default)
        if method != "residual":
            _choice(method, ANOVA_METHODS, "/options/anova/method")
        if not lmm and method in ("satterthwaite", "kenward-roger", "lrt", "bootstrap"):
            if "method" in an:
                raise SpecError(f"/options/anova/method: {method!r} is for mixed models; an 'lm' anova uses "
                                "F tests with the residual degrees of freedom (leave method out)",
                                "/options/anova/method")
            method = "residual"
        if method == "kenward-roger" and not s.reml:
            raise SpecError("/options/anova/method: Kenward-Roger needs a REML fit; set options.reml to true",
                            "/options/anova/method")
        s.anova_method = method
        s.anova_intercept = bool(an.get("intercept", False))
        if "nsim" in an:
            s.anova_nsim = _nsim(an["nsim"], "/options/anova/nsim")
        if "seed" in an:
            s.anova_seed = _seed(an["seed"], "/options/anova/seed")
    elif an not in (False, None):
        raise SpecError("/options/anova: expected true, false or an object", "/options/anova")

    ci = options.get("confint", False)
    if isinstance(ci, dict) or ci is True:
        ci = {} if ci is True else ci
        s.confint_method = _choice(ci.get("method", "wald"), CONFINT_METHODS, "/options/confint/method")
        if not lmm and s.confint_method != "wald":
            raise SpecError(f"/options/confint/method: {s.confint_method!r} intervals are for mixed models; "
                            "an 'lm' has exact t intervals (method 'wald')", "/options/confint/method")
        level = ci.get("level", 0.95)
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
            raise SpecError(f"/options/confint/level: expected a number between 0 and 1, got {level!r}",
                            "/options/confint/level")
        s.confint_level = float(level)
        if "nsim" in ci:
            s.confint_nsim = _nsim(ci["nsim"], "/options/confint/nsim")
        if "seed" in ci:
            s.confint_seed = _seed(ci["seed"], "/options/confint/seed")
    elif ci not in (False, None):
        raise SpecError("/options/confint: expected true, false or an object", "/options/confint")
    return s
