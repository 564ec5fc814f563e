"""Inference operations of the R worker (:mod:`._worker`): lmerTest, pbkrtest and lme4's tests
and intervals on a model the worker has fitted and stored.

A plain module, imported by the worker from its own directory; it never imports mixedbridge.
Requests name models by the handle the fit request returned (``keep``); the options are numbers
and words from fixed lists, checked here and again in R. The only R code evaluated is the
constant :data:`R_INFER_CODE`. lmerTest's conversion, ``update()``, profiles and bootstrap
intervals run on the stored fit (its call re-evaluates in its own environment); only the
likelihood-ratio tests refit, by ML, the full and reduced models they compare.
"""
from __future__ import annotations

#: Constant R code: a function of the worker's core functions returning the inference functions.
R_INFER_CODE = r"""
function(core) {
  get_model <- core$get_model
  ctrl <- function() lme4::lmerControl(optimizer = "nloptwrap",
                                       optCtrl = list(xtol_abs = 1e-8, ftol_abs = 1e-8, maxeval = 1e5))

  # For likelihood-ratio tests only (they need new fits anyway): refit by ML with a
  # self-contained call and extra columns XR1_, XR2_ ... holding each reduced model's design.
  rebuild <- function(fm, reml = lme4::isREML(fm), extra = list()) {
    e <- new.env(parent = baseenv())
    mf <- stats::model.frame(fm)
    w <- stats::model.weights(mf)
    o <- stats::model.offset(mf)
    d <- mf
    for (nm in names(extra)) d[[nm]] <- extra[[nm]]
    f <- stats::formula(fm)
    environment(f) <- e
    assign("d", d, envir = e); assign("f", f, envir = e); assign("ctrl", ctrl(), envir = e)
    assign("w", w, envir = e); assign("o", o, envir = e); assign("reml", reml, envir = e)
    assign("contr", attr(lme4::getME(fm, "X"), "contrasts"), envir = e)
    cl <- quote(lme4::lmer(formula = f, data = d, REML = reml, control = ctrl, contrasts = contr))
    if (!is.null(w)) cl$weights <- quote(w)
    if (!is.null(o)) cl$offset <- quote(o)
    list(model = eval(cl, e), env = e, call = cl)
  }

  coef_table <- function(lt, fm, df_method) {
    if (df_method == "asymptotic") {
      cf <- summary(fm)$coefficients
      return(list(names = rownames(cf), se = unname(cf[, 2]), statistic = unname(cf[, 3]),
                  df = rep(NA_real_, nrow(cf)), p = unname(2 * stats::pnorm(-abs(cf[, 3])))))
    }
    ddf <- if (df_method == "kenward-roger") "Kenward-Roger" else "Satterthwaite"
    cf <- summary(lt, ddf = ddf)$coefficients
    list(names = rownames(cf), se = unname(cf[, "Std. Error"]), statistic = unname(cf[, "t value"]),
         df = unname(cf[, "df"]), p = unname(cf[, "Pr(>|t|)"]))
  }

  f_anova <- function(lt, type, method) {
    ddf <- if (method == "kenward-roger") "Kenward-Roger" else "Satterthwaite"
    a <- stats::anova(lt, type = type, ddf = ddf)
    list(terms = rownames(a), sumsq = unname(a[["Sum Sq"]]), meansq = unname(a[["Mean Sq"]]),
         numdf = unname(as.numeric(a[["NumDF"]])), dendf = unname(a[["DenDF"]]),
         statistic = unname(a[["F value"]]), p = unname(a[["Pr(>F)"]]))
  }

  lrt_terms <- function(fm, intercept, pb, nsim, seed) {
    X <- lme4::getME(fm, "X")
    asg <- attr(X, "assign")
    labels <- attr(stats::terms(fm), "term.labels")
    idx <- sort(unique(asg))
    if (!intercept) idx <- idx[idx != 0]
    nm <- ifelse(idx == 0, "(Intercept)", labels[pmax(idx, 1)])
    extra <- lapply(idx, function(k) X[, asg != k, drop = FALSE])
    names(extra) <- paste0("XR", seq_along(idx), "_")
    b <- rebuild(fm, reml = FALSE, extra = extra)
    full <- b$model
    e <- b$env
    bars <- lme4::findbars(stats::formula(fm))
    out <- vector("list", length(idx))
    for (i in seq_along(idx)) {
      rhs <- call("+", 0, as.name(names(extra)[i]))
      for (bb in bars) rhs <- call("+", rhs, call("(", bb))
      f2 <- stats::formula(fm)
      f2[[3]] <- rhs
      environment(f2) <- e
      assign("f2", f2, envir = e)
      cl <- b$call
      cl$formula <- quote(f2)
      cl$contrasts <- NULL
      red <- eval(cl, e)
      a <- stats::anova(full, red, model.names = c("full", "reduced"))
      res <- list(term = nm[i], npar = a[["npar"]][1], loglik = a[["logLik"]][1],
                  chisq = a[["Chisq"]][2], df = a[["Df"]][2], p = a[["Pr(>Chisq)"]][2])
      if (pb) {
        pbm <- pbkrtest::PBmodcomp(full, red, nsim = nsim, seed = seed)
        res$p_pb <- pbm$test["PBtest", "p.value"]
      }
      out[[i]] <- res
    }
    out
  }

  f_confint <- function(fm, method, level, nsim, seed) {
    if (method == "wald") {
      ci <- stats::confint(fm, method = "Wald", level = level, oldNames = TRUE)
    } else if (method == "profile") {
      ci <- stats::confint(fm, method = "profile", level = level, oldNames = TRUE)
    } else {
      ci <- stats::confint(fm, method = "boot", level = level, nsim = nsim, seed = seed,
                           oldNames = TRUE, boot.type = "perc")
    }
    list(names = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))
  }

  capture <- function(expr) {
    warns <- character(0); msgs <- character(0)
    out <- withCallingHandlers(
      tryCatch(expr, error = function(e) list(ok = FALSE, stage = "inference", error = conditionMessage(e))),
      warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
      message = function(m) { msgs <<- c(msgs, sub("\n$", "", conditionMessage(m))); invokeRestart("muffleMessage") })
    out$warnings <- warns
    out$messages <- msgs
    out
  }

  infer <- function(handle, df_method, anova_type, anova_method, intercept, confint_method, level, nsim, seed,
                    ci_nsim, ci_seed) {
    stopifnot(df_method %in% c("satterthwaite", "kenward-roger", "asymptotic"),
              anova_method %in% c("", "satterthwaite", "kenward-roger", "lrt", "bootstrap"),
              anova_type %in% c("I", "II", "III"),
              confint_method %in% c("", "wald", "profile", "bootstrap"))
    capture({
      fm <- get_model(handle)
      res <- list(ok = TRUE)
      t0 <- proc.time()[["elapsed"]]
      need_lt <- df_method != "asymptotic" || anova_method %in% c("satterthwaite", "kenward-roger")
      lt <- NULL
      if (need_lt) {
        # the stored fit's call re-evaluates in its own environment (see _worker.py): no refit
        lt <- lmerTest:::as_lmerModLT(fm, stats::update(fm, devFunOnly = TRUE))
      }
      res$coef <- coef_table(lt, fm, df_method)
      res$seconds_coef <- proc.time()[["elapsed"]] - t0
      if (anova_method %in% c("satterthwaite", "kenward-roger")) {
        t1 <- proc.time()[["elapsed"]]
        res$anova <- f_anova(lt, anova_type, anova_method)
        res$seconds_anova <- proc.time()[["elapsed"]] - t1
      } else if (anova_method %in% c("lrt", "bootstrap")) {
        t1 <- proc.time()[["elapsed"]]
        res$lrt <- lrt_terms(fm, intercept, anova_method == "bootstrap", nsim, seed)
        res$seconds_anova <- proc.time()[["elapsed"]] - t1
      }
      if (nzchar(confint_method)) {
        t2 <- proc.time()[["elapsed"]]
        res$confint <- f_confint(fm, confint_method, level, ci_nsim, ci_seed)
        res$seconds_confint <- proc.time()[["elapsed"]] - t2
      }
      res
    })
  }

  compare <- function(handles, model_names) {
    capture({
      mods <- lapply(handles, get_model)
      is_mer <- vapply(mods, function(m) methods::is(m, "merMod"), NA)
      if (any(is_mer)) {
        first <- which(is_mer)[1]
        ord <- c(first, setdiff(seq_along(mods), first))
        a <- do.call(stats::anova, c(unname(mods[ord]), list(model.names = model_names[ord])))
        list(ok = TRUE, models = rownames(a), npar = unname(a[["npar"]]), aic = unname(a[["AIC"]]),
             bic = unname(a[["BIC"]]), loglik = unname(a[["logLik"]]), deviance = unname(a[["deviance"]]),
             chisq = unname(a[["Chisq"]]), df = unname(a[["Df"]]), p = unname(a[["Pr(>Chisq)"]]))
      } else {
        ll <- lapply(mods, stats::logLik)
        k <- vapply(ll, attr, 1, "df")
        o <- order(k)
        llk <- vapply(ll, as.numeric, 1)[o]
        k <- k[o]
        n <- stats::nobs(mods[[1]])
        chisq <- 2 * pmax(0, c(NA, diff(llk)))
        dfc <- c(NA, diff(k))
        list(ok = TRUE, models = model_names[o], npar = k, aic = -2 * llk + 2 * k, bic = -2 * llk + log(n) * k,
             loglik = llk, deviance = -2 * llk, chisq = chisq, df = dfc,
             p = ifelse(dfc == 0, NA, stats::pchisq(chisq, dfc, lower.tail = FALSE)))
      }
    })
  }

  lm_anova <- function(handle, anova_type) {
    capture({
      fm <- get_model(handle)
      Ls <- switch(anova_type, III = lmerTest:::get_contrasts_type3(fm),
                   II = lmerTest:::get_contrasts_type2_unfolded(fm), I = lmerTest:::get_contrasts_type1(fm))
      b <- stats::coef(fm); b <- b[!is.na(b)]
      V <- stats::vcov(fm, complete = FALSE)
      rows <- lapply(names(Ls), function(t) {
        L <- Ls[[t]]
        q <- qr(L)$rank
        Lb <- L %*% b
        Fv <- as.numeric(t(Lb) %*% solve(L %*% V %*% t(L), Lb)) / q
        c(q, stats::df.residual(fm), Fv, stats::pf(Fv, q, stats::df.residual(fm), lower.tail = FALSE))
      })
      m <- do.call(rbind, rows)
      list(ok = TRUE, anova = list(terms = names(Ls), sumsq = m[, 3] * stats::sigma(fm)^2 * m[, 1],
                                   meansq = m[, 3] * stats::sigma(fm)^2, numdf = m[, 1], dendf = m[, 2],
                                   statistic = m[, 3], p = m[, 4]))
    })
  }

  list(infer = infer, compare = compare, lm_anova = lm_anova)
}
"""

_ALLOWED = {"df_method": ("satterthwaite", "kenward-roger", "asymptotic"),
            "anova_method": ("", "satterthwaite", "kenward-roger", "lrt", "bootstrap"),
            "anova_type": ("I", "II", "III"), "confint_method": ("", "wald", "profile", "bootstrap")}


class InferOps:
    """The worker's inference requests; R packages and R code are loaded on the first one."""

    def __init__(self, r) -> None:
        self.r = r

    def funcs(self):
        return self.r.code(("lmerTest", "pbkrtest"), "inference through R", R_INFER_CODE)

    def infer(self, req: dict) -> dict:
        ri = self.r.ri
        for key, vals in _ALLOWED.items():
            if req[key] not in vals:
                raise ValueError(f"refusing {key}={req[key]!r}")
        handle = self.r.key(req["handle"])
        res = self.funcs().rx2("infer")(
            handle, ri.StrSexpVector([req["df_method"]]),
            ri.StrSexpVector([req["anova_type"]]), ri.StrSexpVector([req["anova_method"]]),
            ri.BoolSexpVector([bool(req["intercept"])]), ri.StrSexpVector([req["confint_method"]]),
            ri.FloatSexpVector([float(req["level"])]), ri.IntSexpVector([int(req["nsim"])]),
            ri.IntSexpVector([int(req["seed"])]), ri.IntSexpVector([int(req["ci_nsim"])]),
            ri.IntSexpVector([int(req["ci_seed"])]))
        return self.r.to_py(res)

    def compare(self, req: dict) -> dict:
        ri = self.r.ri
        names = [str(n) for n in req["names"]]
        for n in names:
            if not n.isidentifier():
                raise ValueError("refusing a model name that is not a plain identifier")
        for h in req["handles"]:
            self.r.key(h)
        res = self.funcs().rx2("compare")(ri.StrSexpVector([str(int(h)) for h in req["handles"]]),
                                          ri.StrSexpVector(names))
        return self.r.to_py(res)

    def lm_anova(self, req: dict) -> dict:
        if req["anova_type"] not in ("I", "II", "III"):
            raise ValueError("refusing anova_type")
        res = self.funcs().rx2("lm_anova")(self.r.key(req["handle"]), self.r.ri.StrSexpVector([req["anova_type"]]))
        return self.r.to_py(res)


def register(r) -> dict:
    """The operations this module adds to the worker's registry."""
    ops = InferOps(r)
    return {"infer": ops.infer, "compare": ops.compare, "lm_anova": ops.lm_anova}
