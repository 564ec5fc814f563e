"""Running an analysis: spec in, results out. The one path shared by the Python API, the CLI and
the ``serve`` worker."""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from . import compare, report, spec as specmod
from .engines import compare_models, get_engine, infer
from .errors import FormulaError, MixedBridgeError, SpecError
from .fit import Fit
from .formula import ModelDescription, parse_formula
from .frame import model_frame
from .inference.options import settings as inference_settings
from .problem import Problem
from .results import Results


def prepare(spec: dict, base: Path | None = None, data: pd.DataFrame | None = None) -> Problem:
    """Prepare a validated spec's model (see :func:`spec.validate`): formula, rows, designs."""
    desc = parse_formula(spec["formula"])
    _check_analysis(spec["analysis"], desc)
    df, factor_hint = specmod.load_data(spec, base, data)
    frame = model_frame(df, desc, spec, factor_hint)
    return Problem.build(spec["analysis"], desc, frame, spec["options"])


def _check_analysis(analysis: str, desc: ModelDescription) -> None:
    rhs = {v.label for t in desc.fixed for v in t.variables}
    if desc.response.label in rhs:
        raise FormulaError(f"the response {desc.response.label!r} also appears among the predictors")
    if analysis == "lm" and desc.random:
        raise FormulaError("analysis 'lm' cannot have random-effects terms '( ... | group )'; "
                           "use analysis 'lmm' for a mixed model")
    if analysis == "lmm" and not desc.random:
        raise FormulaError("analysis 'lmm' needs at least one random-effects term such as "
                           "(1 | participant); use analysis 'lm' for an ordinary regression")


def run(spec: dict | str | Path, data: pd.DataFrame | None = None) -> Results:
    """Run one analysis and return its results.

    Parameters
    ----------
    spec : dict or path
        The analysis spec (see ``mixedbridge schema spec``), or the path of a JSON file holding it.
    data : DataFrame, optional
        Rows to use instead of the spec's ``data``.

    Raises
    ------
    MixedBridgeError
        With a message naming the JSON path, column, level or term at fault.
    """
    t0 = time.perf_counter()
    raw, base = specmod.read_spec(spec)
    normalized = specmod.validate(raw)
    problem = prepare(normalized, base, data)
    compared = _compare_problems(normalized, problem, base, data)
    settings = inference_settings(problem.analysis, normalized["options"])
    anova_terms = _anova_terms(normalized, problem)
    timing = {"prepare_s": time.perf_counter() - t0}
    engine = normalized["engine"]
    names = ["native", "lme4"] if engine == "both" else [engine]
    fits = {name: _fit_and_infer(name, problem, settings, anova_terms, compared, timing) for name in names}
    results = _assemble(normalized, problem, fits)
    t = time.perf_counter()
    if _add_emmeans(results, normalized["options"].get("emmeans"), problem, fits):
        timing["emmeans_s"] = time.perf_counter() - t
    _summarize_comparison(results)
    t = time.perf_counter()
    if _add_plots(results, normalized["options"].get("plots") or [], problem, fits):
        timing["plots_s"] = time.perf_counter() - t
    timing["total_s"] = time.perf_counter() - t0
    results.timing = timing
    return results


def _fit_and_infer(name: str, problem: Problem, settings, anova_terms: list[str] | None,
                   compared: list, timing: dict) -> Fit:
    """One engine's fit with its inference (df, anova, intervals, model comparison), timed."""
    t = time.perf_counter()
    fit = get_engine(name).fit(problem)
    timing[f"fit_{name}_s"] = time.perf_counter() - t
    t = time.perf_counter()
    fit.inference = infer(name, problem, fit, settings, anova_terms)
    if compared:
        entries = [(n, formula, pr, fit if pr is problem else get_engine(name).fit(pr))
                   for n, formula, pr in compared]
        fit.inference.comparison = compare_models(name, entries)
    timing[f"infer_{name}_s"] = time.perf_counter() - t
    return fit


def _anova_terms(spec: dict, problem: Problem) -> list[str] | None:
    """The terms ``options.anova.terms`` asks for (all when absent), checked against the model."""
    an = spec["options"].get("anova")
    wanted = an.get("terms") if isinstance(an, dict) else None
    if wanted is None:
        return None
    labels = [t.label for t in problem.desc.fixed]
    for i, term in enumerate(wanted):
        if term not in labels:
            raise SpecError(f"/options/anova/terms/{i}: {term!r} is not a term of the model; its terms are "
                            + (", ".join(repr(x) for x in labels) or "(none)"), f"/options/anova/terms/{i}")
    return list(wanted)


def _compare_problems(spec: dict, problem: Problem, base: Path | None,
                      data: pd.DataFrame | None) -> list[tuple[str, str, Problem]]:
    """The models of ``spec['compare']`` prepared on the same rows: (name, formula, problem),
    the analysed model first (named ``model``)."""
    others = spec.get("compare") or []
    if not others:
        return []
    out = [(spec.get("name") or "model", spec["formula"], problem)]
    for i, other in enumerate(others):
        name = other.get("name") or f"model{i + 2}"
        if name in [n for n, _, _ in out]:
            raise SpecError(f"/compare/{i}/name: the model name {name!r} is used twice", f"/compare/{i}/name")
        sub = {**spec, "formula": other["formula"], "analysis": other.get("analysis", spec["analysis"]),
               "compare": []}
        try:
            pr = prepare(sub, base, data)
        except MixedBridgeError as exc:  # say which compared model it is
            exc.path = f"/compare/{i}/formula" if exc.path in ("/formula", "") else exc.path
            exc.message = f"/compare/{i}: {exc.message}"
            exc.args = (exc.message,)
            raise
        if not pr.frame.data.index.equals(problem.frame.data.index):
            raise SpecError(f"/compare/{i}: this model is fitted to different rows ({pr.frame.nobs}) than the "
                            f"analysed model ({problem.frame.nobs}), e.g. because of missing values in other "
                            "variables; likelihood-ratio comparisons need the same rows (filter the data so "
                            "that both models use the same complete rows)", f"/compare/{i}")
        out.append((name, other["formula"], pr))
    return out


def _assemble(spec: dict, problem: Problem, fits: dict[str, Fit]) -> Results:
    first = next(iter(fits.values()))
    results = Results(spec["analysis"], spec["engine"], spec, report.tables_for(first),
                      fits=fits)
    results.notes += problem.frame.notes
    if first.dropped:
        results.notes.append("Fixed-effect columns dropped because they are linear combinations of "
                             "others (rank-deficient design): " + ", ".join(first.dropped) + ".")
    for name, fit in fits.items():
        prefix = f"[{name}] " if len(fits) > 1 else ""
        results.notes += [prefix + n for n in fit.notes]
        results.warnings += [prefix + w for w in fit.warnings]
        if fit.inference is not None:
            results.notes += [prefix + n for n in fit.inference.notes]
            results.warnings += [prefix + w for w in fit.inference.warnings]
    if len(fits) == 2:
        _add_comparison(results, fits)
    return results


def _emmeans_blocks(option) -> list[tuple[str, dict]]:
    """(JSON path, block) for ``options.emmeans`` given as one block or a list."""
    if not option:
        return []
    if isinstance(option, dict):
        return [("/options/emmeans", option)]
    return [(f"/options/emmeans/{i}", block) for i, block in enumerate(option)]


def _add_emmeans(results: Results, option, problem: Problem, fits: dict[str, Fit]) -> bool:
    """EMM, trend and contrast tables from the first engine (native when it ran); with both
    engines, R's emmeans tables join the comparison table."""
    blocks = _emmeans_blocks(option)
    if not blocks:
        return False
    from .emmeans import emmeans_tables

    seen: dict[str, int] = {}
    for path, block in blocks:
        if "native" in fits:
            tables, notes = emmeans_tables(problem, fits["native"], block, path=path)
        else:
            tables, notes = _emmeans_r(problem, block, path, fits["lme4"])
        if "native" in fits and "lme4" in fits:
            r_tables, _ = _emmeans_r(problem, block, path, fits["lme4"])
            _extend_comparison(results, tables, r_tables, fits["lme4"].sigma)
        for table in tables:
            seen[table.name] = seen.get(table.name, 0) + 1
            if seen[table.name] > 1:
                table.name = f"{table.name}_{seen[table.name]}"
        results.tables += tables
        results.notes += [n for n in notes if n not in results.notes]
    return True


def _emmeans_r(problem: Problem, block: dict, path: str, fit: Fit):
    """R's emmeans tables on the lme4 engine's stored fit (no refit), in the engine's R session."""
    from .bridge.emmeans_r import emmeans_tables_r

    return emmeans_tables_r(problem, block, path=path, r_session=get_engine("lme4").session, fit=fit)


def _extend_comparison(results: Results, native: list, other: list, sigma: float) -> None:
    table = results.table("comparison")
    more = compare.compare(native, other, "lme4", sigma=sigma)
    table.rows += more.rows


def _add_plots(results: Results, requests: list[dict], problem: Problem, fits: dict[str, Fit]) -> bool:
    """Draw the requested plots from the native fit (else the only one); False when none asked."""
    if not requests:
        return False
    try:
        from .plots import make_plots
    except ImportError:
        results.notes.append("Plots need matplotlib: pip install 'mixedbridge[plots]'.")
        return True
    plots, notes = make_plots(problem, fits.get("native") or next(iter(fits.values())), requests)
    results.plots += plots
    results.notes += notes
    return True


def _add_comparison(results: Results, fits: dict[str, Fit]) -> None:
    native, other = fits["native"], fits["lme4"]
    table = compare.compare(report.tables_for(native), report.tables_for(other), "lme4", sigma=other.sigma)
    results.tables.append(table)
    crit = "reml_crit" if native.reml and native.analysis == "lmm" else "deviance"
    a, b = getattr(native, crit), getattr(other, crit)
    if a is not None and b is not None and abs(a - b) > 1e-10 * abs(b):
        lower = "native" if a < b else "lme4"
        results.notes.append(f"The {lower} engine reached the lower objective "
                             f"({crit}: native {a:.10g}, lme4 {b:.10g}).")


def _summarize_comparison(results: Results) -> None:
    """One line on the whole comparison, once every table has joined it."""
    try:
        table = results.table("comparison")
    except KeyError:
        return
    bad = compare.failures(table)
    if bad:
        results.warnings.append(f"{len(bad)} of {len(table.rows)} compared values differ by more than "
                                "their tolerance; see the comparison table.")
    else:
        results.notes.append(f"All {len(table.rows)} compared values agree within tolerance.")
