# Reference values for tests/test_lmm_lme4.py: 22 lme4 fits on the bundled data sets.
# Run from anywhere:  Rscript tests/data/lme4_reference.R  (writes lme4_reference.json next to
# this script; needs lme4 and jsonlite). Numbers: JSON via jsonlite with digits = NA (15
# significant digits); at most 4 levels of the conditional modes per (grouping factor, term).
# Each model's R call is written with its values; the test checks that its CALLS entry is the same.
# lme4_converged: lme4's gradient check passed (no convergence code; a singular-fit note is no failure).
suppressMessages({library(lme4); library(jsonlite)})

script <- sub("^--file=", "", grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE))
here <- dirname(normalizePath(script))
datasets <- file.path(here, "..", "..", "module", "datasets")
rd <- function(f) read.csv(file.path(datasets, paste0(f, ".csv")))

tt <- rd("tenthirty"); tt$participant <- factor(tt$participant)
tt_leg <- subset(tt, exercise == "legpress" & time %in% c("pre", "post"))
tt_leg$time <- factor(tt_leg$time, levels = c("pre", "post")); tt_leg$group <- factor(tt_leg$group)
sv <- rd("strengthvolume"); sv$participant <- factor(sv$participant)
sv60 <- subset(sv, exercise == "isok.60" & time %in% c("pre", "post") & !is.na(load))
sv60$time <- factor(sv60$time, levels = c("pre", "post"))
sv60$sets <- factor(sv60$sets, levels = c("single", "multiple"))
ss <- rd("sleepstudy"); ss$Subject <- factor(ss$Subject)
ss$w <- 1 + (ss$Days %% 3); ss$off <- 5 * sqrt(ss$Days)
ds <- rd("Dyestuff"); ds$Batch <- factor(ds$Batch)
ds2 <- rd("Dyestuff2"); ds2$Batch <- factor(ds2$Batch)
pe <- rd("Penicillin"); pe$plate <- factor(pe$plate); pe$sample <- factor(pe$sample)
pa <- rd("Pastes"); pa$batch <- factor(pa$batch); pa$cask <- factor(pa$cask)
ck <- rd("cake"); for (v in c("replicate", "recipe", "temperature")) ck[[v]] <- factor(ck[[v]])
fh <- rd("fhch2010"); for (v in c("id", "item", "task", "stimulus")) fh[[v]] <- factor(fh[[v]])
ie <- rd("InstEval")[1:5000, ]; for (v in c("s", "d", "service", "dept")) ie[[v]] <- factor(ie[[v]])

models <- c(
  ch_tenthirty = "lmer(load ~ time * group + (1 | participant), tt_leg)",
  ch_strengthvolume = "lmer(load ~ time * sets + (1 | participant), sv60)",
  ch_sleepstudy = "lmer(Reaction ~ Days + (Days | Subject), subset(ss, Days >= 2))",
  sleep_reml = "lmer(Reaction ~ Days + (Days | Subject), ss)",
  sleep_ml = "lmer(Reaction ~ Days + (Days | Subject), ss, REML = FALSE)",
  sleep_uncorr = "lmer(Reaction ~ Days + (Days || Subject), ss)",
  sleep_slope_only = "lmer(Reaction ~ Days + (0 + Days | Subject), ss)",
  sleep_same_factor = "lmer(Reaction ~ Days + (Days | Subject) + (0 + I(Days^2) | Subject), ss)",
  sleep_weights = "lmer(Reaction ~ Days + (Days | Subject), ss, weights = w)",
  sleep_weights_ml = "lmer(Reaction ~ Days + (1 | Subject), ss, weights = w, REML = FALSE)",
  sleep_offset = "lmer(Reaction ~ Days + (1 | Subject), ss, offset = off)",
  dyestuff_reml = "lmer(Yield ~ 1 + (1 | Batch), ds)",
  dyestuff_ml = "lmer(Yield ~ 1 + (1 | Batch), ds, REML = FALSE)",
  dyestuff2_singular = "lmer(Yield ~ 1 + (1 | Batch), ds2)",
  penicillin_reml = "lmer(diameter ~ 1 + (1 | plate) + (1 | sample), pe)",
  penicillin_ml = "lmer(diameter ~ 1 + (1 | plate) + (1 | sample), pe, REML = FALSE)",
  pastes_nested = "lmer(strength ~ 1 + (1 | batch/cask), pa)",
  cake_interaction = "lmer(angle ~ recipe * temperature + (1 | recipe:replicate), ck)",
  fhch2010_factor_slope = "lmer(log_rt ~ task * stimulus + (1 + stimulus | id) + (1 | item), fh)",
  sv_slope_and_nested = "lmer(load ~ time * sets + (1 + time | participant) + (1 | sets:participant), sv60)",
  sleep_quadratic = "lmer(Reaction ~ Days + (1 + Days + I(Days^2) | Subject), ss)",
  insteval_5000 = "lmer(y ~ service + (1 | s) + (1 | d) + (1 | dept:service), ie)"
)

blank <- function(x) ifelse(is.na(x), "", as.character(x))

# as.data.frame(VarCorr(fm)) as rows [grp, var1, var2, sdcor] (NA names written as "").
vc_rows <- function(fm) {
  vc <- as.data.frame(VarCorr(fm))
  lapply(seq_len(nrow(vc)), function(i) list(vc$grp[i], blank(vc$var1[i]), blank(vc$var2[i]), vc$sdcor[i]))
}

# The first 4 levels of each (grouping factor, term) of ranef(condVar = TRUE): [grpvar, term, grp, condval, condsd].
ranef_rows <- function(fm) {
  rdf <- as.data.frame(ranef(fm, condVar = TRUE))
  keep <- ave(seq_len(nrow(rdf)), rdf$grpvar, rdf$term, FUN = seq_along) <= 4
  rdf <- rdf[keep, ]
  lapply(seq_len(nrow(rdf)), function(i) list(as.character(rdf$grpvar[i]), as.character(rdf$term[i]),
                                              as.character(rdf$grp[i]), rdf$condval[i], rdf$condsd[i]))
}

one <- function(call) {
  fm <- suppressMessages(suppressWarnings(eval(parse(text = call))))
  list(call = call, crit = if (isREML(fm)) REMLcrit(fm) else deviance(fm),
       deviance_ml = deviance(fm, REML = FALSE), loglik = as.numeric(logLik(fm)), aic = AIC(fm),
       bic = BIC(fm), theta = I(unname(getME(fm, "theta"))), beta_names = I(names(fixef(fm))),
       beta = I(unname(fixef(fm))), se = I(unname(sqrt(diag(as.matrix(vcov(fm)))))), sigma = sigma(fm),
       vc = vc_rows(fm), ngrps = as.list(ngrps(fm)), singular = isSingular(fm),
       lme4_converged = is.null(fm@optinfo$conv$lme4$code), ranef = ranef_rows(fm))
}

out <- lapply(models, one)
out <- c(list(`_about` = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                              jsonlite = as.character(packageVersion("jsonlite")),
                              script = "tests/data/lme4_reference.R")), out)
# One field per line, one row per line for the row lists (vc, ranef): readable diffs.
js <- function(x) as.character(toJSON(x, digits = NA, auto_unbox = TRUE))
is_rows <- function(x) is.list(x) && is.null(names(x)) && length(x) > 0 && all(vapply(x, is.list, TRUE))
field <- function(name, x) {
  value <- if (is_rows(x)) paste0("[\n      ", paste(vapply(x, js, ""), collapse = ",\n      "), "\n    ]") else js(x)
  sprintf("    %s: %s", js(name), value)
}
entry <- function(name) {
  fields <- mapply(field, names(out[[name]]), out[[name]])
  sprintf("  %s: {\n%s\n  }", js(name), paste(fields, collapse = ",\n"))
}
writeLines(c("{", paste(vapply(names(out), entry, ""), collapse = ",\n"), "}"), file.path(here, "lme4_reference.json"))
