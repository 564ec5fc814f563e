# The store of fitted models of the R worker (see _worker.py). Each entry is an environment:
# the formula's environment of the fit, holding everything the model's call names (d, f, reml,
# ctrl, contr, weights and offset columns live in d), plus `model` (the fitted object) and
# `kind` (the contrasts coding, "sum" or "treatment"). The last max_kept entries are kept;
# pinned ones are never dropped.

store <- new.env()      # handle -> entry
kept <- character(0)    # handles, oldest first
pinned <- new.env()     # handles that must not be dropped (model comparison)
max_kept <- 8L

# Called once at worker start with list(max_kept = <integer>).
op_setup <- function(settings) {
  max_kept <<- as.integer(settings$max_kept)
  invisible(NULL)
}

op_has <- function(key) exists(key, envir = store, inherits = FALSE)

get_entry <- function(key) {
  key <- as.character(key)
  if (!op_has(key)) stop("no fitted model with handle ", key, " in the R worker")
  get(key, envir = store)
}

drop_old <- function() {
  while (length(kept) > max_kept) {
    free <- kept[!vapply(kept, exists, NA, envir = pinned, inherits = FALSE)]
    if (!length(free)) break
    rm(list = free[1], envir = store)
    kept <<- setdiff(kept, free[1])
  }
}

# Store fm (fitted in environment e) under key. Its call then re-evaluates to this model
# whatever the options: the factors' contrasts are pinned in the call as `contr`.
keep_model <- function(key, fm, e, analysis, kind) {
  is_lm <- identical(analysis, "lm")
  contr <- if (is_lm) fm$contrasts else attr(lme4::getME(fm, "X"), "contrasts")
  if (length(contr)) {
    assign("contr", contr, envir = e)
    if (is_lm) fm$call$contrasts <- quote(contr) else fm@call$contrasts <- quote(contr)
  }
  assign("model", fm, envir = e)
  assign("kind", kind, envir = e)
  assign(key, e, envir = store)
  kept <<- c(setdiff(kept, key), key)
  drop_old()
}

op_forget <- function(key) {
  key <- as.character(key)
  if (op_has(key)) rm(list = key, envir = store)
  kept <<- setdiff(kept, key)
  if (exists(key, envir = pinned, inherits = FALSE)) rm(list = key, envir = pinned)
  invisible(NULL)
}

op_pin <- function(key, on) {
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
