"""A deterministic lowess smoother (Cleveland 1979) in numpy: local linear fits with tricube
weights and bisquare robustness iterations, evaluated on at most ``grid`` points."""
from __future__ import annotations

import numpy as np


def _local_fit(x0: float, x: np.ndarray, y: np.ndarray, w: np.ndarray, k: int) -> float:
    d = np.abs(x - x0)
    idx = np.argpartition(d, k - 1)[:k] if k < len(x) else np.arange(len(x))
    h = d[idx].max()
    if h <= 0:
        return float(np.average(y[idx], weights=w[idx]) if w[idx].sum() > 0 else y[idx].mean())
    u = np.clip(d[idx] / (h * 1.000001), 0, 1)
    wt = (1 - u**3) ** 3 * w[idx]
    sw = wt.sum()
    if sw <= 0:
        return float(y[idx].mean())
    xm = (wt * x[idx]).sum() / sw
    ym = (wt * y[idx]).sum() / sw
    sxx = (wt * (x[idx] - xm) ** 2).sum()
    if sxx <= 1e-12 * max(1.0, xm**2) * sw:
        return float(ym)
    slope = (wt * (x[idx] - xm) * (y[idx] - ym)).sum() / sxx
    return float(ym + slope * (x0 - xm))


def lowess(x: np.ndarray, y: np.ndarray, frac: float = 2 / 3, iterations: int = 3,
           grid: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """Smooth y against x.

    Parameters
    ----------
    x, y : array
        Data (NaNs are not allowed).
    frac : float
        Share of the points in each local fit (R's ``f``, default 2/3).
    iterations : int
        Robustness iterations (R's ``iter``, default 3).
    grid : int
        Largest number of evaluation points; with more distinct x the curve is evaluated on an
        evenly spaced grid and interpolated for the robustness weights.

    Returns
    -------
    (xs, ys) : arrays
        The evaluation points (sorted) and the smooth there.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(x)
    if n == 0:
        return np.array([]), np.array([])
    xs = np.unique(x)
    if len(xs) > grid:
        xs = np.linspace(xs[0], xs[-1], grid)
    k = max(2, min(n, int(np.ceil(frac * n))))
    w = np.ones(n)
    ys = np.zeros(len(xs))
    for it in range(iterations + 1):
        ys = np.array([_local_fit(x0, x, y, w, k) for x0 in xs])
        if it == iterations:
            break
        res = y - np.interp(x, xs, ys)
        s = np.median(np.abs(res))
        if s <= 0:
            break
        u = np.clip(res / (6 * s), -1, 1)
        w = (1 - u**2) ** 2
    return xs, ys
