# Reference values for tests/test_glmm_emmeans.py: glmer fits (beta, vcov) and emmeans 1.8 tables
# on the link and response scales and after regrid. Run from the repository root:
#   Rscript tests/data/glmm/emmeans_reference.R > tests/data/glmm/emmeans_reference.json
suppressMessages({library(lme4); library(emmeans); library(jsonlite)})
cbpp <- read.csv("module/datasets/cbpp.csv", colClasses = c(herd = "factor", period = "factor"))
gt <- read.csv("module/datasets/grouseticks.csv",
               colClasses = c(INDEX = "factor", BROOD = "factor", LOCATION = "factor", YEAR = "factor"))
tab <- function(s) {
  s <- as.data.frame(s)
  lapply(s, function(x) if (is.factor(x)) as.character(x) else x)
}
one <- function(m, specs, custom, ...) {
  em <- emmeans(m, specs, ...)
  list(beta = unname(fixef(m)), vcov = unname(as.matrix(vcov(m))),
       link = tab(summary(em, infer = c(TRUE, TRUE))),
       link_pairs = tab(summary(pairs(em, adjust = "holm"), infer = c(TRUE, TRUE))),
       response = tab(summary(em, type = "response", infer = c(TRUE, TRUE), null = 0.1)),
       response_pairs = tab(summary(pairs(em, adjust = "holm"), type = "response", infer = c(TRUE, TRUE))),
       regrid = tab(summary(regrid(em), infer = c(TRUE, TRUE), null = 0.1)),
       regrid_pairs = tab(summary(pairs(regrid(em), adjust = "holm"), infer = c(TRUE, TRUE))),
       regrid_custom = tab(summary(contrast(regrid(em), custom, adjust = "none"), infer = c(TRUE, TRUE))))
}
K4 <- list(c1 = c(1, -1, 0, 0), c2 = c(0.5, 0.5, -1, 0))
K3 <- list(c1 = c(1, -1, 0), c2 = c(0.5, 0.5, -1))
out <- list(
  cbpp_logit = one(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial), ~period, K4),
  cbpp_probit = one(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
                          binomial(link = "probit")), ~period, K4),
  grouse_log = one(glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), gt, poisson), ~YEAR, K3),
  versions = list(lme4 = as.character(packageVersion("lme4")), emmeans = as.character(packageVersion("emmeans"))))
cat(toJSON(out, digits = NA, auto_unbox = TRUE))
