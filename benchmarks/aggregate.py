"""From a cell's JSON lines to per-(case, engine) summaries, and per-case comparisons."""
from __future__ import annotations

import statistics
from typing import Any

#: Native stopping more than this relative amount above lme4's REML criterion is flagged.
OBJ_FLAG_REL = 1e-6


def _quantiles(xs: list[float]) -> dict:
    xs = sorted(xs)
    n = len(xs)
    out = {"median": statistics.median(xs), "min": xs[0], "max": xs[-1], "n": n}
    if n >= 4:
        q = statistics.quantiles(xs, n=4, method="inclusive")
        out["q1"], out["q3"] = q[0], q[2]
    return out


def aggregate_cell(lines: list[dict], case, engine: str, status: str, cell_limit: float,
                   case_limit: float, unavailable: str | None) -> dict:
    if unavailable:
        return {"status": "unavailable", "note": unavailable}
    mine = [ln for ln in lines if ln.get("case") == case.name]
    for ln in mine:
        if ln["type"] == "skip":
            return {"status": ln.get("status", "not expressible"), "note": ln["note"]}
        if ln["type"] == "error":
            return {"status": ln.get("status", "error"), "note": ln["error"]}
    runs = [ln for ln in mine if ln["type"] == "run"]
    done = any(ln["type"] == "done" for ln in mine)
    setup = next((ln for ln in mine if ln["type"] == "setup"), None)
    timed = [r for r in runs if not r.get("warmup")] or runs
    rows = {"rows": setup["rows"]} if setup else {}
    if not timed:
        if status == "timeout":
            return {"status": "did not finish", "note": f"no fit within the time limit ({case_limit:.0f} s)",
                    "limit_s": case_limit, **rows}
        if status != "ok":
            return {"status": "error", "note": f"child process ended ({status}) before a fit", **rows}
        return {"status": "error", "note": "no result recorded"}
    out: dict[str, Any] = {"status": "ok" if done else ("partial" if status == "timeout" else "ok")}
    if not done:
        out["note"] = (f"time limit reached after {len(timed)} repeat(s)" if status == "timeout"
                       else f"child process ended ({status}) after {len(timed)} repeat(s)")
    key = "time_s"
    out["time_s"] = _quantiles([r[key] for r in timed])
    if all("prepare_s" in r for r in timed):
        out["prepare_s"] = statistics.median(r["prepare_s"] for r in timed)
        out["total_s"] = _quantiles([r["time_s"] + r["prepare_s"] for r in timed])
    cpu = [r["cpu_s"] for r in timed if r.get("cpu_s") is not None]
    out["cpu_s"] = statistics.median(cpu) if cpu else None
    last = timed[-1]
    objs = [r["objective"] for r in timed if r.get("objective") is not None]
    out["objective"] = last.get("objective")
    if objs and max(objs) != min(objs):
        out["objective_range"] = [min(objs), max(objs)]
    for k in ("feval", "deriv_feval", "grad_evals", "converged", "singular", "optimizer"):
        if k in last:
            out[k] = last[k]
    mem = [r["mem_mib"] for r in runs if r.get("mem_mib") is not None]
    out["mem_mib"] = max(mem) if mem else None
    out["repeats"] = len(timed)
    out["warmup"] = any(r.get("warmup") for r in runs)
    out["load"] = last.get("load")
    if setup:
        out["rows"] = setup.get("rows")
    return out


def wall(entry: dict) -> float | None:
    """The time compared across engines: native prepare + fit, others their timed call."""
    if entry.get("status") not in ("ok", "partial"):
        return None
    return (entry.get("total_s") or entry["time_s"])["median"]


def compare(per_engine: dict[str, dict]) -> dict:
    """Ratios of each engine's time to lme4's (``lmer`` timed in R), objective differences, flags."""
    ref = per_engine.get("lme4", {})
    ref_t = wall(ref)
    ref_obj = ref.get("objective") if ref_t is not None else None
    out: dict = {"reference": "lme4" if ref_t is not None else None, "engines": {}, "flags": []}
    for engine, e in per_engine.items():
        t = wall(e)
        row: dict = {}
        if t is not None and ref_t is not None:
            row["ratio"] = t / ref_t
            if e.get("cpu_s") and ref.get("cpu_s"):
                row["ratio_cpu"] = e["cpu_s"] / ref["cpu_s"]
        elif t is not None and ref.get("status") == "did not finish":
            row["ratio_below"] = t / ref["limit_s"]
        elif t is None and e.get("status") == "did not finish" and ref_t is not None:
            row["ratio_above"] = e["limit_s"] / ref_t
        obj = e.get("objective") if t is not None else None
        if obj is not None and ref_obj is not None:
            d = obj - ref_obj
            row["obj_diff"] = d
            row["obj_rel"] = d / abs(ref_obj)
            row["lower"] = engine if d < 0 else ("lme4" if d > 0 else "tie")
            if engine == "native" and row["obj_rel"] > OBJ_FLAG_REL:
                out["flags"].append(f"native stopped {row['obj_rel']:.2e} (relative) above lme4's REML criterion")
        out["engines"][engine] = row
    nat, br = per_engine.get("native", {}), per_engine.get("lme4-bridge", {})
    nat_t, br_t = wall(nat), wall(br)
    if nat_t is not None and br_t is not None:
        prep = nat.get("prepare_s", 0.0)
        out["end_to_end"] = {"native_s": nat_t, "lme4_bridge_s": br_t + prep, "ratio": nat_t / (br_t + prep)}
    mix = per_engine.get("mixedlm", {})
    mix_t = wall(mix)
    if nat_t is not None and mix_t is not None:
        out["vs_mixedlm"] = nat_t / mix_t
        if ref_obj is None and nat.get("objective") is not None and mix.get("objective") is not None:
            d = nat["objective"] - mix["objective"]   # no lme4 optimum to compare with: the peer's
            out["obj_vs_mixedlm"] = {"obj_diff": d, "obj_rel": d / abs(mix["objective"])}
    # native against each peer (wall time); bounds where one side did not finish
    out["native_vs"] = {}
    for engine, e in per_engine.items():
        if engine == "native":
            continue
        a, b = wall(nat), wall(e)
        if a is not None and b is not None:
            out["native_vs"][engine] = {"ratio": a / b}
        elif a is None and nat.get("status") == "did not finish" and b is not None:
            out["native_vs"][engine] = {"ratio_above": nat["limit_s"] / b}
        elif a is not None and b is None and e.get("status") == "did not finish":
            out["native_vs"][engine] = {"ratio_below": a / e["limit_s"]}
    return out
