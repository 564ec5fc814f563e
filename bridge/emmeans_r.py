"""EMMs, contrasts and trends through R's emmeans, on the model as the ``lme4`` engine fits it.

R runs in the one R worker (:mod:`.session`, :mod:`._worker`); its ``emmeans`` request
(:mod:`._ops_emmeans`) works on a model the worker has fitted and stored, named by the handle in
the fit's R handle: pass the lme4 engine's fit (``engine`` ``"both"`` or ``"lme4"``)
and nothing is refitted; without one, the model is fitted once for the request and dropped
after it. Everything sent to R is a generated safe name (``v3_``), a level code (``L2``) or a
number: variables, ``by``, ``at`` levels, the trend variable and custom contrast weights (as a
numeric matrix whose contrasts R knows as ``c1``, ``c2``...). No user text reaches R, and the
only R code evaluated is constant.

Results come back as numbers and level codes and are turned into the same
:class:`~mixedbridge.emmeans.emm.EstimateFamily` objects, hence the same tables, as the native side, so
``"engine": "both"`` can compare them cell by cell.
"""
from __future__ import annotations

import numpy as np

from ..emmeans.emm import OVERALL, EstimateFamily
from ..errors import EngineError
from ..safenames import SafeNames
from .engine import Lme4Engine, r_handle, safe_names
from .session import session


def r_request(problem, req, handle: int) -> dict:
    """The worker request for a checked :class:`~mixedbridge.emmeans.request.Request` on the
    stored model ``handle``: emmeans arguments in safe names, level codes and numbers."""
    names = safe_names(problem)
    data = problem.frame.data

    def tok(label: str) -> str:
        return "1" if label == "1" else names.token(label)

    at: dict[str, list[str] | list[float]] = {}  # level codes of a factor, values of a covariate
    for var, vals in req.at.items():
        if var in problem.frame.factors:
            cats = [str(c) for c in data[var].cat.categories]
            at[tok(var)] = [f"L{cats.index(v)}" for v in vals]
        else:
            at[tok(var)] = [float(v) for v in vals]
    if req.contrasts is None:
        kind, cmat = "none", np.zeros((0, 0))
    elif req.contrasts == "pairwise":
        kind, cmat = "pairwise", np.zeros((0, 0))
    else:
        kind = "custom"
        cmat = np.array([w for _, w in req.contrasts], dtype=float).T
    return {
        "op": "emmeans",
        "handle": int(handle),
        "args": {"specs": [tok(s) for s in req.specs], "by": [tok(b) for b in req.by], "at": at,
                 "sd_steps": float(req.sd_steps or 0.0), "level": float(req.level), "df": req.df,
                 "null": float(req.null or 0.0), "has_null": bool(req.test), "contr_kind": kind,
                 "cmat": cmat, "adjust": req.adjust, "trend": tok(req.trend) if req.trend else "",
                 "type": req.type, "regrid": bool(req.regrid)},
    }


def r_families(problem, request: dict, path: str = "/emmeans", r_session=None, fit=None):
    """The summarized families (means or trends, then contrasts) as R's emmeans computes them,
    on the stored R model of ``fit`` (the lme4 engine's) or,
    without one, on a model fitted for this request in ``r_session`` (default: the process-wide
    session)."""
    from ..emmeans.api import check_custom_weights
    from ..emmeans.request import parse

    req = parse(problem, request, path)
    if req.contrasts not in (None, "pairwise"):
        check_custom_weights(problem, req)
    names = safe_names(problem)
    reply = _call_emmeans(problem, req, r_session, fit)
    if not reply.get("ok"):
        msg = names.text(str(reply.get("error", "unknown error")))
        raise EngineError(f"emmeans in R failed: {msg}")
    cols, rows = _labels_from(reply["emm"], names, problem.frame.factors)
    if OVERALL in req.specs:
        cols = [(OVERALL, "string")] + [c for c in cols if c[0] != OVERALL]
    kind = "trends" if req.trend else "emmeans"
    est_name = f"{req.trend}.trend" if req.trend else "emmean"
    fams = [_fill(EstimateFamily(kind, est_name, cols, rows, by=list(req.by)), reply["emm"], names)]
    if "contrasts" in reply:
        labels = _contrast_labels(req, cols, rows, reply["con_coef"], problem.frame.factors)
        ccols = [("contrast", "string")] + [c for c in cols if c[0] in req.by]
        contrasts = EstimateFamily("contrasts", "estimate", ccols, labels, by=list(req.by))
        fams.append(_fill(contrasts, reply["contrasts"], names))
        if req.contrasts == "pairwise" and contrasts.est_name in ("odds.ratio", "ratio"):
            for cells in contrasts.labels:  # emmeans writes ratios a / b
                cells["contrast"] = cells["contrast"].replace(" - ", " / ", 1)
    return fams


def _call_emmeans(problem, req, r_session, fit) -> dict:
    """The worker's reply to the emmeans request, on ``fit``'s stored R model or on one fitted
    (and dropped again) for this request."""
    sess = r_session or session()
    own = None
    if fit is None:
        own = r_handle(Lme4Engine(sess, keep_models=True).fit(problem))
        handle = own
    else:
        handle = r_handle(fit, "R's emmeans")
    try:
        return sess.call(r_request(problem, req, handle))
    finally:
        if own is not None and sess.alive:
            try:
                sess.call({"op": "forget", "handle": own})
            except EngineError:
                pass


def _labels_from(tab: dict, names: SafeNames, factors: set[str]) -> tuple[list[tuple[str, str]], list[dict]]:
    """The label columns (name, type) and cells of R's summary table, in the user's names."""
    label_of = {names.token(lab): lab for lab in names.labels}
    cols: list[tuple[str, str]] = []
    rows: list[dict] | None = None
    for safe, col in tab["labels"].items():
        lab = label_of.get(safe, safe)
        if lab == "contrast":
            continue
        if "chr" in col:
            vals = [names.level_label(lab, v) for v in col["chr"]] if lab in factors else list(col["chr"])
            cols.append((lab, "string"))
        else:
            vals = [float(v) for v in np.ravel(col["num"])]
            cols.append((lab, "number"))
        rows = [{} for _ in vals] if rows is None else rows
        for cell, v in zip(rows, vals):
            cell[lab] = v
    return cols, rows or []


def _fill(fam: EstimateFamily, tab: dict, names: SafeNames) -> EstimateFamily:
    """A family's numbers, notes and adjustment from R's summary table."""
    def col(key: str) -> np.ndarray:
        return np.ravel(np.asarray(tab[key], dtype=float))

    fam.estimate, fam.se, fam.df, fam.lower, fam.upper = (col(k) for k in ("estimate", "se", "df", "lower", "upper"))
    if tab.get("t") is not None:
        fam.t, fam.p = col("t"), col("p")
    fam.notes = ["[emmeans] " + names.text(m) for m in (tab.get("messages") or [])]
    if fam.kind != "trends" and tab.get("est_name"):
        fam.est_name = _first(tab["est_name"])  # emmean, prob, rate, odds.ratio, ratio, ...
    if tab.get("stat_name"):
        fam.stat_name = _first(tab["stat_name"])
    fam.adjust = (tab.get("adjust") or ["none"])[0]
    return fam


def _first(value) -> str:
    """A string R sent as a scalar or a length-one vector."""
    return str(value[0] if isinstance(value, (list, tuple, np.ndarray)) else value)


def _contrast_labels(req, cols: list[tuple[str, str]], rows: list[dict], con_coef, factors: set[str]) -> list[dict]:
    """Each contrast's name (as emmeans writes it, or the custom contrast's) and ``by`` cells."""
    coef = np.atleast_2d(np.asarray(con_coef, dtype=float))
    spec_facs = [c for c, _ in cols if c not in req.by]
    emm_labels = [_emm_label(r, spec_facs, factors) for r in rows]
    n_custom = len(req.contrasts) if isinstance(req.contrasts, list) else 0
    labels = []
    for i in range(coef.shape[0]):
        if req.contrasts == "pairwise":
            name = f"{emm_labels[int(np.argmax(coef[i]))]} - {emm_labels[int(np.argmin(coef[i]))]}"
        else:
            name = req.contrasts[i % n_custom][0]
        first = int(np.flatnonzero(coef[i])[0]) if np.any(coef[i]) else 0
        labels.append({"contrast": name, **{b: rows[first][b] for b in req.by}})
    return _pair_parens(labels, emm_labels) if req.contrasts == "pairwise" else labels


def _emm_label(row: dict, spec_facs: list[str], factors: set[str]) -> str:
    from ..emmeans.contrasts import r_character

    parts = []
    for f in spec_facs:
        v = row[f]
        parts.append(str(v) if (f in factors or f == OVERALL) else f"{f}{r_character(v)}")
    return " ".join(parts)


def _pair_parens(labels: list[dict], emm_labels: list[str]) -> list[dict]:
    from ..emmeans.contrasts import needs_parens

    if not any(needs_parens(s) for s in emm_labels):
        return labels
    wrap = {s: (f"({s})" if needs_parens(s) else s) for s in emm_labels}
    out = []
    for cell in labels:
        for a in emm_labels:
            for b in emm_labels:
                if cell["contrast"] == f"{a} - {b}":
                    cell = {**cell, "contrast": f"{wrap[a]} - {wrap[b]}"}
                    break
            else:
                continue
            break
        out.append(cell)
    return out


def emmeans_tables_r(problem, request: dict, path: str = "/emmeans", r_session=None, fit=None):
    """Tables ``emmeans``/``trends`` and ``contrasts`` from R's emmeans, with notes; on the
    stored R model of ``fit`` when given (see :func:`r_families`)."""
    from ..emmeans.emm_tables import family_table

    fams = r_families(problem, request, path, r_session, fit)
    tables = [family_table(f) for f in fams]
    notes: list[str] = []
    for f in fams:
        notes += [n for n in f.notes if n not in notes]
    return tables, notes


__all__ = ["r_request", "r_families", "emmeans_tables_r"]
