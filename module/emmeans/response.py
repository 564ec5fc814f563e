"""Marginal means and contrasts of a GLMM on the response scale, as R's emmeans 1.8 gives them.

* ``type = "response"`` (emmeans's ``summary(..., type = "response")``): a mean η̂ on the link
  scale becomes μ̂ = g⁻¹(η̂) with SE |dμ/dη|·SE(η̂) (the delta method); its interval is the
  link-scale interval back-transformed, and its test stays on the link scale (the ``null`` is
  a link-scale value). Contrasts under a log or logit link become ratios exp(η̂₁ − η̂₂) (rate
  ratios, ``ratio``; odds ratios, ``odds.ratio``), their intervals back-transformed and their
  tests on the log scale; under other links they stay on the link scale, with a note.
* ``regrid`` (emmeans's ``regrid(emm)``): the means are re-expressed on the response scale,
  μ̂ with covariance D V_η D (D = diag dμ/dη); intervals are symmetric there, and contrasts are
  differences of μ̂ (of probabilities, of rates), with SEs from that covariance.
* Trends (emtrends) are slopes of the linear predictor, on the link scale; under an identity
  link the link scale is the response scale and nothing changes (emmeans keeps ``emmean``).

A GLMM's degrees of freedom are infinite (z tests), as emmeans's for ``glmerMod``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..glmm.family import LINKS, Link
from . import adjust as adj
from .emm import EstimateFamily, summarize

#: Link → the name emmeans gives a contrast back-transformed to a ratio.
RATIO_NAMES = {"logit": "odds.ratio", "log": "ratio"}


def link(name: str) -> Link:
    """The link called ``name`` (R's spelling; KeyError for an unknown one): R's ``make.link``
    functions, which emmeans back-transforms with (:data:`mixedbridge.glmm.family.LINKS`)."""
    return LINKS[name]


def response_name(family: str | None) -> str:
    """The estimate column of response-scale means: ``prob`` (binomial), ``rate`` (Poisson),
    ``response`` otherwise (emmeans's names)."""
    return {"binomial": "prob", "poisson": "rate"}.get(family or "", "response")


def back_transform_means(fam: EstimateFamily, family: str | None, link_name: str) -> None:
    """A summarized link-scale family of means turned into emmeans's ``type = "response"``
    summary (in place): estimates and interval limits through g⁻¹, SEs by the delta method;
    tests unchanged (on the link scale)."""
    g = link(link_name)
    est, se, lower, upper = fam.filled("estimate", "se", "lower", "upper")
    lo, hi = g.linkinv(lower), g.linkinv(upper)
    fam.estimate = g.linkinv(est)
    fam.se = se * np.abs(g.mu_eta(est))
    fam.lower, fam.upper = np.minimum(lo, hi), np.maximum(lo, hi)
    fam.est_name = response_name(family)
    if link_name != "identity":
        fam.notes.append(f"Intervals are back-transformed from the {link_name} scale")
        if fam.t is not None:
            fam.notes.append(f"Tests are performed on the {link_name} scale")


def back_transform_contrasts(fam: EstimateFamily, link_name: str, pairwise: bool) -> None:
    """A summarized link-scale family of contrasts as emmeans shows it with ``type =
    "response"``: ratios under a log or logit link (pairwise labels ``a / b``), link scale
    (with a note) under any other."""
    if link_name == "identity":
        return
    if link_name not in RATIO_NAMES:
        fam.notes.insert(0, f"Note: contrasts are still on the {link_name} scale")
        return
    est, se, lower, upper = fam.filled("estimate", "se", "lower", "upper")
    fam.estimate = np.exp(est)
    fam.se = se * np.exp(est)
    fam.lower, fam.upper = np.exp(lower), np.exp(upper)
    fam.est_name = RATIO_NAMES[link_name]
    fam.null = 1.0
    scale = "log odds ratio" if link_name == "logit" else "log"
    fam.notes.append(f"Intervals are back-transformed from the {scale} scale")
    fam.notes.append(f"Tests are performed on the {scale} scale")
    if pairwise:
        for cells in fam.labels:
            cells["contrast"] = cells["contrast"].replace(" - ", " / ", 1)


@dataclass
class Regridded:
    """Means re-expressed on the response scale: μ̂ and its covariance D·L V Lᵀ·D."""

    mu: np.ndarray
    cov: np.ndarray


def regrid(L: np.ndarray, beta: np.ndarray, V: np.ndarray, link_name: str) -> Regridded:
    """The means Lβ̂ (L over the fit's coefficients) on the response scale (emmeans's
    ``regrid``), NaN rows where Lβ̂ is NaN."""
    g = link(link_name)
    eta = L @ beta
    d = g.mu_eta(eta)
    cov = (d[:, None] * (L @ V @ L.T)) * d[None, :]
    return Regridded(g.linkinv(eta), cov)


def summarize_regridded(fam: EstimateFamily, est: np.ndarray, cov: np.ndarray, level: float,
                        adjust: str, info: adj.AdjustFamily, test: bool, null: float = 0.0,
                        L_for_rank: np.ndarray | None = None) -> None:
    """Fill a family (means or contrasts of regridded means) from estimates and covariance on
    the response scale: symmetric intervals and z tests there."""
    fam.estimate = est
    fam.se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    fam.df = np.full(est.shape[0], np.inf)
    summarize(fam, level, adjust, info, test=test, null=null, L_for_rank=L_for_rank)


def glmm_families(problem, fit, req, V: np.ndarray) -> list[EstimateFamily]:
    """The summarized families of a GLMM's request: on the link scale (``type = "link"``),
    back-transformed (``type = "response"``) or of regridded means (``regrid``); z tests."""
    from .api import compute

    beta = np.asarray(fit.beta, dtype=float)
    fams = compute(problem, list(fit.coef_names), beta, V, req, _infinite_df)
    link_name = fit.link or "identity"
    if req.trend is not None or link_name == "identity":
        return fams  # slopes, or an identity link: the link scale is the response scale
    if req.regrid:
        _regrid_families(fams, beta, V, link_name, fit.family, req)
    elif req.type == "response":
        back_transform_means(fams[0], fit.family, link_name)
        if len(fams) > 1:
            back_transform_contrasts(fams[1], link_name, req.contrasts == "pairwise")
    return fams


def _infinite_df(L: np.ndarray) -> np.ndarray:
    return np.full(np.atleast_2d(L).shape[0], np.inf)


def _regrid_families(fams: list[EstimateFamily], beta: np.ndarray, V: np.ndarray, link_name: str,
                     family: str | None, req) -> None:
    """Means and contrasts re-summarized on the response scale (emmeans's ``regrid``)."""
    main = fams[0]
    ok = ~np.isnan(main.filled("estimate")[0])
    rg = regrid(main.filled("coef_L")[0], beta, V, link_name)
    mu = np.where(ok, rg.mu, np.nan)
    main.est_name = response_name(family)
    null = req.null if req.null is not None else 0.0
    info = main.adjust_family or adj.AdjustFamily(main.n, main.n, adj.PREDICTION, [np.arange(main.n)])
    summarize_regridded(main, mu, rg.cov, req.level, "none", info, test=req.test, null=null)
    if len(fams) == 1:
        return
    con = fams[1]
    C = con.filled("coef")[0]
    est = C @ np.where(ok, mu, 0.0)
    est[np.abs(C[:, ~ok]).sum(axis=1) > 0] = np.nan
    cinfo = con.adjust_family or adj.AdjustFamily(con.n, con.n, adj.CONTRAST, [np.arange(con.n)])
    summarize_regridded(con, est, C @ rg.cov @ C.T, req.level, req.adjust, cinfo, test=True,
                        L_for_rank=C)
