# Reference values for tests/test_formula_features.py: R's model matrices (column names and
# values) and lmer fits (REML criterion, fixed effects) for formula features evaluated from the
# syntax tree (arithmetic functions and constants, log bases, scale's named arguments, logical
# I(), relevel with a quoted level, as.numeric, cut, %in%, orthogonal and raw poly,
# offset() terms, splines::ns and splines::bs). Run from anywhere:
#   Rscript tests/data/formula_features.R   (writes formula_features.json next to this script;
# needs lme4 and jsonlite). Data: lme4's sleepstudy from module/datasets with a factor f
# (A, B, C repeated) added.
suppressMessages({library(lme4); library(jsonlite)})

script <- sub("^--file=", "", grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE))
here <- dirname(normalizePath(script))
ss <- read.csv(file.path(here, "..", "..", "module", "datasets", "sleepstudy.csv"))
ss$Subject <- factor(ss$Subject)
ss$f <- factor(rep(c("A", "B", "C"), length.out = nrow(ss)))

FIXED <- c(
  "sin(Days) + cos(Days) + I(2 * pi * Days/10)",
  "log(Days + 1, 2) + log(Days + 2, base = 10) + exp(Days/10)",
  "scale(Days, scale = FALSE) + f",
  "scale(Days, center = FALSE)",
  "scale(Days)",
  "I(Days > 4) + f",
  "I(Days >= 2 & Days != 7 & !(Days > 8))",
  "relevel(f, ref = \"B\") + Days",
  "stats::relevel(f, ref = 3) * Days",
  "as.numeric(Days) + as.factor(f)",
  "cut(Days, 3)",
  "cut(Days, c(-1, 2, 5, 9))",
  "f + Days %in% f",
  "I(Days %in% c(1, 2, 3))",
  "poly(Days, 2)",
  "poly(Days, 2) * f",
  "poly(Days, 2, raw = TRUE)",
  "stats::poly(Days, degree = 3) + f",
  "Days + offset(Days/2)",
  "f + offset(log(Days + 1)) + stats::offset(sqrt(Days))",
  "splines::ns(Days, 3)",
  "splines::ns(Days, knots = c(2.5, 6)) * f",
  "splines::bs(Days, df = 5)",
  "splines::bs(Days, knots = c(3, 6), degree = 2) + f"
)

out <- lapply(FIXED, function(rhs) {
  fo <- as.formula(paste("Reaction ~", rhs, "+ (1 | Subject)"))
  fm <- lmer(fo, data = ss, REML = TRUE)
  X <- getME(fm, "X")
  list(rhs = rhs, names = colnames(X), X = unname(split(X, col(X))),
       reml_crit = unname(getME(fm, "devcomp")$cmp[["REML"]]), fixef = unname(fixef(fm)))
})
write(toJSON(out, digits = NA, auto_unbox = TRUE), file.path(here, "formula_features.json"))
