"""The GLMM benchmark table (native against glmer, mixedlm and statsmodels' variational Bayes) from
the results of ``python -m benchmarks.glmm`` (``benchmarks/results/glmm.json``): written to
``docs/benchmarks-glmm.md`` and embedded in ``docs/benchmarks.md``'s GLMM section
(:func:`section`, used by :mod:`benchmarks.report` and :mod:`benchmarks.glmm`)."""
from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "glmm.json"
TITLE = "## Generalized linear mixed models"
TARGETS = ("Targets (issue #15): VerbAgg native ≤ 0.3 s and ≥ 5× mixedlm; grouseticks and cbpp nAGQ = 25 "
           "≥ 5× glmer; objective never above glmer's.")


def _secs(entry: dict | str) -> str:
    return entry if isinstance(entry, str) else f"{entry['seconds']:.3f} / {entry['cpu']:.3f}"


def _ratio(entry: dict | str, nat: dict) -> str:
    if isinstance(entry, str):
        return ""
    return f"{entry['seconds'] / nat['seconds']:.1f}× / {entry['cpu'] / nat['cpu']:.1f}×"


def _objective(entry: dict | str, ref: dict | str) -> str:
    if isinstance(entry, str) or isinstance(ref, str):
        return ""
    rel = (entry["objective"] - ref["objective"]) / abs(ref["objective"])
    return f"{entry['objective']:.4f} ({rel:+.1e})"


def table(result: dict) -> list[str]:
    """The table (one row per model: native, glmer, mixedlm and statsmodels VB seconds, each
    peer's ratio to native, objectives), the models and the targets, as markdown lines."""
    lines = [
        "| model | native s | glmer s | glmer/native | mixedlm s | mixedlm/native | statsmodels VB s "
        "| VB/native | native objective | mixedlm objective |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        nat = r["native"]
        lines.append(f"| {r['case']} ({r['family']}, nAGQ={r['nagq']}) | {_secs(nat)} "
                     f"| {_secs(r['glmer'])} | {_ratio(r['glmer'], nat)} | {_secs(r['mixedlm'])} "
                     f"| {_ratio(r['mixedlm'], nat)} | {_secs(r['statsmodels'])} "
                     f"| {_ratio(r['statsmodels'], nat)} "
                     f"| {_objective(nat, r['glmer'])} | {_objective(r['mixedlm'], r['glmer'])} |")
    lines += ["", "Models:", ""] + [f"* {r['case']}: `{r['formula']}`, {r['family']}, nAGQ = {r['nagq']}"
                                    for r in result["rows"]]
    lines += ["", TARGETS, ""]
    return lines


def legend(result: dict) -> str:
    """How the table was measured (machine, load, repeats, what a cell holds)."""
    m = result["machine"]
    return (f"Written by `python -m benchmarks.glmm` (`make bench-glmm`) on {m.get('date', '')}: "
            f"{m.get('cpu', '')}, {m.get('cores', '')} cores, load average at the start "
            f"{m.get('loadavg_start', '')}. Each cell: wall / CPU seconds (the process's user + system "
            f"time; steadier than wall time on a shared machine), median of {result['repeats']} fits in "
            "one run, formula processing included; glmer timed with `system.time` inside R. Ratios "
            "are the peer's time over the native engine's (wall / CPU). Objective: "
            "−2 logLik (for nAGQ = 25 lme4's quadrature deviance), with its difference relative to "
            "glmer's in brackets (negative: lower, i.e. better; for nAGQ = 25 mixedlm's logLik is not "
            "lme4's quadrature deviance). statsmodels' Bayesian mixed GLMs are "
            "variational Bayes: their times are shown for reference, their estimates are not "
            "comparable.")


def section(path: Path = RESULTS) -> list[str]:
    """``docs/benchmarks.md``'s GLMM section: the table from the results JSON when there is one,
    else where to get it."""
    lines = [TITLE, ""]
    if not path.is_file():
        return lines + ["No GLMM results yet: run `make bench-glmm` (`python -m benchmarks.glmm`).", ""]
    result = json.loads(path.read_text(encoding="utf-8"))
    lines += [legend(result) + " Details: [benchmarks-glmm.md](benchmarks-glmm.md).", ""]
    return lines + table(result)


def splice(doc: str, lines: list[str]) -> str:
    """``doc`` (docs/benchmarks.md) with its GLMM section (from its heading to the next ``## ``
    heading) replaced by ``lines``; appended when there is none."""
    text = "\n".join(lines).rstrip("\n") + "\n\n"
    start = doc.find(TITLE + "\n")
    if start < 0:
        return doc.rstrip("\n") + "\n\n" + text
    end = doc.find("\n## ", start + len(TITLE))
    return doc[:start] + text + (doc[end + 1:] if end >= 0 else "")
