"""P-value and confidence-level adjustment for a family of estimates, following emmeans 1.8
(``.adj.p.value`` and ``.adj.critval`` in ``summary.emmGrid``) and R's ``p.adjust``.

Rules reproduced from emmeans:

* a family of one estimate (per ``by`` group) is not adjusted, except under ``scheffe``;
* ``tukey`` applies only to one set of pairwise comparisons; for other families (custom
  contrasts, means) emmeans switches it to ``sidak``;
* p-values under R's ``p.adjust`` methods (holm, hommel, bonferroni, hochberg, BH, BY) are
  adjusted within each ``by`` group, counting non-estimable rows in the family size;
* confidence limits know only none / sidak / tukey / scheffe / mvt / bonferroni: every other
  method (holm, hommel, BH...) gives Bonferroni intervals;
* ``mvt`` (the multivariate t over the correlation of each ``by`` group's estimates,
  :mod:`mixedbridge.emmeans.mvt`) is computed within each ``by`` group.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import distributions as dist
from . import mvt

#: The methods (of the request's ``adjust``, schemas/emmeans.schema.json) that R's p.adjust computes.
P_ADJUST = ("holm", "hochberg", "hommel", "bonferroni", "BH", "BY", "fdr", "none")

#: Family types (emmeans ``estType``): means/predictions, contrasts, one set of pairwise differences.
PREDICTION, CONTRAST, PAIRS = 1, 2, 3


@dataclass
class AdjustFamily:
    """What emmeans calls ``fam.info`` plus the ``by`` grouping: ``size`` the number of
    means compared (Tukey's k; None when groups vary), ``n_contr`` estimates per ``by`` group,
    ``kind`` PREDICTION / CONTRAST / PAIRS, ``by_rows`` row indices of each ``by`` group,
    ``scheffe_rank`` rank of each group's linear functions (Scheffé), ``corr`` the correlation
    of the estimates (emmeans's ``corrmat``; the multivariate t needs it)."""

    size: int | None
    n_contr: int
    kind: int
    by_rows: list[np.ndarray]
    scheffe_rank: list[int] | None = None
    corr: np.ndarray | None = None

    @property
    def ragged(self) -> bool:
        return self.size is None


def p_adjust(p: np.ndarray, method: str, n: int | None = None) -> np.ndarray:
    """R's ``stats::p.adjust(p, method, n)``: NaN entries stay NaN but count toward ``n``."""
    p = np.asarray(p, dtype=float)
    out = p.copy()
    ok = ~np.isnan(p)
    q = p[ok]
    lp = len(q)
    n = len(p) if n is None else int(n)
    if n < lp:
        raise ValueError("n must be at least the number of p-values")
    if n <= 1:
        return out
    if method == "fdr":
        method = "BH"
    if n == 2 and method == "hommel":
        method = "hochberg"
    if method == "none":
        res = q
    elif method == "bonferroni":
        res = np.minimum(1.0, n * q)
    elif method == "holm":
        o = np.argsort(q, kind="stable")
        i = np.arange(1, lp + 1)
        adj = np.minimum(1.0, np.maximum.accumulate((n + 1 - i) * q[o]))
        res = np.empty(lp)
        res[o] = adj
    elif method == "hommel":
        pp = np.concatenate([q, np.ones(n - lp)]) if n > lp else q.copy()
        o = np.argsort(pp, kind="stable")
        ps = pp[o]
        i = np.arange(1, n + 1)
        qv = np.full(n, np.min(n * ps / i))
        pa = qv.copy()
        for j in range(n - 1, 1, -1):
            ij = np.arange(0, n - j + 1)
            i2 = np.arange(n - j + 1, n)
            q1 = np.min(j * ps[i2] / np.arange(2, j + 1))
            qv[ij] = np.minimum(j * ps[ij], q1)
            qv[i2] = qv[n - j]
            pa = np.maximum(pa, qv)
        full = np.maximum(pa, ps)
        back = np.empty(n)
        back[o] = full
        res = back[:lp]
    elif method in ("hochberg", "BH", "BY"):
        o = np.argsort(-q, kind="stable")
        i = np.arange(lp, 0, -1)
        factor: np.ndarray
        if method == "hochberg":
            factor = n + 1 - i
        elif method == "BH":
            factor = n / i
        else:
            factor = np.sum(1.0 / np.arange(1, n + 1)) * n / i
        adj = np.minimum(1.0, np.minimum.accumulate(factor * q[o]))
        res = np.empty(lp)
        res[o] = adj
    else:
        raise ValueError(f"unknown p.adjust method {method!r}")
    out[ok] = res
    return out


def _pt2(t: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided p-value of t on df (df = inf: normal)."""
    with np.errstate(invalid="ignore"):
        return 2 * dist.t.sf(np.abs(t), df)


def _qt(p, df):
    return dist.t.ppf(p, df)


def _resolve(method: str, fam: AdjustFamily, for_ci: bool) -> tuple[str, str | None]:
    """The method emmeans actually applies, and why it changed (message) if it did."""
    if method == "fdr":
        method = "BH"
    if not (for_ci and fam.ragged) and fam.n_contr == 1 and method != "scheffe":
        method = "none"
    if for_ci and method not in ("sidak", "tukey", "scheffe", "mvt", "bonferroni", "none"):
        method = "bonferroni"
    note = None
    if method == "tukey" and fam.kind != PAIRS:
        note = ("Note: adjust = \"tukey\" was changed to \"sidak\" because \"tukey\" is only appropriate for one "
                "set of pairwise comparisons")
        method = "sidak"
    return method, note


def adjusted_p(t: np.ndarray, df: np.ndarray, method: str, fam: AdjustFamily) -> tuple[np.ndarray, str, list[str]]:
    """Adjusted two-sided p-values; returns (p, method used, messages)."""
    t = np.asarray(t, dtype=float)
    df = np.where(np.isnan(df), np.inf, np.asarray(df, dtype=float))
    method, note = _resolve(method, fam, for_ci=False)
    msgs = [note] if note else []
    ragged = fam.ragged or method in P_ADJUST or method == "mvt"
    by_rows = fam.by_rows if ragged else [np.arange(len(t))]
    unadj = _pt2(t, df)
    pval = np.full(len(t), np.nan)
    size, n_contr = fam.size, fam.n_contr
    for jj, rows in enumerate(by_rows):
        up, abst, d = unadj[rows], np.abs(t[rows]), df[rows]
        if ragged:
            n_contr = len(rows)
            size = (1 + np.sqrt(1 + 8 * n_contr)) / 2
        if method in P_ADJUST:
            pval[rows] = p_adjust(up, method, n_contr)
        elif method == "sidak":
            pval[rows] = 1 - (1 - up) ** n_contr
        elif method == "tukey":
            with np.errstate(invalid="ignore"):
                from scipy.stats import studentized_range
                pval[rows] = studentized_range.sf(np.sqrt(2) * abst, size, _zap(d))
        elif method == "scheffe":
            r = fam.scheffe_rank[jj] if fam.scheffe_rank else 1
            with np.errstate(invalid="ignore"):
                pval[rows] = _pf_upper(t[rows] ** 2 / r, r, d)
        elif method == "mvt":
            pval[rows] = _mvt_p(t[rows], d, _corr(fam, rows))
        else:
            raise ValueError(f"unknown adjustment {method!r}")
    msg = _message("P value adjustment", method, fam, tests=True)
    if msg:
        msgs.append(msg)
    return pval, method, msgs


def critical_values(level: float, df: np.ndarray, method: str, fam: AdjustFamily) -> tuple[np.ndarray, str, list[str]]:
    """Two-sided critical values for confidence limits est ± cv·SE; returns (cv, method, messages)."""
    df = np.where(np.isnan(df), np.inf, np.asarray(df, dtype=float))
    method, note = _resolve(method, fam, for_ci=True)
    msgs = [note] if note else []
    cv = np.full(len(df), np.nan)
    by_rows = fam.by_rows
    if not fam.ragged and method != "mvt" and len(np.unique(df)) == 1:
        by_rows = [np.arange(len(df))]
    size, n_contr = fam.size, fam.n_contr
    for jj, rows in enumerate(by_rows):
        d = df[rows]
        if fam.ragged:
            n_contr = len(rows)
            size = (1 + np.sqrt(1 + 8 * n_contr)) / 2
        if method == "none":
            cv[rows] = -_qt((1 - level) / 2, d)
        elif method == "sidak":
            cv[rows] = -_qt((1 - level ** (1 / n_contr)) / 2, d)
        elif method == "bonferroni":
            cv[rows] = -_qt((1 - level) / n_contr / 2, d)
        elif method == "tukey":
            from scipy.stats import studentized_range
            cv[rows] = studentized_range.ppf(level, size, d) / np.sqrt(2)
        elif method == "scheffe":
            r = fam.scheffe_rank[jj] if fam.scheffe_rank else 1
            cv[rows] = np.sqrt(r * _qf(level, r, d))
        elif method == "mvt":
            cv[rows] = _mvt_cv(level, d, _corr(fam, rows))
    msg = _message("Conf-level adjustment", method, fam, tests=False)
    if msg:
        msgs.append(msg)
    return cv, method, msgs


def _corr(fam: AdjustFamily, rows: np.ndarray) -> np.ndarray:
    if fam.corr is None:
        raise ValueError("the mvt adjustment needs the correlation of the estimates (AdjustFamily.corr)")
    return fam.corr[np.ix_(rows, rows)]


def _mvt_p(t: np.ndarray, df: np.ndarray, corr: np.ndarray) -> np.ndarray:
    """mvt p-values of one group; rows that are not estimable (NaN) stay NaN and are left out
    of the others' family."""
    out = np.full(len(t), np.nan)
    ok = ~np.isnan(t)
    if ok.any():
        out[ok] = mvt.adjusted_p(t[ok], df[ok], corr[np.ix_(ok, ok)])
    return out


def _mvt_cv(level: float, df: np.ndarray, corr: np.ndarray) -> np.ndarray:
    """mvt critical values of one group: one for the group when its df are equal (as
    emmeans's ``.my.qmvt``), else one per row."""
    ok = ~np.isnan(np.diag(corr))
    out = np.full(len(df), np.nan)
    if not ok.any():
        return out
    sub = corr[np.ix_(ok, ok)]
    if len(np.unique(df[ok])) == 1:
        out[ok] = mvt.critical_value(level, float(df[ok][0]), sub)
    else:
        out[ok] = [mvt.critical_value(level, float(d), sub) for d in df[ok]]
    return out


def _pf_upper(x: np.ndarray, r: int, df: np.ndarray) -> np.ndarray:
    """Upper tail of F(r, df); df = ∞ is χ²(r)/r (as R's ``pf``)."""
    df = np.broadcast_to(df, np.shape(x))
    return np.where(np.isinf(df), dist.chi2.sf(x * r, r), dist.f.sf(x, r, np.where(np.isinf(df), 1.0, df)))


def _qf(p: float, r: int, df: np.ndarray) -> np.ndarray:
    """Quantile of F(r, df); df = ∞ is χ²(r)/r (as R's ``qf``)."""
    df = np.asarray(df, dtype=float)
    return np.where(np.isinf(df), dist.chi2.ppf(p, r) / r, dist.f.ppf(p, r, np.where(np.isinf(df), 1.0, df)))


def _zap(df: np.ndarray) -> np.ndarray:
    """R's ``zapsmall`` on a df vector (round to 7 significant digits of the largest)."""
    fin = df[np.isfinite(df)]
    if fin.size == 0:
        return df
    mx = np.max(np.abs(fin))
    if mx == 0:
        return df
    digits = max(0, 7 - int(np.ceil(np.log10(mx))))
    return np.where(np.isfinite(df), np.round(df, digits), df)


def _message(what: str, method: str, fam: AdjustFamily, tests: bool) -> str | None:
    """emmeans's annotation, e.g. 'P value adjustment: holm method for 6 tests'."""
    chk = {"none": 1, "tukey": 2, "scheffe": 3}.get(method, 99)
    dim: int | str
    if fam.ragged:
        nc = max(len(r) for r in fam.by_rows)
        fs = (1 + np.sqrt(1 + 8 * nc)) / 2
        dim = "(varies)"
    else:
        nc, fs = fam.n_contr, fam.size
        dim = fam.scheffe_rank[0] if fam.scheffe_rank else ""
    if not (chk > 1 and not (fs < 3 and chk < 10)):
        return None
    if method == "tukey":
        extra = f"for comparing a family of {fam.size} estimates"
    elif method == "scheffe":
        extra = f"with rank {dim}"
    else:
        extra = f"for {fam.n_contr} {'tests' if tests else 'estimates'}"
    return f"{what}: {method} method {extra}"


def scheffe_rank(L: np.ndarray, by_rows: list[np.ndarray]) -> list[int]:
    """Rank of each ``by`` group's linear functions (emmeans: ``qr(zapsmall(linfct))$rank``)."""
    ranks = []
    for rows in by_rows:
        M = L[rows]
        mx = np.max(np.abs(M)) if M.size else 0.0
        if mx > 0:
            M = np.round(M, max(0, 7 - int(np.ceil(np.log10(mx)))))
        s = np.linalg.svd(M, compute_uv=False) if M.size else np.zeros(0)
        ranks.append(int(np.sum(s > 1e-7 * s[0])) if s.size and s[0] > 0 else 0)
    return ranks
