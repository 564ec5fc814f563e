# Fitting: stats::lm and lme4::lmer on data that arrive as numbers and level codes under safe
# names (v0_, v1_ ...; levels L0, L1 ...), and what the worker sends back from a fit.

# The one control of every lmer fit and refit of the worker (fits, likelihood-ratio refits).
lmer_control <- function() {
  lme4::lmerControl(optimizer = "nloptwrap",
                    optCtrl = list(xtol_abs = 1e-8, ftol_abs = 1e-8, maxeval = 1e5))
}

# The one control of every glmer fit: glmer's own default (bobyqa, then Nelder_Mead), so that
# the lme4 engine's answers are those of a plain glmer call.
glmer_control <- function() lme4::glmerControl()

# The family object of a glmm from fixed words (the spec schema's enums, checked again here).
glmm_family <- function(family, link) {
  links <- c("logit", "probit", "cauchit", "cloglog", "log", "identity", "inverse", "sqrt", "1/mu^2")
  if (!(is.character(link) && length(link) == 1L && link %in% links)) stop("refusing an unknown link")
  f <- switch(family, binomial = stats::binomial, poisson = stats::poisson, Gamma = stats::Gamma,
              inverse.gaussian = stats::inverse.gaussian, gaussian = stats::gaussian,
              stop("refusing an unknown family"))
  do.call(f, list(link = link))
}

# A data frame from numeric columns (num), factor codes 1..n (fac), level counts (nlev) and
# matrix-valued variables (mat, columns named 1..k as poly's, so coefficients are v3_1, v3_2).
make_data <- function(num, fac, nlev, mat = list()) {
  check_names(c(names(num), names(fac), names(mat)))
  cols <- num
  for (nm in names(fac)) {
    cols[[nm]] <- structure(fac[[nm]], levels = paste0("L", seq_len(nlev[[nm]]) - 1L),
                            class = "factor")
  }
  d <- list2DF(cols)
  for (nm in names(mat)) {
    m <- as.matrix(mat[[nm]])
    d[[nm]] <- structure(m, dimnames = list(NULL, as.character(seq_len(ncol(m)))))
  }
  d
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

# The conditional modes and their conditional sds of random-effects term k.
ranef_block <- function(k, cn, fl, asg, Gp, b, re, seen) {
  fac <- asg[k]
  g <- names(fl)[fac]
  nc <- length(cn[[k]])
  pv <- attr(re[[g]], "postVar")
  pvk <- if (is.list(pv)) pv[[seen]] else pv
  nl <- dim(pvk)[3]
  csd <- vapply(seq_len(nl), function(i) sqrt(pmax(diag(matrix(pvk[, , i], nc, nc)), 0)),
                numeric(nc))
  list(group = g, terms = cn[[k]], levels = levels(fl[[fac]]),
       modes = matrix(b[(Gp[k] + 1L):Gp[k + 1L]], ncol = nc, byrow = TRUE),
       condsd = matrix(csd, ncol = nc, byrow = TRUE))
}

varcorr_block <- function(m, g) {
  corr <- attr(m, "correlation")
  if (is.null(corr)) corr <- diag(ncol(m))
  list(group = g, terms = colnames(m), sd = unname(attr(m, "stddev")),
       corr = unname(as.matrix(corr)))
}

random_effects <- function(fm) {
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
    seen[asg[k]] <- seen[asg[k]] + 1L
    blocks[[k]] <- ranef_block(k, cn, fl, asg, Gp, b, re, seen[asg[k]])
    varcorr[[k]] <- varcorr_block(vc[[k]], names(fl)[asg[k]])
  }
  list(ranef = blocks, varcorr = varcorr)
}

# The optimizer record, with the control the optimizer was run with (read from the fit).
optimizer_info <- function(fm) {
  oi <- fm@optinfo
  list(optimizer = as.character(oi$optimizer), control = oi$control, feval = as.integer(oi$feval),
       conv_opt = as.numeric(oi$conv$opt), conv_code = as.numeric(oi$conv$lme4$code),
       conv_messages = as.character(unlist(oi$conv$lme4$messages)),
       opt_message = as.character(oi$message), singular = lme4::isSingular(fm))
}

# What a glmer (or glmer.nb) fit adds to lmer's reply: Pearson residuals and the negative
# binomial's theta. Its residuals (extract_lmer) are glmer's default, the deviance residuals.
extract_glmer <- function(fm) {
  nb <- grepl("^Negative Binomial", stats::family(fm)$family)
  c(extract_lmer(fm),
    list(pearson_residuals = unname(stats::residuals(fm, type = "pearson")),
         nb_theta = if (nb) lme4::getME(fm, "glmer.nb.theta") else NA_real_))
}

extract_lmer <- function(fm) {
  ng <- lme4::ngrps(fm)
  reml <- lme4::isREML(fm)
  re <- random_effects(fm)
  c(list(coef_names = names(lme4::fixef(fm)), beta = unname(lme4::fixef(fm)),
         dropped = as.character(names(attr(lme4::getME(fm, "X"), "col.dropped"))),
         vcov = unname(as.matrix(stats::vcov(fm))),
         sigma = stats::sigma(fm), nobs = stats::nobs(fm), reml = reml,
         loglik = as.numeric(stats::logLik(fm)), aic = stats::AIC(fm), bic = stats::BIC(fm),
         reml_crit = if (reml) lme4::REMLcrit(fm) else NA_real_,
         deviance = if (reml) lme4::REMLcrit(fm) else stats::deviance(fm),
         df_residual = stats::df.residual(fm),
         theta = unname(lme4::getME(fm, "theta")),
         varcorr = re$varcorr, ranef = re$ranef,
         ngroups_names = names(ng), ngroups = unname(as.integer(ng)),
         fitted = unname(stats::fitted(fm)), residuals = unname(stats::residuals(fm))),
    optimizer_info(fm))
}

# The environment a fit's call is evaluated in, holding everything the call names. Its parent
# is the (empty) global environment: lme4's lFormula looks up "weights" and "offset" from the
# calling environment and needs stats on the search path.
fit_env <- function(req) {
  e <- new.env(parent = globalenv())
  assign("d", make_data(req$num, req$fac, req$nlev, req$mat), envir = e)
  assign("f", stats::as.formula(req$formula, env = e), envir = e)
  assign("reml", req$reml, envir = e)
  if (identical(req$analysis, "glmm")) {
    assign("ctrl", glmer_control(), envir = e)
    assign("nagq", as.integer(req$nagq), envir = e)
    if (!identical(req$family, "negative.binomial")) assign("fam", glmm_family(req$family, req$link), envir = e)
  } else {
    assign("ctrl", lmer_control(), envir = e)
  }
  e
}

fit_call <- function(req) {
  cl <- if (identical(req$analysis, "lm")) quote(stats::lm(formula = f, data = d))
        else if (identical(req$analysis, "lmm")) quote(lme4::lmer(formula = f, data = d, REML = reml, control = ctrl))
        else if (identical(req$family, "negative.binomial"))
          quote(lme4::glmer.nb(formula = f, data = d, nAGQ = nagq, control = ctrl))
        else quote(lme4::glmer(formula = f, data = d, family = fam, nAGQ = nagq, control = ctrl))
  if (nzchar(req$weights)) cl$weights <- as.name(check_names(req$weights))
  if (nzchar(req$offset)) cl$offset <- as.name(check_names(req$offset))
  cl
}

# A fit request: list(analysis = "lm" | "lmm" | "glmm", num, fac, nlev, formula, reml, family,
# link, nagq (a glmm's, from the spec schema's words),
# contrasts = "treatment" | "sum", weights, offset (safe names or ""), key (handle or "")).
op_fit <- function(req) {
  check_formula(req$formula)
  old <- options(contrasts = contrasts_option(req$contrasts), lmerControl = NULL,
                 na.action = "na.omit", warn = 1)
  on.exit(options(old), add = TRUE)
  stage <- "data"
  capture({
    e <- fit_env(req)
    cl <- fit_call(req)
    stage <- "fit"
    fm <- eval(cl, e)
    stage <- "extract"
    res <- switch(req$analysis, lm = extract_lm(fm), lmm = extract_lmer(fm), glmm = extract_glmer(fm))
    if (nzchar(req$key)) keep_model(req$key, fm, e, req$analysis, req$contrasts)
    res$ok <- TRUE
    res
  }, stage = function() stage)
}
