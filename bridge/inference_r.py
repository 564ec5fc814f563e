"""Inference through R: lmerTest (Satterthwaite / Kenward-Roger t and F tests, type I/II/III
anova), pbkrtest (Kenward-Roger, parametric bootstrap), lme4 (likelihood-ratio tests, model
comparison, Wald / profile / bootstrap intervals), on the model the lme4 engine fitted.

The requests go to the one R worker (:mod:`.session`; their R side is :mod:`._ops_infer`),
which keeps the engine's fitted models (``keep_models=True``); they name them by the handle in
the fit's :class:`~mixedbridge.fit.RBackend` and work on the stored fit. Nothing but handles, numbers and words
from fixed lists reaches R; term and coefficient names coming back in safe spelling
(``v1_:v2_``) are mapped to the user's names.
"""
from __future__ import annotations

import time

import numpy as np

from ..errors import EngineError
from ..fit import Fit, Inference
from ..inference.run import t_row
from ..problem import Problem
from ..safenames import SafeNames
from .engine import Lme4Engine, r_handle, safe_names


def engine() -> Lme4Engine:
    """An lme4 engine fitting in the process-wide R session and keeping its models there."""
    return Lme4Engine(keep_models=True)


def _arr(x) -> np.ndarray:
    return np.asarray([np.nan] if x is None else x, dtype=float).ravel()


def _num(x):
    v = float(x)
    return None if not np.isfinite(v) else v


def _strings(x) -> list[str]:
    return [s for s in (x or []) if s is not None]


class RInference:
    """The lme4 engine's ``infer`` and ``compare`` (see :class:`mixedbridge.engines.Engine`)."""

    def __init__(self, eng: Lme4Engine) -> None:
        self.engine = eng

    def _call(self, req: dict, names: SafeNames | None = None) -> dict:
        reply = self.engine.session.call(req)
        if not reply.get("ok"):
            msg = str(reply.get("error", "unknown error"))
            if names is not None:
                msg = names.text(msg)
            raise EngineError(f"R inference failed: {msg}")
        return reply

    def infer(self, problem: Problem, fit: Fit, s, terms: list[str] | None = None) -> Inference:
        handle = r_handle(fit, "R inference")
        names = safe_names(problem)
        if fit.analysis == "lm":
            return self._infer_lm(fit, s, names, handle, terms)
        anova_method = s.anova_method or ""
        req = {"op": "infer", "handle": handle, "df_method": s.df_method, "anova_type": s.anova_type,
               "anova_method": anova_method, "intercept": s.anova_intercept,
               "confint_method": s.confint_method or "", "level": s.confint_level,
               "nsim": s.anova_nsim, "seed": s.anova_seed, "ci_nsim": s.confint_nsim, "ci_seed": s.confint_seed}
        t0 = time.perf_counter()
        r = self._call(req, names)
        timing = {"r_total_s": time.perf_counter() - t0}
        for key in ("coef", "anova", "confint"):
            if r.get(f"seconds_{key}") is not None:
                timing[f"r_{key}_s"] = float(_arr(r[f"seconds_{key}"])[0])
        c = r["coef"]
        se, st, df, p = _arr(c["se"]), _arr(c["statistic"]), _arr(c["df"]), _arr(c["p"])
        coef = {names.coef(n): {"std.error": _num(se[i]), "statistic": _num(st[i]),
                                "df": _num(df[i]), "p.value": _num(p[i])}
                for i, n in enumerate(_strings(c["names"]))}
        wanted = None if terms is None else set(terms)
        anova, anova_info = None, {}
        if anova_method:
            anova_info = {"type": s.anova_type, "method": anova_method}
            anova = (self._anova_rows(r["anova"], names, wanted)
                     if anova_method in ("satterthwaite", "kenward-roger", "asymptotic")
                     else self._lrt_rows(r["lrt"], names, wanted, anova_method == "bootstrap"))
        confint, confint_info = None, {}
        if s.confint_method:
            confint_info = {"method": s.confint_method, "level": s.confint_level}
            confint = self._confint_rows(r["confint"], names)
        return Inference(df_method=s.df_method, coef=coef, anova=anova, anova_info=anova_info,
                         confint=confint, confint_info=confint_info, timing=timing,
                         warnings=["lmerTest/pbkrtest: " + names.text(w) for w in _strings(r.get("warnings"))])

    @staticmethod
    def _lrt_rows(lrt: list, names: SafeNames, wanted: set[str] | None, bootstrap: bool) -> list[dict]:
        rows = []
        for t in lrt:
            term = _strings(t["term"])[0]
            term = term if term == "(Intercept)" else names.group(term)
            if wanted is not None and term not in wanted and term != "(Intercept)":
                continue
            row = {"term": term, "npar": int(_arr(t["npar"])[0]), "logLik": _num(_arr(t["loglik"])[0]),
                   "deviance": -2.0 * float(_arr(t["loglik"])[0]), "Chisq": _num(_arr(t["chisq"])[0]),
                   "Df": int(_arr(t["df"])[0]), "p.value": _num(_arr(t["p"])[0])}
            if bootstrap:
                row["p.value.pb"] = _num(_arr(t.get("p_pb"))[0])
            rows.append(row)
        return rows

    @staticmethod
    def _confint_rows(ci: dict, names: SafeNames) -> list[dict]:
        lo, up = _arr(ci["lower"]), _arr(ci["upper"])
        return [{"parameter": n if n.startswith(".sig") else names.coef(n), "lower": _num(lo[i]),
                 "upper": _num(up[i])} for i, n in enumerate(_strings(ci["names"]))]

    @staticmethod
    def _anova_rows(a: dict, names: SafeNames, wanted) -> list[dict]:
        rows = []
        cols = {k: _arr(a[k]) for k in ("sumsq", "meansq", "numdf", "dendf", "statistic", "p")}
        for i, t in enumerate(_strings(a["terms"])):
            term = names.group(t)
            if wanted is not None and term not in wanted:
                continue
            rows.append({"term": term, "sumsq": _num(cols["sumsq"][i]), "meansq": _num(cols["meansq"][i]),
                         "NumDF": _num(cols["numdf"][i]), "DenDF": _num(cols["dendf"][i]),
                         "statistic": _num(cols["statistic"][i]), "p.value": _num(cols["p"][i])})
        return rows

    def _infer_lm(self, fit: Fit, s, names: SafeNames, handle: int, terms: list[str] | None) -> Inference:
        from scipy import stats

        df = np.inf if s.df_method == "asymptotic" else fit.df_residual
        coef = {n: {k: v for k, v in t_row(fit.beta[i], fit.se[i], df).items() if k != "estimate"}
                for i, n in enumerate(fit.coef_names)}
        anova, anova_info = None, {}
        if s.anova_method:
            r = self._call({"op": "lm_anova", "handle": handle, "anova_type": s.anova_type}, names)
            anova_info = {"type": s.anova_type, "method": "residual"}
            anova = self._anova_rows(r["anova"], names, None if terms is None else set(terms))
        confint, confint_info = None, {}
        if s.confint_method:
            tail = (1 + s.confint_level) / 2
            q = stats.norm.ppf(tail) if np.isinf(df) else stats.t.ppf(tail, df)
            confint_info = {"method": "wald", "level": s.confint_level}
            confint = [{"parameter": n, "lower": fit.beta[i] - q * fit.se[i], "upper": fit.beta[i] + q * fit.se[i]}
                       for i, n in enumerate(fit.coef_names)]
        return Inference(df_method=s.df_method, coef=coef, anova=anova, anova_info=anova_info,
                         confint=confint, confint_info=confint_info)

    def compare(self, entries: list[tuple[str, str, Fit]]) -> list[dict]:
        """lme4's ``anova`` of the fitted R models (entries: name, formula, fit)."""
        handles = [r_handle(f, "R model comparison") for _, _, f in entries]
        for h in handles:
            self._call({"op": "pin", "handle": h, "pin": True})
        try:
            safe = [f"m{i}_" for i in range(len(entries))]
            r = self._call({"op": "compare", "handles": handles, "names": safe})
        finally:
            for h in handles:
                self._call({"op": "pin", "handle": h, "pin": False})
        back = {sn: (name, frm) for sn, (name, frm, _) in zip(safe, entries)}
        rows = []
        cols = {k: _arr(r[k]) for k in ("npar", "aic", "bic", "loglik", "deviance", "chisq", "df", "p")}
        for i, sn in enumerate(_strings(r["models"])):
            name, frm = back[sn]
            rows.append({"model": name, "formula": frm, "npar": int(cols["npar"][i]), "AIC": _num(cols["aic"][i]),
                         "BIC": _num(cols["bic"][i]), "logLik": _num(cols["loglik"][i]),
                         "deviance": _num(cols["deviance"][i]), "Chisq": _num(cols["chisq"][i]),
                         "Df": None if not np.isfinite(cols["df"][i]) else int(cols["df"][i]),
                         "p.value": _num(cols["p"][i])})
        return rows
