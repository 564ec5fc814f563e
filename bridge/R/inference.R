# Inference on a stored fit: lmerTest (Satterthwaite, Kenward-Roger t and F tests), pbkrtest
# (Kenward-Roger, parametric bootstrap), lme4 (likelihood-ratio tests, model comparison, Wald /
# profile / bootstrap intervals). lmerTest's conversion, update(), profiles and bootstrap
# intervals run on the stored fit (its call re-evaluates in its own environment, see store.R);
# only the likelihood-ratio tests refit, by ML, the full and reduced models they compare.
# Every operation runs under the fit's contrasts option (see contrasts_option in helpers.R).

# For likelihood-ratio tests only (they need new fits anyway): refit by ML with a
# self-contained call and extra columns XR1_, XR2_ ... holding each reduced model's design.
# The prior weights and offset are named `weights` and `offset` in the call's environment:
# lme4's lFormula copies the objects of those names from the calling environment.
rebuild <- function(fm, reml = lme4::isREML(fm), extra = list()) {
  e <- new.env(parent = baseenv())
  mf <- stats::model.frame(fm)
  w <- stats::model.weights(mf)
  o <- stats::model.offset(mf)
  d <- mf
  for (nm in names(extra)) d[[nm]] <- extra[[nm]]
  f <- stats::formula(fm)
  environment(f) <- e
  assign("d", d, envir = e)
  assign("f", f, envir = e)
  assign("weights", w, envir = e)
  assign("offset", o, envir = e)
  assign("reml", reml, envir = e)
  assign("contr", attr(lme4::getME(fm, "X"), "contrasts"), envir = e)
  if (methods::is(fm, "glmerMod")) {
    cl <- glmer_rebuild_call(fm, e)
  } else {
    assign("ctrl", lmer_control(), envir = e)
    cl <- quote(lme4::lmer(formula = f, data = d, REML = reml, control = ctrl, contrasts = contr))
  }
  if (!is.null(w)) cl$weights <- quote(weights)
  if (!is.null(o)) cl$offset <- quote(offset)
  list(model = eval(cl, e), env = e, call = cl)
}

# The refit call of a glmer fit: its family (a glmer.nb fit's negative binomial with theta held
# at the full model's estimate, as afex's and pbkrtest's refits of such a model), its nAGQ and
# glmer's default control.
glmer_rebuild_call <- function(fm, e) {
  assign("fam", stats::family(fm), envir = e)
  assign("nagq", as.integer(fm@devcomp$dims[["nAGQ"]]), envir = e)
  assign("ctrl", glmer_control(), envir = e)
  quote(lme4::glmer(formula = f, data = d, family = fam, nAGQ = nagq, control = ctrl, contrasts = contr))
}

ddf_name <- function(method) if (method == "kenward-roger") "Kenward-Roger" else "Satterthwaite"

coef_table <- function(lt, fm, df_method) {
  if (df_method == "asymptotic") {
    cf <- summary(fm)$coefficients
    return(list(names = rownames(cf), se = unname(cf[, 2]), statistic = unname(cf[, 3]),
                df = rep(NA_real_, nrow(cf)), p = unname(2 * stats::pnorm(-abs(cf[, 3])))))
  }
  cf <- summary(lt, ddf = ddf_name(df_method))$coefficients
  list(names = rownames(cf), se = unname(cf[, "Std. Error"]), statistic = unname(cf[, "t value"]),
       df = unname(cf[, "df"]), p = unname(cf[, "Pr(>|t|)"]))
}

anova_table <- function(lt, type, method) {
  a <- stats::anova(lt, type = type, ddf = ddf_name(method))
  list(terms = rownames(a), sumsq = unname(a[["Sum Sq"]]), meansq = unname(a[["Mean Sq"]]),
       numdf = unname(as.numeric(a[["NumDF"]])), dendf = unname(a[["DenDF"]]),
       statistic = unname(a[["F value"]]), p = unname(a[["Pr(>F)"]]))
}

# Wald tests of the model terms with infinite denominator df (df_method "asymptotic"): lmerTest's
# contrasts of the type, F = Wald chi-square / NumDF and its chi-square(NumDF) p-value (the F with
# Inf denominator df); nothing of the Satterthwaite machinery runs. lmerTest's anova(ddf = "lme4")
# gives the same F without df or p, but only sequentially (type I).
anova_wald <- function(fm, type) {
  L_list <- switch(type, I = lmerTest:::get_contrasts_type1(fm),
                   II = lmerTest:::get_contrasts_type2_unfolded(fm),
                   III = lmerTest:::get_contrasts_type3(fm))
  beta <- lme4::fixef(fm)
  V <- as.matrix(stats::vcov(fm))
  rows <- lapply(L_list, function(L) {
    L <- L[, names(beta), drop = FALSE]
    e <- eigen(L %*% V %*% t(L), symmetric = TRUE)
    pos <- e$values > 1e-8 * max(e$values, 0)
    q <- sum(pos)
    if (q == 0) return(c(NA_real_, NA_real_, 0, NA_real_, NA_real_))
    Lb <- crossprod(e$vectors[, pos, drop = FALSE], L %*% beta)
    F <- sum(Lb^2 / e$values[pos]) / q
    c(F * stats::sigma(fm)^2 * q, F * stats::sigma(fm)^2, q, F, stats::pchisq(F * q, q, lower.tail = FALSE))
  })
  m <- do.call(rbind, rows)
  list(terms = names(L_list), sumsq = m[, 1], meansq = m[, 2], numdf = m[, 3],
       dendf = rep(NA_real_, nrow(m)), statistic = m[, 4], p = m[, 5])
}

# The reduced model of a likelihood-ratio test: the fixed part is the full design without the
# tested term's columns (column xr of the rebuilt data), the random part is unchanged.
reduced_model <- function(fm, b, xr) {
  rhs <- call("+", 0, as.name(xr))
  for (bb in lme4::findbars(stats::formula(fm))) rhs <- call("+", rhs, call("(", bb))
  f2 <- stats::formula(fm)
  f2[[3]] <- rhs
  environment(f2) <- b$env
  assign("f2", f2, envir = b$env)
  cl <- b$call
  cl$formula <- quote(f2)
  cl$contrasts <- NULL
  eval(cl, b$env)
}

lrt_terms <- function(fm, intercept, pb, nsim, seed) {
  X <- lme4::getME(fm, "X")
  asg <- attr(X, "assign")
  labels <- attr(stats::terms(fm), "term.labels")
  idx <- sort(unique(asg))
  if (!intercept) idx <- idx[idx != 0]
  nm <- ifelse(idx == 0, "(Intercept)", labels[pmax(idx, 1)])
  extra <- lapply(idx, function(k) X[, asg != k, drop = FALSE])
  names(extra) <- paste0("XR", seq_along(idx), "_")
  b <- rebuild(fm, reml = FALSE, extra = extra)
  full <- b$model
  out <- vector("list", length(idx))
  for (i in seq_along(idx)) {
    red <- reduced_model(fm, b, names(extra)[i])
    a <- stats::anova(full, red, model.names = c("full", "reduced"))
    res <- list(term = nm[i], npar = a[["npar"]][1], loglik = a[["logLik"]][1],
                chisq = a[["Chisq"]][2], df = a[["Df"]][2], p = a[["Pr(>Chisq)"]][2])
    if (pb) {
      pbm <- pbkrtest::PBmodcomp(full, red, nsim = nsim, seed = seed)
      res$p_pb <- pbm$test["PBtest", "p.value"]
    }
    out[[i]] <- res
  }
  out
}

confint_table <- function(fm, method, level, nsim, seed) {
  if (method == "wald") {
    ci <- stats::confint(fm, method = "Wald", level = level, oldNames = TRUE)
  } else if (method == "profile") {
    ci <- stats::confint(fm, method = "profile", level = level, oldNames = TRUE)
  } else {
    # bootMer evaluates the call's `control` in its caller's frame: give it the value the fit
    # was made with (from the call's environment), not its name.
    fb <- fm
    fb@call$control <- eval(fm@call$control, environment(stats::formula(fm)))
    ci <- stats::confint(fb, method = "boot", level = level, nsim = nsim, seed = seed,
                         oldNames = TRUE, boot.type = "perc")
  }
  list(names = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))
}

check_infer <- function(req) {
  stopifnot(req$df_method %in% c("satterthwaite", "kenward-roger", "asymptotic"),
            req$anova_method %in% c("", "satterthwaite", "kenward-roger", "asymptotic", "lrt", "bootstrap"),
            req$anova_type %in% c("I", "II", "III"),
            req$confint_method %in% c("", "wald", "profile", "bootstrap"))
}

# The anova part of an inference request: F tests (lt) or likelihood-ratio tests (fm).
infer_anova <- function(res, req, lt, fm) {
  t1 <- proc.time()[["elapsed"]]
  if (req$anova_method %in% c("satterthwaite", "kenward-roger")) {
    res$anova <- anova_table(lt, req$anova_type, req$anova_method)
  } else if (req$anova_method == "asymptotic") {
    res$anova <- anova_wald(fm, req$anova_type)
  } else {
    res$lrt <- lrt_terms(fm, req$intercept, req$anova_method == "bootstrap", req$nsim, req$seed)
  }
  res$seconds_anova <- since(t1)
  res
}

# An inference request: list(handle, df_method, anova_type, anova_method, intercept,
# confint_method, level, nsim, seed, ci_nsim, ci_seed).
op_infer <- function(req) {
  check_infer(req)
  on_stored_fit(req$handle, function(fm) {
    res <- list(ok = TRUE)
    t0 <- proc.time()[["elapsed"]]
    f_tests <- req$anova_method %in% c("satterthwaite", "kenward-roger")
    lt <- NULL
    if (req$df_method != "asymptotic" || f_tests) {
      lt <- lmerTest:::as_lmerModLT(fm, stats::update(fm, devFunOnly = TRUE))
    }
    res$coef <- coef_table(lt, fm, req$df_method)
    res$seconds_coef <- since(t0)
    if (nzchar(req$anova_method)) res <- infer_anova(res, req, lt, fm)
    if (nzchar(req$confint_method)) {
      t2 <- proc.time()[["elapsed"]]
      res$confint <- confint_table(fm, req$confint_method, req$level, req$ci_nsim, req$ci_seed)
      res$seconds_confint <- since(t2)
    }
    res
  })
}

compare_lm <- function(mods, model_names) {
  ll <- lapply(mods, stats::logLik)
  k <- vapply(ll, attr, 1, "df")
  o <- order(k)
  llk <- vapply(ll, as.numeric, 1)[o]
  k <- k[o]
  n <- stats::nobs(mods[[1]])
  chisq <- 2 * pmax(0, c(NA, diff(llk)))
  dfc <- c(NA, diff(k))
  list(ok = TRUE, models = model_names[o], npar = k, aic = -2 * llk + 2 * k,
       bic = -2 * llk + log(n) * k, loglik = llk, deviance = -2 * llk, chisq = chisq, df = dfc,
       p = ifelse(dfc == 0, NA, stats::pchisq(chisq, dfc, lower.tail = FALSE)))
}

compare_mer <- function(mods, is_mer, model_names) {
  first <- which(is_mer)[1]
  ord <- c(first, setdiff(seq_along(mods), first))
  a <- do.call(stats::anova, c(unname(mods[ord]), list(model.names = model_names[ord])))
  list(ok = TRUE, models = rownames(a), npar = unname(a[["npar"]]), aic = unname(a[["AIC"]]),
       bic = unname(a[["BIC"]]), loglik = unname(a[["logLik"]]),
       deviance = unname(a[["deviance"]]), chisq = unname(a[["Chisq"]]),
       df = unname(a[["Df"]]), p = unname(a[["Pr(>Chisq)"]]))
}

# A comparison request: list(handles, names) (plain identifiers, one per model).
op_compare <- function(req) {
  capture({
    mods <- lapply(req$handles, function(h) get_entry(h)$model)
    is_mer <- vapply(mods, function(m) methods::is(m, "merMod"), NA)
    if (any(is_mer)) compare_mer(mods, is_mer, req$names) else compare_lm(mods, req$names)
  })
}

# An lm anova request: list(handle, anova_type); F tests of lmerTest's contrasts, residual df.
op_lm_anova <- function(req) {
  on_stored_fit(req$handle, function(fm) {
    Ls <- switch(req$anova_type, III = lmerTest:::get_contrasts_type3(fm),
                 II = lmerTest:::get_contrasts_type2_unfolded(fm),
                 I = lmerTest:::get_contrasts_type1(fm))
    b <- stats::coef(fm)
    b <- b[!is.na(b)]
    V <- stats::vcov(fm, complete = FALSE)
    rows <- lapply(names(Ls), function(t) {
      L <- Ls[[t]]
      q <- qr(L)$rank
      Lb <- L %*% b
      Fv <- as.numeric(t(Lb) %*% solve(L %*% V %*% t(L), Lb)) / q
      c(q, stats::df.residual(fm), Fv,
        stats::pf(Fv, q, stats::df.residual(fm), lower.tail = FALSE))
    })
    m <- do.call(rbind, rows)
    list(ok = TRUE, anova = list(terms = names(Ls), sumsq = m[, 3] * stats::sigma(fm)^2 * m[, 1],
                                 meansq = m[, 3] * stats::sigma(fm)^2, numdf = m[, 1],
                                 dendf = m[, 2], statistic = m[, 3], p = m[, 4]))
  })
}
