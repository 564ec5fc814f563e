"""The R worker: a child process that embeds R through rpy2 and answers fit requests.

Run as a script (``python _worker.py``), never imported by the package: it needs only numpy
and rpy2, so the host process never loads R (R's console output, signal handlers and C stack
checks stay out of it, and a crash inside R cannot take the host down).

Protocol: length-prefixed pickles (8-byte big-endian length, then the pickle) on the worker's
original stdin (requests) and stdout (replies). The worker first sends ``{"ok": True,
"versions": ...}`` or ``{"ok": False, "error": ...}``, then one reply per request until its
input ends. File descriptors 0 and 1 are re-pointed at /dev/null and stderr, so nothing R
reads or prints can touch the protocol.

Requests carry only generated safe names (``v0_``, ``v1_``), level codes and numbers, never a
user's column name, level label or formula text. The only R code evaluated is the constant
:data:`R_CODE` below, plus one formula made of safe names and operators, checked against a
strict pattern on both sides before R parses it.
"""
from __future__ import annotations

import os
import pickle
import re
import struct
import sys
import time

#: What a formula sent to R may contain: safe names, 0/1, and the formula operators.
SAFE_FORMULA = re.compile(r"^[v0-9_ ~+:()|]+$")

#: The constant R code of the worker: the value of the last expression is a list of functions.
R_CODE = r"""
local({
  store <- new.env()
  counter <- 0L

  make_data <- function(num, fac, nlev) {
    cols <- num
    for (nm in names(fac)) {
      cols[[nm]] <- structure(fac[[nm]], levels = paste0("L", seq_len(nlev[[nm]]) - 1L),
                              class = "factor")
    }
    list2DF(cols)
  }

  lmer_control <- function() {
    lme4::lmerControl(optimizer = "nloptwrap",
                      optCtrl = list(xtol_abs = 1e-8, ftol_abs = 1e-8, maxeval = 1e5))
  }

  extract_lm <- function(fm) {
    cf <- stats::coef(fm)
    ok <- !is.na(cf)
    s <- summary(fm)
    list(coef_names = names(cf)[ok], beta = unname(cf[ok]), dropped = names(cf)[!ok],
         vcov = unname(as.matrix(stats::vcov(fm, complete = FALSE))),
         sigma = stats::sigma(fm), nobs = stats::nobs(fm),
         loglik = as.numeric(stats::logLik(fm)), aic = stats::AIC(fm), bic = stats::BIC(fm),
         deviance = stats::deviance(fm), df_residual = stats::df.residual(fm),
         fitted = unname(stats::fitted(fm)), residuals = unname(stats::residuals(fm)),
         r_squared = s$r.squared, adj_r_squared = s$adj.r.squared)
  }

  extract_lmer <- function(fm) {
    cn <- lme4::getME(fm, "cnms")
    fl <- lme4::getME(fm, "flist")
    asg <- attr(fl, "assign")
    Gp <- lme4::getME(fm, "Gp")
    b <- as.numeric(lme4::getME(fm, "b"))
    re <- lme4::ranef(fm, condVar = TRUE)
    vc <- lme4::VarCorr(fm)
    seen <- integer(length(fl))
    blocks <- vector("list", length(cn))
    varcorr <- vector("list", length(cn))
    for (k in seq_along(cn)) {
      fac <- asg[k]
      g <- names(fl)[fac]
      seen[fac] <- seen[fac] + 1L
      nc <- length(cn[[k]])
      pv <- attr(re[[g]], "postVar")
      pvk <- if (is.list(pv)) pv[[seen[fac]]] else pv
      nl <- dim(pvk)[3]
      csd <- vapply(seq_len(nl), function(i) sqrt(pmax(diag(matrix(pvk[, , i], nc, nc)), 0)),
                    numeric(nc))
      blocks[[k]] <- list(group = g, terms = cn[[k]], levels = levels(fl[[fac]]),
                          modes = matrix(b[(Gp[k] + 1L):Gp[k + 1L]], ncol = nc, byrow = TRUE),
                          condsd = matrix(csd, ncol = nc, byrow = TRUE))
      m <- vc[[k]]
      corr <- attr(m, "correlation")
      if (is.null(corr)) corr <- diag(nc)
      varcorr[[k]] <- list(group = g, terms = colnames(m), sd = unname(attr(m, "stddev")),
                           corr = unname(as.matrix(corr)))
    }
    ng <- lme4::ngrps(fm)
    oi <- fm@optinfo
    code <- oi$conv$lme4$code
    reml <- lme4::isREML(fm)
    list(coef_names = names(lme4::fixef(fm)), beta = unname(lme4::fixef(fm)),
         dropped = as.character(names(attr(lme4::getME(fm, "X"), "col.dropped"))),
         vcov = unname(as.matrix(stats::vcov(fm))),
         sigma = stats::sigma(fm), nobs = stats::nobs(fm), reml = reml,
         loglik = as.numeric(stats::logLik(fm)), aic = stats::AIC(fm), bic = stats::BIC(fm),
         reml_crit = if (reml) lme4::REMLcrit(fm) else NA_real_,
         deviance = if (reml) lme4::REMLcrit(fm) else stats::deviance(fm),
         df_residual = stats::df.residual(fm),
         theta = unname(lme4::getME(fm, "theta")),
         varcorr = varcorr, ranef = blocks,
         ngroups_names = names(ng), ngroups = unname(as.integer(ng)),
         fitted = unname(stats::fitted(fm)), residuals = unname(stats::residuals(fm)),
         optimizer = as.character(oi$optimizer), feval = as.integer(oi$feval),
         conv_opt = as.numeric(oi$conv$opt), conv_code = as.numeric(code),
         conv_messages = as.character(unlist(oi$conv$lme4$messages)),
         opt_message = as.character(oi$message),
         singular = lme4::isSingular(fm))
  }

  fit <- function(analysis, num, fac, nlev, ftext, reml, contrasts, wname, oname, keep) {
    warns <- character(0)
    msgs <- character(0)
    if (!grepl("^[v0-9_ ~+:()|]+$", ftext)) stop("refusing a formula that is not made of safe names")
    old <- options(contrasts = if (identical(contrasts, "sum")) c("contr.sum", "contr.poly")
                               else c("contr.treatment", "contr.poly"),
                   lmerControl = NULL, na.action = "na.omit", warn = 1)
    on.exit(options(old), add = TRUE)
    stage <- "data"
    out <- withCallingHandlers(
      tryCatch({
        d <- make_data(num, fac, nlev)
        f <- stats::as.formula(ftext, env = new.env(parent = baseenv()))
        ctrl <- lmer_control()
        cl <- if (identical(analysis, "lm")) quote(stats::lm(formula = f, data = d))
              else quote(lme4::lmer(formula = f, data = d, REML = reml, control = ctrl))
        if (nzchar(wname)) cl$weights <- as.name(wname)
        if (nzchar(oname)) cl$offset <- as.name(oname)
        stage <- "fit"
        fm <- eval(cl)
        stage <- "extract"
        res <- if (identical(analysis, "lm")) extract_lm(fm) else extract_lmer(fm)
        if (keep) {
          counter <<- counter + 1L
          assign(as.character(counter), fm, envir = store)
          res$handle <- counter
          ids <- sort(as.integer(ls(store)))
          if (length(ids) > 4L) rm(list = as.character(ids[seq_len(length(ids) - 4L)]), envir = store)
        }
        res$ok <- TRUE
        res
      }, error = function(e) list(ok = FALSE, stage = stage, error = conditionMessage(e))),
      warning = function(w) {
        warns <<- c(warns, conditionMessage(w))
        invokeRestart("muffleWarning")
      },
      message = function(m) {
        msgs <<- c(msgs, sub("\n$", "", conditionMessage(m)))
        invokeRestart("muffleMessage")
      })
    out$warnings <- warns
    out$messages <- msgs
    out
  }

  forget <- function(handle) {
    key <- as.character(handle)
    if (exists(key, envir = store, inherits = FALSE)) rm(list = key, envir = store)
    invisible(NULL)
  }

  versions <- function() {
    pk <- c("lme4", "Matrix", "lmerTest", "pbkrtest", "emmeans")
    v <- vapply(pk, function(p) tryCatch(as.character(utils::packageVersion(p)),
                                         error = function(e) NA_character_), "")
    list(R = paste(R.version$major, R.version$minor, sep = "."),
         packages = unname(pk), package_versions = unname(v))
  }

  list(fit = fit, forget = forget, versions = versions)
})
"""


# ------------------------------------------------------------------------------------------
# framing
# ------------------------------------------------------------------------------------------

def send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">Q", len(data)) + data)
    stream.flush()


def _read_exact(stream, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv(stream):
    head = _read_exact(stream, 8)
    if head is None:
        return None
    (n,) = struct.unpack(">Q", head)
    body = _read_exact(stream, n)
    if body is None:
        return None
    return pickle.loads(body)


# ------------------------------------------------------------------------------------------
# R side
# ------------------------------------------------------------------------------------------

class _R:
    """The embedded R session and the worker's functions in it."""

    def __init__(self) -> None:
        import numpy as np  # noqa: F401 - fail early with a clear message
        import rpy2
        from rpy2.rinterface_lib import callbacks

        self.console: list[str] = []
        callbacks.consolewrite_print = self._keep
        callbacks.consolewrite_warnerror = self._keep
        callbacks.showmessage = self._keep
        callbacks.consoleread = lambda prompt: ""
        import rpy2.rinterface as ri
        import rpy2.robjects as ro

        self.ri, self.ro = ri, ro
        self.rpy2_version = rpy2.__version__
        ok = ro.r("isTRUE(requireNamespace(\"lme4\", quietly = TRUE))")[0]
        if not ok:
            raise RuntimeError("the R package lme4 is not installed")
        ro.r('invisible(loadNamespace("lme4"))')
        funcs = ro.r(R_CODE)
        self.f_fit = funcs.rx2("fit")
        self.f_forget = funcs.rx2("forget")
        self.f_versions = funcs.rx2("versions")

    def _keep(self, text: str) -> None:
        self.console.append(str(text))
        del self.console[:-50]

    def versions(self) -> dict:
        v = to_py(self.f_versions())
        out = {"R": v["R"][0], "rpy2": self.rpy2_version}
        out.update({p: ver for p, ver in zip(v["packages"], v["package_versions"])})
        return out

    # -- conversion Python -> R -------------------------------------------------------------

    def _named_list(self, items: dict):
        ri = self.ri
        lst = ri.ListSexpVector(list(items.values()))
        if items:
            lst.names = ri.StrSexpVector(list(items.keys()))
        return lst

    def fit(self, req: dict) -> dict:
        import numpy as np

        ri = self.ri
        ftext = req["formula"]
        if not SAFE_FORMULA.match(ftext):
            raise ValueError("refusing a formula that is not made of safe names")
        for name in list(req["numeric"]) + list(req["factors"]) + [req["weights"], req["offset"]]:
            if name and not re.fullmatch(r"v\d+_", name):
                raise ValueError(f"refusing unsafe column name {name!r}")
        num = {k: ri.FloatSexpVector.from_memoryview(memoryview(np.ascontiguousarray(v, dtype=np.float64)))
               for k, v in req["numeric"].items()}
        fac = {k: ri.IntSexpVector.from_memoryview(
                   memoryview(np.ascontiguousarray(codes, dtype=np.int32) + np.int32(1)))
               for k, (codes, _) in req["factors"].items()}
        nlev = {k: ri.IntSexpVector([int(n)]) for k, (_, n) in req["factors"].items()}
        t0 = time.perf_counter()
        res = self.f_fit(
            ri.StrSexpVector([req["analysis"]]), self._named_list(num), self._named_list(fac),
            self._named_list(nlev), ri.StrSexpVector([ftext]), ri.BoolSexpVector([bool(req["reml"])]),
            ri.StrSexpVector([req["contrasts"]]), ri.StrSexpVector([req["weights"] or ""]),
            ri.StrSexpVector([req["offset"] or ""]), ri.BoolSexpVector([bool(req.get("keep", False))]),
        )
        t1 = time.perf_counter()
        out = to_py(res)
        out["seconds_r"] = t1 - t0
        return out

    def forget(self, handle: int) -> dict:
        self.f_forget(self.ri.IntSexpVector([int(handle)]))
        return {"ok": True}


def to_py(obj):
    """An R value as plain Python: named lists -> dict, vectors -> numpy arrays or lists of
    str, matrices -> 2-d arrays, NULL -> None."""
    import numpy as np
    import rpy2.rinterface as ri

    if obj is ri.NULL or isinstance(obj, type(ri.NULL)):
        return None
    if isinstance(obj, ri.ListSexpVector):
        items = [to_py(x) for x in obj]
        names = obj.names
        if names is not ri.NULL and not isinstance(names, type(ri.NULL)):
            return dict(zip([str(n) for n in names], items))
        return items
    if isinstance(obj, ri.StrSexpVector):
        return [None if x is ri.NA_Character else str(x) for x in obj]
    if isinstance(obj, ri.BoolSexpVector):
        arr = np.array([bool(x) if x is not ri.NA_Logical else False for x in obj], dtype=bool)
    elif isinstance(obj, ri.IntSexpVector):
        arr = np.array(obj.memoryview(), dtype=np.int64) if len(obj) else np.zeros(0, dtype=np.int64)
    elif isinstance(obj, ri.FloatSexpVector):
        arr = np.array(obj.memoryview(), dtype=np.float64) if len(obj) else np.zeros(0)
    else:
        return str(obj)
    try:
        dim = obj.do_slot("dim")
    except LookupError:
        return arr
    return arr.reshape(tuple(int(d) for d in dim), order="F")


# ------------------------------------------------------------------------------------------
# main loop
# ------------------------------------------------------------------------------------------

def main() -> int:
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull)
    sys.stdout = sys.stderr
    try:
        r = _R()
        send(proto_out, {"ok": True, "versions": r.versions(), "pid": os.getpid()})
    except BaseException as exc:  # noqa: BLE001 - report why R could not start, then stop
        import traceback
        traceback.print_exc()
        send(proto_out, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    while True:
        msg = recv(proto_in)
        if msg is None:
            return 0
        try:
            op = msg.get("op")
            if op == "fit":
                t0 = time.perf_counter()
                reply = r.fit(msg)
                reply["seconds_worker"] = time.perf_counter() - t0
            elif op == "forget":
                reply = r.forget(msg["handle"])
            elif op == "versions":
                reply = {"ok": True, "versions": r.versions()}
            elif op == "ping":
                reply = {"ok": True}
            else:
                reply = {"ok": False, "stage": "protocol", "error": f"unknown request {op!r}"}
        except Exception as exc:  # noqa: BLE001 - every request gets an answer
            reply = {"ok": False, "stage": "worker", "error": f"{type(exc).__name__}: {exc}",
                     "console": "".join(r.console[-10:])}
        send(proto_out, reply)


if __name__ == "__main__":
    sys.exit(main())
