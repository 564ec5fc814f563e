"""Run the benchmark suite and write ``benchmarks/results/latest.json`` and ``docs/benchmarks.md``.

    make bench                          # = .venv/bin/python -m benchmarks.run
    .venv/bin/python -m benchmarks.run --quick --json /tmp/q.json --md /tmp/q.md

Every engine fits every case in a child process of its own (one per engine for the small cases),
with a wall-clock limit; a child that passes its limit is killed (with any R process under it)
and its case is recorded as "did not finish". ``--quick`` uses tiny inputs, one or two repeats
and short limits, and writes to ``benchmarks/results/quick.{json,md}`` unless told otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import report
from .aggregate import aggregate_cell, compare
from .cases import full_cases, quick_cases
from .machine import describe

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ["native", "lme4", "lme4-bridge", "mixedlm", "statsmodels"]

#: Wall-clock limit (seconds) per engine and case, by case size.
LIMITS = {"full": {"small": 60.0, "medium": 90.0, "large": 120.0},
          "quick": {"small": 60.0, "medium": 60.0, "large": 60.0}}
#: Extra seconds a child gets for starting (imports, R) on top of its cases' limits.
START_S = {"native": 15.0, "lme4": 40.0, "lme4-bridge": 40.0, "mixedlm": 20.0, "statsmodels": 20.0}


def run_child(args: list[str], limit: float, log: Path) -> tuple[str, float]:
    """Run ``python -m ...args`` in its own process group; kill the group at ``limit``."""
    t0 = time.perf_counter()
    with open(log, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=fh, stderr=fh,
                                start_new_session=True)
        try:
            proc.wait(timeout=limit)
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            status = "timeout"
    return status, time.perf_counter() - t0


def read_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line cut off by a kill
    return out


def plan(cases, engines: list[str]) -> list[tuple[str, list]]:
    """Cells: per engine, the small cases together, every other case alone. Ordered engine by
    engine within a case size, small sizes first (so a spent budget cuts the largest last)."""
    cells = []
    for size in ("small", "medium", "large"):
        group = [c for c in cases if c.size == size]
        if not group:
            continue
        for engine in engines:
            if size == "small":
                cells.append((engine, group))
            else:
                cells.extend((engine, [c]) for c in group)
    return cells


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny inputs, few repeats (smoke test)")
    ap.add_argument("--json", help="results JSON (default benchmarks/results/latest.json, quick.json)")
    ap.add_argument("--md", help="markdown report (default docs/benchmarks.md, results/quick.md)")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of " + ",".join(ENGINES))
    ap.add_argument("--cases", help="comma-separated subset of case names")
    ap.add_argument("--limit-scale", type=float, default=1.0, help="multiply every time limit")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="stop starting new cells after this many seconds (default 1500; quick 120)")
    ap.add_argument("--no-extras", action="store_true", help="skip the serve-latency and inference timings")
    ap.add_argument("--render", metavar="JSON", help="only rewrite the markdown (--md) from a results JSON")
    args = ap.parse_args(argv)
    if args.render:
        res = json.loads(Path(args.render).read_text(encoding="utf-8"))
        res["comparison"] = {name: compare(per) for name, per in res["results"].items()}
        md = Path(args.md) if args.md else (ROOT / "docs" / "benchmarks.md")
        md.write_text(report.render(res), encoding="utf-8")
        print(f"wrote {md}")
        return 0

    mode = "quick" if args.quick else "full"
    cases = quick_cases() if args.quick else full_cases()
    if args.cases:
        wanted = set(args.cases.split(","))
        cases = [c for c in cases if c.name in wanted]
    engines = [e for e in args.engines.split(",") if e]
    bad = [e for e in engines if e not in ENGINES]
    if bad:
        ap.error(f"unknown engine(s) {bad}; choose from {ENGINES}")
    results_dir = ROOT / "benchmarks" / "results"
    json_path = Path(args.json) if args.json else results_dir / f"{'quick' if args.quick else 'latest'}.json"
    md_path = Path(args.md) if args.md else (results_dir / "quick.md" if args.quick
                                            else ROOT / "docs" / "benchmarks.md")
    budget = args.budget_s if args.budget_s is not None else (120.0 if args.quick else 1500.0)
    limits = {k: v * args.limit_scale for k, v in LIMITS[mode].items()}

    def case_limit(case) -> float:
        base = case.limit_s if (case.limit_s and not args.quick) else LIMITS[mode][case.size]
        return base * args.limit_scale

    started = time.perf_counter()
    machine = describe()
    work = Path(tempfile.mkdtemp(prefix="mixedbridge-bench-"))
    log = work / "children.log"
    print(f"benchmark ({mode}): {len(cases)} cases x {len(engines)} engines; logs in {work}", flush=True)

    cells_out: dict[str, dict[str, dict]] = {c.name: {} for c in cases}
    versions: dict[str, dict] = {}
    unavailable: dict[str, str] = {}
    for k, (engine, group) in enumerate(plan(cases, engines)):
        names = [c.name for c in group]
        if engine in unavailable:
            for c in group:
                cells_out[c.name][engine] = {"status": "unavailable", "note": unavailable[engine]}
            continue
        r_dnf = [c for c in group if cells_out[c.name].get("lme4", {}).get("status") == "did not finish"]
        if engine == "lme4-bridge" and r_dnf:
            # the bridge runs the same lmer call plus transfer and extraction: it cannot finish either
            for c in r_dnf:
                lim = cells_out[c.name]["lme4"].get("limit_s", 0)
                cells_out[c.name][engine] = {"status": "skipped",
                                             "note": f"lmer in R did not finish within {lim:.0f} s"}
            group = [c for c in group if c not in r_dnf]
            names = [c.name for c in group]
            if not group:
                continue
        spent = time.perf_counter() - started
        if spent > budget:
            for c in group:
                cells_out[c.name][engine] = {"status": "skipped", "note": f"run budget of {budget:.0f} s spent"}
            continue
        limit = START_S[engine] * args.limit_scale + sum(case_limit(c) for c in group)
        out = work / f"cell{k:02d}-{engine}.jsonl"
        status, wall = run_child(["benchmarks.cell", "--engine", engine, "--cases", ",".join(names),
                                  "--out", str(out), "--policy", mode], limit, log)
        lines = read_lines(out)
        for line in lines:
            if line["type"] == "versions":
                versions[engine] = line["versions"]
            elif line["type"] == "unavailable":
                unavailable[engine] = line["note"]
        for c in group:
            cells_out[c.name][engine] = aggregate_cell(lines, c, engine, status, limit, case_limit(c),
                                                       unavailable.get(engine))
        summary = ", ".join(f"{c.name} {cells_out[c.name][engine].get('status')}" for c in group)
        print(f"  [{time.perf_counter() - started:6.0f} s] {engine:<12} {summary} ({wall:.0f} s)", flush=True)

    extras = {}
    if not args.no_extras:
        from .extras import run_extras
        extras = run_extras(mode, work, log, engines, run_child)

    results: dict[str, Any] = {
        "mode": mode,
        "command": "python -m benchmarks.run" + (" --quick" if args.quick else ""),
        "machine": machine,
        "versions": versions,
        "unavailable": unavailable,
        "limits_s": limits,
        "case_limits_s": {c.name: case_limit(c) for c in cases},
        "cases": [c.as_dict() for c in cases],
        "engines": engines,
        "results": cells_out,
        "comparison": {c.name: compare(cells_out[c.name]) for c in cases},
        "extras": extras,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(report.render(results), encoding="utf-8")
    print(f"wrote {json_path} and {md_path} in {results['wall_s']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
