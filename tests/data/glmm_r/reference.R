# Reference values for tests/test_glmm_r_engine.py: plain glmer / glmer.nb fits of the bundled
# GLMM data sets (module/datasets), each R call recorded with its values.
# Run from anywhere:  Rscript tests/data/glmm_r/reference.R  (writes reference.json next to this
# script; needs lme4, MASS and jsonlite). Numbers: JSON via jsonlite with digits = NA (15
# significant digits); at most 4 levels of the conditional modes per (grouping factor, term) and
# the first 5 fitted values and residuals. glmer's default control throughout (bobyqa, then
# Nelder_Mead), as the lme4 engine fits. Factors read as read.csv + factor() read them (levels in
# alphabetical order), as the bundled data sets' factors are.
suppressMessages({library(lme4); library(jsonlite)})

script <- sub("^--file=", "", grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE))
here <- dirname(normalizePath(script))
datasets <- file.path(here, "..", "..", "..", "module", "datasets")
rd <- function(f, factors) {
  d <- read.csv(file.path(datasets, paste0(f, ".csv")))
  for (v in factors) d[[v]] <- factor(d[[v]])
  d
}

cbpp <- rd("cbpp", c("herd", "period"))
grouse <- rd("grouseticks", c("INDEX", "BROOD", "YEAR", "LOCATION"))
verb <- rd("VerbAgg", c("Gender", "item", "id", "btype", "situ", "mode", "r2"))
contra <- rd("Contraception", c("woman", "district", "use", "livch", "urban"))
bact <- rd("bacteria", c("y", "ap", "hilo", "ID", "trt"))
arab <- rd("Arabidopsis", c("reg", "popu", "gen", "amd", "status"))
ortho <- rd("Orthodont", c("Subject", "Sex"))
epil <- rd("epil", c("trt", "subject"))
scots <- rd("ScotsSec", c("primary", "sex", "second"))

models <- c(
  cbpp_trials = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)",
  cbpp_proportion = "glmer(I(incidence / size) ~ period + (1 | herd), cbpp, binomial, weights = size)",
  cbpp_agq25 = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, nAGQ = 25)",
  cbpp_agq0 = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, nAGQ = 0)",
  cbpp_cloglog = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial(link = \"cloglog\"))",
  grouseticks = "glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION), grouse, poisson)",
  verbagg = "glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), verb, binomial)",
  contraception = "glmer(use ~ age + I(age^2) + urban + livch + (1 + urban | district), contra, binomial)",
  bacteria_probit = "glmer(y ~ trt + I(week > 2) + (1 | ID), bact, binomial(link = \"probit\"))",
  bacteria_cauchit = "glmer(y ~ trt + I(week > 2) + (1 | ID), bact, binomial(link = \"cauchit\"))",
  arabidopsis = "glmer(total.fruits ~ nutrient + amd + rack + status + (1 | popu) + (1 | gen), arab, poisson)",
  scotssec_crossed = "glmer(attain ~ verbal + sex + (1 | primary) + (1 | second), scots, poisson)",
  orthodont_gamma = "glmer(distance ~ age + Sex + (1 | Subject), ortho, Gamma(link = \"log\"))",
  orthodont_gaussian_log = "glmer(distance ~ age + Sex + (1 | Subject), ortho, gaussian(link = \"log\"))",
  epil_nb = "glmer.nb(y ~ trt + lbase + lage + V4 + (1 | subject), epil)"
)

first <- function(x, k = 5) unname(head(as.numeric(x), k))

ranef_blocks <- function(fm) {
  re <- ranef(fm, condVar = TRUE)
  out <- list()
  for (g in names(re)) {
    pv <- attr(re[[g]], "postVar")
    if (is.list(pv)) pv <- pv[[1]]
    for (j in seq_along(re[[g]])) {
      k <- min(4, nrow(re[[g]]))
      out[[length(out) + 1]] <- list(group = g, term = names(re[[g]])[j], levels = rownames(re[[g]])[1:k],
                                     modes = re[[g]][1:k, j], condsd = sqrt(pv[j, j, 1:k]))
    }
  }
  out
}

one <- function(call) {
  fm <- suppressWarnings(eval(parse(text = call)))
  cf <- summary(fm)$coefficients
  vc <- as.data.frame(VarCorr(fm))
  conv <- fm@optinfo$conv$lme4$messages
  list(call = call, family = family(fm)$family, link = family(fm)$link,
       coef_names = rownames(cf), estimate = unname(cf[, 1]), std_error = unname(cf[, 2]),
       statistic = unname(cf[, 3]), statistic_name = colnames(cf)[3],
       p_value = unname(2 * pnorm(-abs(cf[, 3]))),
       loglik = as.numeric(logLik(fm)), aic = AIC(fm), bic = BIC(fm), deviance = deviance(fm),
       df_residual = df.residual(fm), nobs = nobs(fm), sigma = sigma(fm),
       theta = unname(getME(fm, "theta")),
       varcorr = list(grp = vc$grp, var1 = ifelse(is.na(vc$var1), "", vc$var1),
                      var2 = ifelse(is.na(vc$var2), "", vc$var2), sdcor = vc$sdcor),
       ranef = ranef_blocks(fm),
       fitted = first(fitted(fm)), residuals = first(residuals(fm)),
       pearson = first(residuals(fm, type = "pearson")),
       nb_theta = if (grepl("^Negative Binomial", family(fm)$family)) getME(fm, "glmer.nb.theta") else NULL,
       converged = length(conv) == 0 && fm@optinfo$conv$opt == 0,
       messages = if (length(conv)) unlist(conv) else character(0))
}

res <- lapply(models, one)
res <- c(list(`_about` = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                              jsonlite = as.character(packageVersion("jsonlite")),
                              script = "tests/data/glmm_r/reference.R")), res)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(here, "reference.json"))
