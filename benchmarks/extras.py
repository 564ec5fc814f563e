"""The timings beside the model fits: start-up, the default analysis against the fit, inference
tables (native vs lmerTest/pbkrtest) and ``mixedbridge serve`` latency (with option clicks that
reuse a fit or refit). Each runs in a child process with a time limit."""
from __future__ import annotations

import statistics
from pathlib import Path

from .aggregate import _quantiles

INFERENCE_CASES = {"full": ["sleepstudy", "fhch2010"], "quick": ["sleepstudy"]}
INFERENCE_LIMIT_S = {"full": 90.0, "quick": 60.0}
SERVE_LIMIT_S = {"full": 180.0, "quick": 90.0}
STARTUP_LIMIT_S = {"full": 300.0, "quick": 120.0}
ANALYSIS_LIMIT_S = {"full": {"small": 60.0, "medium": 120.0, "large": 240.0},
                    "quick": {"small": 60.0, "medium": 60.0, "large": 60.0}}


def _read(path: Path) -> list[dict]:
    from .run import read_lines
    return read_lines(path)


def inference_available() -> str | None:
    try:
        import mixedbridge.inference.kenwardroger  # noqa: F401
        import mixedbridge.inference.run  # noqa: F401
        import mixedbridge.inference.satterthwaite  # noqa: F401
    except ImportError as exc:
        return f"pending: mixedbridge.inference is not importable ({exc})"
    return None


def run_inference(mode: str, work: Path, log: Path, run_child, with_r: bool = True) -> dict:
    note = inference_available()
    if note:
        return {"status": "pending", "note": note}
    cases = INFERENCE_CASES[mode]
    out: dict = {"status": "ok", "cases": cases, "sides": {}}
    for side in ("native", "r") if with_r else ("native",):
        path = work / f"inference-{side}.jsonl"
        # one child per case, so one slow case cannot take the others' time
        lines = []
        status = {}
        for case in cases:
            st, _ = run_child(["benchmarks.inference", "--side", side, "--cases", case, "--out", str(path),
                               "--policy", mode], INFERENCE_LIMIT_S[mode], log)
            status[case] = st
        lines = _read(path)
        out["sides"][side] = _summarize(lines, cases, status, INFERENCE_LIMIT_S[mode])
    return out


def _summarize(lines: list[dict], cases: list[str], status: dict, limit: float) -> dict:
    res: dict = {}
    for case in cases:
        res[case] = {}
        err = next((ln for ln in lines if ln.get("type") == "error" and ln.get("case") == case), None)
        for method in ("satterthwaite", "kenward-roger"):
            runs = [ln for ln in lines if ln.get("type") == "run" and ln.get("case") == case
                    and ln.get("method") == method]
            timed = [r for r in runs if not r.get("warmup")] or runs
            if not timed:
                if err:
                    res[case][method] = {"status": "error", "note": err["error"]}
                elif status.get(case) == "timeout":
                    res[case][method] = {"status": "did not finish",
                                         "note": f"no table within the time limit ({limit:.0f} s)"}
                else:
                    res[case][method] = {"status": "error", "note": f"child ended ({status.get(case)})"}
                continue
            res[case][method] = {
                "status": "ok", "time_s": _quantiles([r["time_s"] for r in timed]),
                "coef_s": statistics.median(r["coef_s"] for r in timed),
                "anova_s": statistics.median(r["anova_s"] for r in timed),
                "cpu_s": statistics.median(r["cpu_s"] for r in timed),
                "df": timed[-1].get("df"), "den_df": timed[-1].get("den_df"),
                "mem_mib": max((r.get("mem_mib") or 0.0) for r in runs),
            }
    return res


def run_serve(mode: str, work: Path, log: Path, run_child, with_r: bool = True) -> dict:
    path = work / "serve.jsonl"
    st, wall = run_child(["benchmarks.serve_latency", "--out", str(path), "--policy", mode]
                         + ([] if with_r else ["--no-r"]), SERVE_LIMIT_S[mode], log)
    lines = [ln for ln in _read(path) if ln.get("type") == "request"]
    out: dict = {"status": "ok" if lines else f"no answers ({st})", "engines": {}}
    for engine in ("native", "lme4"):
        reqs = [ln for ln in lines if ln["engine"] == engine]
        if not reqs:
            continue
        warm = [r["latency_s"] for r in reqs[1:] if r["ok"]]

        out["engines"][engine] = {
            "first_s": reqs[0]["latency_s"], "first_since_spawn_s": reqs[0].get("since_spawn_s"),
            "warm": _quantiles(warm) if warm else None,
            "server_warm_s": statistics.median(r["server_total_s"] for r in reqs[1:] if r.get("server_total_s"))
            if len(reqs) > 1 else None,
            "bytes": reqs[-1]["bytes"], "errors": [r["error"] for r in reqs if not r["ok"]],
        }
    out["clicks"] = [{k: ln.get(k) for k in ("click", "round", "latency_s", "ok", "error", "timing")}
                     for ln in _read(path) if ln.get("type") == "click"]
    return out


def run_startup(mode: str, work: Path, log: Path, run_child) -> dict:
    path = work / "startup.jsonl"
    st, _ = run_child(["benchmarks.startup", "--out", str(path), "--policy", mode], STARTUP_LIMIT_S[mode], log)
    rows = [ln for ln in _read(path) if ln.get("type") == "startup"]
    return {"status": "ok" if rows else f"no measurements ({st})", "rows": rows}


def run_analysis(mode: str, work: Path, log: Path, run_child, sides: list[str]) -> dict:
    """The default analysis and the fit alone per model and side (one child per side and case)."""
    from .analysis_speed import CASES
    from .cases import full_cases, quick_cases

    sizes = {c.name: c.size for c in quick_cases() + full_cases()}
    out: dict = {"cases": CASES[mode], "sides": {}}
    for side in sides:
        path = work / f"analysis-{side}.jsonl"
        status = {}
        for case in CASES[mode]:
            st, _ = run_child(["benchmarks.analysis_speed", "--side", side, "--cases", case, "--out", str(path),
                               "--policy", mode], ANALYSIS_LIMIT_S[mode][sizes.get(case, "small")], log)
            status[case] = st
        lines = _read(path)
        res: dict = {}
        for case in CASES[mode]:
            runs = [ln for ln in lines if ln.get("type") == "run" and ln.get("case") == case]
            timed = [r for r in runs if not r.get("warmup")] or runs
            err = next((ln["error"] for ln in lines if ln.get("type") == "error" and ln.get("case") == case), None)
            if not timed:
                res[case] = {"status": "error" if err else "did not finish", "note": err or status[case]}
                continue
            res[case] = {"status": "ok", "n": len(timed),
                         **{k: statistics.median(r[k] for r in timed) for k in ("fit_s", "analysis_s", "total_s")}}
        out["sides"][side] = res
    return out


def run_extras(mode: str, work: Path, log: Path, engines: list[str], run_child) -> dict:
    """Start-up, default analysis, serve latency and inference timings; the R sides only when an
    lme4 engine is selected, mixedlm's when it is."""
    with_r = "lme4" in engines or "lme4-bridge" in engines
    sides = ["native"] + (["mixedlm"] if "mixedlm" in engines else []) + (["r"] if with_r else [])
    return {"startup": run_startup(mode, work, log, run_child),
            "analysis": run_analysis(mode, work, log, run_child, sides),
            "serve": run_serve(mode, work, log, run_child, with_r),
            "inference": run_inference(mode, work, log, run_child, with_r)}
