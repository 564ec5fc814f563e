# glmer's optimum under its default PIRLS tolerance (tolPwrss = 1e-7) and under a tight one
# (1e-11), for tests/test_glmm_pirls_tolerance.py. With the default, lme4's PIRLS stops short
# of the conditional modes, its Laplace deviance is too high by a few 1e-4 and its optimum moves;
# with 1e-11 glmer reaches the optimum of the exact Laplace criterion.
# Run: Rscript tests/data/glmm/pirls_tolerance.R tests/data/glmm/pirls_tolerance.json
suppressMessages({library(lme4); library(jsonlite)})
here <- "tests/data/glmm"
cbpp <- read.csv(file.path(here, "cbpp.csv"))
cbpp$herd <- factor(cbpp$herd); cbpp$period <- factor(cbpp$period)
sleep <- read.csv(file.path(here, "sleepstudy.csv")); sleep$Subject <- factor(sleep$Subject)
fits <- list(
  cbpp = function(ctl) glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), family = binomial,
                             data = cbpp, control = ctl),
  gamma_log = function(ctl) glmer(Reaction ~ Days + (1 | Subject), family = Gamma(link = "log"),
                                  data = sleep, control = ctl))
one <- function(f, tol) {
  m <- suppressWarnings(f(glmerControl(tolPwrss = tol)))
  list(tolPwrss = tol, deviance = -2 * as.numeric(logLik(m)), theta = unname(getME(m, "theta")),
       beta = unname(fixef(m)))
}
out <- lapply(fits, function(f) list(default = one(f, 1e-7), tight = one(f, 1e-11)))
out$`_versions` <- list(R = as.character(getRversion()), lme4 = as.character(packageVersion("lme4")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), commandArgs(trailingOnly = TRUE)[1])
