# Reference values for tests/test_glmm_inference.py: afex's per-term likelihood-ratio tests of
# GLMMs (mixed(..., method = "LRT", family = ...), sum contrasts, type 3, intercept tested), lme4's
# profile and Wald intervals of the glmer fits, and a model comparison. Run from the repository root:
#   Rscript tests/data/glmm/inference_reference.R > tests/data/glmm/inference_reference.json
suppressMessages({library(lme4); library(afex); library(jsonlite)})
options(contrasts = c("contr.sum", "contr.poly"))
cbpp <- read.csv("module/datasets/cbpp.csv", colClasses = c(herd = "factor", period = "factor"))
cbpp$prop <- cbpp$incidence / cbpp$size
gt <- read.csv("module/datasets/grouseticks.csv",
               colClasses = c(INDEX = "factor", BROOD = "factor", LOCATION = "factor", YEAR = "factor"))
lrt <- function(m) {
  a <- m$anova_table
  list(term = rownames(a), npar = a[["Df"]], chisq = a[["Chisq"]], df = a[["Chi Df"]], p = a[["Pr(>Chisq)"]])
}
ci <- function(fm, method) {
  x <- confint(fm, method = method, oldNames = TRUE)
  list(names = rownames(x), lower = unname(x[, 1]), upper = unname(x[, 2]))
}
a_cbpp <- mixed(prop ~ period + (1 | herd), data = cbpp, family = binomial, weights = cbpp$size,
                method = "LRT", test_intercept = TRUE, progress = FALSE)
a_gt <- mixed(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), data = gt, family = poisson,
              method = "LRT", test_intercept = TRUE, progress = FALSE)
f_cbpp <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)
f_gt <- glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), gt, poisson)
f_gt0 <- glmer(TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION), gt, poisson)
cmp <- anova(f_gt0, f_gt)
out <- list(
  cbpp = list(lrt = lrt(a_cbpp), profile = ci(f_cbpp, "profile"), wald = ci(f_cbpp, "Wald"),
              loglik = as.numeric(logLik(f_cbpp))),
  grouse = list(lrt = lrt(a_gt), profile = ci(f_gt, "profile"), wald = ci(f_gt, "Wald"),
                loglik = as.numeric(logLik(f_gt))),
  grouse_compare = list(npar = cmp[["npar"]], loglik = cmp[["logLik"]], chisq = cmp[["Chisq"]],
                        df = cmp[["Df"]], p = cmp[["Pr(>Chisq)"]]),
  versions = list(lme4 = as.character(packageVersion("lme4")), afex = as.character(packageVersion("afex"))))
cat(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null"))
