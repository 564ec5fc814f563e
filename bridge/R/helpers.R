# Helpers shared by the R worker's operations (see _worker.py): the safe-formula check, the
# contrasts option of a fit's coding, and the capture of warnings, messages and errors.
# Sourced once per worker into its own environment; defines functions only.

# What a formula sent to R may contain: safe names, 0/1 and the formula operators. The same
# pattern as SAFE_FORMULA in _worker.py (tests/test_r_sources.py checks that they agree).
safe_formula_pattern <- "^[v0-9_ ~+:()|-]+$"

# What a column name sent to R may be: a generated safe name (v0_, v1_, ...).
safe_name_pattern <- "^v[0-9]+_$"

check_formula <- function(ftext) {
  if (!is.character(ftext) || length(ftext) != 1L || !grepl(safe_formula_pattern, ftext)) {
    stop("refusing a formula that is not made of safe names")
  }
  invisible(ftext)
}

check_names <- function(nms) {
  if (!all(grepl(safe_name_pattern, nms))) stop("refusing a column name that is not a safe name")
  invisible(nms)
}

# The contrasts option for a fit's coding ("sum" or "treatment"). lmer's `contrasts` argument
# codes the fixed effects only; the random-effects design (and so the meaning of theta) is
# built with this option, so everything that rebuilds a model from its call (update(),
# profile(), lmerTest's deviance function, the likelihood-ratio refits, emmeans) runs under it.
contrasts_option <- function(kind) {
  if (identical(kind, "sum")) c("contr.sum", "contr.poly") else c("contr.treatment", "contr.poly")
}

# Set the contrasts option of a stored entry's fit (the caller restores the option on exit).
use_fit_contrasts <- function(entry) {
  invisible(options(contrasts = contrasts_option(entry$kind)))
}

# body(model) on the stored fit `handle`, under the contrasts option that fit used (restored
# afterwards), with errors, warnings and messages captured as capture() returns them.
on_stored_fit <- function(handle, body) {
  old <- options("contrasts")
  on.exit(options(old), add = TRUE)
  capture({
    entry <- get_entry(handle)
    use_fit_contrasts(entry)
    body(entry$model)
  })
}

# Evaluate expr; an error becomes list(ok = FALSE, stage = stage(), error = ...), and the
# warnings and messages raised on the way are returned with the value (never printed).
capture <- function(expr, stage = function() "inference") {
  warns <- character(0)
  msgs <- character(0)
  out <- withCallingHandlers(
    tryCatch(expr, error = function(e) list(ok = FALSE, stage = stage(), error = conditionMessage(e))),
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

# Seconds elapsed since t0 (a proc.time() elapsed value).
since <- function(t0) proc.time()[["elapsed"]] - t0

# R's and the R packages' versions.
op_versions <- function() {
  pk <- c("lme4", "Matrix", "lmerTest", "pbkrtest", "emmeans")
  v <- vapply(pk, function(p) tryCatch(as.character(utils::packageVersion(p)),
                                       error = function(e) NA_character_), "")
  list(R = paste(R.version$major, R.version$minor, sep = "."),
       packages = unname(pk), package_versions = unname(v))
}
