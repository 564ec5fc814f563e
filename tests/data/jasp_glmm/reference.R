# Reference values for tests/test_jasp_glmm.py: each case of cases.json fitted along JASP's R
# code path for MixedModelsGLMM (jaspMixedModels' .mmCheckData recoding, contr.sum / contr.treatment
# on the fixed factors, afex::mixed(..., family = <family>(<link>), weights = trials, method = "LRT",
# check_contrasts = FALSE), emmeans(type = "response"), test(), contrast(regrid(emm)), emtrends).
# Run: Rscript reference.R cases.json reference.json  (make_reference.py writes cases.json and runs this).
suppressMessages({library(jsonlite); library(lme4); library(afex); library(emmeans)})
args <- commandArgs(trailingOnly = TRUE)
cases <- fromJSON(args[1], simplifyVector = FALSE)
here <- dirname(normalizePath(args[1]))
num <- function(x) { x <- as.numeric(x); x[is.infinite(x)] <- NA; x }

read_data <- function(name) {
  local <- file.path(here, paste0(name, ".csv"))
  if (file.exists(local)) return(read.csv(local))
  read.csv(file.path(here, "..", "..", "..", "module", "datasets", paste0(name, ".csv")))
}

prepare <- function(cs) {
  r <- cs$r
  d <- read_data(cs$data)
  d <- na.omit(d[, unlist(cs$vars), drop = FALSE])
  for (f in unlist(r$random)) d[[f]] <- factor(d[[f]])
  for (f in unlist(r$fixed_factors)) { d[[f]] <- factor(d[[f]]); contrasts(d[[f]]) <- paste0("contr.", r$contrasts) }
  dep <- r$dependent
  if (r$family == "bernoulli") d[[dep]] <- as.numeric(d[[dep]] == sort(unique(d[[dep]]))[2])
  if (r$family == "binomial") d[[dep]] <- d[[dep]] / d[[r$trials]]
  d
}

# contrast weights as JASP passes them to emmeans::contrast: the k-th weight applies to the k-th
# row of the emmeans grid (R's level order), whatever labels the JASP table's grid columns show
ordered_weights <- function(emm, grid, weights) lapply(weights, unlist)

tables <- function(model, fm, d, e, out) {
  at <- NULL
  for (v in names(e$sd)) at[[v]] <- mean(d[[v]]) + c(-1, 0, 1) * e$sd[[v]] * sd(d[[v]])
  emm <- emmeans::emmeans(model, unlist(e$specs), at = at, options = list(level = 0.95),
                          type = if (isTRUE(e$response)) "response")
  tab <- as.data.frame(emm)
  est <- names(tab)[match("SE", names(tab)) - 1]
  out$emmeans <- list(estimate = num(tab[[est]]), se = num(tab$SE), lower = num(tab[[ncol(tab) - 1]]),
                      upper = num(tab[[ncol(tab)]]), labels = lapply(unlist(e$specs), function(v) as.character(tab[[v]])))
  if (!is.null(e$null)) {
    tt <- as.data.frame(emmeans::test(emm, null = as.numeric(e$null)))
    out$emmeans$stat <- num(tt[[grep("ratio", colnames(tt))]]); out$emmeans$p <- num(tt$p.value)
  }
  if (!is.null(e$contrasts)) {
    w <- ordered_weights(emm, e$grid, e$contrasts)
    cc <- as.data.frame(emmeans::contrast(if (isTRUE(e$response)) emmeans::regrid(emm) else emm, w, adjust = e$adjust))
    out$contrasts <- list(estimate = num(cc[[ncol(cc) - 4]]), se = num(cc$SE), stat = num(cc[[ncol(cc) - 1]]),
                          p = num(cc$p.value))
  }
  out
}

trends <- function(fm, d, t, out) {
  emt <- emmeans::emtrends(fm, unlist(t$specs), var = t$var, data = d, options = list(level = 0.95))
  tab <- as.data.frame(emt)
  out$trends <- list(estimate = num(tab[[paste0(t$var, ".trend")]]), se = num(tab$SE),
                     lower = num(tab[[ncol(tab) - 1]]), upper = num(tab[[ncol(tab)]]))
  if (!is.null(t$contrasts)) {
    cc <- as.data.frame(emmeans::contrast(emt, lapply(t$contrasts, unlist), adjust = t$adjust))
    out$trend_contrasts <- list(estimate = num(cc$estimate), se = num(cc$SE), stat = num(cc[[ncol(cc) - 1]]),
                                p = num(cc$p.value))
  }
  out
}

one <- function(cs) {
  r <- cs$r
  d <- prepare(cs)
  fam <- eval(call(r$r_family, r$link))
  args <- list(formula = as.formula(r$formula), data = d, type = 3, method = "LRT",
               test_intercept = isTRUE(r$test_intercept), check_contrasts = FALSE, family = fam, progress = FALSE)
  if (r$family == "binomial") args$weights <- d[[r$trials]]
  model <- suppressMessages(do.call(afex::mixed, args))
  fm <- model$full_model
  at <- model$anova_table
  out <- list(id = cs$id, nobs = nrow(d),
              anova = list(effect = rownames(at), df = at$`Chi Df`, stat = at$Chisq, p = at$`Pr(>Chisq)`))
  cf <- summary(fm)$coefficients
  out$fixed <- list(term = rownames(cf), estimate = cf[, 1], se = cf[, 2], stat = cf[, 3], p = cf[, 4])
  ll <- logLik(fm)
  out$fit <- list(loglik = as.numeric(ll), df = attr(ll, "df"), aic = AIC(fm), bic = BIC(fm),
                  deviance = deviance(fm, REML = FALSE), ngrps = as.list(sapply(fm@flist, nlevels)))
  vc <- VarCorr(fm)
  out$varcorr <- lapply(seq_along(vc), function(i) list(name = names(vc)[i], sd = unname(attr(vc[[i]], "stddev"))))
  out$sigma <- sigma(fm)
  if (!is.null(r$emmeans)) out <- tables(model, fm, d, r$emmeans, out)
  if (!is.null(r$trends)) out <- trends(fm, d, r$trends, out)
  out
}

res <- lapply(cases, one)
names(res) <- sapply(cases, function(x) x$id)
res$`_versions` <- lapply(c(R = "base", afex = "afex", lme4 = "lme4", emmeans = "emmeans"),
                          function(p) as.character(packageVersion(p)))
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = TRUE), args[2])
