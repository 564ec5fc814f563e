"""GLMM speed: the native engine against lme4's ``glmer`` (Rscript), mixedlm's ``glmer`` and
statsmodels' Bayesian mixed GLMs, in one run, written to ``docs/benchmarks-glmm.md``.

Cases (issue #15): VerbAgg ``r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)``
(binomial, Laplace), grouseticks ``TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) +
(1 | LOCATION)`` (Poisson, Laplace) and cbpp ``cbind(incidence, size - incidence) ~ period +
(1 | herd)`` with nAGQ = 25. Each time is the median of ``--repeats`` fits (default 3) and
includes formula processing; glmer's is ``system.time`` around ``glmer`` inside one R session
(loading R and lme4 not counted). statsmodels' ``BinomialBayesMixedGLM``/``PoissonBayesMixedGLM``
(``fit_vb``) is variational Bayes: its time is shown, its numbers are not comparable.

Run: ``python -m benchmarks.glmm`` (or ``make bench-glmm``); ``--out`` for another file. It also
rewrites the GLMM section of ``docs/benchmarks.md`` (``--report``) with the same table, as
:mod:`benchmarks.report` renders it from the results JSON.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mixedbridge.design import fixed_design, random_designs
from mixedbridge.formula import parse_formula
from mixedbridge.frame import model_frame
from mixedbridge.glmm import fit_glmm

from .glmm_table import legend, section, splice, table
from .machine import describe

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "glmm"


@dataclass
class Case:
    """One benchmark model: ``file`` in tests/data/glmm, ``rhs`` the formula's right-hand side,
    ``factors`` its factor columns, ``family``, ``nagq``, ``r_lhs`` glmer's left-hand side."""

    name: str
    file: str
    rhs: str
    factors: tuple[str, ...]
    family: str
    nagq: int
    r_lhs: str


CASES = [
    Case("VerbAgg", "VerbAgg.csv.gz", "Anger + Gender + btype + situ + (1 | id) + (1 | item)",
         ("Gender", "item", "id", "btype", "situ"), "binomial", 1, "r2"),
    Case("grouseticks", "grouseticks.csv", "YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
         ("INDEX", "BROOD", "YEAR", "LOCATION"), "poisson", 1, "TICKS"),
    Case("cbpp nAGQ=25", "cbpp.csv", "period + (1 | herd)", ("herd", "period"), "binomial", 25,
         "cbind(incidence, size - incidence)"),
]


def load(case: Case) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None]:
    """The data with factors as strings, the response on the family's scale and the weights."""
    df = pd.read_csv(DATA / case.file)
    for col in case.factors:
        df[col] = df[col].astype(str)
    if case.name.startswith("cbpp"):
        return df, (df["incidence"] / df["size"]).to_numpy(float), df["size"].to_numpy(float)
    if case.name == "VerbAgg":
        return df, (df["r2"] == "Y").to_numpy(float), None
    return df, df["TICKS"].to_numpy(float), None


def timed(fun: Callable[[], Any], repeats: int) -> tuple[dict, Any]:
    """Median wall and CPU seconds (this process) of ``repeats`` calls, and the last result."""
    wall, cpu, out = [], [], None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fun()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"seconds": statistics.median(wall), "cpu": statistics.median(cpu)}, out


def native(case: Case, repeats: int) -> dict:
    df, y, w = load(case)

    def fit() -> Any:
        desc = parse_formula("y_ ~ " + case.rhs)
        frame = model_frame(df.assign(y_=y), desc, {}, set(case.factors))
        fd = fixed_design(desc, frame)
        weights = None if w is None else w[frame.data.index.to_numpy()]
        return fit_glmm(fd.X, fd.names, frame.response(desc), random_designs(desc, frame),
                        family=case.family, weights=weights, nagq=case.nagq)

    fit()  # warm-up: imports and caches
    secs, res = timed(fit, repeats)
    return {**secs, "objective": float(res.deviance)}


R_SCRIPT = r"""
suppressMessages(library(lme4))
args <- commandArgs(TRUE)
dir <- args[1]; reps <- as.integer(args[2])
va <- read.csv(gzfile(file.path(dir, "VerbAgg.csv.gz")))
for (v in c("Gender", "item", "id", "btype", "situ", "r2")) va[[v]] <- factor(va[[v]])
gt <- read.csv(file.path(dir, "grouseticks.csv"))
for (v in c("INDEX", "BROOD", "YEAR", "LOCATION")) gt[[v]] <- factor(gt[[v]])
cb <- read.csv(file.path(dir, "cbpp.csv"))
for (v in c("herd", "period")) cb[[v]] <- factor(cb[[v]])
run <- function(f) {
  t <- numeric(reps); cpu <- numeric(reps); m <- NULL
  for (i in seq_len(reps)) {
    st <- system.time(m <- f())
    t[i] <- st[["elapsed"]]; cpu[i] <- st[["user.self"]] + st[["sys.self"]]
  }
  c(median(t), -2 * as.numeric(logLik(m)), median(cpu))
}
out <- rbind(
  run(function() glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), va, binomial)),
  run(function() glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION), gt, poisson)),
  run(function() glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cb, binomial, nAGQ = 25)))
write.table(out, stdout(), row.names = FALSE, col.names = FALSE)
"""


def glmer_all(repeats: int) -> list[dict] | str:
    """glmer's median times and criteria for the three cases (one R session), or why not."""
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as fh:
        fh.write(R_SCRIPT)
    try:
        res = subprocess.run(["Rscript", fh.name, str(DATA), str(repeats)], capture_output=True,
                             text=True, timeout=1800, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"Rscript failed: {err}"
    finally:
        Path(fh.name).unlink(missing_ok=True)
    if res.returncode != 0:
        return "Rscript failed: " + res.stderr.strip()[-300:]
    rows = [line.split() for line in res.stdout.strip().splitlines()]
    return [{"seconds": float(r[0]), "objective": float(r[1]), "cpu": float(r[2])} for r in rows]


def mixedlm_fit(case: Case, repeats: int) -> dict | str:
    """mixedlm 1.3.0's ``glmer`` (its defaults), formula processing included."""
    try:
        import mixedlm
        from mixedlm.families import Binomial, Poisson
    except ImportError:
        return "mixedlm not installed (pip install 'mixedbridge[bench]')"
    df, y, w = load(case)
    df = df.assign(y_=y)
    fam = Binomial() if case.family == "binomial" else Poisson()

    def fit() -> Any:
        return mixedlm.glmer("y_ ~ " + case.rhs, df, family=fam, nAGQ=case.nagq,
                             weights=None if w is None else w)

    secs, res = timed(fit, repeats)
    return {**secs, "objective": -2.0 * float(res.logLik().value)}


def statsmodels_fit(case: Case, repeats: int) -> dict | str:
    """statsmodels' variational-Bayes mixed GLM with one variance component per grouping factor
    (binary rows for cbpp's trials); no nAGQ, so cbpp is fitted as the Laplace-free VB model."""
    try:
        from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM, PoissonBayesMixedGLM
    except ImportError:
        return "statsmodels not installed"
    df, y, w = load(case)
    if w is not None:  # trials as binary rows
        reps = w.astype(int)
        succ = np.concatenate([np.arange(k) < s for k, s in zip(reps, (y * w).round().astype(int))])
        df = df.loc[df.index.repeat(reps)].assign(y_=succ.astype(float))
    else:
        df = df.assign(y_=y)
    fixed, re_part = case.rhs.split(" + (", 1)
    groups = [g.strip(" ()").split("|")[1].strip() for g in ("(" + re_part).split("+")]
    vc = {g: f"0 + C({g})" for g in groups}
    cls = BinomialBayesMixedGLM if case.family == "binomial" else PoissonBayesMixedGLM

    def fit() -> Any:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return cls.from_formula("y_ ~ " + fixed, vc, df).fit_vb()

    secs, _ = timed(fit, repeats)
    return secs


def run(repeats: int) -> dict:
    """All engines on all cases."""
    glmer = glmer_all(repeats)
    rows = []
    for i, case in enumerate(CASES):
        rows.append({"case": case.name, "family": case.family, "nagq": case.nagq,
                     "formula": f"{case.r_lhs} ~ {case.rhs}",
                     "native": native(case, repeats),
                     "glmer": glmer if isinstance(glmer, str) else glmer[i],
                     "mixedlm": mixedlm_fit(case, repeats),
                     "statsmodels": statsmodels_fit(case, repeats)})
    return {"machine": describe(), "repeats": repeats, "rows": rows}


def markdown(result: dict) -> str:
    """The GLMM benchmark page (docs/benchmarks-glmm.md)."""
    return "\n".join(["# GLMM benchmarks", "", legend(result), ""] + table(result))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks-glmm.md")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "glmm.json")
    ap.add_argument("--report", type=Path, default=ROOT / "docs" / "benchmarks.md",
                    help="the benchmark page whose GLMM section is rewritten (skipped if missing)")
    args = ap.parse_args(argv)
    result = run(args.repeats)
    args.out.write_text(markdown(result), encoding="utf-8")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    if args.report.is_file():  # docs/benchmarks.md's GLMM section, as benchmarks.report renders it
        args.report.write_text(splice(args.report.read_text(encoding="utf-8"), section(args.json)),
                               encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
