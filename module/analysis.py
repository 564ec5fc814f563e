"""Running an analysis: spec in, results out. The one path shared by the Python API, the CLI and
the ``serve`` worker."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from . import agreement, fit_tables
from . import spec as specmod
from .datapath import data_roots
from .engines import Engine, engines_for
from .errors import FormulaError, MixedBridgeError, SpecError
from .fit import Fit, Inference
from .fitcache import FITS, PREPARED, prepared_key
from .formula import ModelDescription, parse_formula
from .frame import model_frame
from .inference.options import Settings
from .inference.options import settings as inference_settings
from .problem import Problem
from .results import Results
from .table import Table


def prepare(spec: dict, base: Path | None = None, data: pd.DataFrame | None = None) -> Problem:
    """Prepare a validated spec's model (see :func:`spec.validate`): formula, rows, designs; the
    model of an earlier request with the same model part is reused (:mod:`.fitcache`)."""
    key = prepared_key(spec) if data is None else None
    kept = PREPARED.get(key, spec["options"])
    if kept is not None:
        return kept
    desc = parse_formula(spec["formula"])
    _check_analysis(spec["analysis"], desc)
    df, factor_hint = specmod.load_data(spec, base, data)
    frame = model_frame(df, desc, spec, factor_hint)
    problem = Problem.build(spec["analysis"], desc, frame, spec["options"])
    PREPARED.put(key, problem)
    return problem


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


@dataclass(frozen=True)
class EngineRun:
    """One engine's part of an analysis.

    Fields: ``engine`` the :class:`~mixedbridge.engines.Engine` that ran; ``fit`` its
    :class:`~mixedbridge.fit.Fit`; ``inference`` its tests and intervals (with the model
    comparison when the spec asks for one).
    """

    engine: Engine
    fit: Fit
    inference: Inference

    @property
    def name(self) -> str:
        return self.engine.name


@dataclass(frozen=True)
class EmmeansOutput:
    """One ``emmeans`` request and the leading engine's answer.

    Fields: ``path`` the request's JSON path (``/options/emmeans/0``); ``request`` the block;
    ``tables`` its ``emmeans``/``trends`` and ``contrasts`` tables; ``notes``.
    """

    path: str
    request: dict
    tables: list[Table]
    notes: list[str]

    @property
    def estimates(self) -> Table:
        """The ``emmeans`` (or ``trends``) table: an engine's answer lists it first."""
        return self.tables[0]

    @property
    def contrasts(self) -> Table | None:
        """The ``contrasts`` table, when the request asks for contrasts."""
        return self.tables[1] if len(self.tables) > 1 else None


@dataclass(frozen=True)
class Analysis:
    """Everything one analysis computed, read by the table layer, plots and the JASP adapter.

    Fields: ``spec`` the normalized spec; ``problem`` the prepared model (rows, designs);
    ``settings`` the inference settings; ``runs`` engine name → :class:`EngineRun`, the leading
    engine first (``both``: native, then lme4); ``emmeans`` the answered requests.
    """

    spec: dict
    problem: Problem
    settings: Settings
    runs: dict[str, EngineRun]
    emmeans: list[EmmeansOutput] = field(default_factory=list)

    @property
    def lead(self) -> EngineRun:
        """The engine whose tables the results show (the first that ran)."""
        return next(iter(self.runs.values()))


def run(spec: dict | str | Path, data: pd.DataFrame | Any | None = None,
        data_root: str | Path | list[str | Path] | None = None) -> Results:
    """Run one analysis and return its results.

    Parameters
    ----------
    spec : dict or path
        The analysis spec (see ``mixedbridge schema spec``), or the path of a JSON file holding it.
    data : DataFrame, optional
        Rows to use instead of the spec's ``data`` (the spec may then leave ``data`` out).
        A pandas Categorical column's category order is its level order, as ``levels`` sets it.
        A Dask DataFrame is fitted without gathering its rows (:mod:`mixedbridge.scale`,
        ``docs/scale.md``).
    data_root : path or list of paths, optional
        The folders a ``data.path`` may lead into (:mod:`mixedbridge.datapath`); by default the
        spec file's folder, or the working directory for a spec given as a dict.

    Raises
    ------
    MixedBridgeError
        With a message naming the JSON path, column, level or term at fault.
    """
    with data_roots(data_root):
        return _run(spec, data)


def _run(spec: dict | str | Path, data: pd.DataFrame | Any | None) -> Results:
    """:func:`run` inside the data folders it allows."""
    t0 = time.perf_counter()
    raw, base = specmod.read_spec(spec)
    normalized = specmod.validate(raw, data_given=data is not None)
    if _may_scale(normalized, data):
        from .scale import run as scale_run

        if scale_run.wants_dask(normalized, data):
            return scale_run.run_dask(normalized, base, data, started=t0)
        data = scale_run.gathered(normalized, base, data)
    problem = prepare(normalized, base, data)
    return run_prepared(normalized, problem, base, data, started=t0)


def _may_scale(spec: dict, data: object) -> bool:
    """Whether :mod:`.scale.run` must look at the request (``options.backend`` set, Parquet data,
    or rows that are not a pandas DataFrame); a plain request leaves the Dask backend unimported."""
    return ((spec.get("options") or {}).get("backend") is not None or "parquet" in (spec.get("data") or {})
            or (data is not None and not isinstance(data, pd.DataFrame)))


def run_prepared(normalized: dict, problem: Problem, base: Path | None = None,
                 data: pd.DataFrame | None = None, started: float | None = None,
                 engines: list[Engine] | None = None) -> Results:
    """Run one analysis whose model is already prepared (see :func:`run`).

    For callers that build the model description and rows themselves (the JASP adapter):
    ``normalized`` is the validated spec (:func:`spec.validate`), ``problem`` its prepared
    model; ``base`` and ``data`` serve the models of ``normalized['compare']``; ``started`` the
    clock time the preparation began (for ``timing['prepare_s']``); ``engines`` the engines to
    run instead of the spec's (the Dask backend's block engine).
    """
    t0 = time.perf_counter() if started is None else started
    compared = _compare_problems(normalized, problem, base, data)
    settings = inference_settings(problem.analysis, normalized["options"])
    anova_terms = _anova_terms(normalized, problem)
    blocks = _emmeans_blocks(normalized["options"].get("emmeans"))
    for path, block in blocks:
        from .emmeans.request import parse as parse_emmeans

        parse_emmeans(problem, block, path)  # a request that cannot be answered stops before the fit
    timing = {"prepare_s": time.perf_counter() - t0}
    runs = {eng.name: _fit_and_infer(eng, problem, settings, anova_terms, compared, timing)
            for eng in engines or engines_for(normalized["engine"])}
    t = time.perf_counter()
    answered = [_emmeans(problem, runs, path, block) for path, block in blocks]
    if blocks:
        timing["emmeans_s"] = time.perf_counter() - t
    _name_apart([e for e, _ in answered])
    outcome = Analysis(normalized, problem, settings, runs, [e for e, _ in answered])
    results = _assemble(outcome)
    for _, comparison in answered:
        if comparison is not None:
            results.table("comparison").rows += comparison.rows
    _summarize_comparison(results)
    t = time.perf_counter()
    if _add_plots(results, normalized["options"].get("plots") or [], outcome):
        timing["plots_s"] = time.perf_counter() - t
    timing["total_s"] = time.perf_counter() - t0
    results.timing = timing
    return results


def _fit_and_infer(engine: Engine, problem: Problem, settings: Settings, anova_terms: list[str] | None,
                   compared: list[tuple[str, str, Problem]], timing: dict) -> EngineRun:
    """One engine's fit with its inference (df, anova, intervals, model comparison), timed; a fit
    (and an inference) of an earlier request on the same model is reused (:mod:`.fitcache`)."""
    t = time.perf_counter()
    fit = FITS.fit(engine, problem)
    timing[f"fit_{engine.name}_s"] = time.perf_counter() - t
    t = time.perf_counter()
    inference = FITS.infer(engine, fit, settings, anova_terms,
                           lambda: engine.infer(problem, fit, settings, anova_terms))
    if compared:
        entries = [(n, formula, pr, fit if pr is problem else FITS.fit(engine, pr)) for n, formula, pr in compared]
        inference = replace(inference, comparison=engine.compare(entries))
    timing[f"infer_{engine.name}_s"] = time.perf_counter() - t
    return EngineRun(engine, fit, inference)


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


def _assemble(outcome: Analysis) -> Results:
    """The results document: the leading engine's tables, every engine's notes and warnings,
    and with two engines the comparison table."""
    spec, problem, runs = outcome.spec, outcome.problem, outcome.runs
    lead = outcome.lead
    results = Results(spec["analysis"], spec["engine"], spec, fit_tables.tables_for(lead.fit, lead.inference),
                      outcome=outcome)
    results.notes += problem.frame.notes
    results.warnings += problem.frame.warnings
    if lead.fit.dropped:
        results.notes.append("Fixed-effect columns dropped because they are linear combinations of "
                             "others (rank-deficient design): " + ", ".join(lead.fit.dropped) + ".")
    for name, r in runs.items():
        prefix = f"[{name}] " if len(runs) > 1 else ""
        results.notes += [prefix + n for n in r.fit.notes + r.inference.notes]
        results.warnings += [prefix + w for w in r.fit.warnings + r.inference.warnings]
    if len(runs) == 2:
        _add_comparison(results, *runs.values())
    for e in outcome.emmeans:
        results.tables += e.tables
        results.notes += [n for n in e.notes if n not in results.notes]
    return results


def _emmeans_blocks(option) -> list[tuple[str, dict]]:
    """(JSON path, block) for ``options.emmeans`` given as one block or a list."""
    if not option:
        return []
    if isinstance(option, dict):
        return [("/options/emmeans", option)]
    return [(f"/options/emmeans/{i}", block) for i, block in enumerate(option)]


def _emmeans(problem: Problem, runs: dict[str, EngineRun], path: str,
             block: dict) -> tuple[EmmeansOutput, Table | None]:
    """One request answered by every engine: the leading engine's tables and, with two engines,
    their comparison."""
    answers = [r.engine.emmeans(problem, r.fit, block, path) for r in runs.values()]
    tables, notes = answers[0]
    comparison = None
    if len(answers) == 2:
        other = list(runs.values())[1]
        comparison = agreement.compare(answers[0][0], answers[1][0], other.name, sigma=other.fit.sigma)
    return EmmeansOutput(path, block, tables, notes), comparison


def _name_apart(outputs: list[EmmeansOutput]) -> None:
    """Tables of later requests renamed apart from earlier ones (``emmeans_2``, ``contrasts_2``)."""
    seen: dict[str, int] = {}
    for out in outputs:
        for table in out.tables:
            seen[table.name] = seen.get(table.name, 0) + 1
            if seen[table.name] > 1:
                table.name = f"{table.name}_{seen[table.name]}"


def _add_plots(results: Results, requests: list[dict], outcome: Analysis) -> bool:
    """Draw the requested plots from the leading engine's fit; False when none were asked."""
    if not requests:
        return False
    try:
        from .plots import make_plots
    except ImportError:
        results.notes.append("Plots need matplotlib: pip install 'mixedbridge[plots]'.")
        return True
    plots, notes = make_plots(outcome.problem, outcome.lead.fit, requests)
    results.plots += plots
    results.notes += notes
    return True


def _add_comparison(results: Results, first: EngineRun, second: EngineRun) -> None:
    """Table ``comparison`` of the two engines' tables, and a note when their objectives differ."""
    table = agreement.compare(fit_tables.tables_for(first.fit, first.inference),
                              fit_tables.tables_for(second.fit, second.inference), second.name,
                              sigma=second.fit.sigma)
    results.tables.append(table)
    optima = _optima(results)
    note = agreement.lower_objective_note(*optima) if optima else None
    if note:
        results.notes.append(note)


def _optima(results: Results) -> tuple[agreement.Optimum, agreement.Optimum] | None:
    """Where the two engines' optimizers stopped (None for one engine or a regression)."""
    runs = list(results.outcome.runs.values()) if results.outcome is not None else []
    if len(runs) != 2:
        return None
    a, b = (agreement.optimum(r.name, r.fit) for r in runs)
    return (a, b) if a is not None and b is not None else None


def cross_check_warning(results: Results) -> str | None:
    """With two engines and failed cells in their comparison, the warning that counts them and
    gives the likely cause in words (an optimizer that stopped early); None otherwise."""
    try:
        table = results.table("comparison")
    except KeyError:
        return None
    return agreement.explain(table, *(_optima(results) or (None, None)))


def _summarize_comparison(results: Results) -> None:
    """One line on the whole comparison, once every table has joined it."""
    try:
        table = results.table("comparison")
    except KeyError:
        return
    warning = cross_check_warning(results)
    if warning:
        results.warnings.append(warning)
    else:
        results.notes.append(f"All {len(table.rows)} compared values agree within tolerance.")
