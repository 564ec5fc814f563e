"""Start-up cost: what a cold process pays before the first answer.

``python -m benchmarks.startup --out FILE [--policy quick|full]``

Each command runs in a fresh interpreter (or Rscript) several times; the median and the minimum
wall time are kept (the minimum is the least disturbed by other work on the machine). Native:
``import mixedbridge`` (the package's public names are imported on first use), the import of
the analysis path, and ``mixedbridge run`` of the sleepstudy example (spec file to printed
tables) in a cold process, and in the full policy ``mixedbridge run`` of InstEval's default analysis
(``benchmarks/specs/insteval-default.json``: the fit, Satterthwaite t tests and the type III
anova of ``y ~ service + (1 | s) + (1 | d) + (1 | dept:service)``, printed as text), the
figure issue #16 sets against lme4's ``lmer`` alone (≥ 10×; ``lmer`` is timed in
:mod:`benchmarks.analysis_speed`). Peers: ``import mixedlm``, ``import statsmodels.formula.api`` and R
loading lme4 and lmerTest.

The package's bytecode is compiled first, as an installed package has it (pip compiles at install
time): a development checkout run with ``PYTHONDONTWRITEBYTECODE`` set would otherwise compile
every module of the package again in each cold process (about 0.1 s). CPU time (user + system of
the child) is kept beside the wall time: it is steadier on a shared machine.
"""
from __future__ import annotations

import argparse
import compileall
import importlib.util
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .cell import Writer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "table-12-4-sleepstudy-lmm.json"
INSTEVAL = ROOT / "benchmarks" / "specs" / "insteval-default.json"


def commands(policy: str = "full") -> list[tuple[str, str, list[str]]]:
    """(name, who, argv) of every timed command (InstEval's CLI run in the full policy only)."""
    py = sys.executable
    out = [
        ("import mixedbridge", "native", [py, "-c", "import mixedbridge"]),
        ("import the analysis path", "native", [py, "-c", "import mixedbridge.analysis"]),
        ("mixedbridge run sleepstudy (cold process)", "native",
         [py, "-m", "mixedbridge.cli", "run", str(EXAMPLE)]),
        *([("mixedbridge run InstEval default analysis (cold process)", "native",
            [py, "-m", "mixedbridge.cli", "run", str(INSTEVAL)])] if policy == "full" else []),
        ("python -c pass (interpreter alone)", "python", [py, "-c", "pass"]),
        ("import mixedlm", "mixedlm", [py, "-c", "import mixedlm"]),
        ("import statsmodels.formula.api", "statsmodels", [py, "-c", "import statsmodels.formula.api"]),
    ]
    rscript = shutil.which("Rscript")
    if rscript:
        out.append(("R: library(lme4); library(lmerTest)", "lme4",
                    [rscript, "-e", "suppressMessages({library(lme4); library(lmerTest)})"]))
    return out


def compile_package() -> None:
    """Write the bytecode of every module of ``mixedbridge`` (what an install does)."""
    found = importlib.util.find_spec("mixedbridge")
    for folder in (found.submodule_search_locations or []) if found else []:
        compileall.compile_dir(folder, quiet=1)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(argv: list[str], repeats: int) -> tuple[list[float], list[float], str | None]:
    """Wall and CPU times of ``repeats`` runs (after one untimed run that warms the file cache)."""
    times: list[float] = []
    cpu: list[float] = []
    for i in range(repeats + 1):
        c0 = _children_cpu()
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            return times, cpu, (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        if i:
            times.append(wall)
            cpu.append(_children_cpu() - c0)
    return times, cpu, None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--policy", default="full", choices=["full", "quick"])
    args = ap.parse_args(argv)
    write = Writer(args.out)
    repeats = 7 if args.policy == "full" else 2
    compile_package()
    for name, who, cmd in commands(args.policy):
        times, cpu, error = time_command(cmd, repeats)
        if error:
            write("startup", what=name, who=who, status="error", note=error)
            continue
        write("startup", what=name, who=who, status="ok", median_s=statistics.median(times), min_s=min(times),
              cpu_median_s=statistics.median(cpu), cpu_min_s=min(cpu), n=len(times))
    write("end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
