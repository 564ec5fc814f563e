"""The markdown report (``docs/benchmarks.md``) from the results JSON."""
from __future__ import annotations

from .aggregate import OBJ_FLAG_REL, wall
from .cell import POLICIES
from .glmm_table import section as glmm_section
from .scale import section as scale_section
from .targets import section as targets_section

LABELS = {"native": "native", "lme4": "lme4 (`lmer` in R)", "lme4-bridge": "lme4 via bridge (end to end)",
          "mixedlm": "mixedlm", "statsmodels": "statsmodels MixedLM"}


def _row(cells: list) -> str:
    """One markdown table row."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _s(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    if x >= 0.01:
        return f"{x:.3f}"
    return f"{x * 1e3:.2f} ms"


def _t(x: float | None) -> str:
    """seconds with unit"""
    if x is None:
        return "–"
    return _s(x) if x < 0.01 else _s(x) + " s"


def _ratio(r: dict | None) -> str:
    if not r:
        return "–"
    if "ratio" in r:
        x = r["ratio"]
        return f"{x:.2f}× ({1 / x:.1f}× faster)" if x < 1 else f"**{x:.2f}× (slower)**"
    if "ratio_below" in r:
        return f"< {r['ratio_below']:.2f}× (lme4 did not finish)"
    if "ratio_above" in r:
        return f"**> {r['ratio_above']:.1f}× (did not finish)**"
    return "–"


def _short_ratio(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.2f}×" if x < 1 else f"**{x:.2f}×**"


def _obj(r: dict | None) -> str:
    if not r or "obj_diff" not in r:
        return "–"
    d, rel = r["obj_diff"], r["obj_rel"]
    mark = " ⚠" if rel > OBJ_FLAG_REL else ""
    return f"{d:+.2e} ({rel:+.1e}){mark}"


def _na(e: dict) -> str:
    """A status in place of a time."""
    st = e.get("status", "–")
    if st == "did not finish" and e.get("limit_s"):
        return f"did not finish (> {e['limit_s']:.0f} s)"
    return st


def _vs(r: dict) -> str:
    """native ÷ peer, bold where native is slower."""
    if "ratio" in r:
        return _short_ratio(r["ratio"])
    if "ratio_above" in r:
        return f"**> {r['ratio_above']:.1f}×** (native did not finish)"
    if "ratio_below" in r:
        return f"< {r['ratio_below']:.2f}× (peer did not finish)"
    return "–"


def _lower(r: dict | None) -> str:
    """Who reached the lower REML criterion; differences below 1e-10 relative count as a tie."""
    if not r or "obj_rel" not in r:
        return "–"
    if abs(r["obj_rel"]) < 1e-10:
        return "same (< 1e-10 rel.)"
    return "native" if r["obj_diff"] < 0 else "lme4"


def _spread(e: dict) -> str:
    t = e.get("total_s") or e.get("time_s")
    if not t:
        return "–"
    if t["n"] == 1:
        return "1 run"
    s = f"{_t(t['min'])} – {_t(t['max'])}"
    if "q1" in t:
        s += f" (IQR {_t(t['q1'])} – {_t(t['q3'])})"
    return s


def _status(e: dict) -> str:
    st = e.get("status", "–")
    note = e.get("note")
    if st == "ok" and not note:
        conv = e.get("converged")
        return ("ok" + ("" if conv in (True, None) else " (convergence warning)")
                + (" (singular)" if e.get("singular") else ""))
    return f"{st}: {note}" if note else st


def _evals(e: dict) -> str:
    f = e.get("feval")
    if f is None:
        return "–"
    extra = ""
    if e.get("deriv_feval"):
        extra = f" + {e['deriv_feval']} (checks)"
    if e.get("grad_evals"):
        extra = f" + {e['grad_evals']} gradients"
    return f"{f}{extra}"


def headline(res: dict) -> list[str]:
    out = ["## Headline ratios", ""]
    out.append("Time of the native engine divided by the other engine's time (median of repeats; "
               "below 1 = native is faster). *native* is prepare (model frame, designs) + fit; "
               "*lme4* is `lme4::lmer()` timed inside R (its own model frame included); *end to end* "
               "compares what a host waits for: prepare + native fit against prepare + the bridge's "
               "round trip to R (data transfer, `lmer`, extraction of every result).")
    out.append("")
    out.append(_row(["model", "rows", "native", "lme4 `lmer`", "native ÷ lme4", "native ÷ lme4 (CPU)",
                     "native ÷ lme4 end to end", "native ÷ mixedlm", "native ÷ statsmodels",
                     "REML criterion: native − lme4 (rel.)", "lower optimum"]))
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    slower = []
    for case in res["cases"]:
        name = case["name"]
        per = res["results"][name]
        cmp_ = res["comparison"][name]
        nat, l4 = per.get("native", {}), per.get("lme4", {})
        rows = nat.get("rows") or l4.get("rows")
        e2e = cmp_.get("end_to_end", {}).get("ratio")
        rn = cmp_["engines"].get("native", {})
        nv = cmp_.get("native_vs", {})
        nat_t = wall(nat)
        nat_txt = _t(nat_t) if nat_t is not None else _na(nat)
        l4_txt = _t(wall(l4)) if wall(l4) is not None else _na(l4)
        rows_txt = f"{rows:,}" if isinstance(rows, int) else "–"
        cpu_txt = f"{rn['ratio_cpu']:.2f}×" if "ratio_cpu" in rn else "–"
        obj_txt, lower_txt = _obj(rn), _lower(rn)
        if "obj_vs_mixedlm" in cmp_:
            om = cmp_["obj_vs_mixedlm"]
            obj_txt = f"no lme4 optimum; native − mixedlm {om['obj_diff']:+.2e} ({om['obj_rel']:+.1e})"
            lower_txt = ("same as mixedlm (< 1e-10 rel.)" if abs(om["obj_rel"]) < 1e-10
                         else ("native" if om["obj_diff"] < 0 else "mixedlm"))
        peer_txt = {p: (_vs(nv[p]) if p in nv else _na(per.get(p, {}))) for p in ("mixedlm", "statsmodels")}
        out.append(f"| {name} | {rows_txt} | {nat_txt} | {l4_txt} | {_ratio(rn)} | {cpu_txt} | {_short_ratio(e2e)} | "
                   f"{peer_txt['mixedlm']} | {peer_txt['statsmodels']} | {obj_txt} | {lower_txt} |")
        if "ratio" in rn and rn["ratio"] > 1:
            slower.append(f"{name}: {rn['ratio']:.2f}× the time of lme4's `lmer`")
        if e2e is not None and e2e > 1:
            slower.append(f"{name}: {e2e:.2f}× the end-to-end time through the bridge")
        for peer, r in nv.items():
            if peer in ("lme4", "lme4-bridge"):
                continue
            if r.get("ratio", 0) > 1:
                slower.append(f"{name}: {r['ratio']:.2f}× the time of {peer}")
            elif "ratio_above" in r:
                slower.append(f"{name}: native did not finish within {nat['limit_s']:.0f} s; {peer} took "
                              f"{_t(wall(per[peer]))}")
        if nat.get("status") == "did not finish" and not any("ratio_above" in r for r in nv.values()):
            slower.append(f"{name}: native did not finish within {nat.get('limit_s', 0):.0f} s")
    out.append("")
    flags = [f"{n}: {f}" for n, c in res["comparison"].items() for f in c.get("flags", [])]
    if flags:
        out.append("> **⚠ OBJECTIVE FLAG: the native engine stopped more than "
                   f"{OBJ_FLAG_REL:g} (relative) above lme4's REML criterion on:** " + "; ".join(flags))
    else:
        compared = [n for n, c in res["comparison"].items() if "obj_rel" in c["engines"].get("native", {})]
        out.append(f"Objective check: on every model compared ({len(compared)}), native's REML criterion is at most "
                   f"{OBJ_FLAG_REL:g} (relative) above lme4's; negative differences mean native found the lower "
                   "optimum.")
    out.append("")
    out.append("**Where native is slower:** " + ("; ".join(slower) if slower else "nowhere in this run") + ".")
    inf = (res.get("extras") or {}).get("inference") or {}
    inf_slow = []
    for case, methods in (inf.get("sides", {}).get("native") or {}).items():
        for m, a in methods.items():
            b = (inf["sides"].get("r") or {}).get(case, {}).get(m, {})
            if a.get("status") == "ok" and b.get("status") == "ok" and a["time_s"]["median"] > b["time_s"]["median"]:
                inf_slow.append(f"{case} {m} {a['time_s']['median'] / b['time_s']['median']:.2f}× R's")
    if inf_slow:
        out.append("")
        out.append("**Inference tables where native is slower:** " + "; ".join(inf_slow) + ".")
    out.append("")
    return out


def machine(res: dict) -> list[str]:
    m = res["machine"]
    v = res.get("versions", {})
    r = v.get("lme4", {}) or v.get("lme4-bridge", {})
    blas = m.get("blas", {})
    npb = blas.get("numpy", {})
    out = ["## Machine and software", ""]
    out.append(f"- Date: {m['date']}; mode: {res['mode']}; whole run {res['wall_s']:.0f} s")
    out.append(f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory_gib']} GiB; {m['os']}")
    load = max((m.get('loadavg_start') or [0])[:1] + (m.get('loadavg_end') or [0])[:1])
    out.append(f"- Load average (1, 5, 15 min) at start {m.get('loadavg_start')}, at end {m.get('loadavg_end')}"
               + (" — **the machine was shared with other work during this run; wall times are inflated and "
                  "noisy, CPU-time ratios are given beside them**" if load > 0.75 * (m['cores'] or 1) else ""))
    out.append(f"- Python {m['python']}, numpy {m['numpy']}, scipy {m['scipy']}, pandas {m['pandas']}")
    out.append(f"- BLAS: numpy {npb.get('blas', '?')}; scipy {blas.get('scipy', {}).get('blas', '?')}; "
               f"threads: {blas.get('thread_env')}; R: {r.get('blas', '?')}")
    if r:
        out.append(f"- R {r.get('R')}, lme4 {r.get('lme4')}, Matrix {r.get('Matrix')}, lmerTest {r.get('lmerTest')}, "
                   f"pbkrtest {r.get('pbkrtest')}, rpy2 {r.get('rpy2')}")
    peers = [f"{k} {v[k].get(k)}" for k in ("mixedlm", "statsmodels") if v.get(k, {}).get(k)]
    if peers:
        out.append(f"- Peers: {', '.join(peers)}")
    for k, note in res.get("unavailable", {}).items():
        out.append(f"- {LABELS.get(k, k)}: skipped ({note})")
    g = m.get("git", {})
    out.append(f"- mixedbridge at {g.get('commit')} ({g.get('subject')}); native estimator last changed in "
               f"{g.get('lmm_commit')}" + ("; **uncommitted changes in module/ or bridge/ at run time**"
                                           if g.get("uncommitted_engine_changes") else ""))
    out.append("")
    return out


def method(res: dict) -> list[str]:
    lim = res["limits_s"]
    return ["## What is measured", "",
            "- Every engine runs each model in a child process of its own (the three small data sets share one "
            "per engine), after a warm-up fit of sleepstudy so imports and first-call costs stay out. A first "
            "run under 2 s is a further warm-up and is discarded. Repeats: as many as fit in a time budget "
            "(" + ", ".join(f"{k} {b:.0f} s / at most {n}" for k, (b, n) in POLICIES[res["mode"]].items())
            + "), at least one.",
            f"- Time limits per engine and model: small {lim['small']:.0f} s, medium {lim['medium']:.0f} s, "
            f"large {lim['large']:.0f} s" + "".join(
                f"; {n} {v:.0f} s" for n, v in res.get("case_limits_s", {}).items()
                if v != lim[next(c["size"] for c in res["cases"] if c["name"] == n)]) +
            ". A child past its limit is killed (with R under it): *did not finish*. Where `lmer` in R did "
            "not finish, the bridge (the same `lmer` plus transfer) is skipped.",
            "- **native**: `mixedbridge` prepare (formula, model frame, designs; the data already in memory) "
            "+ `NativeEngine.fit` (optimization, convergence checks, conditional modes and variances: the "
            "whole `Fit`). The fit alone is in the per-model tables.",
            "- **lme4 (`lmer` in R)**: `system.time(lme4::lmer(...))` in R embedded through rpy2, with the "
            "bridge's formula, data and control (`nloptwrap`, `xtol_abs = ftol_abs = 1e-8`); the R data "
            "frame is built before timing. This is the reference of every ratio.",
            "- **lme4 via bridge**: `Lme4Engine.fit` on the prepared problem: data to the long-lived R worker, "
            "`lmer`, extraction of every result (incl. `ranef(condVar = TRUE)`), back to Python. CPU time "
            "adds the host's and the R worker's.",
            "- **mixedlm**: `mixedlm.lmer(formula, data)` with its defaults (formula processing included).",
            "- **statsmodels**: `smf.mixedlm(...).fit(reml=True)` with its defaults, where it can express "
            "the model; its REML criterion is −2·llf. Evaluations count calls of `loglike` (and `score`).",
            "- Objective: the REML criterion each engine reports; difference to lme4's, relative difference "
            "in brackets, ⚠ where native is more than "
            f"{OBJ_FLAG_REL:g} relative above lme4. Evaluations: the optimizer's objective evaluations as "
            "each engine counts them (native: `optinfo.feval` + derivative-check evaluations; lme4: "
            "`optinfo$feval`; mixedlm: `function_evals`, its own count).",
            "- Peak memory: the increase of the process's peak resident set (`VmHWM`, reset through "
            "`/proc/PID/clear_refs` before each fit) over its resident size at the start of the fit; for "
            "the bridge, the R worker's. First (cold) runs allocate most; the maximum over runs is shown.",
            "- CPU: process CPU time (all threads); with other work on the machine it is steadier than wall "
            "time, so the per-model tables show both and the CPU ratio to lme4.",
            ""]


def per_model(res: dict) -> list[str]:
    out = ["## Per model", ""]
    for case in res["cases"]:
        name = case["name"]
        per = res["results"][name]
        cmp_ = res["comparison"][name]["engines"]
        out.append(f"### {name}")
        out.append("")
        out.append(f"`{case['formula']}` — {case['description']}" +
                   (f"; statsmodels: {case['statsmodels']}" if case.get("statsmodels") else ""))
        out.append("")
        out.append(_row(["engine", "median", "spread: min – max (IQR)", "runs", "÷ lme4", "CPU", "CPU ÷ lme4",
                         "native ÷ this", "REML criterion", "− lme4 (rel.)", "evaluations", "peak MiB", "status"]))
        out.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        nv = res["comparison"][name].get("native_vs", {})
        for engine in res["engines"]:
            e = per.get(engine)
            if e is None:
                continue
            r = cmp_.get(engine, {})
            t = wall(e)
            med = _t(t) if t is not None else "–"
            if engine == "native" and e.get("prepare_s") is not None and t is not None:
                med += f" (fit {_t(e['time_s']['median'])})"
            obj = e.get("objective")
            is_ref = engine == "lme4"
            if is_ref:
                ratio = "1" if t is not None else "–"
            elif "ratio" in r:
                ratio = f"{r['ratio']:.2f}×"
            elif "ratio_below" in r:
                ratio = f"< {r['ratio_below']:.2f}×"
            else:
                ratio = "–"
            if is_ref:
                cpu_ratio = "1" if t is not None else "–"
            else:
                cpu_ratio = f"{r['ratio_cpu']:.2f}×" if "ratio_cpu" in r else "–"
            vs = "–" if engine == "native" else (_vs(nv[engine]) if engine in nv else "–")
            obj_txt = f"{obj:.6f}" if obj is not None else "–"
            diff = "–" if is_ref else _obj(r)
            mem = f"{e['mem_mib']:.0f}" if e.get("mem_mib") is not None else "–"
            spread = _spread(e) if t is not None else "–"
            out.append(_row([LABELS.get(engine, engine), med, spread, e.get("repeats", "–"), ratio, _t(e.get("cpu_s")),
                             cpu_ratio, vs, obj_txt, diff, _evals(e), mem, _status(e)]))
        out.append("")
    return out


def inference(res: dict) -> list[str]:
    out = ["## Inference tables: Satterthwaite and Kenward-Roger", ""]
    inf = res.get("extras", {}).get("inference")
    if not inf:
        return out + ["Not run (`--no-extras`).", ""]
    if inf.get("status") == "pending":
        return out + [f"**Pending**: {inf.get('note')}.", ""]
    out.append("Time to produce the coefficient table (t tests with denominator df) and the type III anova "
               "table for an already fitted model. Native: one `infer_native` call (the variance-parameter "
               "covariance, or the Kenward-Roger adjusted covariance, is computed once and shared). R: "
               "`as_lmerModLmerTest` + `summary(m, ddf = ...)`, then `anova(m, type = 3, ddf = ...)` "
               "(lmerTest; pbkrtest for Kenward-Roger, whose adjustment `anova` computes again).")
    out.append("")
    out.append(_row(["model", "method", "native (coef + anova)", "R (coef + anova)", "native ÷ R", "native CPU ÷ R CPU",
                     "max |df native − df R|"]))
    out.append("|---|---|---:|---:|---:|---:|---:|")
    nat, rr = inf["sides"].get("native", {}), inf["sides"].get("r", {})
    for case in inf["cases"]:
        for m in ("satterthwaite", "kenward-roger"):
            a, b = nat.get(case, {}).get(m, {}), rr.get(case, {}).get(m, {})

            def cell(x):
                if x.get("status") != "ok":
                    return f"{x.get('status', '–')}" + (f" ({x['note']})" if x.get("note") else "")
                return f"{_t(x['time_s']['median'])} ({_t(x['coef_s'])} + {_t(x['anova_s'])})"
            ratio = cpu = dfd = "–"
            if a.get("status") == "ok" and b.get("status") == "ok":
                ratio = _short_ratio(a["time_s"]["median"] / b["time_s"]["median"])
                if a.get("cpu_s") and b.get("cpu_s"):
                    cpu = _short_ratio(a["cpu_s"] / b["cpu_s"])
                try:
                    dfs = [abs(x - y) for x, y in zip(a["df"] + a["den_df"], b["df"] + b["den_df"])
                           if x is not None and y is not None]
                    dfd = f"{max(dfs):.1e}" if dfs else "–"
                except (TypeError, KeyError):
                    pass
            out.append(f"| {case} | {m} | {cell(a)} | {cell(b)} | {ratio} | {cpu} | {dfd} |")
    out.append("")
    return out


def serve(res: dict) -> list[str]:
    out = ["## `mixedbridge serve` latency", ""]
    sv = res.get("extras", {}).get("serve")
    if not sv:
        return out + ["Not run (`--no-extras`).", ""]
    out.append("A host keeps one `mixedbridge serve` process (supervised) and writes one JSON request per line; "
               "latency is from writing the line to reading the answer line. The request: sleepstudy "
               "`Reaction ~ Days + (Days | Subject)`, default options (results document with Satterthwaite "
               "tests and the type III anova). The first request of an engine pays start-up (imports; for "
               "lme4, starting R in the worker); the warm ones repeat the same request, which is answered from "
               "the kept fit and inference (`mixedbridge.fitcache`).")
    out.append("")
    out.append(_row(["engine", "first request", "warm: median", "warm: min–max", "warm requests",
                     "in-process share (server `total_s`)", "answer size"]))
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for engine, e in sv.get("engines", {}).items():
        w = e.get("warm") or {}
        out.append(f"| {engine} | {_t(e['first_s'])} | {_t(w.get('median'))} | "
                   f"{_t(w.get('min'))}–{_t(w.get('max'))} | {w.get('n', 0)} | {_t(e.get('server_warm_s'))} | "
                   f"{e['bytes']:,} B |")
    if sv.get("status") != "ok":
        out.append(f"\nStatus: {sv['status']}")
    out.append("")
    return out


def startup(res: dict) -> list[str]:
    out = ["## Start-up: import and a cold process", ""]
    st = (res.get("extras") or {}).get("startup")
    if not st:
        return out + ["Not run (`--no-extras`).", ""]
    out.append("Each command in a fresh process, timed from start to exit (median and minimum of the repeats, "
               "after one untimed run; the minimum is the least disturbed by other work). Targets (issue #16): "
               "`import mixedbridge` ≤ 0.3 s, `mixedbridge run` of the sleepstudy example in a cold process "
               "≤ 0.8 s.")
    out.append("")
    out.append(_row(["command", "tool", "median", "min", "runs"]))
    out.append("|---|---|---:|---:|---:|")
    for r in st.get("rows", []):
        if r.get("status") != "ok":
            out.append(f"| {r['what']} | {r['who']} | {r.get('status')} ({r.get('note', '')}) | | |")
            continue
        out.append(f"| {r['what']} | {r['who']} | {_t(r['median_s'])} | {_t(r['min_s'])} | {r['n']} |")
    out.append("")
    return out


def analysis_speed(res: dict) -> list[str]:
    out = ["## Default analysis against the fit alone", ""]
    an = (res.get("extras") or {}).get("analysis")
    if not an:
        return out + ["Not run (`--no-extras`).", ""]
    out.append("The default report of each tool: the fit, t tests of the fixed effects with Satterthwaite's df and "
               "the type III anova. *native*: `mixedbridge.run` with default options on rows in memory, each run "
               "refitting (fit cache off); *fit* is `NativeEngine.fit`, *analysis* fit + inference, *whole* the "
               "run with preparation and every results table. *mixedlm*: `lmer` + `pvalues_with_ddf` + "
               "`anova_type3`. *lme4*: `lmer`, then lmerTest's `summary(ddf = \"Satterthwaite\")` and "
               "`anova(type = 3)` (R through rpy2). Target (issue #16): native analysis ≤ 1.5× the native fit; "
               "sleepstudy whole run ≤ 5 ms warm.")
    out.append("")
    sides = an.get("sides", {})
    out.append(_row(["model", "native fit", "native analysis", "analysis ÷ fit", "native whole run",
                     "mixedlm fit", "mixedlm analysis", "lme4 `lmer`", "lme4 `lmer` + lmerTest",
                     "native analysis ÷ lme4 analysis"]))
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def get(side: str, case: str, key: str):
        e = sides.get(side, {}).get(case, {})
        return e.get(key) if e.get("status") == "ok" else None

    for case in an.get("cases", []):
        nf, na, nt = get("native", case, "fit_s"), get("native", case, "analysis_s"), get("native", case, "total_s")
        mf, ma = get("mixedlm", case, "fit_s"), get("mixedlm", case, "analysis_s")
        rf, ra = get("r", case, "fit_s"), get("r", case, "analysis_s")
        ratio = _short_ratio(na / nf) if na and nf else "–"
        vs_r = _short_ratio(na / ra) if na and ra else "–"
        out.append(f"| {case} | {_t(nf)} | {_t(na)} | {ratio} | {_t(nt)} | {_t(mf)} | {_t(ma)} | {_t(rf)} | "
                   f"{_t(ra)} | {vs_r} |")
    out.append("")
    return out


def clicks(res: dict) -> list[str]:
    sv = (res.get("extras") or {}).get("serve") or {}
    rows = sv.get("clicks") or []
    if not rows:
        return []
    out = ["### Option clicks under `serve`: reused fit against refit", "",
           "fhch2010 `log_rt ~ task * stimulus + (1 + stimulus | id) + (1 | item)`, native engine, one request "
           "after another in the same `serve` process: the first request, then changes a host's user makes. "
           "A change of tests, emmeans or plots is answered from the kept fit (`mixedbridge.fitcache`); a change "
           "of the estimation (ML) or of the rows refits. A plot request draws PNG and SVG unless it names one "
           "format (`format`: `png` or `svg`). The emmeans and plot clicks are made in rounds, each round at "
           "another confidence level (0.95, 0.90, 0.99) so that none reuses an earlier answer: one click's "
           "latency varies by ±20 ms on this shared machine. Target (issue #16): an emmeans or plot change "
           "≤ 50 ms (each click's median over its rounds; the slowest click is shown in the targets table).",
           "", _row(["request", "round", "latency", "server: prepare", "fit (or reuse)", "inference", "emmeans",
                     "plots"]),
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        t = r.get("timing") or {}
        rnd = r.get("round") or 1
        if not r.get("ok"):
            out.append(f"| {r['click']} | {rnd} | error: {(r.get('error') or {}).get('message', '')} | | | | | |")
            continue
        out.append(f"| {r['click']} | {rnd} | {_t(r['latency_s'])} | {_t(t.get('prepare_s'))} | "
                   f"{_t(t.get('fit_native_s'))} | {_t(t.get('infer_native_s'))} | {_t(t.get('emmeans_s'))} | "
                   f"{_t(t.get('plots_s'))} |")
    out.append("")
    return out


def render(res: dict) -> str:
    lines = ["# Benchmarks", ""]
    lines.append(f"Generated by `make bench` (`{res['command']}`) on {res['machine']['date']}; raw numbers in "
                 "`benchmarks/results/latest.json`. Rerun it to regenerate this page; `--quick` is the smoke "
                 "test (tiny inputs). Numbers are from one machine; ratios travel better than seconds.")
    if res["mode"] != "full":
        lines.append("")
        lines.append(f"**This is a {res['mode']} run on tiny inputs: structure only, not a measurement.**")
    lines.append("")
    lines += headline(res)
    lines += targets_section(res)
    lines += machine(res)
    lines += method(res)
    lines += per_model(res)
    lines += startup(res)
    lines += analysis_speed(res)
    lines += inference(res)
    lines += serve(res)
    lines += clicks(res)
    lines += glmm_section()
    lines += scale_section()
    lines.append("## Reproduce")
    lines.append("")
    lines.append("```sh\n"
                 "make bench                                  # full run, ~20 min; rewrites this page\n"
                 ".venv/bin/python -m benchmarks.run --quick     "
                 "# smoke test (tiny inputs), writes benchmarks/results/quick.*\n"
                 ".venv/bin/python -m benchmarks.run --cases sleepstudy,InstEval --engines native,lme4 "
                 "--md /tmp/b.md --json /tmp/b.json\n"
                 "```")
    lines.append("")
    lines.append("Peers are optional: `pip install -e '.[bench]'` installs statsmodels and mixedlm; a missing "
                 "peer or R is listed as skipped.")
    lines.append("")
    return "\n".join(lines)
