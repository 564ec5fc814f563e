"""Entry point: EMMs, trends and contrasts of a fitted model as result tables."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..engines import native_model
from ..errors import EngineError, SpecError
from ..fit import Fit
from ..problem import Problem
from ..table import Table
from . import adjust as adj
from .contrasts import custom, pairwise
from .emm import OVERALL, EstimateFamily, Marginal, by_groups, evaluate, marginal, summarize
from .emm_tables import family_table
from .refgrid import DesignMaker, RefGrid, build
from .request import Request, parse
from .trends import trend_grid

DfFn = Callable[[np.ndarray], np.ndarray]


def df_function(problem: Problem, fit: Fit, method: str,
                path: str = "/emmeans") -> tuple[DfFn, np.ndarray | None]:
    """df per row of L (k × p over the fit's coefficients) for ``method``, and the covariance
    of β̂ emmeans uses with it (None: ``fit.vcov``).

    ``lm``: the residual df whatever the method (as emmeans). ``lmm``: ``asymptotic`` is ∞;
    ``satterthwaite`` is lmerTest's (``mixedbridge.inference.satterthwaite``);
    ``kenward-roger`` is pbkrtest's ``Lb_ddf`` with the adjusted covariance Φ_A, which emmeans
    also uses for the SEs (``mixedbridge.inference.kenwardroger``). Both need a fit of the
    native engine (for the lme4 engine's fits, R's emmeans computes them).
    """
    if fit.analysis == "lm":
        return (lambda L: np.full(np.atleast_2d(L).shape[0], float(fit.df_residual))), None
    if method == "asymptotic" or fit.analysis == "glmm":
        return (lambda L: np.full(np.atleast_2d(L).shape[0], np.inf)), None
    try:
        model = native_model(fit, f"df method {method!r}")
    except EngineError as exc:
        raise SpecError(f"{exc.message}; pass df_fn, or use \"asymptotic\"", f"{path}/df") from None
    if method == "satterthwaite":
        from ..inference import satterthwaite as sat

        vp = sat.varpar_covariance(model)
        return (lambda L: np.array([sat.contest1d(vp, row)["df"] for row in np.atleast_2d(L)])), None
    from ..inference import kenwardroger as kr

    if model.reml:
        adj_v = kr.vcov_adjusted(model)
        return (lambda L: np.array([kr.contest1d(adj_v, row)["df"] for row in np.atleast_2d(L)])), adj_v.PhiA
    # an ML fit: pbkrtest adjusts a REML refit; emmeans's df are Lb_ddf(L, vcov(ML fit), adjusted)
    adj_ml = kr.vcov_adjusted_reml(model)
    V0 = np.asarray(fit.vcov, dtype=float)
    return (lambda L: np.array([kr.lb_ddf(adj_ml, row, V0) for row in np.atleast_2d(L)])), adj_ml.PhiA


def emmeans_tables(problem: Problem, fit: Fit, request: dict, df_fn: DfFn | None = None,
                   vcov: np.ndarray | None = None, path: str = "/emmeans") -> tuple[list[Table], list[str]]:
    """Tables ``emmeans`` (or ``trends``) and, when asked, ``contrasts``, with notes.

    Parameters
    ----------
    problem, fit
        The prepared model and its fit (any engine: β̂ = ``fit.beta``, V = ``fit.vcov``).
    request
        The spec's ``emmeans`` block (``schemas/emmeans.schema.json``).
    df_fn
        df of each row of L (k × p over ``fit.coef_names``); default :func:`df_function`
        (which, for Kenward-Roger, also supplies the adjusted covariance).
    vcov
        Covariance of β̂ to use instead of ``fit.vcov`` (Kenward-Roger's adjusted covariance:
        emmeans uses it for SEs when df = "kenward-roger").
    """
    req = parse(problem, request, path)
    if df_fn is None:
        df_fn, default_v = df_function(problem, fit, req.df, req.path)
        vcov = default_v if vcov is None else vcov
    V = fit.vcov if vcov is None else np.asarray(vcov, dtype=float)
    if fit.analysis == "glmm":
        from .response import glmm_families
        fams = glmm_families(problem, fit, req, V)
    else:
        fams = compute(problem, list(fit.coef_names), np.asarray(fit.beta, dtype=float), V, req, df_fn,
                       df_label=None if fit.analysis == "lm" else req.df)
    tables = [family_table(f) for f in fams]
    notes = []
    for f in fams:
        notes += [n for n in f.notes if n not in notes]
    return tables, notes


def compute(problem: Problem, coef_names: list[str], beta: np.ndarray, V: np.ndarray, req: Request,
            df_fn: DfFn, df_label: str | None = None) -> list[EstimateFamily]:
    """The summarized families: means (or trends), then contrasts if asked."""
    maker = DesignMaker(problem)
    if req.trend:
        rg, Xd, _ = trend_grid(problem, coef_names, req.trend, req.at, req.sd_steps, maker)
        m = marginal(rg, req.specs, req.by, X=Xd)
        kind, est_name = "trends", f"{req.trend}.trend"
    else:
        rg = build(problem, coef_names, req.at, req.sd_steps, maker)
        m = marginal(rg, req.specs, req.by)
        kind, est_name = "emmeans", "emmean"
    by_pos = [m.facs.index(b) for b in req.by]
    groups = by_groups(m.codes, by_pos)
    main = _means_family(rg, m, req, kind, est_name, groups)
    main.estimate, main.se, main.df = evaluate(rg, m.L, beta, V, df_fn)
    main.coef_L = m.L[:, rg.coef]
    offset = problem.frame.offset
    if offset is not None and not req.trend:
        main.estimate = main.estimate + float(np.mean(offset))
        main.notes.append(f"The offset is held at its mean, {float(np.mean(offset)):.6g} (as emmeans)")
    n_by = int(np.prod([len(m.levels[b]) for b in req.by])) if req.by else 1
    fam_info = adj.AdjustFamily(m.nrow, m.nrow // n_by, adj.PREDICTION, groups)
    main.adjust_family = fam_info
    null = req.null if req.null is not None else 0.0
    main.notes += _context_notes(rg, m, req, df_label)
    summarize(main, req.level, "none", fam_info, test=req.test, null=null)
    if req.null is not None and req.null != 0:
        main.notes.append(f"Tests are against the value {req.null:g}")
    fams = [main]
    if req.contrasts is not None:
        fams.append(_contrast_family(rg, m, req, groups, beta, V, df_fn, df_label, main))
    return fams


def _label_columns(rg: RefGrid, facs: list[str]) -> list[tuple[str, str]]:
    return [(f, "string" if (f in rg.factors or f == OVERALL) else "number") for f in facs]


def _cell(rg: RefGrid, m: Marginal, f: str, i: int):
    v = m.levels[f][m.codes[i, m.facs.index(f)]]
    return str(v) if (f in rg.factors or f == OVERALL) else float(v)


def _means_family(rg: RefGrid, m: Marginal, req: Request, kind: str, est_name: str,
                  groups: list[np.ndarray]) -> EstimateFamily:
    labels = [{f: _cell(rg, m, f, i) for f in m.facs} for i in range(m.nrow)]
    return EstimateFamily(kind, est_name, _label_columns(rg, m.facs), labels, L=m.L, by=list(req.by), by_rows=groups)


def _context_notes(rg: RefGrid, m: Marginal, req: Request, df_label: str | None) -> list[str]:
    notes = []
    if m.avgd_over:
        notes.append("Results are averaged over the levels of: " + ", ".join(m.avgd_over))
    for var, vals in rg.reduced.items():
        if var == req.trend and len(vals) == 1:
            notes.append(f"Trends are evaluated at {var} = {vals[0]:.6g} (its mean)")
        elif len(vals) == 1:
            notes.append(f"Covariate {var} held at its mean, {vals[0]:.6g}")
        else:
            notes.append(f"Covariate {var} at its mean ± {req.sd_steps:g} SD: "
                         + ", ".join(f"{v:.6g}" for v in vals))
    for var in rg.kept:
        notes.append(f"Covariate {var} has two values and is kept at both (emmeans cov.keep = \"2\")")
    if df_label:
        notes.append(f"Degrees-of-freedom method: {df_label}")
    return notes


def check_custom_weights(problem: Problem, req: Request) -> None:
    """Refuse custom contrast weights whose count is not the number of marginal means (per
    ``by`` group), naming the means in order; used by both engines before any computation.
    Pairwise contrasts, or none, have no weights to check."""
    if not isinstance(req.contrasts, list):
        return
    rg = build(problem, list(problem.fixed.names), req.at, req.sd_steps)
    m = marginal(rg, req.specs, req.by)
    _check_weights(m, req, req.contrasts, by_groups(m.codes, [m.facs.index(b) for b in req.by]))


def _check_weights(m: Marginal, req: Request, weights: list[tuple[str, list[float]]],
                   groups: list[np.ndarray]) -> None:
    k = len(groups[0])
    spec_facs = [f for f in m.facs if f not in req.by]
    rows = []
    for i in groups[0]:
        rows.append(" ".join(str(m.levels[f][m.codes[i, m.facs.index(f)]]) for f in spec_facs))
    for j, (name, w) in enumerate(weights):
        if len(w) != k:
            within = (f" within each group of {', '.join(req.by)}" if req.by else "")
            raise SpecError(f"contrast {name!r} has {len(w)} weight(s) but there are {k} marginal means"
                            f"{within}, in this order: " + "; ".join(f"{n + 1}. {r}" for n, r in enumerate(rows)),
                            f"{req.path}/contrasts/{j}/weights")


def _contrast_family(rg: RefGrid, m: Marginal, req: Request, groups: list[np.ndarray], beta, V, df_fn,
                     df_label: str | None, main: EstimateFamily) -> EstimateFamily:
    spec_facs = [f for f in m.facs if f not in req.by]
    if isinstance(req.contrasts, list):
        _check_weights(m, req, req.contrasts, groups)
        cs = custom(m, groups, req.contrasts)
    else:
        cs = pairwise(m, spec_facs, groups, rg.factors)
    L = cs.C @ m.L
    labels = []
    for r in range(L.shape[0]):
        cells = {"contrast": cs.names[r]}
        first = groups[cs.group_of_row[r]][0]
        for b in req.by:
            cells[b] = _cell(rg, m, b, first)
        labels.append(cells)
    cols = [("contrast", "string")] + _label_columns(rg, req.by)
    est_name = "estimate"
    fam = EstimateFamily("contrasts", est_name, cols, labels, L=L, by=list(req.by), by_rows=cs.groups)
    fam.estimate, fam.se, fam.df = evaluate(rg, L, beta, V, df_fn)
    fam.coef_L, fam.coef = L[:, rg.coef], cs.C
    if main.kind == "trends":
        fam.notes.append(f"Contrasts of the trends of {req.trend}")
    if m.avgd_over:
        fam.notes.append("Results are averaged over the levels of: " + ", ".join(m.avgd_over))
    if df_label:
        fam.notes.append(f"Degrees-of-freedom method: {df_label}")
    info = adj.AdjustFamily(cs.size, cs.per_group, cs.kind, cs.groups,
                            corr=correlation(L[:, rg.coef], V, fam.se) if req.adjust == "mvt" else None)
    fam.adjust_family = info
    summarize(fam, req.level, req.adjust, info, test=True, null=0.0)
    return fam


def correlation(L: np.ndarray, V: np.ndarray, se: np.ndarray) -> np.ndarray:
    """Correlation of the estimates L β̂ (emmeans's ``cov2cor(vcov(object))``); NaN for
    rows that are not estimable."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (L @ V @ L.T) / np.outer(se, se)
