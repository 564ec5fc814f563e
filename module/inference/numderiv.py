"""Numerical derivatives by Richardson extrapolation, as R's numDeriv (Gilbert & Varadhan).

lmerTest computes the Satterthwaite ingredients with ``numDeriv::hessian`` (method
"Richardson", d = 0.1, eps = 1e-4, r = 4, v = 2) and ``numDeriv::jacobian`` (d = 1e-4). The
step sizes, the order of evaluations and the extrapolation below follow numDeriv's ``genD`` and
``jacobian`` so that the numbers agree with lmerTest's to rounding.

Step for coordinate i: h0_i = |d·x_i| + eps·[|x_i| < zero_tol], zero_tol = √(ε/7e-7); r steps
h0/v^k, k = 0..r−1; the r estimates are combined by Richardson's rule
D_k ← (4^m D_{k+1} − D_k)/(4^m − 1), m = 1..r−1.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

ZERO_TOL = float(np.sqrt(np.finfo(float).eps / 7e-7))


def _steps(x: np.ndarray, d: float, eps: float) -> np.ndarray:
    return np.abs(d * x) + eps * (np.abs(x) < ZERO_TOL)


def _richardson(a: np.ndarray) -> np.ndarray:
    """Extrapolate along axis 0 (the r step sizes); returns the first row."""
    a = np.array(a, dtype=float)
    r = a.shape[0]
    for m in range(1, r):
        a = (a[1: r - m + 1] * 4.0**m - a[: r - m]) / (4.0**m - 1.0)
    return a[0]


def hessian(func: Callable[[np.ndarray], float], x, d: float = 0.1, eps: float = 1e-4,
            r: int = 4, v: float = 2.0) -> np.ndarray:
    """numDeriv::hessian(func, x) (genD's second-derivative part)."""
    if v != 2:
        raise ValueError("numDeriv's genD assumes v = 2")
    x = np.asarray(x, dtype=float)
    n = x.size
    f0 = float(func(x))
    h0 = _steps(x, d, eps)
    hdiag = np.empty(n)
    for i in range(n):
        h = h0.copy()
        est = np.empty(r)
        for k in range(r):
            e = np.zeros(n)
            e[i] = h[i]
            f1, f2 = float(func(x + e)), float(func(x - e))
            est[k] = (f1 - 2.0 * f0 + f2) / h[i] ** 2
            h = h / v
        hdiag[i] = _richardson(est)
    H = np.diag(hdiag)
    for i in range(n):
        for j in range(i):
            h = h0.copy()
            est = np.empty(r)
            for k in range(r):
                e = np.zeros(n)
                e[i] += h[i]
                e[j] += h[j]
                f1, f2 = float(func(x + e)), float(func(x - e))
                est[k] = (f1 - 2.0 * f0 + f2 - hdiag[i] * h[i] ** 2 - hdiag[j] * h[j] ** 2) / (2.0 * h[i] * h[j])
                h = h / v
            H[i, j] = H[j, i] = _richardson(est)
    return H


def jacobian(func: Callable[[np.ndarray], np.ndarray], x, d: float = 1e-4, eps: float = 1e-4,
             r: int = 4, v: float = 2.0) -> np.ndarray:
    """numDeriv::jacobian(func, x), method "Richardson": an (m, n) array for m outputs."""
    x = np.asarray(x, dtype=float)
    n = x.size
    f = np.ravel(func(x))
    a = np.empty((r, f.size, n))
    h = _steps(x, d, eps)
    for k in range(r):
        for i in range(n):
            e = np.zeros(n)
            e[i] = h[i]
            a[k, :, i] = (np.ravel(func(x + e)) - np.ravel(func(x - e))) / (2.0 * h[i])
        h = h / v
    return _richardson(a)
