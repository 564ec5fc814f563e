"""The default analysis against the fit alone, beside the peers' equivalents.

``python -m benchmarks.analysis_speed --side native|mixedlm|r --cases sleepstudy,fhch2010 --out FILE``

What a user of each tool runs for a mixed model's default report: t tests of the fixed effects
with Satterthwaite's denominator df and the type III anova table.

* native: ``mixedbridge.run(spec, data=rows)`` with default options (fit, Satterthwaite t tests,
  type III anova, every results table), each run refitting (the fit cache off); the fit alone is
  the run's own ``fit_native_s`` (``NativeEngine.fit``), inference ``infer_native_s``.
* mixedlm: ``mixedlm.lmer`` + ``pvalues_with_ddf(fit, "Satterthwaite")`` + ``anova_type3``.
* r: ``lme4::lmer`` alone, then ``lmerTest::as_lmerModLmerTest`` + ``summary(m, ddf =
  "Satterthwaite")`` + ``anova(m, type = 3)`` on it (R in this process, through rpy2).
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings

from .adapters import text_factors
from .cases import full_cases, quick_cases
from .cell import Writer
from .measure import loadavg

CASES = {"full": ["sleepstudy", "Penicillin", "Pastes", "fhch2010", "InstEval"], "quick": ["sleepstudy"]}
#: (time budget for the repeats, most repeats) per case size.
POLICY = {"full": {"small": (3.0, 15), "medium": (10.0, 5), "large": (1.0, 1)},
          "quick": {"small": (0.3, 2), "medium": (0.3, 2), "large": (0.3, 1)}}


def native_setup(case):
    df, _hint = case.data()
    return {"analysis": "lmm", "data": {"records": [{}]}, "formula": case.formula}, df


def native_once(state) -> dict:
    import mixedbridge
    from mixedbridge import fitcache

    spec, df = state
    with fitcache.disabled():
        t0 = time.perf_counter()
        res = mixedbridge.run(spec, data=df)
        wall = time.perf_counter() - t0
    t = res.timing
    return {"fit_s": t["fit_native_s"], "analysis_s": t["fit_native_s"] + t["infer_native_s"],
            "total_s": wall, "prepare_s": t["prepare_s"]}


def mixedlm_setup(case):
    df, hint = case.data()
    return case.formula, text_factors(df, hint)


def mixedlm_once(state) -> dict:
    import mixedlm
    from mixedlm.inference.anova import anova_type3
    from mixedlm.inference.ddf import pvalues_with_ddf

    formula, df = state
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        fit = mixedlm.lmer(formula, df)
        t1 = time.perf_counter()
        pvalues_with_ddf(fit, "Satterthwaite")
        anova_type3(fit, "Satterthwaite")
        t2 = time.perf_counter()
    return {"fit_s": t1 - t0, "analysis_s": t2 - t0, "total_s": t2 - t0}


def r_setup(case):
    from .inference import r_state
    return r_state(case)[:2] + (case,)


def r_once(state) -> dict:
    from mixedbridge.bridge.engine import SafeNames, request_for

    from .adapters import prepare_problem

    r, funcs, case = state
    df, hint = case.data()
    problem = prepare_problem(case, df, hint)
    req = request_for(problem, SafeNames(problem.frame.data))
    frame = r.data_frame(req)
    t0 = time.perf_counter()
    fm = funcs.rx2("fit")(frame, r.ri.StrSexpVector([req["formula"]]))
    t1 = time.perf_counter()
    funcs.rx2("tables")(fm, r.ri.StrSexpVector(["Satterthwaite"]))
    t2 = time.perf_counter()
    return {"fit_s": t1 - t0, "analysis_s": t2 - t0, "total_s": t2 - t0}


SIDES = {"native": (native_setup, native_once), "mixedlm": (mixedlm_setup, mixedlm_once),
         "r": (r_setup, r_once)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--side", choices=list(SIDES), required=True)
    ap.add_argument("--cases", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--policy", default="full", choices=["full", "quick"])
    args = ap.parse_args(argv)
    write = Writer(args.out)
    known = {c.name: c for c in quick_cases() + full_cases()}
    setup, once = SIDES[args.side]
    try:  # imports and first-call costs stay out of the timings
        once(setup(known["sleepstudy"]))
    except Exception as exc:  # noqa: BLE001
        write("error", side=args.side, case="(warm-up)", error=f"{type(exc).__name__}: {exc}")
    for name in args.cases.split(","):
        case = known[name]
        budget, most = POLICY[args.policy][case.size]
        try:
            state = setup(case)
            spent, n, i = 0.0, 0, 0
            while True:
                res = once(state)
                warm = i == 0 and res["total_s"] < 2.0 and most > 1
                write("run", side=args.side, case=name, i=i, warmup=warm, load=loadavg(), **res)
                i += 1
                if not warm:
                    n += 1
                    spent += res["total_s"]
                if n >= most or (n and spent + res["total_s"] > budget):
                    break
        except Exception as exc:  # noqa: BLE001 - recorded, the other cases go on
            write("error", side=args.side, case=name, error=f"{type(exc).__name__}: {exc}")
    write("end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
