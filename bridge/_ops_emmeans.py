"""The emmeans operation of the R worker (:mod:`._worker`): emmeans, emtrends and contrast on a
model the worker has fitted and stored (no refit).

A plain module, imported by the worker from its own directory; it never imports mixedbridge.
Everything the request carries is a generated safe name (``v3_``), a level code (``L2``) or a
number: variables, ``by``, ``at`` levels, the trend variable and custom contrast weights (as a
numeric matrix whose contrasts R knows as ``c1``, ``c2``...), checked here. The only R code
evaluated is the constant :data:`R_EMMEANS_CODE`.
"""
from __future__ import annotations

import re

import numpy as np

R_EMMEANS_CODE = r"""
function(core) {
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
  # lmerTest (Satterthwaite) re-evaluates the fit's call in the formula's environment, which
  # is the worker's stored entry holding d, f, reml, ctrl and contr: the stored fit is used as is.
  function(key, specs, by, at, sd_steps, level, df_mode, null, has_null, contr_kind, cmat,
           adjust, trend) {
    entry <- core$get_entry(key)
    fm <- entry$model
    # the fit's contrasts, for anything that rebuilds the design
    old <- options(contrasts = if (identical(entry$kind, "sum")) c("contr.sum", "contr.poly")
                               else c("contr.treatment", "contr.poly"))
    on.exit(options(old), add = TRUE)
    is_lmer <- inherits(fm, "merMod")
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
}
"""

_SAFE = re.compile(r"^v\d+_$")
_LEVEL = re.compile(r"^L(\d+)$")


class _RWarnings:
    """Collects what R prints while emmeans runs (messages, warnings) from the worker's console."""

    def __init__(self, r) -> None:
        self.r = r
        self.messages: list[str] = []

    def __enter__(self):
        self.r.console.clear()
        return self

    def __exit__(self, *exc) -> None:
        self.messages = [m.strip() for m in self.r.console if m.strip()]


class EmmeansOps:
    """The worker's ``emmeans`` request; emmeans and the R code are loaded on the first one."""

    def __init__(self, r) -> None:
        self.r = r

    def func(self):
        return self.r.code(("emmeans",), "emmeans through R", R_EMMEANS_CODE)

    def emmeans(self, msg: dict) -> dict:
        r = self.r
        ri = r.ri
        a = msg["args"]
        for name in list(a["specs"]) + list(a["by"]) + list(a["at"]) + ([a["trend"]] if a["trend"] else []):
            if name != "1" and not _SAFE.match(name):
                raise ValueError(f"refusing unsafe name {name!r}")
        if a["df"] not in ("kenward-roger", "satterthwaite", "asymptotic"):
            raise ValueError(f"refusing df={a['df']!r}")
        if a["contr_kind"] not in ("none", "pairwise", "custom"):
            raise ValueError(f"refusing contrasts kind {a['contr_kind']!r}")
        if not re.fullmatch(r"[A-Za-z]+", a["adjust"]):
            raise ValueError(f"refusing adjust={a['adjust']!r}")
        at_items = {}
        for name, vals in a["at"].items():
            if isinstance(vals[0], str):
                if not all(_LEVEL.match(v) for v in vals):
                    raise ValueError("refusing unsafe level codes")
                at_items[name] = ri.StrSexpVector(list(vals))
            else:
                at_items[name] = ri.FloatSexpVector([float(v) for v in vals])
        key = r.key(msg["handle"])
        f = self.func()
        cmat = np.asarray(a["cmat"], dtype=float)
        rmat = r.ro.r("matrix")(ri.FloatSexpVector(cmat.ravel(order="F").tolist() or [0.0]),
                                nrow=max(cmat.shape[0], 1))
        with _RWarnings(r) as w:
            res = f(key, ri.StrSexpVector(list(a["specs"])), ri.StrSexpVector(list(a["by"])),
                    r.named_list(at_items), ri.FloatSexpVector([float(a["sd_steps"])]),
                    ri.FloatSexpVector([float(a["level"])]), ri.StrSexpVector([a["df"]]),
                    ri.FloatSexpVector([float(a["null"])]), ri.BoolSexpVector([bool(a["has_null"])]),
                    ri.StrSexpVector([a["contr_kind"]]), rmat, ri.StrSexpVector([a["adjust"]]),
                    ri.StrSexpVector([a["trend"] or ""]))
        out = r.to_py(res)
        out.update({"ok": True, "r_warnings": w.messages})
        return out


def register(r) -> dict:
    """The operations this module adds to the worker's registry."""
    return {"emmeans": EmmeansOps(r).emmeans}
