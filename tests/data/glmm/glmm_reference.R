## Reference values for tests/test_glmm_native.py: lme4 1.1-31 (R 4.2) glmer / glmer.nb fits.
## Run from this folder:  Rscript glmm_reference.R   (writes glmm_reference.json)
## The data sets are written once from their R packages (provenance in README.md) and every fit
## reads them back from the CSV files, with factors made by read.csv + factor() as the project
## makes them, so that R and the native engine see the same data.
suppressMessages({library(lme4); library(jsonlite)})

export <- function(file, df) {
  if (file.exists(file)) return(invisible())
  con <- if (grepl("[.]gz$", file)) gzfile(file, "w") else file(file, "w")
  write.csv(df, con, row.names = FALSE)
  close(con)
}
export("cbpp.csv", lme4::cbpp)
export("grouseticks.csv", lme4::grouseticks[, c("INDEX", "TICKS", "BROOD", "YEAR", "LOCATION", "cHEIGHT")])
export("VerbAgg.csv.gz", lme4::VerbAgg[, c("Anger", "Gender", "item", "id", "btype", "situ", "r2")])
export("Contraception.csv", mlmRev::Contraception[, c("woman", "district", "use", "livch", "age", "urban")])
export("ScotsSec.csv", mlmRev::ScotsSec[, c("verbal", "attain", "primary", "sex", "second")])
export("sleepstudy.csv", lme4::sleepstudy)
if (!file.exists("epil.csv")) {
  e <- MASS::epil
  e$lbase <- log(e$base / 4); e$lage <- log(e$age)
  export("epil.csv", e[, c("y", "trt", "lbase", "lage", "V4", "subject")])
}

rd <- function(file, factors) {
  d <- read.csv(file)
  for (f in factors) d[[f]] <- factor(d[[f]])
  d
}
cbpp <- rd("cbpp.csv", c("herd", "period"))
gt <- rd("grouseticks.csv", c("INDEX", "BROOD", "YEAR", "LOCATION"))
va <- rd("VerbAgg.csv.gz", c("Gender", "item", "id", "btype", "situ", "r2"))
cn <- rd("Contraception.csv", c("woman", "district", "use", "livch", "urban"))
ss <- rd("ScotsSec.csv", c("primary", "sex", "second"))
sl <- rd("sleepstudy.csv", c("Subject"))
ep <- rd("epil.csv", c("trt", "subject"))

calls <- list(
  cbpp_laplace = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)",
  cbpp_nagq0 = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, nAGQ = 0)",
  cbpp_nagq25 = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, nAGQ = 25)",
  cbpp_probit = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial(link = \"probit\"))",
  cbpp_cloglog = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial(link = \"cloglog\"))",
  verbagg = "glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), va, binomial)",
  grouseticks = "glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION), gt, poisson)",
  contraception_slope = "glmer(use ~ age + urban + livch + (urban | district), cn, binomial)",
  scotssec_crossed = "glmer(attain ~ verbal + sex + (1 | primary) + (1 | second), ss, poisson)",
  sleep_gamma_log = "glmer(Reaction ~ Days + (Days | Subject), sl, Gamma(link = \"log\"))",
  epil_nb = "glmer.nb(y ~ lbase * trt + lage + V4 + (1 | subject), ep)"
)

one <- function(call) {
  warn <- character(0)
  t <- system.time(f <- withCallingHandlers(eval(parse(text = call)), warning = function(w) {
    warn <<- c(warn, conditionMessage(w)); invokeRestart("muffleWarning")
  }))[["elapsed"]]
  vc <- as.data.frame(VarCorr(f))
  re <- ranef(f, condVar = TRUE)
  ranef_out <- lapply(names(re), function(g) {
    r <- re[[g]]; pv <- attr(r, "postVar"); k <- min(4, nrow(r))
    list(group = g, levels = rownames(r)[1:k], terms = colnames(r),
         modes = unname(as.matrix(r[1:k, , drop = FALSE])),
         condsd = t(sapply(1:k, function(i) sqrt(diag(as.matrix(pv[, , i])))))
    )
  })
  ll <- logLik(f)
  fam <- family(f)
  list(
    call = call, time = t, warnings = warn, nobs = nobs(f),
    crit = -2 * as.numeric(ll), loglik = as.numeric(ll), df = attr(ll, "df"),
    aic = AIC(f), bic = BIC(f), df_residual = df.residual(f), deviance_fn = deviance(f),
    family = fam$family, link = fam$link,
    nb_theta = if (grepl("Negative", fam$family)) getME(f, "glmer.nb.theta") else NULL,
    beta_names = names(fixef(f)), beta = unname(fixef(f)),
    se = unname(sqrt(diag(as.matrix(vcov(f))))), theta = unname(getME(f, "theta")),
    vc = lapply(seq_len(nrow(vc)), function(i) list(vc$grp[i], vc$var1[i], ifelse(is.na(vc$var2[i]), "", vc$var2[i]), vc$sdcor[i])),
    sigma = sigma(f), ngrps = as.list(ngrps(f)), singular = isSingular(f),
    ranef = ranef_out,
    fitted = unname(head(fitted(f), 6)),
    resid_deviance = unname(head(residuals(f), 6)),
    resid_pearson = unname(head(residuals(f, type = "pearson"), 6)),
    feval = f@optinfo$feval
  )
}
out <- lapply(calls, one)
out[["_about"]] <- list(R = paste(R.version$major, R.version$minor, sep = "."),
                        lme4 = as.character(packageVersion("lme4")),
                        script = "tests/data/glmm/glmm_reference.R")
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"), "glmm_reference.json")
