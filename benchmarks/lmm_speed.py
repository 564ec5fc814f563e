"""Speed of the native LMM estimator (not a test). Run: ``.venv/bin/python benchmarks/lmm_speed.py``.

1. sleepstudy ``Reaction ~ Days + (Days | Subject)``: time per fit after warm-up (target ≤ 5 ms).
2. InstEval ``y ~ service + (1 | s) + (1 | d) + (1 | dept:service)`` REML, 73,421 rows (lme4 ≈ 30 s;
   target ≤ 3 s; REML criterion 237661.5357 or lower).
3. Synthetic 1,000,000 rows, 10,000 groups, correlated random intercept and slope (target ≤ 10 s,
   peak memory of the fit < 3× the data size, measured with tracemalloc).

Each line gives wall-clock and process CPU time, and the 1-minute load average: on a shared
machine the CPU time (fits run single-threaded BLAS by default) is the better guide to what an
idle machine gives.

Options: ``--skip-big`` skips case 3; ``--profile`` prints a cProfile of case 2.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time
import tracemalloc

import numpy as np

from mixedbridge import datasets
from mixedbridge.design import ReTermData, fixed_design, random_designs
from mixedbridge.formula import parse_formula
from mixedbridge.frame import model_frame
from mixedbridge.lmm import fit_lmm


def inputs(ds: str, formula: str, spec: dict | None = None):
    df, factors = datasets.load(ds)
    desc = parse_formula(formula)
    frame = model_frame(df, desc, spec or {}, factors)
    fd = fixed_design(desc, frame)
    return fd.X, fd.names, frame.response(desc), random_designs(desc, frame)


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def bench_sleepstudy(repeats: int = 200) -> None:
    args = inputs("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    for _ in range(5):
        fit_lmm(*args)
    times = []
    cpu0 = time.process_time()
    for _ in range(repeats):
        t = time.perf_counter()
        fit = fit_lmm(*args)
        times.append(time.perf_counter() - t)
    cpu = (time.process_time() - cpu0) / repeats * 1e3
    ms = np.array(times) * 1e3
    print(f"sleepstudy (Days | Subject): wall median {np.median(ms):.2f} ms, min {ms.min():.2f} ms; "
          f"CPU {cpu:.2f} ms per fit ({fit.optinfo['feval']} + {fit.optinfo['deriv_feval']} "
          f"evaluations); REMLcrit {fit.reml_crit:.6f}; {_load()}")


def bench_insteval(profile: bool = False) -> None:
    t0 = time.perf_counter()
    args = inputs("InstEval", "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)")
    t1 = time.perf_counter()
    c1 = time.process_time()
    fit = fit_lmm(*args)
    c2 = time.process_time()
    t2 = time.perf_counter()
    assert fit.theta is not None
    print(f"InstEval REML: fit wall {t2 - t1:.2f} s, CPU {c2 - c1:.2f} s (inputs {t1 - t0:.2f} s); "
          f"REMLcrit {fit.reml_crit:.4f} (lme4 237661.5357); feval {fit.optinfo['feval']} + "
          f"{fit.optinfo['deriv_feval']}; theta {np.round(fit.theta, 6)}; {_load()}")
    if profile:
        cProfile.runctx("fit_lmm(*args)", globals(), {"args": args, "fit_lmm": fit_lmm}, "/tmp/insteval.prof")
        pstats.Stats("/tmp/insteval.prof").sort_stats("tottime").print_stats(15)


def synthetic(n: int = 1_000_000, groups: int = 10_000, seed: int = 1):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    x = rng.uniform(0, 10, n)
    b = rng.multivariate_normal([0, 0], [[4.0, 0.3], [0.3, 0.25]], groups)
    y = 1.0 + 0.5 * x + b[g, 0] + b[g, 1] * x + rng.normal(0, 1.0, n)
    X = np.column_stack([np.ones(n), x])
    term = ReTermData("g", [str(i) for i in range(groups)], g.astype(np.int64), X.copy(), ["(Intercept)", "x"])
    return X, ["(Intercept)", "x"], y, [term]


def bench_synthetic() -> None:
    X, names, y, terms = synthetic()
    data_bytes = X.nbytes + y.nbytes + terms[0].X.nbytes + terms[0].codes.nbytes
    tracemalloc.start()
    t = time.perf_counter()
    c = time.process_time()
    fit = fit_lmm(X, names, y, terms)
    cpu = time.process_time() - c
    elapsed = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"synthetic 1e6 rows, 1e4 groups, (1 + x | g): fit wall {elapsed:.2f} s, CPU {cpu:.2f} s "
          f"(tracemalloc on); {_load()}; peak allocation "
          f"{peak / 2**20:.0f} MiB = {peak / data_bytes:.2f}× the data ({data_bytes / 2**20:.0f} MiB); "
          f"sd {np.round(fit.varcorr[0].sd, 4)}, cor {fit.varcorr[0].corr[1, 0]:.4f}, sigma {fit.sigma:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    bench_sleepstudy()
    bench_insteval(a.profile)
    if not a.skip_big:
        bench_synthetic()


if __name__ == "__main__":
    main()
