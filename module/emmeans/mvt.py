"""The multivariate t (and normal) probability of a symmetric box, for emmeans's ``mvt``
adjustment: ``P(|T_1| < x, ..., |T_m| < x)`` for T multivariate t with correlation R and
integer df (0: normal), and its inverse in x.

mvtnorm's ``pmvt`` (which emmeans calls) estimates it by randomized quasi-Monte Carlo over
Genz and Bretz's separation of variables, to an absolute error of about 1e-3. The same
transformation is used here, with more points and a fixed seed, so the estimate is
reproducible and its error (about 1e-5) is far below mvtnorm's:

* R = C Cᵀ by a Cholesky factorization with pivoting on the largest remaining variance; its
  rank r is where that variance falls below a tolerance. A variable that is a combination of
  the pivots (a singular R, as for all pairwise differences) bounds the last pivot it
  depends on, so the integral has r dimensions (plus one for the t's scale);
* each dimension's variable is drawn within its conditional bounds, and the probability is
  the product of the conditional interval probabilities, averaged over a randomly shifted
  rank-1 lattice (several shifts give the error estimate).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import special

from .. import distributions

#: Remaining variance (of a correlation) below which a variable counts as a combination of the pivots.
RANK_TOL = 1e-10
#: Points per random shift of the lattice, and the number of shifts.
POINTS, SHIFTS = 4099, 12
#: Seed of the random shifts (the estimate is reproducible).
SEED = 20240611


@dataclass(frozen=True)
class Factor:
    """The pivoted factor of a correlation matrix: ``C`` every variable's row of the factor
    (variables × rank, R = C Cᵀ), ``last`` each variable's last non-zero column (the
    dimension it bounds)."""

    C: np.ndarray
    last: np.ndarray

    @property
    def rank(self) -> int:
        return self.C.shape[1]


def factor(corr: np.ndarray) -> Factor:
    """Pivoted Cholesky factor of a (possibly singular) correlation matrix."""
    R = np.array(corr, dtype=float)
    m = R.shape[0]
    C = np.zeros((m, m))
    resid = np.diag(R).copy()
    order: list[int] = []
    for k in range(m):
        rest = [i for i in range(m) if i not in order]
        j = max(rest, key=lambda i: resid[i])
        if resid[j] <= RANK_TOL:
            break
        order.append(j)
        piv = np.sqrt(resid[j])
        for i in rest:
            C[i, k] = piv if i == j else (R[i, j] - C[i, :k] @ C[j, :k]) / piv
        for i in rest:
            if i != j:
                resid[i] = max(R[i, i] - C[i, :k + 1] @ C[i, :k + 1], 0.0)
        resid[j] = 0.0
    rank = len(order)
    C = C[:, :rank]
    scale = np.max(np.abs(C), axis=1, keepdims=True)
    nz = np.abs(C) > 1e-8 * np.maximum(scale, 1e-300)
    last = np.array([np.flatnonzero(row)[-1] for row in nz])
    return Factor(C, last)


@lru_cache(maxsize=32)
def _points(dim: int, df: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Each random shift of a rank-1 lattice of :data:`POINTS` points in [0, 1)^dim (Korobov
    generator), tent-transformed: the points of the ``dim - 1`` (df > 0) or ``dim`` normal
    dimensions and the t's scale sqrt(χ²_df / df) at each point (1 for the normal)."""
    gen = np.ones(dim)
    for j in range(1, dim):
        gen[j] = (gen[j - 1] * 1571.0) % POINTS
    pts = (np.arange(POINTS)[:, None] * gen[None, :] / POINTS) % 1.0
    rng = np.random.default_rng(SEED)
    out = []
    for _ in range(SHIFTS):
        w = np.abs(2 * ((pts + rng.random(dim)) % 1.0) - 1)
        if df > 0:
            scale = np.sqrt(2.0 * special.gammaincinv(df / 2.0, np.clip(w[:, -1], 1e-300, 1 - 1e-16)) / df)
            w = w[:, :-1]
        else:
            scale = np.ones(POINTS)
        out.append((w, scale))
    return tuple(out)


def _box(f: Factor, x: float, w: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The integrand at the points ``w`` (n × rank): the product of each dimension's
    conditional interval probability, the box |T_i| < x scaled by the t's ``scale``."""
    n = w.shape[0]
    y = np.zeros((n, f.rank))
    prob = np.ones(n)
    lim = x * scale
    for k in range(f.rank):
        lo = np.full(n, -np.inf)
        hi = np.full(n, np.inf)
        for i in np.flatnonzero(f.last == k):
            s = y[:, :k] @ f.C[i, :k]
            c = f.C[i, k]
            a, b = (-lim - s) / c, (lim - s) / c
            if c < 0:
                a, b = b, a
            lo, hi = np.maximum(lo, a), np.minimum(hi, b)
        pa, pb = special.ndtr(lo), special.ndtr(hi)
        width = np.clip(pb - pa, 0.0, None)
        prob *= width
        u = np.clip(pa + w[:, k] * width, 1e-300, 1 - 1e-16)
        y[:, k] = special.ndtri(u)
    return prob


def box_probability(x: float, corr: np.ndarray, df: int, f: Factor | None = None) -> tuple[float, float]:
    """``P(max_i |T_i| < x)`` and its Monte Carlo standard error."""
    if not np.isfinite(x):
        return 1.0, 0.0
    f = f or factor(corr)
    if f.rank == 0:
        return 1.0, 0.0
    dim = f.rank + (1 if df > 0 else 0)
    est = [float(np.mean(_box(f, x, w, scale))) for w, scale in _points(dim, df)]
    return float(np.mean(est)), float(np.std(est, ddof=1) / np.sqrt(SHIFTS))


def emmeans_df(df: float) -> int:
    """The integer df mvtnorm is given by emmeans (``.fix.df``): at least 1, rounded at
    .75, 0 (the normal) when infinite or above 9999."""
    if np.isnan(df) or np.isinf(df) or df > 9999:
        return 0
    if df > 0:
        df = max(1.0, df)
    return int(np.floor(df + 0.25))


def adjusted_p(t: np.ndarray, df: np.ndarray, corr: np.ndarray) -> np.ndarray:
    """emmeans's ``mvt`` p-values of one family: ``1 - P(max |T| < |t_i|)``."""
    f = factor(corr)
    return np.array([1.0 - box_probability(abs(ti), corr, emmeans_df(di), f)[0] for ti, di in zip(t, df)])


def critical_value(level: float, df: float, corr: np.ndarray) -> float:
    """The x with ``P(max |T| < x) = level`` (``mvtnorm::qmvt(level, tail = "both.tails")``)."""
    from scipy import optimize

    f = factor(corr)
    d = emmeans_df(df)
    def ppf(q: float) -> float:
        return distributions.t.ppf(q, d) if d > 0 else distributions.norm.ppf(q)

    one, bonf = ppf((1 + level) / 2), ppf(1 - (1 - level) / (2 * len(corr)))
    if f.rank <= 1:
        return float(one)

    def gap(x: float) -> float:
        return box_probability(x, corr, d, f)[0] - level

    return float(optimize.brentq(gap, one * 0.999, bonf * 1.001, xtol=1e-7))
