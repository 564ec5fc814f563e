# Reference values for the JASP option-document tests: each case of cases.json fitted as
# JASP 0.96 fits it (afex::mixed with lmerTest, check_contrasts = FALSE, contrasts set on the
# fixed factors; emmeans / emtrends / contrast on the afex object), written to reference.json.
# Run: Rscript reference.R cases.json reference.json  (make_reference.py does this).
suppressMessages({
  library(jsonlite); library(lme4); library(lmerTest); library(afex); library(emmeans)
})
args <- commandArgs(trailingOnly = TRUE)
cases <- fromJSON(args[1], simplifyVector = FALSE)
here <- dirname(normalizePath(args[1]))
emm_options(pbkrtest.limit = Inf, lmerTest.limit = Inf)
# lme4's default tolerances stop a little short of the optimum on the larger data sets (the
# native engine reaches a lower REML criterion); tighter ones make the reference the optimum.
tight <- lmerControl(optCtrl = list(ftol_abs = 1e-14, ftol_rel = 1e-14, xtol_abs = 1e-12, xtol_rel = 1e-12, maxeval = 1e5))

read_data <- function(name) {
  if (name == "debug") return(read.csv(file.path(here, "..", "debug.csv")))
  if (name == "sleepstudy_half") {
    d <- read.csv(file.path(here, "..", "..", "..", "module", "datasets", "sleepstudy.csv"))
    d$half <- ifelse(d$Days < 5, "early", "late")
    return(d)
  }
  read.csv(file.path(here, "..", "..", "..", "module", "datasets", paste0(name, ".csv")))
}

num <- function(x) { x <- as.numeric(x); x[is.infinite(x)] <- NA; x }

one <- function(cs) {
  r <- cs$r
  d <- read_data(cs$data)
  vars <- unlist(cs$vars)
  d <- na.omit(d[, vars, drop = FALSE])
  for (f in unlist(cs$factors)) d[[f]] <- factor(d[[f]])
  ctr <- if (is.null(r$contrasts)) "contr.sum" else paste0("contr.", r$contrasts)
  for (f in unlist(cs$fixed_factors)) { d[[f]] <- factor(d[[f]]); contrasts(d[[f]]) <- ctr }
  out <- list(id = cs$id, nobs = nrow(d))
  if (r$method == "lm") {
    m <- lm(as.formula(r$formula), d)
    a <- car::Anova(m, type = r$type)
    a <- a[!(rownames(a) %in% c("(Intercept)", "Residuals")), ]
    out$anova <- list(effect = rownames(a), num = a$Df, den = rep(df.residual(m), nrow(a)),
                      stat = a$`F value`, p = a$`Pr(>F)`)
    cf <- summary(m)$coefficients
    out$fixed <- list(term = rownames(cf), estimate = cf[, 1], se = cf[, 2], df = rep(df.residual(m), nrow(cf)),
                      stat = cf[, 3], p = cf[, 4])
    ll <- logLik(m)
    out$fit <- list(loglik = as.numeric(ll), df = attr(ll, "df"), aic = AIC(m), bic = BIC(m),
                    r2 = summary(m)$r.squared, adjR2 = summary(m)$adj.r.squared)
    model <- m
  } else {
    if (r$method == "PB") set.seed(1)
    model <- suppressMessages(afex::mixed(as.formula(r$formula), data = d, type = r$type, method = r$method,
                         test_intercept = isTRUE(r$test_intercept), args_test = list(nsim = if (is.null(r$nsim)) 500 else r$nsim),
                         check_contrasts = FALSE, expand_re = isTRUE(r$expand_re), progress = FALSE,
                         control = tight))
    at <- model$anova_table
    nice <- afex::nice(model)
    out$anova <- list(effect = rownames(at), nice_df = as.character(nice$df))
    if (r$method %in% c("S", "KR")) {
      out$anova$num <- at$`num Df`; out$anova$den <- at$`den Df`; out$anova$stat <- at$F; out$anova$p <- at$`Pr(>F)`
    } else {
      out$anova$df <- at$`Chi Df`; out$anova$stat <- at$Chisq; out$anova$p <- at$`Pr(>Chisq)`
      if (r$method == "PB") out$anova$pboot <- at$`Pr(>PB)`
    }
    fm <- if (is.list(model$full_model)) model$full_model[[length(model$full_model)]] else model$full_model
    cf <- summary(fm)$coefficients
    out$fixed <- list(term = rownames(cf), estimate = cf[, 1], se = cf[, 2], df = cf[, 3], stat = cf[, 4], p = cf[, 5])
    ll <- logLik(fm)
    out$fit <- list(reml = isREML(fm), loglik = as.numeric(ll), df = attr(ll, "df"), aic = AIC(fm), bic = BIC(fm),
                    deviance = if (isREML(fm)) REMLcrit(fm) else deviance(fm, REML = FALSE),
                    ngrps = as.list(sapply(fm@flist, nlevels)), singular = isSingular(fm))
    vc <- VarCorr(fm)
    out$varcorr <- lapply(seq_along(vc), function(i) {
      x <- vc[[i]]
      list(name = names(vc)[i], terms = names(attr(x, "stddev")), sd = unname(attr(x, "stddev")),
           corr = if (length(attr(x, "stddev")) > 1) unname(attr(x, "correlation")) else NULL)
    })
    out$sigma <- sigma(fm)
    re <- ranef(fm)
    out$ranef <- lapply(names(re), function(g) list(group = g, levels = rownames(re[[g]]),
                                                     columns = colnames(re[[g]]), values = unname(as.matrix(re[[g]]))))
  }
  if (!is.null(r$emmeans)) {
    e <- r$emmeans
    at <- NULL
    for (v in names(e$sd)) at[[v]] <- mean(d[[v]]) + c(-1, 0, 1) * e$sd[[v]] * sd(d[[v]])
    lev <- if (is.null(e$level)) 0.95 else e$level
    # e$limits: emmeans's pbkrtest.limit and lmerTest.limit as JASP leaves them (default: none)
    if (!is.null(e$limits)) emm_options(pbkrtest.limit = e$limits[[1]], lmerTest.limit = e$limits[[2]])
    emm <- if (r$method == "lm") emmeans(model, unlist(e$specs), at = at, options = list(level = lev))
           else emmeans(model, unlist(e$specs), at = at, options = list(level = lev), lmer.df = e$lmer_df)
    tab <- as.data.frame(emm)
    out$emmeans <- list(estimate = num(tab$emmean), se = num(tab$SE), df = num(tab$df),
                        lower = num(tab[[ncol(tab) - 1]]), upper = num(tab[[ncol(tab)]]),
                        labels = lapply(unlist(e$specs), function(v) as.character(tab[[v]])))
    if (!is.null(e$null)) {
      tt <- as.data.frame(test(emm, null = e$null))
      out$emmeans$stat <- num(tt[[grep("ratio", colnames(tt))]]); out$emmeans$p <- num(tt$p.value)
    }
    if (!is.null(e$contrasts)) {
      set.seed(1)  # mvt: mvtnorm's randomized quasi-Monte Carlo
      cc <- as.data.frame(contrast(emm, lapply(e$contrasts, unlist), adjust = e$adjust))
      out$contrasts <- list(estimate = num(cc$estimate), se = num(cc$SE), df = num(cc$df),
                            stat = num(cc[[ncol(cc) - 1]]), p = num(cc$p.value))
    }
    emm_options(pbkrtest.limit = Inf, lmerTest.limit = Inf)
  }
  if (!is.null(r$trends)) {
    e <- r$trends
    emt <- emtrends(model, unlist(e$specs), var = e$var, lmer.df = e$lmer_df)
    tab <- as.data.frame(emt)
    out$trends <- list(estimate = num(tab[[paste0(e$var, ".trend")]]), se = num(tab$SE), df = num(tab$df),
                       lower = num(tab[[ncol(tab) - 1]]), upper = num(tab[[ncol(tab)]]))
    if (!is.null(e$contrasts)) {
      set.seed(1)
      cc <- as.data.frame(contrast(emt, lapply(e$contrasts, unlist), adjust = e$adjust))
      out$trend_contrasts <- list(estimate = num(cc$estimate), se = num(cc$SE), df = num(cc$df),
                                  stat = num(cc[[ncol(cc) - 1]]), p = num(cc$p.value))
    }
  }
  out
}

res <- lapply(cases, one)
names(res) <- sapply(cases, function(x) x$id)
res$`_versions` <- lapply(c(R = "base", afex = "afex", lme4 = "lme4", lmerTest = "lmerTest", pbkrtest = "pbkrtest",
                            emmeans = "emmeans"), function(p) as.character(packageVersion(p)))
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = TRUE), args[2])
