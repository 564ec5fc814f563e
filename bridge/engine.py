"""The ``lme4`` engine: the same prepared problem fitted in R (``stats::lm``, ``lme4::lmer``).

The data reach R under generated safe names only: column *i* of the model frame is ``v{i}_``,
level *j* of a factor is ``L{j}`` (levels set explicitly, in the frame's order, so the first
level stays the reference), and the formula is rebuilt from the parsed model description with
those names, e.g. ``v0_ ~ 1 + v1_ + (1 + v1_ | v2_)``. No column name, level label or formula
text of the user's is ever parsed or evaluated by R. Everything R returns is mapped back:
coefficient names to R's spelling with the user's names (``timepost:groupRM30``, ``group1``),
grouping factors to ``Subject`` / ``cask:batch``, levels to the user's labels.

R runs in a long-lived child process (:mod:`.session`), started on the first fit.
"""
from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd

from ..errors import EngineError, ModelError
from ..fit import Fit, RanefBlock, VarComp
from ..problem import Problem
from ._worker import SAFE_FORMULA
from .session import INSTALL_HINT, RSession, session

_COEF_PIECE = re.compile(r"^v(\d+)_(?:L(\d+)|(\d+))?$")
_IN_TEXT = re.compile(r"(?<![A-Za-z0-9._])v(\d+)_(?:L(\d+)|(\d+))?(?![A-Za-z0-9._])")
_LEVEL = re.compile(r"^L(\d+)$")


class SafeNames:
    """Generated R names for a model frame's columns, and the way back to the user's names."""

    def __init__(self, data: pd.DataFrame) -> None:
        self.data = data
        self.labels = [str(c) for c in data.columns]
        self.safe = {lab: f"v{i}_" for i, lab in enumerate(self.labels)}

    def token(self, label: str) -> str:
        return self.safe[label]

    def _label(self, index: str) -> str:
        return self.labels[int(index)]

    def _categories(self, label: str) -> list[str]:
        return [str(c) for c in self.data[label].cat.categories]

    def coef(self, name: str) -> str:
        """R's column name in safe spelling (``v1_L1:v2_``) -> user spelling (``timepost:Days``)."""
        if name == "(Intercept)":
            return name
        out = []
        for piece in name.split(":"):
            m = _COEF_PIECE.match(piece)
            if not m:
                raise EngineError(f"lme4 engine: unexpected column name {piece!r} from R")
            label = self._label(m.group(1))
            if m.group(2) is not None:
                out.append(label + self._categories(label)[int(m.group(2))])
            else:
                out.append(label + (m.group(3) or ""))
        return ":".join(out)

    def group(self, name: str) -> str:
        """Grouping factor ``v3_:v2_`` -> ``cask:batch``."""
        return ":".join(self._group_columns(name))

    def _group_columns(self, name: str) -> list[str]:
        cols = []
        for piece in name.split(":"):
            m = _COEF_PIECE.match(piece)
            if not m or m.group(2) is not None or m.group(3) is not None:
                raise EngineError(f"lme4 engine: unexpected grouping factor {name!r} from R")
            cols.append(self._label(m.group(1)))
        return cols

    def levels(self, group: str, levels: list[str]) -> list[str]:
        """Levels ``L3:L1`` of grouping factor ``v3_:v2_`` -> ``d:A``."""
        cols = self._group_columns(group)
        cats = [self._categories(c) for c in cols]
        out = []
        for lev in levels:
            parts = lev.split(":")
            if len(parts) != len(cols):
                raise EngineError(f"lme4 engine: unexpected level {lev!r} of {group!r} from R")
            labels = []
            for part, cat in zip(parts, cats):
                m = _LEVEL.match(part)
                if not m:
                    raise EngineError(f"lme4 engine: unexpected level {lev!r} of {group!r} from R")
                labels.append(cat[int(m.group(1))])
            out.append(":".join(labels))
        return out

    def text(self, message: str) -> str:
        """R's words with safe names replaced by the user's names."""
        def repl(m: re.Match) -> str:
            try:
                return self.coef(m.group(0))
            except (EngineError, IndexError):
                return m.group(0)
        return _IN_TEXT.sub(repl, message)


def r_formula(problem: Problem, names: SafeNames) -> str:
    """The model formula in safe names, rebuilt from the parsed description."""
    desc = problem.desc

    def term(t) -> str:
        return ":".join(names.token(v.label) for v in t.variables)

    rhs = ["1" if desc.intercept else "0"] + [term(t) for t in desc.fixed]
    if problem.analysis == "lmm":
        for r in desc.random:
            parts = ["1" if r.intercept else "0"] + [term(t) for t in r.terms]
            group = ":".join(names.token(g) for g in r.group)
            rhs.append(f"({' + '.join(parts)} | {group})")
    text = f"{names.token(desc.response.label)} ~ {' + '.join(rhs)}"
    if not SAFE_FORMULA.match(text):  # cannot happen: every piece above is generated
        raise EngineError("lme4 engine: internal error building the R formula")
    return text


def request_for(problem: Problem, names: SafeNames, keep: bool = False) -> dict:
    """The worker request: safe names, numbers and level codes only."""
    numeric, factors = {}, {}
    for label in names.labels:
        col = problem.frame.data[label]
        if isinstance(col.dtype, pd.CategoricalDtype):
            factors[names.token(label)] = (col.cat.codes.to_numpy().astype(np.int32),
                                           len(col.cat.categories))
        else:
            numeric[names.token(label)] = col.to_numpy(dtype=np.float64)
    data = problem.frame.data
    contrasts = problem.options.get("contrasts", "treatment")
    if contrasts not in ("treatment", "sum"):
        raise EngineError(f"lme4 engine: unknown contrasts {contrasts!r}; expected 'treatment' or 'sum'",
                          "/options/contrasts")
    return {
        "op": "fit",
        "analysis": problem.analysis,
        "formula": r_formula(problem, names),
        "numeric": numeric,
        "factors": factors,
        "reml": problem.reml,
        "contrasts": contrasts,
        "weights": names.token("(weights)") if "(weights)" in data else "",
        "offset": names.token("(offset)") if "(offset)" in data else "",
        "keep": keep,
    }


def _scalar(x) -> float:
    arr = np.asarray(x, dtype=float).ravel()
    return float(arr[0]) if arr.size else float("nan")


def _strings(x) -> list[str]:
    if isinstance(x, str):
        return [x]
    return [s for s in (x or []) if s is not None]


def _flag(x) -> bool:
    arr = np.asarray(x if x is not None else False).ravel()
    return bool(arr[0]) if arr.size else False


def _control(control: dict | None) -> dict:
    """The optimizer control R used (``optinfo$control`` of the fit), as plain numbers and words."""
    out: dict = {}
    for key, value in (control or {}).items():
        if isinstance(value, list):
            out[key] = " ".join(_strings(value))
            continue
        x = _scalar(value)
        out[key] = int(x) if np.isfinite(x) and x == int(x) else x
    return out


class Lme4Engine:
    """Fits through R: ``lm`` by ``stats::lm``, ``lmm`` by ``lme4::lmer``.

    ``keep_models=True`` keeps the fitted R objects in the worker (the last eight, see
    :mod:`._worker`), and puts a handle in ``fit.extra["r_handle"]`` for later requests on the
    stored fit (inference through lmerTest/pbkrtest, emmeans) in the same session.
    """

    name = "lme4"

    def __init__(self, r_session: RSession | None = None, keep_models: bool = False) -> None:
        self._session = r_session
        self.keep_models = keep_models

    @property
    def session(self) -> RSession:
        return self._session if self._session is not None else session()

    def warm(self) -> dict:
        """Start R now (instead of on the first fit); returns R and package versions."""
        return dict(self.session.start().versions)

    def fit(self, problem: Problem) -> Fit:
        if problem.analysis not in ("lm", "lmm"):
            raise EngineError(f"the lme4 engine fits 'lm' and 'lmm', not {problem.analysis!r}", "/analysis")
        t0 = time.perf_counter()
        names = SafeNames(problem.frame.data)
        reply = self.session.call(request_for(problem, names, self.keep_models))
        t_call = time.perf_counter() - t0
        what = "lme4::lmer" if problem.analysis == "lmm" else "stats::lm"
        prefix = "lme4: " if problem.analysis == "lmm" else "R: "
        said = [prefix + names.text(w) for w in _strings(reply.get("warnings")) + _strings(reply.get("messages"))]
        if not _flag(reply.get("ok")):
            stage = " ".join(_strings(reply.get("stage"))) if not isinstance(reply.get("stage"), str) else reply["stage"]
            error = reply.get("error", "unknown error")
            error = error if isinstance(error, str) else " ".join(_strings(error))
            message = names.text(error).strip()
            if said:
                message += " (" + "; ".join(said) + ")"
            if stage == "fit":
                raise ModelError(f"{what} could not fit the model: {message}")
            raise EngineError(f"the lme4 engine failed ({stage}): {message}")
        fit = self._build(problem, names, reply, said)
        fit.extra["timing"] = {"r": float(reply.get("seconds_r", np.nan)),
                               "worker": float(reply.get("seconds_worker", np.nan)),
                               "call": t_call, "total": time.perf_counter() - t0}
        return fit

    def _build(self, problem: Problem, names: SafeNames, r: dict, said: list[str]) -> Fit:
        coef_names = [names.coef(c) for c in _strings(r["coef_names"])]
        p = len(coef_names)
        vcov = np.asarray(r["vcov"], dtype=float).reshape(p, p)
        fit = Fit(
            analysis=problem.analysis, engine=self.name, coef_names=coef_names,
            beta=np.asarray(r["beta"], dtype=float).reshape(p), vcov=vcov,
            sigma=_scalar(r["sigma"]), nobs=int(_scalar(r["nobs"])), loglik=_scalar(r["loglik"]),
            aic=_scalar(r["aic"]), bic=_scalar(r["bic"]), deviance=_scalar(r["deviance"]),
            df_residual=_scalar(r["df_residual"]),
            dropped=[names.coef(c) for c in _strings(r.get("dropped"))],
            fitted=np.asarray(r["fitted"], dtype=float), residuals=np.asarray(r["residuals"], dtype=float),
            warnings=said,
        )
        fit.extra["r_versions"] = dict(self.session.versions)
        if r.get("handle") is not None:
            fit.extra["r_handle"] = int(r["handle"])
        if problem.analysis == "lm":
            fit.extra.update({"r.squared": _scalar(r["r_squared"]), "adj.r.squared": _scalar(r["adj_r_squared"])})
        else:
            self._fill_lmm(fit, names, r)
        if problem.fixed is not None and coef_names != list(problem.fixed.names):
            fit.warnings.append(f"lme4 engine: R's coefficients ({', '.join(coef_names)}) differ from the "
                                f"prepared design's ({', '.join(problem.fixed.names)})")
        return fit

    def _fill_lmm(self, fit: Fit, names: SafeNames, r: dict) -> None:
        fit.reml = bool(np.asarray(r["reml"]).ravel()[0])
        crit = _scalar(r["reml_crit"])
        fit.reml_crit = crit if fit.reml and np.isfinite(crit) else None
        fit.theta = np.asarray(r["theta"], dtype=float).ravel()
        for vc in r["varcorr"]:
            k = len(_strings(vc["terms"]))
            fit.varcorr.append(VarComp(
                group=names.group(vc["group"][0]), terms=[names.coef(t) for t in _strings(vc["terms"])],
                sd=np.asarray(vc["sd"], dtype=float).reshape(k),
                corr=np.asarray(vc["corr"], dtype=float).reshape(k, k)))
        for b in r["ranef"]:
            k = len(_strings(b["terms"]))
            levels = _strings(b["levels"])
            fit.ranef.append(RanefBlock(
                group=names.group(b["group"][0]), terms=[names.coef(t) for t in _strings(b["terms"])],
                levels=names.levels(b["group"][0], levels),
                modes=np.asarray(b["modes"], dtype=float).reshape(len(levels), k),
                condsd=np.asarray(b["condsd"], dtype=float).reshape(len(levels), k)))
        fit.ngroups = {names.group(g): int(n) for g, n in zip(_strings(r["ngroups_names"]), np.ravel(r["ngroups"]))}
        code = np.asarray(r.get("conv_code") if r.get("conv_code") is not None else [], dtype=float).ravel()
        conv_opt = _scalar(r["conv_opt"])
        fit.optinfo = {
            "optimizer": " ".join(_strings(r["optimizer"])),
            "control": _control(r.get("control")),
            "feval": int(_scalar(r["feval"])),
            "converged": bool(conv_opt == 0 and not np.any(code != 0)),
            "messages": [names.text(m) for m in _strings(r.get("conv_messages"))],
            "optimizer_message": " ".join(_strings(r.get("opt_message"))),
            "singular": bool(np.asarray(r["singular"]).ravel()[0]),
        }


__all__ = ["Lme4Engine", "SafeNames", "r_formula", "request_for", "INSTALL_HINT"]
