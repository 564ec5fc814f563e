"""The Dask backend at scale: one model on Parquet files of 10M, 30M and 100M rows, and
``run_many`` against a loop of single runs.

``python -m benchmarks.scale generate --root /work/scale-data --sizes 10,30,100 [--layout clustered]``
    writes ``y ~ x + (x | g)`` data (one file per million rows, 10 000 rows per 100 groups, i.e.
    100 rows per group on average) under ``ROOT/rows-<N>M/`` (``uniform``: every file draws its
    ids from all groups) or ``ROOT/rows-<N>M-clustered/`` (of N files, file i draws them
    from its own 1/N of the groups, as rows exported site by site); not in the repository.
``python -m benchmarks.scale fit --root /work/scale-data --sizes 10,30,100 --out FILE``
    fits each on a LocalCluster (2 worker processes, 1 thread each, a memory limit per worker)
    and records wall time, CPU time of the workers and this process, each worker's peak
    resident memory (sampled) and the load average.
``python -m benchmarks.scale many --specs 200 --out FILE``
    ``run_many`` of sleepstudy-sized specs against a loop of ``mixedbridge.run``.

The machine is shared: CPU times and ratios measured in the same run are the figures to read.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "scale.json"
ROWS_PER_FILE = 1_000_000
ROWS_PER_GROUP = 100
FORMULA = "y ~ x + (x | g)"


def folder_of(root: Path, millions: int, layout: str = "uniform") -> Path:
    """Where the data of ``millions`` rows in ``layout`` lie."""
    return root / (f"rows-{millions}M" if layout == "uniform" else f"rows-{millions}M-{layout}")


def generate(root: Path, millions: int, seed: int = 2026, layout: str = "uniform") -> Path:
    """``millions`` files of a million rows each: g uniform over n/100 groups, x normal,
    y = 2 + 0.5x + b0[g] + b1[g]x + e (sd 1, 0.3, 1)."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    folder = folder_of(root, millions, layout)
    folder.mkdir(parents=True, exist_ok=True)
    ngroups = millions * ROWS_PER_FILE // ROWS_PER_GROUP
    rng = np.random.default_rng(seed)
    b0, b1 = rng.normal(size=ngroups), 0.3 * rng.normal(size=ngroups)
    for i in range(millions):
        path = folder / f"part-{i:04d}.parquet"
        if path.exists():
            continue
        r = np.random.default_rng([seed, millions, i])
        per_file = ngroups // millions
        g = r.integers(0, ngroups, ROWS_PER_FILE) if layout == "uniform" else \
            i * per_file + r.integers(0, per_file, ROWS_PER_FILE)
        x = r.normal(size=ROWS_PER_FILE)
        y = 2.0 + 0.5 * x + b0[g] + b1[g] * x + r.normal(size=ROWS_PER_FILE)
        table = pa.table({"y": y, "x": x, "g": g.astype(np.int64)})
        pq.write_table(table, path.with_suffix(".tmp"))
        os.replace(path.with_suffix(".tmp"), path)
    return folder


class PeakSampler:
    """Samples the resident memory of the worker processes (and this one) every ``every``
    seconds; keeps each one's peak."""

    def __init__(self, pids: dict[str, int], every: float = 0.2) -> None:
        self.pids, self.every = pids, every
        self.peak = {k: 0 for k in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil  # type: ignore[import-untyped]

        procs = {k: psutil.Process(p) for k, p in self.pids.items()}
        while not self._stop.is_set():
            for k, pr in procs.items():
                try:
                    self.peak[k] = max(self.peak[k], pr.memory_info().rss)
                except psutil.Error:
                    pass
            self._stop.wait(self.every)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _worker_cpu(client) -> dict[str, float]:
    def cpu() -> float:
        t = os.times()
        return t.user + t.system

    return client.run(cpu)


def fit_one(folder: Path, memory_limit: str) -> dict:
    """One fit of :data:`FORMULA` over the Parquet files in ``folder`` on a fresh LocalCluster."""
    from distributed import Client, LocalCluster

    import mixedbridge

    spec = {"analysis": "lmm", "formula": FORMULA, "data": {"parquet": str(folder)},
            "options": {"anova": False}}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=memory_limit,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        pids = {addr: pid for addr, pid in client.run(os.getpid).items()}
        cpu0 = _worker_cpu(client)
        own0 = time.process_time()
        load0 = os.getloadavg()
        t0 = time.perf_counter()
        with PeakSampler({**pids, "client": os.getpid()}) as sampler:
            res = mixedbridge.run(spec, data_root=folder)
        wall = time.perf_counter() - t0
        cpu1 = _worker_cpu(client)
        own = time.process_time() - own0
    fit = res.table("fit").to_pandas().iloc[0].to_dict()
    workers_cpu = sum(cpu1[k] - cpu0[k] for k in cpu0)
    peaks = [v for k, v in sampler.peak.items() if k != "client"]
    nobs = int(fit["nobs"])
    return {"rows": nobs, "groups": _ngroups(res),
            "wall_s": wall, "workers_cpu_s": workers_cpu, "client_cpu_s": own,
            "wall_per_million_s": wall / (nobs / 1e6), "cpu_per_million_s": (workers_cpu + own) / (nobs / 1e6),
            "peak_worker_rss_gib": max(peaks) / 2**30, "peak_client_rss_gib": sampler.peak["client"] / 2**30,
            "memory_limit": memory_limit, "load_before": load0, "load_after": os.getloadavg(),
            "objective": _objective(res)}


def _ngroups(res) -> int:
    groups = res.table("groups").to_pandas()
    return int(groups.select_dtypes("number").iloc[0, 0])


def _objective(res) -> float:
    fit = res.table("fit").to_pandas().iloc[0]
    for k in ("REMLcrit", "deviance", "-2logLik"):
        if k in fit:
            return float(fit[k])
    return float("nan")


def many(nspecs: int) -> dict:
    """``run_many`` of ``nspecs`` sleepstudy-sized specs (each its own simulated response) on a
    LocalCluster of 2 workers, against a loop of ``mixedbridge.run`` in this process."""
    import pandas as pd
    from distributed import Client, LocalCluster

    import mixedbridge
    from mixedbridge.datasets import load

    df, _ = load("sleepstudy")
    rng = np.random.default_rng(5)
    noise = rng.normal(scale=25.0, size=(len(df), nspecs)) + df["Reaction"].to_numpy()[:, None]
    data = pd.concat([df, pd.DataFrame(noise, index=df.index, columns=[f"y{i}" for i in range(nspecs)])], axis=1)
    specs = [{"analysis": "lmm", "formula": f"y{i} ~ Days + (Days | Subject)", "data": {"dataset": "d"}}
             for i in range(nspecs)]
    t0, c0 = time.perf_counter(), time.process_time()
    loop = [mixedbridge.run(s, data=data) for s in specs]
    loop_wall, loop_cpu = time.perf_counter() - t0, time.process_time() - c0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(lambda: __import__("mixedbridge.analysis"))
        cpu0 = _worker_cpu(client)
        t0, c0 = time.perf_counter(), time.process_time()
        got = mixedbridge.run_many(specs, client=client, data=data)
        many_wall, many_cpu = time.perf_counter() - t0, time.process_time() - c0
        cpu1 = _worker_cpu(client)
    same = all(_same(a, b) for a, b in zip(loop, got))
    return {"specs": nspecs, "rows_each": len(df), "loop_wall_s": loop_wall, "loop_cpu_s": loop_cpu,
            "many_wall_s": many_wall, "many_client_cpu_s": many_cpu,
            "many_workers_cpu_s": sum(cpu1[k] - cpu0[k] for k in cpu0), "equal": same,
            "load": os.getloadavg(), "pandas": pd.__version__}


def _same(a, b) -> bool:
    pa, pb = a.table("parameters").to_pandas(), b.table("parameters").to_pandas()
    return bool(np.allclose(pa["estimate"], pb["estimate"], rtol=1e-9, atol=0))


def _fit_rows(fits: dict) -> list[str]:
    out = ["| rows | groups | wall | CPU (workers + client) | wall per 1M rows | CPU per 1M rows | "
           "workers' CPU (the passes) per 1M rows | peak RSS per worker | client peak RSS | "
           "load (1 min) before → after |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in fits.items():
        out.append(f"| {key} | {r['groups']:,} | {r['wall_s']:.0f} s | {r['workers_cpu_s']:.0f} + "
                   f"{r['client_cpu_s']:.0f} s | {r['wall_per_million_s']:.1f} s | {r['cpu_per_million_s']:.1f} s | "
                   f"{r['workers_cpu_s'] / (r['rows'] / 1e6):.2f} s | "
                   f"{r['peak_worker_rss_gib']:.2f} GiB | {r['peak_client_rss_gib']:.2f} GiB | "
                   f"{r['load_before'][0]:.1f} → {r['load_after'][0]:.1f} |")
    return out


def section(path: Path = RESULTS) -> list[str]:
    """The markdown section of ``docs/benchmarks.md`` from ``path`` (none when it is absent)."""
    if not path.exists():
        return []
    res = json.loads(path.read_text())
    out = ["## Past one machine: Dask", "",
           f"`python -m benchmarks.scale` ({res.get('date', '')}; raw numbers in `benchmarks/results/scale.json`). "
           f"`{FORMULA}` on Parquet files of a million rows each (100 rows per group), fitted over a "
           "LocalCluster of 2 worker processes (1 thread each, `memory_limit` per worker as listed) on this "
           f"{res.get('cpu_count', '?')}-core machine, shared with other work: the load average is listed, and "
           "CPU time is the figure to compare. Peak RSS is sampled every 0.2 s.", ""]
    if res.get("fits"):
        limit = next(iter(res["fits"].values()))["memory_limit"]
        out.append(f"Memory limit per worker: {limit}.")
        out.append("")
        out += _fit_rows(res["fits"])
        out.append("")
    for note in res.get("notes", []):
        out += [note, ""]
    if res.get("many"):
        m = res["many"]
        out += [f"`run_many` of {m['specs']} sleepstudy-sized specs ({m['rows_each']} rows each, one simulated "
                "response per spec, the data sent to the cluster once) against a loop of `mixedbridge.run` "
                "in one process:", "",
                "| | wall | CPU | specs per second (wall) |", "|---|---|---|---|",
                f"| loop of single runs | {m['loop_wall_s']:.1f} s | {m['loop_cpu_s']:.1f} s | "
                f"{m['specs'] / m['loop_wall_s']:.1f} |",
                f"| `run_many`, LocalCluster of 2 workers | {m['many_wall_s']:.1f} s | "
                f"{m['many_workers_cpu_s']:.1f} s workers + {m['many_client_cpu_s']:.1f} s client | "
                f"{m['specs'] / m['many_wall_s']:.1f} |", "",
                f"Every `run_many` result equal to its single run (estimates to 1e-9): {m['equal']}.", ""]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("generate", "fit", "many"))
    ap.add_argument("--root", type=Path, default=Path("/work/scale-data"))
    ap.add_argument("--sizes", default="10,30,100", help="millions of rows, comma-separated")
    ap.add_argument("--memory-limit", default="2GiB")
    ap.add_argument("--layout", choices=("uniform", "clustered"), default="uniform",
                    help="ids drawn from all groups in every file, or from each file's own groups")
    ap.add_argument("--specs", type=int, default=200)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",") if s]
    if a.what == "generate":
        for m in sizes:
            print(generate(a.root, m, layout=a.layout), flush=True)
        return
    out = json.loads(a.out.read_text()) if a.out and a.out.exists() else {}
    if a.what == "fit":
        for m in sizes:
            r = fit_one(folder_of(a.root, m, a.layout), a.memory_limit)
            r["layout"] = a.layout
            out.setdefault("fits", {})[f"{m}M" if a.layout == "uniform" else f"{m}M, {a.layout}"] = r
            print(json.dumps(r), flush=True)
            if a.out:
                a.out.write_text(json.dumps(out, indent=1))
    else:
        r = many(a.specs)
        out["many"] = r
        print(json.dumps(r), flush=True)
    out["cpu_count"] = os.cpu_count()
    out["date"] = time.strftime("%Y-%m-%d")
    out["maxrss_client_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if a.out:
        a.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
