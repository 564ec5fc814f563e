# emmeans, emtrends and contrast on a stored fit (no refit). lmerTest (Satterthwaite)
# re-evaluates the fit's call in the formula's environment, which is the stored entry holding
# d, f, reml, ctrl and contr (see store.R): the stored fit is used as is. Variables, `by`, `at`
# levels and the trend variable are safe names and level codes; custom contrast weights arrive
# as a numeric matrix whose columns R knows as c1, c2 ...

emmeans_settings <- function() {
  emmeans::emm_options(pbkrtest.limit = 1e7, lmerTest.limit = 1e7, msg.interaction = FALSE,
                       msg.nesting = FALSE)
}

# A summary table of emmeans (s) as plain vectors. The estimate column is the one before SE
# (emmean, prob, rate, response, odds.ratio, ratio, estimate, <var>.trend); its name is returned
# as est_name, and the test column's as stat_name (t.ratio or z.ratio).
emm_table <- function(s) {
  est <- names(s)[match("SE", names(s)) - 1L]
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
       messages = as.character(attr(s, "mesg")), adjust = as.character(attr(s, "adjust")),
       est_name = est, stat_name = if ("z.ratio" %in% names(s)) "z.ratio" else "t.ratio")
}

# The arguments of emmeans::emmeans / emtrends for the request.
emmeans_args <- function(fm, req) {
  check_names(c(setdiff(c(req$specs, req$by, names(req$at)), "1"),
                if (nzchar(req$trend)) req$trend))
  is_lmer <- inherits(fm, "merMod")
  data <- if (is_lmer) fm@frame else stats::model.frame(fm)
  args <- list(object = fm, specs = req$specs, data = data)
  if (length(req$by)) args$by <- req$by
  if (length(req$at)) args$at <- req$at
  if (req$sd_steps > 0) {
    k <- req$sd_steps
    args$cov.reduce <- function(x) mean(x) + c(-k, 0, k) * stats::sd(x)
  }
  if (inherits(fm, "lmerMod")) args$lmer.df <- req$df
  if (nzchar(req$trend)) args$var <- req$trend
  args
}

emm_contrasts <- function(em, req) {
  if (req$contr_kind == "pairwise") {
    return(emmeans::contrast(em, method = "pairwise", adjust = req$adjust))
  }
  cmat <- req$cmat
  lst <- lapply(seq_len(ncol(cmat)), function(j) as.numeric(cmat[, j]))
  names(lst) <- paste0("c", seq_len(ncol(cmat)))
  emmeans::contrast(em, method = lst, adjust = req$adjust)
}

# An emmeans request: list(key, specs, by, at, sd_steps, level, df, null, has_null,
# contr_kind = "none" | "pairwise" | "custom", cmat, adjust, trend (safe name or ""),
# type = "link" | "response" (a GLMM's summary scale), regrid (a GLMM's means re-expressed on
# the response scale before summaries and contrasts)).
op_emmeans <- function(req) {
  emmeans_settings()
  entry <- get_entry(req$key)
  old <- options("contrasts")
  on.exit(options(old), add = TRUE)
  use_fit_contrasts(entry)
  args <- emmeans_args(entry$model, req)
  em <- do.call(if (nzchar(req$trend)) emmeans::emtrends else emmeans::emmeans, args)
  if (isTRUE(req$regrid)) em <- emmeans::regrid(em)
  type <- if (identical(req$type, "response")) "response" else "link"
  out <- list(emm = emm_table(summary(em, infer = c(TRUE, req$has_null), level = req$level,
                                      null = req$null, adjust = "none", type = type)))
  if (req$contr_kind != "none") {
    ct <- emm_contrasts(em, req)
    out$contrasts <- emm_table(summary(ct, infer = c(TRUE, TRUE), level = req$level,
                                       adjust = req$adjust, type = type))
    out$con_coef <- unname(as.matrix(ct@misc$con.coef))
  }
  out
}
