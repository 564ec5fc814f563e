"""EMMs, contrasts and trends through R's emmeans, on the model as the ``lme4`` engine fits it.

The model is fitted by the lme4 engine's own worker code (:mod:`._worker`, same safe data,
formula and optimizer settings), in a separate child process that also runs the constant R
code :data:`R_EMMEANS_CODE` on the fitted object. Everything sent to R is a generated safe
name (``v3_``), a level code (``L2``) or a number: variables, ``by``, ``at`` levels, the trend
variable and custom contrast weights (as a numeric matrix whose contrasts R knows as ``c1``,
``c2``...). No user text reaches R, and the only R code evaluated is constant.

Results come back as numbers and level codes and are turned into the same
:class:`~mixedbridge.emmeans.emm.Family` objects, hence the same tables, as the native side, so
``"engine": "both"`` can compare them cell by cell.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading

import numpy as np

#: The constant R code: the value is a function running emmeans on a fitted model.
R_EMMEANS_CODE = r"""
local({
  emmeans::emm_options(pbkrtest.limit = 1e7, lmerTest.limit = 1e7, msg.interaction = FALSE,
                       msg.nesting = FALSE)
  table_of <- function(s, est) {
    cl <- attr(s, "clNames")
    lab <- setdiff(names(s), c(est, "SE", "df", cl, "t.ratio", "z.ratio", "p.value", "null"))
    labels <- lapply(lab, function(nm) {
      x <- s[[nm]]
      if (is.numeric(x)) list(num = as.numeric(x)) else list(chr = as.character(x))
    })
    names(labels) <- lab
    tcol <- if ("t.ratio" %in% names(s)) s$t.ratio else if ("z.ratio" %in% names(s)) s$z.ratio else NULL
    list(labels = labels, estimate = as.numeric(s[[est]]), se = as.numeric(s$SE),
         df = as.numeric(s$df), lower = as.numeric(s[[cl[1]]]), upper = as.numeric(s[[cl[2]]]),
         t = if (is.null(tcol)) NULL else as.numeric(tcol),
         p = if ("p.value" %in% names(s)) as.numeric(s$p.value) else NULL,
         messages = as.character(attr(s, "mesg")), adjust = as.character(attr(s, "adjust")))
  }
  # lmerTest (Satterthwaite) re-evaluates the fit's call (data = d, formula = f, ...) in the
  # formula's environment: put those objects there, rebuilt from the fitted model.
  restore_call_env <- function(fm, wname, oname) {
    ff <- environment(stats::formula(fm))
    d <- as.data.frame(fm@frame)
    if (nzchar(wname)) d[[wname]] <- d[["(weights)"]]
    if (nzchar(oname)) d[[oname]] <- d[["(offset)"]]
    assign("d", d, envir = ff)
    assign("f", stats::formula(fm), envir = ff)
    assign("reml", lme4::isREML(fm), envir = ff)
    assign("ctrl", lme4::lmerControl(), envir = ff)
    invisible(NULL)
  }
  function(fm, specs, by, at, sd_steps, level, df_mode, null, has_null, contr_kind, cmat,
           adjust, trend, wname, oname, contrasts) {
    # the fit's contrasts, for anything that refits or rebuilds the design (lmerTest's devfun)
    old <- options(contrasts = if (identical(contrasts, "sum")) c("contr.sum", "contr.poly")
                               else c("contr.treatment", "contr.poly"))
    on.exit(options(old), add = TRUE)
    is_lmer <- inherits(fm, "merMod")
    if (is_lmer) restore_call_env(fm, wname, oname)
    data <- if (is_lmer) fm@frame else stats::model.frame(fm)
    args <- list(object = fm, specs = specs, data = data)
    if (length(by)) args$by <- by
    if (length(at)) args$at <- at
    if (sd_steps > 0) {
      k <- sd_steps
      args$cov.reduce <- function(x) mean(x) + c(-k, 0, k) * stats::sd(x)
    }
    if (is_lmer) args$lmer.df <- df_mode
    if (nzchar(trend)) {
      args$var <- trend
      em <- do.call(emmeans::emtrends, args)
      est <- paste0(trend, ".trend")
    } else {
      em <- do.call(emmeans::emmeans, args)
      est <- "emmean"
    }
    out <- list(emm = table_of(summary(em, infer = c(TRUE, has_null), level = level,
                                       null = null, adjust = "none"), est))
    if (contr_kind != "none") {
      if (contr_kind == "pairwise") {
        ct <- emmeans::contrast(em, method = "pairwise", adjust = adjust)
      } else {
        lst <- lapply(seq_len(ncol(cmat)), function(j) as.numeric(cmat[, j]))
        names(lst) <- paste0("c", seq_len(ncol(cmat)))
        ct <- emmeans::contrast(em, method = lst, adjust = adjust)
      }
      out$contrasts <- table_of(summary(ct, infer = c(TRUE, TRUE), level = level, adjust = adjust),
                                "estimate")
      out$con_coef <- unname(as.matrix(ct@misc$con.coef))
    }
    out
  }
})
"""

_SAFE = re.compile(r"^v\d+_$")
_LEVEL = re.compile(r"^L(\d+)$")


# ----------------------------------------------------------------------------------------------
# Child process: the lme4 engine's worker plus emmeans
# ----------------------------------------------------------------------------------------------

def _child() -> int:  # pragma: no cover - runs in the child process
    from . import _worker

    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull)
    sys.stdout = sys.stderr
    try:
        r = _worker._R()
        ok = r.ro.r('isTRUE(requireNamespace("emmeans", quietly = TRUE))')[0]
        if not ok:
            raise RuntimeError("the R package emmeans is not installed")
        emm = r.ro.r(R_EMMEANS_CODE)
        store = r.ro.r("function(f) get('store', envir = environment(f))")(r.f_fit)
        getter = r.ro.r("function(store, h) get(as.character(h), envir = store)")
        _worker.send(proto_out, {"ok": True, "versions": r.versions()})
    except BaseException as exc:  # noqa: BLE001
        _worker.send(proto_out, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    while True:
        msg = _worker.recv(proto_in)
        if msg is None:
            return 0
        try:
            if msg.get("op") == "ping":
                reply = {"ok": True}
            elif msg.get("op") == "emmeans":
                reply = _child_emmeans(r, emm, store, getter, msg)
            else:
                reply = {"ok": False, "stage": "protocol", "error": f"unknown request {msg.get('op')!r}"}
        except Exception as exc:  # noqa: BLE001 - every request gets an answer
            reply = {"ok": False, "stage": "emmeans", "error": f"{type(exc).__name__}: {exc}",
                     "console": "".join(r.console[-10:])}
        _worker.send(proto_out, reply)


def _child_emmeans(r, emm, store, getter, msg: dict) -> dict:  # pragma: no cover - child
    from . import _worker

    ri = r.ri
    fit = r.fit({**msg["fit"], "keep": True})
    if not fit.get("ok"):
        return {"ok": False, "stage": "fit", "error": fit.get("error"), "warnings": fit.get("warnings")}
    handle = int(np.ravel(fit["handle"])[0])
    a = msg["args"]
    for name in list(a["specs"]) + list(a["by"]) + list(a["at"]) + ([a["trend"]] if a["trend"] else []):
        if name != "1" and not _SAFE.match(name):
            raise ValueError(f"refusing unsafe name {name!r}")
    at_items = {}
    for name, vals in a["at"].items():
        if isinstance(vals[0], str):
            if not all(_LEVEL.match(v) for v in vals):
                raise ValueError("refusing unsafe level codes")
            at_items[name] = ri.StrSexpVector(list(vals))
        else:
            at_items[name] = ri.FloatSexpVector([float(v) for v in vals])
    cmat = np.asarray(a["cmat"], dtype=float)
    rmat = r.ro.r("matrix")(ri.FloatSexpVector(cmat.ravel(order="F").tolist() or [0.0]),
                            nrow=max(cmat.shape[0], 1))
    warns: list[str] = []
    try:
        fm = getter(store, ri.IntSexpVector([handle]))
        with _RWarnings(r) as w:
            res = emm(fm, ri.StrSexpVector(list(a["specs"])), ri.StrSexpVector(list(a["by"])),
                      r._named_list(at_items), ri.FloatSexpVector([float(a["sd_steps"])]),
                      ri.FloatSexpVector([float(a["level"])]), ri.StrSexpVector([a["df"]]),
                      ri.FloatSexpVector([float(a["null"])]), ri.BoolSexpVector([bool(a["has_null"])]),
                      ri.StrSexpVector([a["contr_kind"]]), rmat, ri.StrSexpVector([a["adjust"]]),
                      ri.StrSexpVector([a["trend"] or ""]),
                      ri.StrSexpVector([msg["fit"].get("weights") or ""]),
                      ri.StrSexpVector([msg["fit"].get("offset") or ""]),
                      ri.StrSexpVector([msg["fit"]["contrasts"]]))
        warns = w.messages
    finally:
        r.forget(handle)
    out = _worker.to_py(res)
    out.update({"ok": True, "beta": fit["beta"], "coef_names": fit["coef_names"], "r_warnings": warns})
    return out


class _RWarnings:
    """Collects what R prints while emmeans runs (messages, warnings) from the worker's console."""

    def __init__(self, r) -> None:
        self.r = r
        self.messages: list[str] = []

    def __enter__(self):
        self._n = len(self.r.console)
        self.r.console.clear()
        return self

    def __exit__(self, *exc) -> None:
        self.messages = [m.strip() for m in self.r.console if m.strip()]


# ----------------------------------------------------------------------------------------------
# Host side
# ----------------------------------------------------------------------------------------------

class EmmeansSession:
    """A child process hosting R with lme4 and emmeans (started on first use, reused)."""

    def __init__(self, python: str | None = None, env: dict | None = None) -> None:
        self.python = python or sys.executable
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.versions: dict = {}
        self._stderr = None
        self._lock = threading.RLock()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> "EmmeansSession":
        from ..errors import EngineError
        from . import _worker
        from .session import INSTALL_HINT

        with self._lock:
            if self.alive:
                return self
            self.close()
            env = dict(os.environ)
            if self.env:
                env.update(self.env)
            self._stderr = tempfile.TemporaryFile()
            try:
                self.proc = subprocess.Popen(
                    [self.python, "-c", "import sys; from mixedbridge.bridge.emmeans_r import _child; sys.exit(_child())"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env, close_fds=True)
            except OSError as exc:
                self.close()
                raise EngineError(f"could not start the R worker for emmeans: {exc}") from None
            hello = _worker.recv(self.proc.stdout)
            if not hello or not hello.get("ok"):
                err = (hello or {}).get("error", "no answer")
                self.close()
                raise EngineError(f"R with emmeans could not be started ({err}); {INSTALL_HINT}")
            self.versions = hello.get("versions", {})
            return self

    def call(self, request: dict) -> dict:
        from ..errors import EngineError
        from . import _worker

        with self._lock:
            self.start()
            try:
                _worker.send(self.proc.stdin, request)
                reply = _worker.recv(self.proc.stdout)
            except (BrokenPipeError, OSError):
                reply = None
            if reply is None:
                self.close()
                raise EngineError("the R worker for emmeans stopped unexpectedly; it restarts on the next call")
            return reply

    def close(self) -> None:
        with self._lock:
            proc, self.proc = self.proc, None
            if proc is not None:
                try:
                    if proc.stdin:
                        proc.stdin.close()
                    proc.wait(timeout=5)
                except Exception:  # noqa: BLE001
                    proc.kill()
                    proc.wait()
                if proc.stdout:
                    proc.stdout.close()
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None


_SESSION: EmmeansSession | None = None
_SESSION_LOCK = threading.Lock()


def session() -> EmmeansSession:
    """The process-wide emmeans R session."""
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is None:
            import atexit

            _SESSION = EmmeansSession()
            atexit.register(_SESSION.close)
        return _SESSION


def r_request(problem, req) -> dict:
    """The worker request for a checked :class:`~mixedbridge.emmeans.request.Request`: the lme4
    engine's fit request plus emmeans arguments in safe names, level codes and numbers."""
    from .engine import SafeNames, request_for

    names = SafeNames(problem.frame.data)
    data = problem.frame.data

    def tok(label: str) -> str:
        return "1" if label == "1" else names.token(label)

    at = {}
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
        "fit": request_for(problem, names, keep=True),
        "args": {"specs": [tok(s) for s in req.specs], "by": [tok(b) for b in req.by], "at": at,
                 "sd_steps": float(req.sd_steps or 0.0), "level": float(req.level), "df": req.df,
                 "null": float(req.null or 0.0), "has_null": bool(req.test), "contr_kind": kind,
                 "cmat": cmat, "adjust": req.adjust, "trend": tok(req.trend) if req.trend else ""},
    }


def r_families(problem, request: dict, path: str = "/emmeans", r_session: EmmeansSession | None = None):
    """The summarized families (means or trends, then contrasts) as R's emmeans computes them."""
    from ..emmeans.emm import OVERALL, Family
    from ..emmeans.request import parse
    from ..errors import EngineError, ModelError
    from .engine import SafeNames

    req = parse(problem, request, path)
    if req.contrasts not in (None, "pairwise"):
        _native_weight_check(problem, req)
    sess = r_session or session()
    reply = sess.call(r_request(problem, req))
    names = SafeNames(problem.frame.data)
    if not reply.get("ok"):
        msg = names.text(str(reply.get("error", "unknown error")))
        if reply.get("stage") == "fit":
            raise ModelError(f"R could not fit the model for emmeans: {msg}")
        raise EngineError(f"emmeans in R failed: {msg}")
    data = problem.frame.data
    label_of = {names.token(lab): lab for lab in names.labels}
    factors = problem.frame.factors

    def labels_from(tab: dict) -> tuple[list[tuple[str, str]], list[dict]]:
        cols, rows = [], None
        for safe, col in tab["labels"].items():
            lab = label_of.get(safe, safe)
            if lab in ("contrast",):
                continue
            if "chr" in col:
                vals = col["chr"]
                if lab in factors:
                    cats = [str(c) for c in data[lab].cat.categories]
                    vals = [cats[int(_LEVEL.match(v).group(1))] for v in vals]
                typ = "string"
            else:
                vals = [float(v) for v in np.ravel(col["num"])]
                typ = "number"
            cols.append((lab, typ))
            rows = [{} for _ in vals] if rows is None else rows
            for cell, v in zip(rows, vals):
                cell[lab] = v
        return cols, rows or []

    def fill(fam: Family, tab: dict) -> Family:
        fam.estimate = np.ravel(np.asarray(tab["estimate"], dtype=float))
        fam.se = np.ravel(np.asarray(tab["se"], dtype=float))
        fam.df = np.ravel(np.asarray(tab["df"], dtype=float))
        fam.lower = np.ravel(np.asarray(tab["lower"], dtype=float))
        fam.upper = np.ravel(np.asarray(tab["upper"], dtype=float))
        if tab.get("t") is not None:
            fam.t = np.ravel(np.asarray(tab["t"], dtype=float))
            fam.p = np.ravel(np.asarray(tab["p"], dtype=float))
        fam.notes = ["[emmeans] " + names.text(m) for m in (tab.get("messages") or [])]
        fam.adjust = (tab.get("adjust") or ["none"])[0]
        return fam

    emm_tab = reply["emm"]
    cols, rows = labels_from(emm_tab)
    if OVERALL in req.specs:
        cols = [(OVERALL, "string")] + [c for c in cols if c[0] != OVERALL]
    kind = "trends" if req.trend else "emmeans"
    est_name = f"{req.trend}.trend" if req.trend else "emmean"
    main = fill(Family(kind, est_name, cols, rows, by=list(req.by)), emm_tab)
    fams = [main]
    if "contrasts" in reply:
        ct = reply["contrasts"]
        coef = np.atleast_2d(np.asarray(reply["con_coef"], dtype=float))
        spec_facs = [c for c, _ in cols if c not in req.by]
        emm_labels = [_emm_label(r, spec_facs, factors) for r in rows]
        labels = []
        n_custom = len(req.contrasts) if isinstance(req.contrasts, list) else 0
        for i in range(coef.shape[0]):
            if req.contrasts == "pairwise":
                hi, lo = int(np.argmax(coef[i])), int(np.argmin(coef[i]))
                name = f"{emm_labels[hi]} - {emm_labels[lo]}"
            else:
                name = req.contrasts[i % n_custom][0]
            first = int(np.flatnonzero(coef[i])[0]) if np.any(coef[i]) else 0
            cell = {"contrast": name}
            cell.update({b: rows[first][b] for b in req.by})
            labels.append(cell)
        if req.contrasts == "pairwise":
            labels = _pair_parens(labels, emm_labels)
        ccols = [("contrast", "string")] + [c for c in cols if c[0] in req.by]
        fams.append(fill(Family("contrasts", "estimate", ccols, labels, by=list(req.by)), ct))
    return fams


def _emm_label(row: dict, spec_facs: list[str], factors: set[str]) -> str:
    from ..emmeans.contrasts import _num
    from ..emmeans.emm import OVERALL

    parts = []
    for f in spec_facs:
        v = row[f]
        parts.append(str(v) if (f in factors or f == OVERALL) else f"{f}{_num(v)}")
    return " ".join(parts)


def _pair_parens(labels: list[dict], emm_labels: list[str]) -> list[dict]:
    from ..emmeans.contrasts import _PARENS

    if not any(_PARENS.search(s) for s in emm_labels):
        return labels
    wrap = {s: (f"({s})" if _PARENS.search(s) else s) for s in emm_labels}
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


def _native_weight_check(problem, req) -> None:
    """Refuse custom weights of the wrong length with the same message as the native side."""
    from ..emmeans.api import _check_weights
    from ..emmeans.emm import by_groups, marginal
    from ..emmeans.refgrid import build

    rg = build(problem, list(problem.fixed.names), req.at, req.sd_steps)
    m = marginal(rg, req.specs, req.by)
    _check_weights(m, req, by_groups(m.codes, [m.facs.index(b) for b in req.by]))


def emmeans_tables_r(problem, request: dict, path: str = "/emmeans",
                     r_session: EmmeansSession | None = None):
    """Tables ``emmeans``/``trends`` and ``contrasts`` from R's emmeans, with notes."""
    from ..emmeans.tables import family_table

    fams = r_families(problem, request, path, r_session)
    tables = [family_table(f) for f in fams]
    notes: list[str] = []
    for f in fams:
        notes += [n for n in f.notes if n not in notes]
    return tables, notes


__all__ = ["R_EMMEANS_CODE", "EmmeansSession", "session", "r_request", "r_families", "emmeans_tables_r"]
