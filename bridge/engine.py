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

import contextlib
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import EngineError, ModelError
from ..fit import Fit, Inference, RanefBlock, RBackend, VarComp
from ..formula import ModelDescription
from ..problem import Problem
from ..safenames import SafeNames
from ..table import Table
from ._worker import SAFE_FORMULA
from .session import INSTALL_HINT, RSession, session


def r_formula(problem: Problem, names: SafeNames) -> str:
    """The model formula in safe names, rebuilt from the parsed description."""
    desc = problem.desc

    def term(t) -> str:
        return ":".join(names.token(v.label) for v in t.variables)

    rhs = _variable_order(desc, names) + ["1" if desc.intercept else "0"] + [term(t) for t in desc.fixed]
    if problem.analysis in ("lmm", "glmm"):
        for r in desc.random:
            parts = ["1" if r.intercept else "0"] + [term(t) for t in r.terms]
            group = ":".join(names.group_token(g) for g in r.group)
            rhs.append(f"({' + '.join(parts)} | {group})")
    text = f"{names.token(desc.response.label)} ~ {' + '.join(rhs)}"
    if not SAFE_FORMULA.match(text):  # cannot happen: every piece above is generated
        raise EngineError("lme4 engine: internal error building the R formula")
    return text


def _variable_order(desc: ModelDescription, names: SafeNames) -> list[str]:
    """Formula pieces that make R's variables appear in the order of the user's formula.

    R orders the variables of an interaction by their first appearance in the formula, so
    ``Type * Treatment - Type`` (terms ``Treatment``, ``Type:Treatment``) rebuilt as
    ``Treatment + Type:Treatment`` would name ``Treatment:Type``. Where the terms' own order
    does not give each term's variable order, the formula opens with ``v1 + v2 - v1 - v2``
    (variables listed, their terms removed), which fixes the order and adds no term; otherwise
    nothing is added."""
    natural = list(dict.fromkeys(v.label for t in desc.fixed for v in t.variables))
    after: dict[str, set[str]] = {v: set() for v in natural}
    for t in desc.fixed:
        labels = [v.label for v in t.variables]
        for a, b in zip(labels, labels[1:]):
            after[b].add(a)
    order: list[str] = []
    while len(order) < len(natural):
        order.append(next(v for v in natural if v not in order and after[v] <= set(order)))
    if order == natural:
        return []
    tokens = [names.token(v) for v in order]
    return [" + ".join(tokens) + "".join(f" - {t}" for t in tokens)]


def safe_names(problem: Problem) -> SafeNames:
    """The generated names of a problem's frame for R, with a factor token for each numeric
    grouping column (kept numeric in the fixed part, as lme4 keeps it)."""
    frame = problem.frame
    groups = {g: frame.grouping_factor(g) for g in problem.desc.grouping_columns
              if not isinstance(frame.data[g].dtype, pd.CategoricalDtype)}
    return SafeNames(frame.data, groups=groups)


def request_for(problem: Problem, names: SafeNames, keep: bool = False) -> dict:
    """The worker request: safe names, numbers and level codes only; a matrix-valued variable
    (``poly(Days, 2)``) as one matrix, so that R keeps it one term."""
    numeric, factors = {}, {}
    for token, col in names.columns():
        if isinstance(col.dtype, pd.CategoricalDtype):
            factors[token] = (col.cat.codes.to_numpy().astype(np.int32), len(col.cat.categories))
        else:
            numeric[token] = col.to_numpy(dtype=np.float64)
    data = problem.frame.data
    matrices = {names.token(lab): np.column_stack([data[c].to_numpy(dtype=np.float64) for c in cols])
                for lab, cols in names.matrices.items()}
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
        "matrices": matrices,
        "reml": problem.reml,
        "family": problem.family or "",
        "link": problem.link or "",
        "nagq": problem.nagq,
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
    """Fits through R: ``lm`` by ``stats::lm``, ``lmm`` by ``lme4::lmer``; tests and intervals by
    lmerTest, pbkrtest and lme4 (:mod:`.inference_r`), marginal means by emmeans
    (:mod:`.emmeans_r`), all on the fitted R model.

    ``keep_models=True`` keeps the fitted R objects in the worker (the last eight, see
    :mod:`._worker`) and puts their handle in the fit's :class:`~mixedbridge.fit.RBackend`, for
    later requests on the stored fit in the same session.
    """

    name = "lme4"

    def __init__(self, r_session: RSession | None = None, keep_models: bool = False) -> None:
        self._session = r_session
        self.keep_models = keep_models
        self._unpin: list[int] = []  # handles released by the fit cache, unpinned at the next call

    @property
    def session(self) -> RSession:
        return self._session if self._session is not None else session()

    def warm(self) -> dict:
        """Start R now (instead of on the first fit); returns R and package versions."""
        return dict(self.session.start().versions)

    def fit(self, problem: Problem) -> Fit:
        if problem.analysis not in ("lm", "lmm", "glmm"):
            raise EngineError(f"the lme4 engine fits 'lm', 'lmm' and 'glmm', not {problem.analysis!r}",
                              "/analysis")
        t0 = time.perf_counter()
        self._flush_unpins()
        names = safe_names(problem)
        reply = self.session.call(request_for(problem, names, self.keep_models))
        t_call = time.perf_counter() - t0
        said = _said(problem, names, reply)
        if not _flag(reply.get("ok")):
            raise _fit_error(problem, names, reply, said)
        timing = {"r": float(reply.get("seconds_r", np.nan)),
                  "worker": float(reply.get("seconds_worker", np.nan)),
                  "call": t_call, "total": time.perf_counter() - t0}
        return self._build(problem, names, reply, said, timing)

    def infer(self, problem: Problem, fit: Fit, settings, terms: list[str] | None = None) -> Inference:
        from .inference_r import RInference
        return RInference(self).infer(problem, fit, settings, terms)

    def compare(self, entries: list[tuple[str, str, Problem, Fit]]) -> list[dict]:
        from .inference_r import RInference
        return RInference(self).compare([(n, f, fit) for n, f, _, fit in entries])

    def emmeans(self, problem: Problem, fit: Fit, request: dict,
                path: str = "/emmeans") -> tuple[list[Table], list[str]]:
        from .emmeans_r import emmeans_tables_r
        return emmeans_tables_r(problem, request, path=path, r_session=self.session, fit=fit)

    def hold(self, fit: Fit) -> bool:
        """Whether the R worker still holds ``fit``'s model (it may have dropped it, or restarted):
        then it is pinned there, so that later requests on it find it."""
        backend = fit.backend
        if not isinstance(backend, RBackend) or backend.handle is None:
            return False
        try:
            self._flush_unpins()
            reply = self.session.call({"op": "pin", "handle": backend.handle, "pin": True})
        except EngineError:
            return False
        return _flag(reply.get("ok", False))

    def release(self, fit: Fit) -> None:
        """Unpin ``fit``'s model at this engine's next call to the worker (then the worker drops it
        in turn, after newer ones); letting go never starts or calls R itself."""
        backend = fit.backend
        if isinstance(backend, RBackend) and backend.handle is not None:
            self._unpin.append(backend.handle)

    def _flush_unpins(self) -> None:
        """Unpin the models :meth:`release` let go of (a restarted worker holds none: no harm)."""
        pending, self._unpin = self._unpin, []
        for handle in pending:
            with contextlib.suppress(EngineError):
                self.session.call({"op": "pin", "handle": handle, "pin": False})

    def _build(self, problem: Problem, names: SafeNames, r: dict, said: list[str], timing: dict) -> Fit:
        coef_names = [names.coef(c) for c in _strings(r["coef_names"])]
        p = len(coef_names)
        warnings = list(said)
        if coef_names != list(problem.fixed.names):
            warnings.append(f"lme4 engine: R's coefficients ({', '.join(coef_names)}) differ from the "
                            f"prepared design's ({', '.join(problem.fixed.names)})")
        handle = int(r["handle"]) if r.get("handle") is not None else None
        extra: dict[str, Any]  # the analysis's own fields: R² (lm); θ, VarCorr, ranef... (lmm)
        if problem.analysis == "lm":
            extra = {"r_squared": _scalar(r["r_squared"]), "adj_r_squared": _scalar(r["adj_r_squared"])}
        else:
            extra = _lmm_fields(names, r)
        if problem.analysis == "glmm":
            extra.update(_glmm_fields(problem, r, extra["optinfo"]))
        fit = Fit(
            analysis=problem.analysis, engine=self.name, coef_names=coef_names,
            beta=np.asarray(r["beta"], dtype=float).reshape(p),
            vcov=np.asarray(r["vcov"], dtype=float).reshape(p, p),
            sigma=_scalar(r["sigma"]), nobs=int(_scalar(r["nobs"])), loglik=_scalar(r["loglik"]),
            aic=_scalar(r["aic"]), bic=_scalar(r["bic"]), deviance=extra.pop("deviance", _scalar(r["deviance"])),
            df_residual=_scalar(r["df_residual"]),
            dropped=[names.coef(c) for c in _strings(r.get("dropped"))],
            fitted=np.asarray(r["fitted"], dtype=float), residuals=np.asarray(r["residuals"], dtype=float),
            warnings=warnings,
            backend=RBackend(handle, dict(self.session.versions), timing),
            **extra,
        )
        return _glmm_remarks(problem, fit) if problem.analysis == "glmm" else fit


def r_handle(fit: Fit, what: str = "this request") -> int:
    """The handle of the R model stored for ``fit`` (a fit of the lme4 engine that keeps its
    models); EngineError otherwise."""
    backend = fit.backend
    if not isinstance(backend, RBackend) or backend.handle is None:
        raise EngineError(f"{what} needs the R model of an lme4-engine fit kept in the R worker "
                          f"(this fit was made by the {fit.engine!r} engine)")
    return backend.handle


def _glmm_fields(problem: Problem, r: dict, optinfo: dict) -> dict[str, Any]:
    """The generalized model's fields from glmer's reply: family, link, Pearson residuals; the
    deviance as the native engine keeps it (−2 log-likelihood, summary's "deviance"; lme4's
    ``deviance()``, the sum of squared deviance residuals, in ``optinfo["residual_deviance"]``);
    the quadrature points and (negative binomial) θ in the optimizer record."""
    optinfo = {**optinfo, "nAGQ": problem.nagq, "residual_deviance": _scalar(r["deviance"])}
    nb_theta = _scalar(r.get("nb_theta"))
    if np.isfinite(nb_theta):
        optinfo["nb_theta"] = nb_theta
    return {"family": problem.family, "link": problem.link, "optinfo": optinfo,
            "deviance": -2.0 * _scalar(r["loglik"]), "deviance_ml": -2.0 * _scalar(r["loglik"]),
            "pearson_residuals": np.asarray(r["pearson_residuals"], dtype=float)}


def _glmm_remarks(problem: Problem, fit: Fit) -> Fit:
    """The words the native engine gives on a glmm (:mod:`mixedbridge.glmm.checks`), on
    glmer's fit: a singular fit, diverging fixed effects, overdispersion."""
    from ..glmm.checks import overdispersion_note, separation_notes

    warnings = list(fit.warnings)
    if fit.optinfo.get("singular"):
        warnings.append("A random-effects variance is estimated at (or near) zero or a correlation at ±1: the "
                        "model is singular, so some variance components are not estimable from these data; "
                        "consider simplifying the random-effects structure.")
    warnings += separation_notes(str(fit.family), fit.coef_names, fit.beta, fit.se, np.asarray(fit.fitted))
    w = problem.frame.weights
    y = problem.y
    binary = bool((w is None or np.all(w == 1.0)) and np.all((y == 0) | (y == 1)))
    note, _ = overdispersion_note(str(fit.family), np.asarray(fit.pearson_residuals), fit.df_residual, binary)
    return replace(fit, warnings=warnings, notes=list(fit.notes) + ([note] if note else []))


def _said(problem: Problem, names: SafeNames, reply: dict) -> list[str]:
    """R's warnings and messages of a fit, in the user's names, each once (with how many times
    R said it: glmer's family can warn once per evaluation of the likelihood)."""
    prefix = "lme4: " if problem.analysis in ("lmm", "glmm") else "R: "
    counts: dict[str, int] = {}
    for w in _strings(reply.get("warnings")) + _strings(reply.get("messages")):
        text = prefix + names.text(w)
        counts[text] = counts.get(text, 0) + 1
    return [text if n == 1 else f"{text} ({n} times)" for text, n in counts.items()]


def _fit_error(problem: Problem, names: SafeNames, reply: dict, said: list[str]) -> Exception:
    """The error for a fit R refused (ModelError) or could not run (EngineError)."""
    what = {"lmm": "lme4::lmer", "glmm": "lme4::glmer"}.get(problem.analysis, "stats::lm")
    stage = reply.get("stage")
    stage = stage if isinstance(stage, str) else " ".join(_strings(stage))
    error = reply.get("error", "unknown error")
    error = error if isinstance(error, str) else " ".join(_strings(error))
    message = names.text(error).strip()
    if said:
        message += " (" + "; ".join(said) + ")"
    if stage == "fit":
        return ModelError(f"{what} could not fit the model: {message}")
    return EngineError(f"the lme4 engine failed ({stage}): {message}")


def _lmm_fields(names: SafeNames, r: dict) -> dict[str, Any]:
    """The mixed-model fields of a fit from lmer's reply: θ, VarCorr, ranef, groups, optinfo."""
    reml = bool(np.asarray(r["reml"]).ravel()[0])
    crit = _scalar(r["reml_crit"])
    varcorr = []
    for vc in r["varcorr"]:
        k = len(_strings(vc["terms"]))
        varcorr.append(VarComp(
            group=names.group(vc["group"][0]), terms=[names.coef(t) for t in _strings(vc["terms"])],
            sd=np.asarray(vc["sd"], dtype=float).reshape(k),
            corr=np.asarray(vc["corr"], dtype=float).reshape(k, k)))
    ranef = []
    for b in r["ranef"]:
        k = len(_strings(b["terms"]))
        levels = _strings(b["levels"])
        ranef.append(RanefBlock(
            group=names.group(b["group"][0]), terms=[names.coef(t) for t in _strings(b["terms"])],
            levels=names.levels(b["group"][0], levels),
            modes=np.asarray(b["modes"], dtype=float).reshape(len(levels), k),
            condsd=np.asarray(b["condsd"], dtype=float).reshape(len(levels), k)))
    return dict(
        reml=reml, reml_crit=crit if reml and np.isfinite(crit) else None,
        theta=np.asarray(r["theta"], dtype=float).ravel(), varcorr=varcorr, ranef=ranef,
        ngroups={names.group(g): int(n) for g, n in zip(_strings(r["ngroups_names"]), np.ravel(r["ngroups"]))},
        optinfo=_optinfo(names, r),
    )


def _optinfo(names: SafeNames, r: dict) -> dict:
    """lmer's optimizer record in the shape of the native one."""
    code = np.asarray(r.get("conv_code") if r.get("conv_code") is not None else [], dtype=float).ravel()
    conv_opt = _scalar(r["conv_opt"])
    return {
        "optimizer": " ".join(_strings(r["optimizer"])),
        "control": _control(r.get("control")),
        "feval": int(_scalar(r["feval"])),
        "converged": bool(conv_opt == 0 and not np.any(code != 0)),
        "messages": [names.text(m) for m in _strings(r.get("conv_messages"))],
        "optimizer_message": " ".join(_strings(r.get("opt_message"))),
        "singular": bool(np.asarray(r["singular"]).ravel()[0]),
    }


__all__ = ["Lme4Engine", "SafeNames", "r_formula", "request_for", "r_handle", "INSTALL_HINT"]
