"""The speed targets of issue #16, each read from one benchmark run's results and marked met or
not, so that docs/benchmarks.md states them beside the numbers that decide them."""
from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import NamedTuple


class Target(NamedTuple):
    """One target: what is asked (``goal``), how it is read from the run (``measure``: the
    measured text and whether it is met, or None when the run lacks the numbers)."""

    goal: str
    measure: Callable[[dict], tuple[str, bool] | None]


def _t(x: float) -> str:
    return f"{x * 1e3:.2f} ms" if x < 0.1 else f"{x:.3f} s"


def _startup(res: dict, what: str) -> float | None:
    for r in ((res.get("extras") or {}).get("startup") or {}).get("rows", []):
        if r.get("what") == what and r.get("status") == "ok":
            return float(r["median_s"])
    return None


def _analysis(res: dict, case: str) -> dict | None:
    e = ((res.get("extras") or {}).get("analysis") or {}).get("sides", {}).get("native", {}).get(case)
    return e if e and e.get("status") == "ok" else None


def _median(res: dict, case: str, engine: str) -> float | None:
    e = (res.get("results") or {}).get(case, {}).get(engine) or {}
    return (e.get("time_s") or {}).get("median") if e.get("status") == "ok" else None


def _import(res: dict) -> tuple[str, bool] | None:
    t = _startup(res, "import mixedbridge")
    return None if t is None else (_t(t), t <= 0.3)


def _cold(res: dict) -> tuple[str, bool] | None:
    t = _startup(res, "mixedbridge run sleepstudy (cold process)")
    return None if t is None else (_t(t), t <= 0.8)


def _analysis_ratio(res: dict) -> tuple[str, bool] | None:
    parts, ok = [], True
    for case in ("sleepstudy", "fhch2010", "InstEval"):
        e = _analysis(res, case)
        if e is None:
            return None
        r = e["analysis_s"] / e["fit_s"]
        parts.append(f"{case} {r:.2f}×")
        ok = ok and r <= 1.5
    return ", ".join(parts), ok


def _sleep_warm(res: dict) -> tuple[str, bool] | None:
    e = _analysis(res, "sleepstudy")
    return None if e is None else (_t(e["total_s"]), e["total_s"] <= 0.005)


def _small(res: dict) -> tuple[str, bool] | None:
    parts, ok = [], True
    for case in ("sleepstudy", "Penicillin", "Pastes"):
        r = ((res.get("comparison") or {}).get(case) or {}).get("vs_mixedlm")
        if r is None:
            return None
        parts.append(f"{case} {r:.2f}×")
        ok = ok and r <= 0.5
    return ", ".join(parts), ok


def _insteval_fit(res: dict) -> tuple[str, bool] | None:
    c = (res.get("comparison") or {}).get("InstEval") or {}
    vs_m = c.get("vs_mixedlm")
    vs_l = ((c.get("engines") or {}).get("native") or {}).get("ratio")
    if vs_m is None or not vs_l:
        return None
    return f"{vs_m:.2f}× mixedlm, {1 / vs_l:.1f}× faster than lme4", vs_m <= 0.5 and 1 / vs_l >= 15


def _insteval_cli(res: dict) -> tuple[str, bool] | None:
    cli = _startup(res, "mixedbridge run InstEval default analysis (cold process)")
    lmer = _median(res, "InstEval", "lme4")
    if cli is None or lmer is None:
        return None
    return f"{_t(cli)} against `lmer` {_t(lmer)}: {lmer / cli:.1f}×", lmer / cli >= 10


def _clicks(res: dict) -> tuple[str, bool] | None:
    """The median latency of each fit-reusing emmeans or plot click (by its label: a plot drawn
    as PNG and SVG is another click than one format) over its repeats, the slowest click shown
    beside them; met when every label's median is ≤ 50 ms."""
    rows = ((res.get("extras") or {}).get("serve") or {}).get("clicks") or []
    seen: dict[str, list[float]] = {}
    for r in rows:
        label = str(r.get("click", ""))
        if label.startswith(("reuse: emmeans", "reuse: plot")) and r.get("ok"):
            seen.setdefault(label.removeprefix("reuse: "), []).append(float(r["latency_s"]))
    if not seen:
        return None
    medians = {k: statistics.median(v) for k, v in seen.items()}
    slowest = max(max(v) for v in seen.values())
    text = ", ".join(f"{k} {_t(m)}" for k, m in medians.items())
    count = sum(len(v) for v in seen.values())
    return f"medians: {text} (slowest of {count} clicks {_t(slowest)})", max(medians.values()) <= 0.05


def _million(res: dict) -> tuple[str, bool] | None:
    e = (res.get("results") or {}).get("synth-1M", {}).get("native") or {}
    if e.get("status") != "ok":
        return None
    rows = int(e.get("rows") or 1_000_000)
    prep, fit, mem = float(e["prepare_s"]), float(e["time_s"]["median"]), float(e["mem_mib"])
    columns = 3 * 8 * rows / 2**20
    ok = prep <= 0.5 and fit <= 1.0 and mem <= 3 * columns
    return (f"prepare {_t(prep)}, fit {_t(fit)}, peak {mem:.0f} MiB = {mem / columns:.1f}× the "
            f"{columns:.0f} MiB of input columns"), ok


TARGETS = [
    Target("`import mixedbridge` ≤ 0.3 s", _import),
    Target("`mixedbridge run` sleepstudy, cold process ≤ 0.8 s", _cold),
    Target("default analysis ≤ 1.5× the fit (sleepstudy, fhch2010, InstEval)", _analysis_ratio),
    Target("sleepstudy default analysis through `mixedbridge.run` ≤ 5 ms warm", _sleep_warm),
    Target("every small model ≤ 0.5× mixedlm (prepare + fit against mixedlm's whole fit)", _small),
    Target("InstEval fit ≤ 0.5× mixedlm and ≥ 15× lme4", _insteval_fit),
    Target("InstEval default analysis, cold CLI ≥ 10× lme4's `lmer`", _insteval_cli),
    Target("emmeans or plot change under `serve` ≤ 50 ms (fhch2010, fit reused; each click's median over rounds)",
           _clicks),
    Target("1M rows: prepare ≤ 0.5 s, fit ≤ 1 s, peak memory ≤ 3× the input columns", _million),
]


def section(res: dict) -> list[str]:
    """The targets table of docs/benchmarks.md."""
    out = ["## Targets (issue #16)", "",
           "Each target read from this run's numbers (sections below); ✗ marks one not met.", "",
           "| target | measured | met |", "|---|---|---|"]
    for t in TARGETS:
        got = t.measure(res)
        text, ok = got if got is not None else ("not measured in this run", False)
        out.append(f"| {t.goal} | {text} | {'✓' if ok else '✗'} |")
    out.append("")
    return out
