"""The two timings beside the model fits: inference tables (native vs lmerTest/pbkrtest) and
``mixedbridge serve`` latency. Each runs in a child process with a time limit."""
from __future__ import annotations

import statistics
from pathlib import Path

from .aggregate import _quantiles

INFERENCE_CASES = {"full": ["sleepstudy", "fhch2010"], "quick": ["sleepstudy"]}
INFERENCE_LIMIT_S = {"full": 90.0, "quick": 60.0}
SERVE_LIMIT_S = {"full": 120.0, "quick": 60.0}


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
    return out


def run_extras(mode: str, work: Path, log: Path, engines: list[str], run_child) -> dict:
    """Serve latency and inference timings; the R sides only when an lme4 engine is selected."""
    with_r = "lme4" in engines or "lme4-bridge" in engines
    return {"serve": run_serve(mode, work, log, run_child, with_r),
            "inference": run_inference(mode, work, log, run_child, with_r)}
