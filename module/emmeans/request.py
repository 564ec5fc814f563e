"""The spec's ``emmeans`` block: defaults, and checks against the model that name the JSON path
of what is wrong (``/emmeans/specs/1``, ``/emmeans/contrasts/0/weights``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SpecError
from ..inference.options import KR_WEIGHTS
from ..options import default
from ..problem import Problem
from ..spec import check
from .refgrid import MAX_GRID_ROWS, fixed_variables, grid_sizes

#: Most pairwise comparisons one request may ask for (all ``by`` groups together).
MAX_PAIRWISE = 10_000


@dataclass
class Request:
    """A checked ``emmeans`` block (see ``schemas/emmeans.schema.json``), defaults filled in."""

    specs: list[str]
    by: list[str]
    at: dict
    sd_steps: float | None
    level: float
    df: str
    null: float | None
    contrasts: str | list[tuple[str, list[float]]] | None
    adjust: str
    trend: str | None
    path: str = "/emmeans"
    type: str = "link"
    regrid: bool = False

    @property
    def test(self) -> bool:
        """Whether the means table carries tests (trends always do, against ``null`` or 0)."""
        return self.trend is not None or self.null is not None


def _option(block: dict, key: str):
    """``block[key]``, or the default ``schemas/emmeans.schema.json`` declares for it."""
    return block[key] if key in block else default("emmeans", f"/{key}")


def _names(value: str | list[str]) -> list[str]:
    """Variable names, those joined with ':' split apart, each once."""
    out: list[str] = []
    for v in [value] if isinstance(value, str) else value:
        for part in v.split(":") if v != "1" else [v]:
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def _number(value, path: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise SpecError(f"{what} must be a finite number", path)
    return float(value)


def _optional_float(value) -> float | None:
    return None if value is None else float(value)


def parse(problem: Problem, block: dict, path: str = "/emmeans") -> Request:
    """Check an ``emmeans`` block against its schema and the model; raises SpecError with a
    JSON path. The schema declares the options, their values and defaults; what is checked
    here needs the model (variables, levels) or joins options (specs, by and trend apart)."""
    check(block, "emmeans", "", path)
    model_vars = fixed_variables(problem)
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

    specs = _names(_option(block, "specs"))
    for i, s in enumerate(specs):
        check_var(s, f"{path}/specs/{i}" if isinstance(block.get("specs"), list) else f"{path}/specs")
    by = _names(_option(block, "by"))
    for i, b in enumerate(by):
        check_var(b, f"{path}/by/{i}" if isinstance(block.get("by"), list) else f"{path}/by")
        if b in specs:
            raise SpecError(f"{b!r} is both in specs and in by; name it in one of them", f"{path}/by")
        if b == "1":
            raise SpecError("'1' (overall) cannot be a by variable", f"{path}/by")
    trend = block.get("trend")
    if trend is not None:
        _check_trend(problem, trend, specs, by, f"{path}/trend", check_var)
    at = _at(problem, block.get("at") or {}, model_vars, f"{path}/at")
    req = Request(specs=specs or ["1"], by=by, at=at, sd_steps=_optional_float(block.get("sd_steps")),
                  level=float(_option(block, "level")), df=_option(block, "df"),
                  null=_optional_float(block.get("null")),
                  contrasts=_contrasts(block.get("contrasts"), f"{path}/contrasts"),
                  adjust=_option(block, "adjust"), trend=trend, path=path,
                  type=_option(block, "type"), regrid=bool(_option(block, "regrid")))
    _check_scale(problem, req, block)
    _check_size(problem, req)
    if req.df == "kenward-roger" and problem.frame.weights is not None:
        raise SpecError(f"{KR_WEIGHTS}; use df \"satterthwaite\"", f"{path}/df")
    return req


def _check_scale(problem: Problem, req: Request, block: dict) -> None:
    """``type`` and ``regrid`` are a GLMM's (its link); trends are slopes on the link scale."""
    asked = [k for k in ("type", "regrid") if k in block and block[k] not in ("link", False)]
    if not asked:
        return
    where = f"{req.path}/{asked[0]}"
    if problem.analysis != "glmm":
        raise SpecError(f"{asked[0]!r} re-expresses means through a GLMM's link; this {problem.analysis!r} "
                        "has no link (its means are on the response scale already)", where)
    if req.trend is not None:
        raise SpecError("trends are slopes of the linear predictor, on the link scale; leave out "
                        f"{asked[0]!r} with 'trend'", where)


def _check_size(problem: Problem, req: Request) -> None:
    """The reference grid and the pairwise comparisons asked for, counted before either is built."""
    sizes = grid_sizes(problem, req.at, req.sd_steps)
    rows = int(np.prod(list(sizes.values()), dtype=object))
    if rows > MAX_GRID_ROWS:
        what = " × ".join(f"{v} ({k})" for v, k in sizes.items() if k > 1)
        raise SpecError(f"the reference grid would have {rows:,} rows ({what}), more than the {MAX_GRID_ROWS:,} "
                        "emmeans allows (its rg.limit); name fewer levels or values in 'at', or fit a model "
                        "with fewer factor levels", f"{req.path}/at" if req.at else req.path)
    if req.contrasts != "pairwise":
        return
    means = int(np.prod([sizes.get(s, 1) for s in req.specs], dtype=object))
    groups = int(np.prod([sizes.get(b, 1) for b in req.by], dtype=object))
    pairs = groups * means * (means - 1) // 2
    if pairs > MAX_PAIRWISE:
        within = f" in each of {groups:,} groups" if groups > 1 else ""
        raise SpecError(f"pairwise comparisons of {means:,} means{within} "
                        f"would be {pairs:,} rows, more than the {MAX_PAIRWISE:,} a request may have; compare "
                        "fewer levels (name them in 'at') or use custom contrasts", f"{req.path}/contrasts")


def _check_trend(problem: Problem, trend: str, specs: list[str], by: list[str], path: str, check_var) -> None:
    """A trend needs a numeric covariate of the model, named neither in specs nor in by."""
    check_var(trend, path)
    if trend == "1" or trend in problem.frame.factors:
        raise SpecError(f"the trend variable {trend!r} is a factor; a trend (slope) needs a numeric "
                        "covariate", path)
    if trend in specs or trend in by:
        raise SpecError(f"the trend variable {trend!r} cannot also be in specs or by", path)
    _check_trend_transforms(problem, trend, path)


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
    out: dict[str, list] = {}
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


def _contrasts(value, path: str) -> str | list[tuple[str, list[float]]] | None:
    """``None`` for no contrasts, ``"pairwise"``, or the custom contrasts as (name, weights)."""
    if value is None or value == "none":
        return None
    if value == "pairwise":
        return "pairwise"
    out: list[tuple[str, list[float]]] = []
    for i, c in enumerate(value):
        name = c.get("name", f"contrast {i + 1}")
        if name in [n for n, _ in out]:
            raise SpecError(f"two contrasts are named {name!r}", f"{path}/{i}/name")
        out.append((name, [float(x) for x in c["weights"]]))
    return out
