"""The R worker: the one child process that embeds R through rpy2 and answers every R request
(fits; inference and emmeans on the fitted models).

Run as a script (``python _worker.py``), never imported by the package: it needs only numpy
and rpy2, so the host process never loads R (R's console output, signal handlers and C stack
checks stay out of it, and a crash inside R cannot take the host down).

Protocol: length-prefixed pickles (8-byte big-endian length, then the pickle) on the worker's
original stdin (requests) and stdout (replies). The worker first sends ``{"ok": True,
"versions": ...}`` or ``{"ok": False, "error": ...}``, then one reply per request until its
input ends. File descriptors 0 and 1 are re-pointed at /dev/null and stderr, so nothing R
reads or prints can touch the protocol. Each request names its operation (``op``); the
operations are a registry: ``fit``, ``forget``, ``pin``, ``versions``, ``ping`` here, and those
of the sibling modules :data:`OP_MODULES` (``_ops_infer.py``: ``infer``, ``compare``,
``lm_anova``; ``_ops_emmeans.py``: ``emmeans``), plain modules imported from this directory
that never import mixedbridge. They load their R packages on first use.

Fitted models: a fit request with ``keep`` stores the model under a new integer handle (unique
to this worker process) together with what re-evaluating its call needs: the model's call reads
``lme4::lmer(formula = f, data = d, REML = reml, control = ctrl, contrasts = contr, ...)`` and
``d``, ``f``, ``reml``, ``ctrl`` and ``contr`` live in the formula's environment, which is the
stored entry. So ``update()``, ``profile()``, lmerTest and emmeans work on the stored fit
without refitting. The store keeps the last :data:`MAX_KEPT` models (pinned ones are never
dropped); a request naming a handle the worker does not hold is answered with
``stage: "handle"``.

Requests carry only generated safe names (``v0_``, ``v1_``), level codes and numbers, never a
user's column name, level label or formula text. The only R code evaluated is the constant
:data:`R_CODE` below and the constant code of the op modules, plus one formula made of safe
names and operators, checked against a strict pattern on both sides before R parses it.
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

#: How many fitted models the worker keeps (``compare`` needs up to 4 at once).
MAX_KEPT = 8

#: The sibling modules whose operations the worker serves (each has ``register(r) -> {op: handler}``).
OP_MODULES = ("_ops_infer", "_ops_emmeans")

#: The constant R code of the worker: the value of the last expression is a list of functions.
R_CODE = r"""
local({
  store <- new.env()      # handle -> entry (environment holding model, d, f, reml, ctrl, contr, kind)
  kept <- character(0)    # handles, oldest first
  pinned <- new.env()     # handles that must not be dropped (model comparison)
  max_kept <- MAX_KEPT_L

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

  has <- function(key) exists(key, envir = store, inherits = FALSE)

  get_entry <- function(key) {
    key <- as.character(key)
    if (!has(key)) stop("no fitted model with handle ", key, " in the R worker")
    get(key, envir = store)
  }

  get_model <- function(key) get_entry(key)$model

  drop_old <- function() {
    while (length(kept) > max_kept) {
      free <- kept[!vapply(kept, exists, NA, envir = pinned, inherits = FALSE)]
      if (!length(free)) break
      rm(list = free[1], envir = store)
      kept <<- setdiff(kept, free[1])
    }
  }

  keep_model <- function(key, fm, e, analysis, contrasts) {
    # the call re-evaluates to this model whatever the options: pin the factors' contrasts
    contr <- if (identical(analysis, "lm")) fm$contrasts else attr(lme4::getME(fm, "X"), "contrasts")
    if (length(contr)) {
      assign("contr", contr, envir = e)
      if (identical(analysis, "lm")) fm$call$contrasts <- quote(contr) else fm@call$contrasts <- quote(contr)
    }
    assign("model", fm, envir = e)
    assign("kind", contrasts, envir = e)
    assign(key, e, envir = store)
    kept <<- c(setdiff(kept, key), key)
    drop_old()
  }

  fit <- function(analysis, num, fac, nlev, ftext, reml, contrasts, wname, oname, key) {
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
        # everything the call names lives in e, the formula's environment (the stored entry).
        # Its parent is the (empty) global environment: lme4's lFormula looks up "weights" and
        # "offset" from the calling environment and needs stats on the search path.
        e <- new.env(parent = globalenv())
        d <- make_data(num, fac, nlev)
        f <- stats::as.formula(ftext, env = e)
        assign("d", d, envir = e)
        assign("f", f, envir = e)
        assign("reml", reml, envir = e)
        assign("ctrl", lmer_control(), envir = e)
        cl <- if (identical(analysis, "lm")) quote(stats::lm(formula = f, data = d))
              else quote(lme4::lmer(formula = f, data = d, REML = reml, control = ctrl))
        if (nzchar(wname)) cl$weights <- as.name(wname)
        if (nzchar(oname)) cl$offset <- as.name(oname)
        stage <- "fit"
        fm <- eval(cl, e)
        stage <- "extract"
        res <- if (identical(analysis, "lm")) extract_lm(fm) else extract_lmer(fm)
        if (nzchar(key)) keep_model(key, fm, e, analysis, contrasts)
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

  forget <- function(key) {
    key <- as.character(key)
    if (has(key)) rm(list = key, envir = store)
    kept <<- setdiff(kept, key)
    if (exists(key, envir = pinned, inherits = FALSE)) rm(list = key, envir = pinned)
    invisible(NULL)
  }

  pin <- function(key, on) {
    key <- as.character(key)
    if (on) {
      get_entry(key)
      assign(key, TRUE, envir = pinned)
    } else {
      if (exists(key, envir = pinned, inherits = FALSE)) rm(list = key, envir = pinned)
      drop_old()
    }
    invisible(NULL)
  }

  versions <- function() {
    pk <- c("lme4", "Matrix", "lmerTest", "pbkrtest", "emmeans")
    v <- vapply(pk, function(p) tryCatch(as.character(utils::packageVersion(p)),
                                         error = function(e) NA_character_), "")
    list(R = paste(R.version$major, R.version$minor, sep = "."),
         packages = unname(pk), package_versions = unname(v))
  }

  list(fit = fit, forget = forget, pin = pin, has = has, get_entry = get_entry,
       get_model = get_model, versions = versions)
})
""".replace("MAX_KEPT_L", f"{MAX_KEPT}L")


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
        self._loaded: set[str] = set()
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
        #: the worker's R functions (fit, forget, pin, has, get_entry, get_model, versions)
        self.core = ro.r(R_CODE)
        self.f_fit = self.core.rx2("fit")
        self.f_forget = self.core.rx2("forget")
        self.f_versions = self.core.rx2("versions")
        self._next = 0
        self._code: dict[str, object] = {}

    # -- the store of fitted models ---------------------------------------------------------

    def new_handle(self) -> int:
        """A handle no other worker process of this host hands out (pid and a counter)."""
        self._next += 1
        return os.getpid() * 1_000_000 + self._next

    def has(self, handle) -> bool:
        return bool(self.core.rx2("has")(self.ri.StrSexpVector([str(int(handle))]))[0])

    def key(self, handle):
        """The R key of a stored model; :class:`MissingModel` when the worker does not hold it."""
        if not self.has(handle):
            raise MissingModel(int(handle))
        return self.ri.StrSexpVector([str(int(handle))])

    def code(self, packages: tuple[str, ...], why: str, text: str):
        """Constant R code (a function of the core functions), evaluated once, after its packages."""
        if text not in self._code:
            self.require(packages, why)
            self._code[text] = self.ro.r(text)(self.core)
        return self._code[text]

    def require(self, packages: tuple[str, ...], why: str) -> None:
        """Load R packages (once), or fail saying which are missing."""
        if not hasattr(self, "_f_require"):
            self._f_require = self.ro.r("function(p) isTRUE(requireNamespace(p, quietly = TRUE))")
        missing = [p for p in packages if p not in self._loaded
                   and not self._f_require(self.ri.StrSexpVector([p]))[0]]
        if missing:
            raise RuntimeError(f"the R package{'s' if len(missing) > 1 else ''} {' and '.join(missing)} "
                               f"{'are' if len(missing) > 1 else 'is'} needed for {why}")
        self._loaded.update(packages)

    def _keep(self, text: str) -> None:
        self.console.append(str(text))
        del self.console[:-50]

    def versions(self) -> dict:
        v = to_py(self.f_versions())
        out = {"R": v["R"][0], "rpy2": self.rpy2_version}
        out.update({p: ver for p, ver in zip(v["packages"], v["package_versions"])})
        return out

    # -- conversion Python -> R -------------------------------------------------------------

    def named_list(self, items: dict):
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
        handle = self.new_handle() if req.get("keep", False) else 0
        t0 = time.perf_counter()
        res = self.f_fit(
            ri.StrSexpVector([req["analysis"]]), self.named_list(num), self.named_list(fac),
            self.named_list(nlev), ri.StrSexpVector([ftext]), ri.BoolSexpVector([bool(req["reml"])]),
            ri.StrSexpVector([req["contrasts"]]), ri.StrSexpVector([req["weights"] or ""]),
            ri.StrSexpVector([req["offset"] or ""]), ri.StrSexpVector([str(handle) if handle else ""]),
        )
        t1 = time.perf_counter()
        out = to_py(res)
        out["seconds_r"] = t1 - t0
        if handle and out.get("ok") is not None and bool(np.ravel(out["ok"])[0]):
            out["handle"] = handle
        return out

    def forget(self, req: dict) -> dict:
        self.f_forget(self.ri.StrSexpVector([str(int(req["handle"]))]))
        return {"ok": True}

    def pin(self, req: dict) -> dict:
        on = bool(req.get("pin", True))
        key = self.key(req["handle"]) if on else self.ri.StrSexpVector([str(int(req["handle"]))])
        self.core.rx2("pin")(key, self.ri.BoolSexpVector([on]))
        return {"ok": True}

    @staticmethod
    def to_py(obj):
        return to_py(obj)


class MissingModel(LookupError):
    """A request names a fitted model this worker does not hold (dropped, or another worker's)."""

    def __init__(self, handle: int) -> None:
        super().__init__(f"the R worker no longer holds the fitted model {handle} (it keeps the last "
                         f"{MAX_KEPT} models it fitted, and a restarted worker holds none); fit the model again")


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

def operations(r: _R) -> dict:
    """The registry: op name -> handler(request) -> reply."""
    import importlib

    ops = {"fit": r.fit, "forget": r.forget, "pin": r.pin,
           "versions": lambda m: {"ok": True, "versions": r.versions()},
           "ping": lambda m: {"ok": True, "pid": os.getpid()}}
    for name in OP_MODULES:
        for op, handler in importlib.import_module(name).register(r).items():
            if op in ops:
                raise RuntimeError(f"operation {op!r} registered twice")
            ops[op] = handler
    return ops


def main() -> int:
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull)
    sys.stdout = sys.stderr
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        r = _R()
        ops = operations(r)
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
        op = msg.get("op") if isinstance(msg, dict) else None
        try:
            if op not in ops:
                reply = {"ok": False, "stage": "protocol", "error": f"unknown request {op!r}"}
            else:
                t0 = time.perf_counter()
                reply = ops[op](msg)
                reply["seconds_worker"] = time.perf_counter() - t0
        except MissingModel as exc:
            reply = {"ok": False, "stage": "handle", "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - every request gets an answer
            reply = {"ok": False, "stage": "worker", "error": f"{type(exc).__name__}: {exc}",
                     "console": "".join(r.console[-10:])}
        send(proto_out, reply)


if __name__ == "__main__":
    sys.exit(main())
