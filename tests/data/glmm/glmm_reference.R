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
  epil_nb = "glmer.nb(y ~ lbase * trt + lage + V4 + (1 | subject), ep)",
  cbpp_cauchit = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial(link = \"cauchit\"))",
  cbpp_log_link = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial(link = \"log\"))",
  cbpp_no_fixed = "glmer(cbind(incidence, size - incidence) ~ 0 + (1 | herd), cbpp, binomial)",
  cbpp_poisson_offset = "glmer(incidence ~ period + (1 | herd) + offset(log(size)), cbpp, poisson)",
  sleep_invgauss = "glmer(I(Reaction / 100) ~ Days + (1 | Subject), sl, inverse.gaussian)"
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

## R's family objects at fixed points: linkinv, mu.eta, variance, dev.resids, aic
fams <- list(
  c("binomial", "logit"), c("binomial", "probit"), c("binomial", "cloglog"), c("binomial", "cauchit"),
  c("binomial", "log"), c("poisson", "log"), c("poisson", "identity"), c("poisson", "sqrt"),
  c("Gamma", "inverse"), c("Gamma", "identity"), c("Gamma", "log"),
  c("inverse.gaussian", "1/mu^2"), c("inverse.gaussian", "inverse"), c("inverse.gaussian", "log"),
  c("gaussian", "log"), c("gaussian", "inverse"))
eta_pts <- list(logit = c(-40, -3, -0.5, 0, 0.7, 2, 35), probit = c(-9, -2, -0.3, 0, 0.4, 1.5, 9),
                cloglog = c(-40, -3, -0.5, 0, 0.7, 1.5, 3), cauchit = c(-50, -3, -0.5, 0, 0.7, 2, 40),
                log = c(-3, -1, -0.2, 0, 0.5, 1, 2), identity = c(0.2, 0.5, 1, 2, 3.5, 5, 8),
                sqrt = c(0.3, 0.5, 1, 1.5, 2, 3, 4), inverse = c(0.1, 0.25, 0.5, 1, 2, 4, 8),
                "1/mu^2" = c(0.1, 0.25, 0.5, 1, 2, 4, 8))
ys <- list(binomial = c(0, 0.25, 0.5, 1, 0.75, 0, 1), poisson = c(0, 1, 3, 0, 7, 2, 5),
           Gamma = c(0.3, 1.2, 2.5, 0.8, 4, 1.1, 0.6), inverse.gaussian = c(0.3, 1.2, 2.5, 0.8, 4, 1.1, 0.6),
           gaussian = c(0.3, 1.2, 2.5, 0.8, 4, 1.1, 0.6))
wts <- list(binomial = c(4, 4, 2, 1, 4, 3, 5))
fam_out <- lapply(fams, function(fl) {
  fam <- get(fl[1])(link = fl[2])
  eta <- eta_pts[[fl[2]]]
  mu <- fam$linkinv(eta)
  y <- ys[[fl[1]]]
  wt <- if (is.null(wts[[fl[1]]])) rep(1, 7) else wts[[fl[1]]]
  mu_d <- if (fl[1] == "binomial") c(0.1, 0.3, 0.5, 0.6, 0.7, 0.2, 0.9) else c(0.4, 1, 2, 1.5, 3, 0.9, 0.7)
  dev <- fam$dev.resids(y, mu_d, wt)
  list(family = fl[1], link = fl[2], eta = eta, linkinv = mu, mu_eta = fam$mu.eta(eta),
       variance = fam$variance(mu_d), y = y, wt = wt, mu = mu_d, dev_resids = dev,
       aic = fam$aic(y, wt, mu_d, wt, sum(dev)), linkfun = fam$linkfun(mu_d))
})
nb <- MASS::negative.binomial(2.5)
y <- ys$poisson; mu_d <- c(0.4, 1, 2, 1.5, 3, 0.9, 0.7); dev <- nb$dev.resids(y, mu_d, rep(1, 7))
fam_out[[length(fam_out) + 1]] <- list(family = "negative.binomial", theta = 2.5, link = "log",
  eta = eta_pts$log, linkinv = nb$linkinv(eta_pts$log), mu_eta = nb$mu.eta(eta_pts$log),
  variance = nb$variance(mu_d), y = y, wt = rep(1, 7), mu = mu_d, dev_resids = dev,
  aic = nb$aic(y, rep(1, 7), mu_d, rep(1, 7), sum(dev)), linkfun = nb$linkfun(mu_d))
out[["_families"]] <- fam_out
out[["_about"]] <- list(R = paste(R.version$major, R.version$minor, sep = "."),
                        lme4 = as.character(packageVersion("lme4")),
                        script = "tests/data/glmm/glmm_reference.R")
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"), "glmm_reference.json")
