"""Timing of the denominator-df tables: native Satterthwaite / Kenward-Roger
(``mixedbridge.inference``) against lmerTest / pbkrtest in R, on an already fitted model.

``python -m benchmarks.inference --side native|r --cases sleepstudy,fhch2010 --out FILE [--policy]``

Timed per method: the coefficient table (t tests with their df) and the type III anova table.
Natively both come from one ``infer_native`` call (the variance-parameter covariance or the
Kenward-Roger adjusted covariance is computed once and shared); in R ``as_lmerModLmerTest`` +
``summary(m, ddf = ...)`` and then ``anova(m, type = 3, ddf = ...)`` (which, for Kenward-Roger,
computes pbkrtest's adjustment again, as a user calling both would).
"""
from __future__ import annotations

import argparse
import sys
import time

from .adapters import EmbeddedR, prepare_problem
from .cases import full_cases, quick_cases
from .cell import Writer
from .measure import PeakRSS, loadavg

METHODS = ("satterthwaite", "kenward-roger")
_R_DDF = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger"}

_R_CODE = r"""
local({
  fit <- function(d, ftext) {
    # lmerTest refits through update(), which evaluates the call in the formula's environment:
    # keep the data, formula and control there.
    env <- new.env(parent = baseenv())
    env$d <- d
    env$f <- stats::as.formula(ftext, env = env)
    env$ctrl <- lme4::lmerControl(optimizer = "nloptwrap",
                                  optCtrl = list(xtol_abs = 1e-8, ftol_abs = 1e-8, maxeval = 1e5))
    eval(quote(lme4::lmer(f, data = d, REML = TRUE, control = ctrl)), env)
  }
  tables <- function(fm, ddf) {
    t1 <- system.time({
      m <- lmerTest::as_lmerModLmerTest(fm)
      co <- summary(m, ddf = ddf)$coefficients
    }, gcFirst = FALSE)
    t2 <- system.time(a <- stats::anova(m, type = 3, ddf = ddf), gcFirst = FALSE)
    list(coef_s = t1[["elapsed"]], anova_s = t2[["elapsed"]],
         cpu_s = t1[["user.self"]] + t1[["sys.self"]] + t2[["user.self"]] + t2[["sys.self"]],
         df = unname(co[, "df"]), den_df = unname(a[["DenDF"]]))
  }
  list(fit = fit, tables = tables)
})
"""


def native_state(case):
    from mixedbridge.engines import NativeEngine

    df, hint = case.data()
    problem = prepare_problem(case, df, hint)
    return problem, NativeEngine().fit(problem)


def native_once(state, method: str) -> dict:
    from mixedbridge.engines import native_model
    from mixedbridge.inference.options import settings
    from mixedbridge.inference.permodel import forget
    from mixedbridge.inference.run import infer_native

    problem, fit = state
    forget(native_model(fit))  # time the computation, not the per-model memo
    s = settings("lmm", {"df_method": method, "anova": {"type": "III", "method": method}})
    with PeakRSS() as mem:
        c0 = time.process_time()
        inf = infer_native(problem, fit, s)
        cpu = time.process_time() - c0
    coef_s, anova_s = inf.timing.get("coef_s", 0.0), inf.timing.get("anova_s", 0.0)
    return {"time_s": coef_s + anova_s, "coef_s": coef_s, "anova_s": anova_s, "cpu_s": cpu,
            "df": [row.get("df") for row in inf.coef.values()],
            "den_df": [row.get("DenDF") for row in (inf.anova or [])], "mem_mib": mem.delta_mib}


def r_state(case):
    from mixedbridge.bridge.engine import SafeNames, request_for

    r = EmbeddedR.get()
    r.ro.r('invisible(loadNamespace("lmerTest")); invisible(loadNamespace("pbkrtest"))')
    funcs = r.ro.r(_R_CODE)
    df, hint = case.data()
    problem = prepare_problem(case, df, hint)
    req = request_for(problem, SafeNames(problem.frame.data))
    frame = r.data_frame(req)
    fm = funcs.rx2("fit")(frame, r.ri.StrSexpVector([req["formula"]]))
    return r, funcs, fm


def r_once(state, method: str) -> dict:
    r, funcs, fm = state
    with PeakRSS() as mem:
        res = funcs.rx2("tables")(fm, r.ri.StrSexpVector([_R_DDF[method]]))
    out = {str(k): list(v) for k, v in zip(res.names, res)}
    coef_s, anova_s = float(out["coef_s"][0]), float(out["anova_s"][0])
    return {"time_s": coef_s + anova_s, "coef_s": coef_s, "anova_s": anova_s, "cpu_s": float(out["cpu_s"][0]),
            "df": [float(x) for x in out["df"]], "den_df": [float(x) for x in out["den_df"]],
            "mem_mib": mem.delta_mib}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--side", choices=["native", "r"], required=True)
    ap.add_argument("--cases", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--policy", default="full", choices=["full", "quick"])
    args = ap.parse_args(argv)
    write = Writer(args.out)
    budget, most = (10.0, 5) if args.policy == "full" else (0.5, 2)
    known = {c.name: c for c in quick_cases() + full_cases()}
    setup, once = (native_state, native_once) if args.side == "native" else (r_state, r_once)
    try:
        if args.side == "native":
            import mixedbridge.inference.run  # noqa: F401 - fail early when absent
    except ImportError as exc:
        write("unavailable", note=f"mixedbridge.inference not importable: {exc}")
        return 0
    for name in args.cases.split(","):
        case = known[name]
        try:
            state = setup(case)
            for method in METHODS:
                spent, n, i = 0.0, 0, 0
                while True:
                    res = once(state, method)
                    warm = i == 0 and res["time_s"] < 2.0 and most > 1
                    write("run", case=name, method=method, i=i, warmup=warm, load=loadavg(), **res)
                    i += 1
                    if not warm:
                        n += 1
                        spent += res["time_s"]
                    if n >= most or (n and spent + res["time_s"] > budget):
                        break
                write("done", case=name, method=method, repeats=n)
        except Exception as exc:  # noqa: BLE001
            write("error", case=name, error=f"{type(exc).__name__}: {exc}")
    write("end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
