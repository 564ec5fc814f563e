# Reference values for tests/test_model_api_r.py: lme4's predict.merMod (conditional, population,
# new data with a new level), simulate.merMod moments, performance::r2_nakagawa and
# performance::icc for sleepstudy and the chapter's Table 12.2 model (tenthirty, leg press, pre and
# post). Run from anywhere:
#   Rscript tests/data/model_api.R   (writes model_api.json next to this script;
# needs lme4, lmerTest, performance and jsonlite).
suppressMessages({library(lme4); library(lmerTest); library(performance); library(jsonlite)})

script <- sub("^--file=", "", grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE))
here <- dirname(normalizePath(script))
data_dir <- file.path(here, "..", "..", "module", "datasets")

ss <- read.csv(file.path(data_dir, "sleepstudy.csv"))
ss$Subject <- factor(ss$Subject)
tt <- read.csv(file.path(data_dir, "tenthirty.csv"))
tt <- tt[tt$exercise == "legpress" & tt$time %in% c("pre", "post"), ]
tt$time <- factor(tt$time, levels = c("pre", "post"))
tt$group <- factor(tt$group)
tt$participant <- factor(tt$participant)

moments <- function(m, nsim = 4000, seed = 1) {
  set.seed(seed)
  s <- as.matrix(simulate(m, nsim = nsim))
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
    fitted = unname(fitted(m)),
    predict_conditional = unname(predict(m)),
    predict_population = unname(predict(m, re.form = NA)),
    newdata = newdata,
    predict_new_conditional = unname(predict(m, newdata = newdata, allow.new.levels = TRUE)),
    predict_new_population = unname(predict(m, newdata = newdata, re.form = NA)),
    residuals_pearson = unname(residuals(m, type = "pearson")),
    residuals_scaled = unname(residuals(m, scaled = TRUE)),
    r2_marginal = unname(r2$R2_marginal), r2_conditional = unname(r2$R2_conditional),
    icc_adjusted = unname(ic$ICC_adjusted), icc_unadjusted = unname(ic$ICC_unadjusted),
    simulate = moments(m))
}

sleep <- lmer(Reaction ~ Days + (Days | Subject), ss)
chapter <- lmer(load ~ time * group + (1 | participant), tt)
out <- list(
  sleepstudy = reference(sleep, data.frame(Days = c(0, 5, 9, 3), Subject = c("308", "309", "new", "372"))),
  tenthirty = reference(chapter, data.frame(time = c("pre", "post", "post"), group = c("RM30", "RM10", "RM30"),
                                            participant = c("1", "2", "999"))),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  performance = as.character(packageVersion("performance"))))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = FALSE), file.path(here, "model_api.json"))
