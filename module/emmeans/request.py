"""The spec's ``emmeans`` block: defaults, and checks against the model that name the JSON path
of what is wrong (``/emmeans/specs/1``, ``/emmeans/contrasts/0/weights``)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import SpecError
from ..problem import Problem
from .adjust import METHODS
from .refgrid import fixed_variables

DF_METHODS = ("satterthwaite", "kenward-roger", "asymptotic")


@dataclass
class Request:
    """A checked ``emmeans`` block (see ``schemas/emmeans.schema.json``)."""

    specs: list[str]
    by: list[str] = field(default_factory=list)
    at: dict = field(default_factory=dict)
    sd_steps: float | None = None
    level: float = 0.95
    df: str = "satterthwaite"
    null: float | None = None
    contrasts: str | list[tuple[str, list[float]]] | None = None
    adjust: str = "holm"
    trend: str | None = None
    path: str = "/emmeans"

    @property
    def test(self) -> bool:
        """Whether the means table carries tests (trends always do, against ``null`` or 0)."""
        return self.trend is not None or self.null is not None


def _names(value, path: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError("expected a variable name or a list of variable names", path)
    out: list[str] = []
    for v in value:
        for part in v.split(":") if v != "1" else [v]:
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def _number(value, path: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise SpecError(f"{what} must be a finite number", path)
    return float(value)


def parse(problem: Problem, block: dict, path: str = "/emmeans") -> Request:
    """Check an ``emmeans`` block against the model; raises SpecError with a JSON path."""
    if not isinstance(block, dict):
        raise SpecError("the emmeans block must be an object", path)
    known = {"specs", "by", "at", "sd_steps", "level", "df", "null", "contrasts", "adjust", "trend"}
    for key in block:
        if key not in known:
            raise SpecError(f"unknown emmeans option {key!r}; expected one of {', '.join(sorted(known))}",
                            f"{path}/{key}")
    model_vars = fixed_variables(problem)
    factors = problem.frame.factors
    all_vars = [v.label for v in problem.desc.variables]
    columns = list(problem.frame.source.columns)

    def check_var(name: str, where: str) -> None:
        if name == "1" or name in model_vars:
            return
        if name in all_vars or name in columns:
            why = ("it is the response" if name == problem.desc.response.label else
                   "it is not in the model's fixed effects" if name in all_vars or name in columns else "")
            raise SpecError(f"{name!r} cannot be used: {why}; the fixed effects' variables are "
                            f"{', '.join(repr(v) for v in model_vars) or '(none)'}", where)
        raise SpecError(f"{name!r} is not a variable of the model; the fixed effects' variables are "
                        f"{', '.join(repr(v) for v in model_vars) or '(none)'}", where)

    specs = _names(block.get("specs", []), f"{path}/specs")
    for i, s in enumerate(specs):
        check_var(s, f"{path}/specs/{i}" if isinstance(block.get("specs"), list) else f"{path}/specs")
    by = _names(block.get("by"), f"{path}/by")
    for i, b in enumerate(by):
        check_var(b, f"{path}/by/{i}" if isinstance(block.get("by"), list) else f"{path}/by")
        if b in specs:
            raise SpecError(f"{b!r} is both in specs and in by; name it in one of them", f"{path}/by")
        if b == "1":
            raise SpecError("'1' (overall) cannot be a by variable", f"{path}/by")
    trend = block.get("trend")
    if trend is not None:
        if not isinstance(trend, str):
            raise SpecError("trend must be the name of a numeric covariate of the model", f"{path}/trend")
        check_var(trend, f"{path}/trend")
        if trend == "1" or trend in factors:
            raise SpecError(f"the trend variable {trend!r} is a factor; a trend (slope) needs a numeric "
                            "covariate", f"{path}/trend")
        if trend in specs or trend in by:
            raise SpecError(f"the trend variable {trend!r} cannot also be in specs or by", f"{path}/trend")
        _check_trend_transforms(problem, trend, f"{path}/trend")
    if not specs:
        specs = ["1"]
    at = _at(problem, block.get("at") or {}, model_vars, f"{path}/at")
    sd_steps = block.get("sd_steps")
    if sd_steps is not None:
        sd_steps = _number(sd_steps, f"{path}/sd_steps", "sd_steps")
        if sd_steps <= 0:
            raise SpecError("sd_steps must be positive (covariates at mean − k·SD, mean, mean + k·SD)",
                            f"{path}/sd_steps")
    level = _number(block.get("level", 0.95), f"{path}/level", "level")
    if not 0 < level < 1:
        raise SpecError("level must be between 0 and 1 (e.g. 0.95)", f"{path}/level")
    df = block.get("df", "satterthwaite")
    if df not in DF_METHODS:
        raise SpecError(f"df must be one of {', '.join(DF_METHODS)}", f"{path}/df")
    null = block.get("null")
    if null is not None:
        null = _number(null, f"{path}/null", "null")
    adjust = block.get("adjust", "holm")
    if adjust not in METHODS:
        raise SpecError(f"adjust must be one of {', '.join(METHODS)}", f"{path}/adjust")
    contrasts = _contrasts(block.get("contrasts"), f"{path}/contrasts")
    return Request(specs, by, at, sd_steps, level, df, null, contrasts, adjust, trend, path)


def _check_trend_transforms(problem: Problem, trend: str, path: str) -> None:
    """A trend over x is refused when another model variable is a transformation of x (I(x^2),
    log(x)): the slope would ignore how that variable moves with x."""
    var = next(v for v in problem.desc.variables if v.label == trend)
    cols = set(var.columns)
    others = [v.label for v in problem.desc.variables
              if v.label != trend and v.label != problem.desc.response.label and cols & set(v.columns)]
    if others:
        raise SpecError(f"the trend of {trend!r} is not supported when the model also has "
                        f"{', '.join(repr(o) for o in others)} made from the same column", path)


def _at(problem: Problem, at, model_vars: list[str], path: str) -> dict:
    if not isinstance(at, dict):
        raise SpecError("at must be an object mapping variables to lists of values", path)
    out = {}
    for name, values in at.items():
        where = f"{path}/{name}"
        if name not in model_vars:
            raise SpecError(f"{name!r} in at is not a variable of the model's fixed effects; they are "
                            f"{', '.join(repr(v) for v in model_vars)}", where)
        if not isinstance(values, list):
            values = [values]
        if not values:
            raise SpecError(f"at {name!r} needs at least one value", where)
        if name in problem.frame.factors:
            cats = [str(c) for c in problem.frame.data[name].cat.categories]
            labels = []
            for j, v in enumerate(values):
                lab = str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
                if lab not in cats:
                    raise SpecError(f"{lab!r} is not a level of {name!r}; its levels are "
                                    f"{', '.join(repr(c) for c in cats)}", f"{where}/{j}")
                if lab in labels:
                    raise SpecError(f"level {lab!r} of {name!r} is listed twice", f"{where}/{j}")
                labels.append(lab)
            out[name] = labels
        else:
            out[name] = [_number(v, f"{where}/{j}", f"at value for the covariate {name!r}")
                         for j, v in enumerate(values)]
    return out


def _contrasts(value, path: str):
    if value is None or value == "none":
        return None
    if value == "pairwise":
        return "pairwise"
    if not isinstance(value, list) or not value:
        raise SpecError("contrasts must be \"pairwise\", \"none\" or a list of {\"name\", \"weights\"}", path)
    out = []
    for i, c in enumerate(value):
        where = f"{path}/{i}"
        if not isinstance(c, dict) or "weights" not in c:
            raise SpecError("each custom contrast needs \"weights\" (one number per marginal mean) and "
                            "may have a \"name\"", where)
        w = c["weights"]
        if not isinstance(w, list) or not w:
            raise SpecError("weights must be a non-empty list of numbers", f"{where}/weights")
        weights = [_number(x, f"{where}/weights/{j}", "a contrast weight") for j, x in enumerate(w)]
        name = c.get("name", f"contrast {i + 1}")
        if not isinstance(name, str):
            raise SpecError("a contrast's name must be text", f"{where}/name")
        if name in [n for n, _ in out]:
            raise SpecError(f"two contrasts are named {name!r}", f"{where}/name")
        out.append((name, weights))
    return out
