"""End-to-end latency of ``mixedbridge serve``: what a host's user waits for.

``python -m benchmarks.serve_latency --out FILE [--policy quick|full]``

Starts ``python -m mixedbridge.cli serve`` (the supervised worker a host keeps running), writes one
request line at a time to its stdin and times until the answer line arrives. The first request
of each engine pays the start-up (Python imports; for lme4 starting R); the rest are warm. The
request is a small one: sleepstudy ``Reaction ~ Days + (Days | Subject)`` with the default
options (the results document with its Satterthwaite tests and type III anova).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from .cell import Writer

ROOT = Path(__file__).resolve().parent.parent
SPEC = {"analysis": "lmm", "data": {"dataset": "sleepstudy"}, "formula": "Reaction ~ Days + (Days | Subject)"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--policy", default="full", choices=["full", "quick"])
    ap.add_argument("--no-r", action="store_true", help="native requests only")
    args = ap.parse_args(argv)
    write = Writer(args.out)
    n_native, n_lme4 = (12, 6) if args.policy == "full" else (3, 2)
    if args.no_r:
        n_lme4 = 0
    plan = [("native", i) for i in range(n_native)] + [("lme4", i) for i in range(n_lme4)]
    t_spawn = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mixedbridge.cli", "serve"], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for k, (engine, i) in enumerate(plan):
            line = json.dumps({"id": k, "spec": {**SPEC, "engine": engine}})
            t0 = time.perf_counter()
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            answer = proc.stdout.readline()
            t1 = time.perf_counter()
            if not answer:
                write("error", error="serve ended without answering")
                break
            doc = json.loads(answer)
            write("request", engine=engine, i=i, latency_s=t1 - t0,
                  since_spawn_s=(t1 - t_spawn) if k == 0 else None, bytes=len(answer),
                  ok="error" not in doc, error=doc.get("error"),
                  server_total_s=(doc.get("timing") or {}).get("total_s"))
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    write("end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
