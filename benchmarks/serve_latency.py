"""End-to-end latency of ``mixedbridge serve``: what a host's user waits for.

``python -m benchmarks.serve_latency --out FILE [--policy quick|full]``

Starts ``python -m mixedbridge.cli serve`` (the supervised worker a host keeps running), writes one
request line at a time to its stdin and times until the answer line arrives. The first request
of each engine pays the start-up (Python imports; for lme4 starting R); the rest are warm. The
request is a small one: sleepstudy ``Reaction ~ Days + (Days | Subject)`` with the default
options (the results document with its Satterthwaite tests and type III anova).

Then a host's option clicks on a medium model (fhch2010 ``log_rt ~ task * stimulus + (1 +
stimulus | id) + (1 | item)``, native engine): the first request, then changes that need no
refit (another emmeans request, an emmeans plot) and changes that do (ML instead of REML, other
rows), each answered from the kept fit or by refitting (``mixedbridge.fitcache``). A host's user
looks at an answer before the next click: ``--pause`` seconds (default 1) pass between the answer
of one click and the next request line, outside the timed latency; the worker spends them warming
up (:func:`mixedbridge.serve.warm_up`). ``--pause 0`` sends the clicks back to back.

The clicks that reuse the fit are made in :data:`ROUNDS` rounds (full policy 3), each round's
requests at another confidence level (0.95, 0.90, 0.99), so that none is answered from an earlier
answer: one click's latency on this shared 2-core machine varies by ±20 ms from run to run
(plot clicks of one run: 35 to 65 ms), so a single click per kind is a poor measure of what a user
waits for. The refits are made once (a second ML refit would reuse the first).
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
FHCH: dict = {"analysis": "lmm", "data": {"dataset": "fhch2010"},
              "formula": "log_rt ~ task * stimulus + (1 + stimulus | id) + (1 | item)"}
#: (kind, options or spec changes) of the option clicks, in order; kinds: first, reuse, refit.
CLICKS: list[tuple[str, dict]] = [
    ("first", {}),
    ("reuse: emmeans", {"options": {"emmeans": {"specs": ["task"]}}}),
    ("reuse: emmeans", {"options": {"emmeans": {"specs": ["stimulus"], "contrasts": "pairwise"}}}),
    ("reuse: emmeans", {"options": {"emmeans": {"specs": ["task", "stimulus"]}}}),
    ("reuse: plot", {"options": {"plots": [{"type": "emmeans", "horizontal": "task"}]}}),
    ("reuse: plot", {"options": {"plots": [{"type": "emmeans", "horizontal": "stimulus"}]}}),
    ("reuse: plot, SVG only", {"options": {"plots": [{"type": "emmeans", "horizontal": "task", "format": "svg"}]}}),
    ("reuse: plot, PNG only", {"options": {"plots": [{"type": "emmeans", "horizontal": "stimulus",
                                                      "format": "png"}]}}),
    ("reuse: tests", {"options": {"df_method": "asymptotic"}}),
    ("refit: ML", {"options": {"reml": False}}),
    ("refit: rows", {"filter": [{"column": "rt", "lte": 2.5}]}),
]
#: Rounds of the emmeans and plot clicks per policy, and each round's confidence level (the
#: first round's requests name none: the default, 0.95).
ROUNDS = {"full": 3, "quick": 1}
LEVELS = (None, 0.90, 0.99)


def _at_level(change: dict, level: float | None) -> dict:
    """An emmeans or plot click's change at another confidence level (None: as it is)."""
    if level is None:
        return change
    options = dict(change["options"])
    if "emmeans" in options:
        options["emmeans"] = {**options["emmeans"], "level": level}
    if "plots" in options:
        options["plots"] = [{**p, "ci_level": level} for p in options["plots"]]
    return {**change, "options": options}


def click_plan(rounds: int) -> list[tuple[str, int, dict]]:
    """(kind, round, spec) of every click: the first request; the emmeans and plot clicks
    ``rounds`` times, each round at its level; then the other clicks once."""
    first, repeated, once = CLICKS[:1], CLICKS[1:8], CLICKS[8:]
    plan = [(kind, 1, {**FHCH, **change}) for kind, change in first]
    for r in range(rounds):
        plan += [(kind, r + 1, {**FHCH, **_at_level(change, LEVELS[r])}) for kind, change in repeated]
    return plan + [(kind, 1, {**FHCH, **change}) for kind, change in once]


def _ask(proc: subprocess.Popen, ident: int, spec: dict) -> tuple[str, float]:
    """Write one request line and read its answer line: (answer, seconds between)."""
    assert proc.stdin is not None and proc.stdout is not None
    t0 = time.perf_counter()
    proc.stdin.write(json.dumps({"id": ident, "spec": spec}) + "\n")
    proc.stdin.flush()
    answer = proc.stdout.readline()
    return answer, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--policy", default="full", choices=["full", "quick"])
    ap.add_argument("--no-r", action="store_true", help="native requests only")
    ap.add_argument("--pause", type=float, default=1.0,
                    help="seconds between an answer and the next option click (a user's look at the answer)")
    args = ap.parse_args(argv)
    write = Writer(args.out)
    n_native, n_lme4 = (12, 6) if args.policy == "full" else (3, 2)
    if args.no_r:
        n_lme4 = 0
    plan = [("native", i, SPEC) for i in range(n_native)] + [("lme4", i, SPEC) for i in range(n_lme4)]
    clicks = click_plan(ROUNDS[args.policy])
    t_spawn = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mixedbridge.cli", "serve"], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for k, (engine, i, spec) in enumerate(plan):
            answer, latency = _ask(proc, k, {**spec, "engine": engine})
            if not answer:
                write("error", error="serve ended without answering")
                return 0
            doc = json.loads(answer)
            write("request", engine=engine, i=i, latency_s=latency,
                  since_spawn_s=(time.perf_counter() - t_spawn) if k == 0 else None, bytes=len(answer),
                  ok="error" not in doc, error=doc.get("error"),
                  server_total_s=(doc.get("timing") or {}).get("total_s"))
        for j, (kind, round_, spec) in enumerate(clicks):
            time.sleep(args.pause)
            answer, latency = _ask(proc, len(plan) + j, spec)
            if not answer:
                write("error", error="serve ended without answering")
                return 0
            doc = json.loads(answer)
            write("click", click=kind, round=round_, i=j, latency_s=latency, pause_s=args.pause, ok="error" not in doc,
                  error=doc.get("error"), timing=doc.get("timing"))
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
