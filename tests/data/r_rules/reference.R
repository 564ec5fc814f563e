# Reference values for tests/test_r_rules.py (issue 14, data and formula rules): each case's
# data file read by read.csv as R reads it, fitted by lmerTest::lmer (REML), and its type III and
# type II anova (Satterthwaite). Run from the repository root:
#   Rscript tests/data/r_rules/reference.R
suppressPackageStartupMessages({library(lmerTest); library(jsonlite)})
dir <- "tests/data/r_rules"
cases <- list(
  alfalfa = list(file = "alfalfa.csv", formula = "Yield ~ Date + (1 | Block) + (1 | Block:Variety)"),
  oats_numeric_block = list(file = "oats.csv", formula = "yield ~ nitro + Block + (1 | Block:Variety)"),
  orthodont_logical = list(file = "orthodont.csv", formula = "distance ~ age + male + (1 | Subject)"),
  co2_interaction_only = list(file = "co2.csv", formula = "uptake ~ Type:Treatment + (1 | Plant)"),
  co2_interaction_conc = list(file = "co2.csv", formula = "uptake ~ Type:Treatment + conc + (1 | Plant)"),
  co2_minus_main = list(file = "co2.csv", formula = "uptake ~ Type * Treatment - Type + (1 | Plant)"),
  oats_nested = list(file = "oats.csv", formula = "yield ~ Variety + Variety:nitroF + (1 | Block)"),
  orthodont_age_sex = list(file = "orthodont.csv", formula = "distance ~ age + age:Sex + (1 | Subject)"),
  orthodont_aliased = list(file = "orthodont.csv", formula = "distance ~ age + Sex + male + (1 | Subject)")
)
anova_list <- function(a) list(term = rownames(a), NumDF = a$NumDF, DenDF = a$DenDF,
                               F = a[["F value"]], p = a[["Pr(>F)"]])
one <- function(case) {
  d <- read.csv(file.path(dir, case$file))
  fm <- lmer(as.formula(case$formula), data = d, REML = TRUE)
  s <- summary(fm)$coefficients
  vc <- as.data.frame(VarCorr(fm))
  list(formula = case$formula, nobs = nobs(fm), REMLcrit = unname(lme4::REMLcrit(fm)),
       coef = list(name = rownames(s), estimate = unname(s[, 1]), se = unname(s[, 2]),
                   df = unname(s[, 3])),
       varcorr = list(group = vc$grp, vcov = vc$vcov),
       anova3 = anova_list(anova(fm, type = 3)), anova2 = anova_list(anova(fm, type = 2)))
}
res <- lapply(cases, one)
res$`_versions` <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                        lmerTest = as.character(packageVersion("lmerTest")))
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
           file.path(dir, "reference.json"))
