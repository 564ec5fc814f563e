# Reference values for tests/test_lmm_numerics.py (issue 19: large offsets, extreme scales,
# extreme confidence levels). Run from the repository root:
#   Rscript tests/data/numerics/reference.R tests/data/numerics/reference.json
#
# The data are made here and in tests/numerics_cases.py by the same integer LCG, so both sides
# fit the same numbers without a data file: 6 groups of 10, y = 1 + 2x + b_g + e.
#
# A shift of y by c, of x by c, or a constant offset c leaves the model the same up to a
# reparametrisation (intercept β0 → β0 + c_y − c_o − c_x·βx); the REML criterion, σ, the
# variance components, βx, its SE and df do not change, and the intercept's SE and df are those of
# the contrast (1, −c_x) of the unshifted fit. lme4 itself loses precision on shifted x (it forms
# XᵀX): its criterion, sds and lmerTest's df drift with the shift (recorded under "lme4_direct").
# So the reference for every shifted case is the unshifted fit (with tight optimizer tolerances,
# so that it is the optimum), mapped exactly to the shifted parametrisation.
suppressMessages({library(jsonlite); library(lme4); library(lmerTest)})
args <- commandArgs(trailingOnly = TRUE)
out_path <- if (length(args)) args[1] else "tests/data/numerics/reference.json"

lcg_uniform <- function(n, seed) {
  s <- seed; out <- numeric(n)
  for (k in seq_len(n)) { s <- (69069 * s + 1) %% 4294967296; out[k] <- (s + 0.5) / 4294967296 }
  out
}
offset_data <- function(ngroups = 6, per = 10, seed = 19) {
  n <- ngroups * per
  u <- matrix(lcg_uniform(3 * (2 * n + ngroups), seed), ncol = 3, byrow = TRUE)
  z <- u[, 1] + u[, 2] + u[, 3] - 1.5
  x <- 2 * z[1:n]
  e <- z[(n + 1):(2 * n)]
  b <- 2 * z[(2 * n + 1):(2 * n + ngroups)]
  g <- rep(seq_len(ngroups), each = per)
  data.frame(y = 1 + 2 * x + b[g] + e, x = x, g = factor(paste0("g", g)))
}

tight <- lmerControl(optCtrl = list(ftol_abs = 1e-14, ftol_rel = 1e-14, xtol_abs = 1e-12,
                                    xtol_rel = 1e-12, maxeval = 1e5))
quiet <- function(expr) {
  msgs <- character()
  val <- withCallingHandlers(tryCatch(expr, error = function(e) {
    msgs <<- c(msgs, paste("error:", conditionMessage(e))); NULL }),
    warning = function(w) { msgs <<- c(msgs, conditionMessage(w)); invokeRestart("muffleWarning") })
  list(value = val, messages = msgs)
}

d <- offset_data()
fm <- lmer(y ~ x + (1 | g), d, control = tight)
ml <- lmer(y ~ x + (1 | g), d, REML = FALSE, control = tight)
V <- as.matrix(vcov(fm))
b <- fixef(fm)

contrast <- function(L) {
  sat <- contest1D(fm, L, ddf = "Satterthwaite")
  kr <- contest1D(fm, L, ddf = "Kenward-Roger")
  list(se = sqrt(drop(t(L) %*% V %*% L)), df = sat$df, df_kr = kr$df, se_kr = kr[["Std. Error"]])
}

shifted <- function(cy, cx, co) {
  L0 <- c(1, -cx)
  i0 <- contrast(L0)
  ix <- contrast(c(0, 1))
  dd <- transform(d, y = y + cy, x = x + cx, o = co)
  direct <- quiet(if (co == 0) lmer(y ~ x + (1 | g), dd) else lmer(y ~ x + (1 | g), dd, offset = o))
  r <- direct$value
  list(
    shift = list(y = cy, x = cx, offset = co),
    beta = unname(c(b[1] + cy - co - cx * b[2], b[2])),
    se = c(i0$se, ix$se), df = c(i0$df, ix$df), df_kr = c(i0$df_kr, ix$df_kr),
    se_kr = c(i0$se_kr, ix$se_kr),
    sigma = sigma(fm), sd_g = sqrt(VarCorr(fm)$g[1]), theta = unname(getME(fm, "theta")),
    reml_crit = REMLcrit(fm), deviance_ml = deviance(ml),
    lme4_direct = list(
      reml_crit = REMLcrit(r), sigma = sigma(r), sd_g = sqrt(VarCorr(r)$g[1]),
      df = unname(coef(summary(r))[, "df"]), messages = direct$messages)
  )
}

shifts <- list(y1e6 = c(1e6, 0, 0), y1e8 = c(1e8, 0, 0), x1e3 = c(0, 1e3, 0), x1e5 = c(0, 1e5, 0),
               x1e6 = c(0, 1e6, 0), y1e8_x1e6 = c(1e8, 1e6, 0), offset1e15 = c(0, 0, 1e15))
ref <- list(base = list(beta = unname(b), se = unname(sqrt(diag(V))), sigma = sigma(fm),
                        reml_crit = REMLcrit(fm)),
            versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                            lmerTest = as.character(packageVersion("lmerTest")),
                            pbkrtest = as.character(packageVersion("pbkrtest"))),
            shifts = lapply(shifts, function(s) shifted(s[1], s[2], s[3])))

# One prior weight of 1e-300 (that observation drops out; lme4 fits it).
dw <- transform(d, w = c(1e-300, rep(1, nrow(d) - 1)))
fw <- lmer(y ~ x + (1 | g), dw, weights = w, control = tight)
ref$one_tiny_weight <- list(beta = unname(fixef(fw)), se = unname(sqrt(diag(as.matrix(vcov(fw))))),
                            sigma = sigma(fw), sd_g = sqrt(VarCorr(fw)$g[1]), reml_crit = REMLcrit(fw))

# An offset with profile intervals (lme4's spline through the profile, 95%).
do <- transform(d, o = (seq_len(nrow(d)) %% 3) * 1.0)
fo <- lmer(y ~ x + (1 | g), do, offset = o, control = tight)
ci <- suppressMessages(confint(fo, method = "profile", level = 0.95))
ref$offset_profile <- list(parameter = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))

# Profile limits at level 0.9999999999999999 (z = 8.29), found directly: lme4's confint gives
# 0 / Inf / NA at this level (recorded), so the limits are the roots of ζ(ψ)² = z² of the ML
# deviance profiled over the other parameters (lme4's devfun2 for .sig01 and .sigma; refits
# with the coefficient as an offset for the fixed effects).
level <- 0.9999999999999999
z <- qnorm((1 - level) / 2, lower.tail = FALSE)
dev_hat <- deviance(ml)
df2 <- lme4:::devfun2(ml)
opt <- attr(df2, "optimum")
prof_sig <- function(v) optimize(function(s) df2(c(v, s)), c(1e-3, 50), tol = 1e-10)$objective
prof_sigma <- function(v) optimize(function(s) df2(c(s, v)), c(0, 2000), tol = 1e-10)$objective
prof_b0 <- function(v) deviance(lmer(y ~ 0 + x + (1 | g), transform(d, o = v), offset = o,
                                     REML = FALSE, control = tight))
prof_bx <- function(v) deviance(lmer(y ~ 1 + (1 | g), transform(d, o = v * x), offset = o,
                                     REML = FALSE, control = tight))
limit <- function(prof, est, far, lower_bound = -Inf) {
  f <- function(v) prof(v) - dev_hat - z^2
  if (is.finite(lower_bound) && f(lower_bound) < 0) return(lower_bound)
  uniroot(f, sort(c(est, far)), tol = 1e-10)$root
}
ref$extreme_level <- list(
  level = level, z = z,
  parameter = c(".sig01", ".sigma", "(Intercept)", "x"),
  lower = c(limit(prof_sig, opt[[1]], 1e-3, 0), limit(prof_sigma, opt[[2]], 0.05),
            limit(prof_b0, opt[[3]], -1000), limit(prof_bx, opt[[4]], 0)),
  upper = c(limit(prof_sig, opt[[1]], 2000), limit(prof_sigma, opt[[2]], 10),
            limit(prof_b0, opt[[3]], 1000), limit(prof_bx, opt[[4]], 5)),
  lme4_confint = quiet(suppressMessages(
    unname(as.list(as.data.frame(confint(ml, method = "profile", level = level))))))$value)

# A profile whose inner fits end in NLopt's round-off stop: the singular Dyestuff2 fit.
dye <- read.csv("module/datasets/Dyestuff2.csv")
fd <- lmer(Yield ~ 1 + (1 | Batch), dye, control = tight)
cd <- suppressMessages(confint(fd, method = "profile", level = 0.95))
ref$boundary_profile <- list(parameter = rownames(cd), lower = unname(cd[, 1]), upper = unname(cd[, 2]))

# What lme4 does with the extreme scales the native engine refuses.
ref$lme4_refuses <- list(
  x_1e_minus200 = quiet(lmer(y ~ x + (1 | g), transform(d, x = x * 1e-200)))$messages,
  x_1e200 = quiet(lmer(y ~ x + (1 | g), transform(d, x = x * 1e200)))$messages,
  x_denormal = quiet(lmer(y ~ x + (1 | g), transform(d, x = x * 1e-310)))$messages,
  I_1e308 = quiet(lmer(y ~ x + I(1e308) + (1 | g), d))$messages,
  weights_1e_minus300 = quiet(lmer(y ~ x + (1 | g), transform(d, w = 1e-300), weights = w))$messages,
  n_equals_p = quiet(lmer(y ~ x + I(x^2) + I(x^3) + (1 | g), offset_data(2, 2)))$messages,
  nearly_constant = quiet(lmer(y ~ x + (1 | g), transform(d, y = 5 + 1e-14 * seq_along(y))))$messages)

# jsonlite writes at most 15 significant digits: numbers go in verbatim with 17 (round trip).
exact <- function(v) {
  if (is.list(v)) return(lapply(v, exact))
  if (!is.numeric(v)) return(v)
  txt <- ifelse(is.finite(v), sprintf("%.17g", v), "null")
  structure(if (length(v) == 1) txt else sprintf("[%s]", paste(txt, collapse = ", ")), class = "json")
}
writeLines(toJSON(exact(ref), auto_unbox = TRUE, pretty = TRUE, json_verbatim = TRUE), out_path)
