"""One benchmark cell: one engine on one or more cases, in its own process.

``python -m benchmarks.cell --engine native --cases sleepstudy,Pastes --out FILE [--policy ...]``

Writes one JSON object per line to FILE as it goes (so a cell killed at its time limit still
leaves the repeats it finished): ``versions``/``unavailable``, then per case ``skip`` or
``setup``, ``run`` (one per repeat; ``warmup: true`` for a discarded first run) and ``done``,
then ``end`` with the process's peak resident size.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback

from .adapters import ADAPTERS
from .cases import full_cases, quick_cases
from .measure import loadavg, maxrss_mib

#: Repeat policy per case size: (time budget in seconds for the repeats, most repeats).
POLICIES = {
    "full": {"small": (5.0, 15), "medium": (15.0, 7), "large": (45.0, 3)},
    "quick": {"small": (0.5, 3), "medium": (0.5, 3), "large": (0.5, 2)},
}
#: A first run faster than this is a warm-up (discarded); slower ones count.
WARMUP_BELOW_S = 2.0


class Writer:
    def __init__(self, path: str) -> None:
        self.fh = open(path, "a", encoding="utf-8")

    def __call__(self, kind: str, **fields) -> None:
        fields = {"type": kind, "t": round(time.time(), 3), **fields}
        self.fh.write(json.dumps(fields, default=_jsonable) + "\n")
        self.fh.flush()


def _jsonable(x):
    try:
        import numpy as np
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
    except ImportError:
        pass
    return str(x)


def args_engine(adapter) -> str:
    return getattr(adapter, "name", "?")


def run_case(adapter, case, policy, write) -> None:
    note = adapter.cannot(case)
    if note:
        write("skip", case=case.name, note=note,
              status=case.sm_status if args_engine(adapter) == "statsmodels" else "not expressible")
        return
    t0 = time.perf_counter()
    df, hint = case.data()
    t1 = time.perf_counter()
    state = adapter.setup(case, df, hint)
    write("setup", case=case.name, data_s=t1 - t0, setup_s=time.perf_counter() - t1, rows=len(df))
    budget, most = POLICIES[policy][case.size]
    spent, measured, i = 0.0, 0, 0
    while True:
        res = adapter.once(state)
        first = i == 0
        warm = first and res["time_s"] < WARMUP_BELOW_S and most > 1
        write("run", case=case.name, i=i, warmup=warm, load=loadavg(), **res)
        i += 1
        if not warm:
            measured += 1
            spent += res["time_s"]
        if measured >= most or (measured and spent + res["time_s"] > budget):
            break
    write("done", case=case.name, repeats=measured)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", required=True, choices=sorted(ADAPTERS))
    ap.add_argument("--cases", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--policy", default="full", choices=sorted(POLICIES))
    args = ap.parse_args(argv)
    write = Writer(args.out)
    adapter = ADAPTERS[args.engine]()
    cap = getattr(adapter, "mem_cap_gb", None)
    if cap:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (cap * 2**30, cap * 2**30))
        write("memcap", gb=cap)
    note = adapter.unavailable()
    if note:
        write("unavailable", note=note)
        return 0
    write("versions", versions=adapter.versions())
    known = {c.name: c for c in quick_cases() + full_cases()}
    try:
        warm = known["sleepstudy"]
        if not adapter.cannot(warm):   # imports, first-call costs: out of every timing
            df, hint = warm.data()
            adapter.once(adapter.setup(warm, df, hint))
        for name in args.cases.split(","):
            try:
                run_case(adapter, known[name], args.policy, write)
            except MemoryError:
                write("error", case=name, status="out of memory",
                      error=f"MemoryError with the address space capped at {cap} GB")
            except Exception as exc:  # noqa: BLE001 - record, go on with the next case
                write("error", case=name, error=f"{type(exc).__name__}: {exc}",
                      trace=traceback.format_exc()[-2000:])
    finally:
        adapter.close()
        write("end", maxrss_mib=maxrss_mib())
    return 0


if __name__ == "__main__":
    sys.exit(main())
