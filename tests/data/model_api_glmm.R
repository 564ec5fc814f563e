# Reference values for tests/test_model_api_glmm_r.py: lme4's predict.merMod (link and response
# scale, conditional and population, new data with a new level), residuals.glmerMod (deviance,
# pearson, response, working), simulate.merMod moments, performance::r2_nakagawa and
# performance::icc for two GLMMs: cbpp (binomial with trials, cbind response) and grouseticks
# (Poisson, two grouping factors); R² and ICC of cbpp's model with the probit and cloglog links.
# Run from anywhere:
#   Rscript tests/data/model_api_glmm.R   (writes model_api_glmm.json next to this script;
# needs lme4, performance and jsonlite).
suppressMessages({library(lme4); library(performance); library(jsonlite)})

script <- sub("^--file=", "", grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE))
here <- dirname(normalizePath(script))
data_dir <- file.path(here, "..", "..", "module", "datasets")

cb <- read.csv(file.path(data_dir, "cbpp.csv"))
cb$herd <- factor(cb$herd); cb$period <- factor(cb$period)
gt <- read.csv(file.path(data_dir, "grouseticks.csv"))
gt$YEAR <- factor(gt$YEAR); gt$BROOD <- factor(gt$BROOD); gt$LOCATION <- factor(gt$LOCATION)

moments <- function(m, nsim = 4000, seed = 1) {
  set.seed(seed)
  s <- simulate(m, nsim = nsim)
  s <- sapply(s, function(d) if (is.matrix(d)) d[, 1] / rowSums(d) else d)
  g <- getME(m, "flist")[[1]]
  first <- which(g == levels(g)[1])[1:2]
  list(row_mean = unname(rowMeans(s)), row_var = unname(apply(s, 1, var)),
       cov_same_group = cov(s[first[1], ], s[first[2], ]), nsim = nsim)
}

reference <- function(m, newdata) {
  r2 <- r2_nakagawa(m)
  ic <- icc(m)
  list(
    fixef = as.list(fixef(m)),
    loglik = as.numeric(logLik(m)),
    fitted = unname(fitted(m)),
    predict_link = unname(predict(m)),
    predict_response = unname(predict(m, type = "response")),
    predict_population_link = unname(predict(m, re.form = NA)),
    predict_population_response = unname(predict(m, re.form = NA, type = "response")),
    newdata = newdata,
    predict_new_link = unname(predict(m, newdata = newdata, allow.new.levels = TRUE)),
    predict_new_response = unname(predict(m, newdata = newdata, allow.new.levels = TRUE, type = "response")),
    predict_new_population = unname(predict(m, newdata = newdata, re.form = NA)),
    residuals_deviance = unname(residuals(m, type = "deviance")),
    residuals_pearson = unname(residuals(m, type = "pearson")),
    residuals_response = unname(residuals(m, type = "response")),
    residuals_working = unname(residuals(m, type = "working")),
    r2_marginal = unname(r2$R2_marginal), r2_conditional = unname(r2$R2_conditional),
    icc_adjusted = unname(ic$ICC_adjusted), icc_unadjusted = unname(ic$ICC_unadjusted),
    simulate = moments(m))
}

cbpp_m <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cb, binomial)
grouse_m <- glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), gt, poisson)
out <- list(
  cbpp = reference(cbpp_m, data.frame(period = c("1", "4", "2"), herd = c("1", "7", "new"),
                                      incidence = 0, size = 1)),
  grouseticks = reference(grouse_m, data.frame(YEAR = c("95", "97", "96"), cHEIGHT = c(-20, 0, 35.5),
                                               BROOD = c("501", "new", "606"), LOCATION = c("32", "32", "new"))),
  # R² and ICC of cbpp's model with the probit and cloglog links (distribution variances 1, pi^2/6)
  links = lapply(c(probit = "probit", cloglog = "cloglog"), function(link) {
    m <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cb, binomial(link = link))
    r2 <- r2_nakagawa(m); ic <- icc(m)
    list(fixef = as.list(fixef(m)), r2_marginal = unname(r2$R2_marginal),
         r2_conditional = unname(r2$R2_conditional), icc_adjusted = unname(ic$ICC_adjusted),
         icc_unadjusted = unname(ic$ICC_unadjusted))
  }),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  performance = as.character(packageVersion("performance")),
                  insight = as.character(packageVersion("insight"))))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = FALSE), file.path(here, "model_api_glmm.json"))
