"""Soak: many mixed valid, invalid, unreadable, hostile and faulty requests through one supervised worker.

``python -m tests.soak --requests 2000`` runs the long form and rewrites the figures in
docs/reliability.md; tests/test_soak.py runs a short form in CI. Every answer must be results or a
structured error, valid answers must equal what a fresh process gives, no sentinel file may
appear, and the worker's memory must stay bounded.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .bad_inputs import CATALOGUE, LM, LMM

ROOT = Path(__file__).resolve().parents[1]

VALID = [
    LM,
    LMM,
    {**LMM, "options": {"reml": False}},
    {"analysis": "lmm", "data": {"dataset": "sleepstudy"}, "formula": "Reaction ~ Days + (Days | Subject)"},
    {"analysis": "lmm", "data": {"dataset": "sleepstudy"}, "formula": "Reaction ~ Days + (Days || Subject)"},
    {"analysis": "lmm", "data": {"dataset": "Penicillin"}, "formula": "diameter ~ 1 + (1 | plate) + (1 | sample)"},
    {"analysis": "lmm", "data": {"dataset": "Pastes"}, "formula": "strength ~ 1 + (1 | batch/cask)"},
    {"analysis": "lmm", "data": {"dataset": "Dyestuff2"}, "formula": "Yield ~ 1 + (1 | Batch)"},
]


def hostile(sentinel: Path) -> list[dict]:
    """Requests that would touch the sentinel file if anything in them were executed."""
    cmd = f"touch {sentinel}"
    rows = [{"y": float(i % 5), "x": float(i), f"__import__('os').system('{cmd}')": float(i % 2),
             "g": f"\"); system(\"{cmd}\"); (\"{i % 4}"} for i in range(24)]
    return [
        {"analysis": "lm", "formula": f"y ~ __import__('os').system('{cmd}')", "data": {"records": rows}},
        {"analysis": "lmm", "formula": "y ~ x + (1 | g)", "data": {"records": rows}},
        {"analysis": "lm", "formula": f"y ~ `__import__('os').system('{cmd}')`", "data": {"records": rows}},
        {"analysis": "lm", "formula": f"y ~ x; system('{cmd}')", "data": {"records": rows}},
    ]


def unreadable(i: int, rng: random.Random) -> list[bytes]:
    """Request lines that are not strict JSON requests (issue #19): each gets a ``spec`` error."""
    lm = json.dumps(LM).encode()
    return [
        b'{"id": %d, "spec": {"formula": "\xff"}}' % i,
        b'{"id": NaN, "spec": ' + lm + b"}",
        b"[" * 1000,
        b'{"id": %d, "spec": {"analysis": "lm", "formula": "load ~ time", "data": {"dataset": "tenthirty"}, '
        b'"filter": [{"column": "load", "gte": Infinity}]}}' % i,
        b'{"id": %d, "spec": {"analysis": "lm", "formula": "load ~ \\ud800", "data": {"dataset": "tenthirty"}}}' % i,
        b'{"id": %d, "timeout": 1' % i + b"0" * 400 + b', "spec": ' + lm + b"}",
        b'{"id": %d, "timeout": "2", "spec": ' % i + lm + b"}",
        bytes(rng.randrange(256) for _ in range(64)).replace(b"\n", b"#") + b"\x00",
    ]


#: Share of each kind of request in a soak, fixed so that the mix does not drift as the
#: bad-input catalogue grows.
MIX = {"valid": 0.12, "invalid": 0.70, "hostile": 0.08, "unreadable": 0.10}


def build_requests(n: int, seed: int, sentinel: Path, faults: bool) -> list[tuple[str, bytes]]:
    """(kind, request line) pairs in a seeded random order: each kind drawn with its :data:`MIX`
    share, then one request of that kind."""
    rng = random.Random(seed)
    pools: dict[str, list[Any]] = {"valid": list(VALID), "invalid": [spec for _, spec, *_ in CATALOGUE],
                                   "hostile": list(hostile(sentinel)),
                                   "unreadable": list(range(len(unreadable(0, rng))))}
    kinds, weights = list(MIX), list(MIX.values())
    out = []
    for i in range(n):
        if faults and i % 250 == 125:
            out.append(("fault", json.dumps({"id": i, "fault": "crash", "spec": LM}).encode()))
            continue
        if faults and i % 250 == 200:
            out.append(("fault", json.dumps({"id": i, "fault": "hang", "timeout": 1, "spec": LM}).encode()))
            continue
        kind = rng.choices(kinds, weights)[0]
        spec = rng.choice(pools[kind])
        if kind == "unreadable":
            line = unreadable(i, rng)[spec]
        else:
            line = json.dumps({"id": i, "spec": spec} if isinstance(spec, dict) else spec).encode()
        out.append((kind, line))
    return out


def _strip(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k not in ("timing", "id")}


def fresh_answer(line: str) -> dict:
    """What a new process gives for one request (a process of its own, started for it alone)."""
    proc = subprocess.run([sys.executable, "-m", "mixedbridge.cli", "serve", "--unsupervised"], input=line + "\n",
                          capture_output=True, text=True, timeout=300)
    return _strip(json.loads(proc.stdout))


def fresh_answers(lines: list[str]) -> dict[str, dict]:
    """What a fresh process gives for each distinct valid request (one new process per request,
    as many at a time as there are cores)."""
    distinct = sorted(set(lines))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return dict(zip(distinct, pool.map(fresh_answer, distinct)))


class MemoryWatch(threading.Thread):
    """Samples the resident memory of a process tree (the supervisor, its worker and R)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_mb, self.stop = pid, 0.0, threading.Event()
        self.samples: list[float] = []

    def tree(self) -> list[int]:
        pids, frontier = [self.pid], [self.pid]
        while frontier:
            parent = frontier.pop()
            try:
                kids = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            except OSError:
                kids = []
            pids += [int(k) for k in kids]
            frontier += [int(k) for k in kids]
        return pids

    def rss_mb(self) -> float:
        total = 0.0
        for pid in self.tree():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) / 1024
            except OSError:
                pass
        return total

    def run(self) -> None:
        while not self.stop.is_set():
            mb = self.rss_mb()
            self.samples.append(mb)
            self.peak_mb = max(self.peak_mb, mb)
            time.sleep(0.2)


def soak(n: int, seed: int = 1, faults: bool = True) -> dict:
    """Run the soak and return its figures; raises AssertionError on any broken promise."""
    with tempfile.TemporaryDirectory() as tmp:
        sentinel = Path(tmp) / "SENTINEL"
        requests = build_requests(n, seed, sentinel, faults)
        env = {**os.environ, "MIXEDBRIDGE_FAULTS": "1" if faults else "0"}
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "mixedbridge.cli", "serve", "--timeout", "120"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        watch = MemoryWatch(proc.pid)
        watch.start()
        answers = []
        for _, line in requests:
            proc.stdin.write(line + b"\n")
            proc.stdin.flush()
            answers.append(json.loads(proc.stdout.readline()))
        proc.stdin.close()
        stderr = proc.stderr.read().decode("utf-8", "replace")
        proc.wait(timeout=60)
        watch.stop.set()
        elapsed = time.perf_counter() - t0
        valid_lines = [line for kind, line in requests if kind == "valid"]
        reference = fresh_answers([json.dumps(json.loads(line)["spec"]) for line in valid_lines])
        figures: dict[str, Any] = {
            "requests": n, "elapsed_s": round(elapsed, 1), "valid": 0, "invalid": 0, "hostile": 0,
            "unreadable": 0, "fault": 0, "errors_by_code": {}, "tracebacks": stderr.count("Traceback"),
            "executions": int(sentinel.exists()), "mismatches": 0}
        for (kind, line), answer in zip(requests, answers):
            figures[kind] += 1
            assert "error" in answer or "tables" in answer, answer
            if "error" in answer:
                code = answer["error"]["code"]
                figures["errors_by_code"][code] = figures["errors_by_code"].get(code, 0) + 1
                assert kind != "valid", answer
                assert code != "internal", answer
                assert kind != "unreadable" or code == "spec", answer
            if kind == "valid":
                ref = reference[json.dumps(json.loads(line)["spec"])]
                figures["mismatches"] += int(_strip(answer) != ref)
        samples = watch.samples or [0.0]
        quarter = max(1, len(samples) // 4)
        figures["peak_rss_mb"] = round(watch.peak_mb, 1)
        figures["rss_first_quarter_mb"] = round(max(samples[:quarter]), 1)
        figures["rss_last_quarter_mb"] = round(max(samples[-quarter:]), 1)
        assert figures["tracebacks"] == 0 and figures["executions"] == 0 and figures["mismatches"] == 0, figures
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    figures = soak(args.requests, args.seed)
    print(json.dumps(figures, indent=2))
    out = ROOT / "docs" / "soak-latest.json"
    out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
