"""The fixed-effects basis the estimator computes in, so that no cross-product carries a large
offset: UTM coordinates, timestamps, calendar years or a response around 1e8 would otherwise
cancel catastrophically in [Z X y]ᵀW[Z X y] (yᵀy ≈ n·1e16 against a residual sum of squares of
order n).

With the thin QR factorisation √W X = QR, the estimator works with

* X̃ = W^-½Q = XR⁻¹, whose columns are W-orthonormal (X̃ᵀWX̃ = I), and
* ỹ = y − o − Xγ, the weighted least-squares residual of y − o on X (γ = R⁻¹Qᵀ√W(y − o)),
  computed as a projection with Q (twice, for orthogonality to working precision).

When X has a constant column (an intercept), y − o is first taken as (y − c_y) − (o − c_o)
with c_y, c_o middle values of y and o, and c_y − c_o is added to that column's coefficient:
the differences are exact (Sterbenz) for values within a factor 2 of the middle one, so a
response around 1e8 or a constant offset of 1e15 loses nothing to the rounding of y − o.

The profiled objective is unchanged by y → y − Xγ (β is profiled out) and by X → XR⁻¹ except
for log|R_X|²: for X = X̃R, R_X = R̃_X R, so log|R_X|² = log|R̃_X|² + log|R|². The user's
quantities come back exactly: β = γ + R⁻¹β̃ and V(β) = R⁻¹V(β̃)R⁻ᵀ.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

from ..errors import ModelError

#: A column whose part not explained by the earlier columns is below this fraction of its norm
#: makes X numerically rank deficient (the design drops such columns at 1e-7 already).
RANK_EPS = 1e-12


@dataclass
class FixedBasis:
    """X = X̃R with W-orthonormal X̃, and the working response ỹ = y − o − Xγ.

    Fields: ``X`` X̃ (n×p); ``y`` ỹ (n); ``R`` (p×p, upper triangular, positive diagonal);
    ``gamma`` γ (p); ``ldR2`` log|R|² = 2Σ log Rᵢᵢ.
    """

    X: np.ndarray
    y: np.ndarray
    R: np.ndarray
    gamma: np.ndarray
    ldR2: float

    def beta(self, beta_tilde: np.ndarray) -> np.ndarray:
        """β = γ + R⁻¹β̃: the coefficients of the user's columns from those of X̃."""
        return self.gamma + self.solve(beta_tilde)

    def solve(self, M: np.ndarray) -> np.ndarray:
        """R⁻¹M (M a p-vector or p×k matrix)."""
        return _solve_upper(self.R, M)


def _solve_upper(R: np.ndarray, M: np.ndarray) -> np.ndarray:
    """R⁻¹M for an upper-triangular R (LAPACK directly: this runs a few times per fit)."""
    if R.size == 0:
        return np.array(M, dtype=float)
    out, _ = lapack.dtrtrs(R, np.asarray(M, dtype=float), lower=0)
    return out


def fixed_basis(X: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None,
                offset: np.ndarray | None = None, names: list[str] | None = None) -> FixedBasis:
    """The basis of X (aliased columns already dropped; ``names`` its columns, for the error
    when one is a linear combination of the others) and the working response for y, prior
    weights w and offset o (see the module's docstring)."""
    n, p = X.shape
    yo, shift = _centred_response(X, y, offset)
    if p == 0:
        return FixedBasis(X, yo, np.zeros((0, 0)), np.zeros(0), 0.0)
    sw = None if weights is None else np.sqrt(weights)
    Xw = X if sw is None else X * sw[:, None]
    Q, R = np.linalg.qr(Xw)
    _check_rank(R, _column_norms(Xw), names)
    signs = np.where(R.diagonal() < 0, -1.0, 1.0)
    Q *= signs
    R *= signs[:, None]
    r = yo if sw is None else yo * sw
    if r is y:  # the caller's array: updated in place below
        r = r.copy()
    coef = np.zeros(p)
    for _ in range(2):
        c = Q.T @ r
        r -= Q @ c
        coef += c
    gamma = _solve_upper(R, coef) + shift
    Xt = Q if sw is None else Q / sw[:, None]
    yt = r if sw is None else r / sw
    ldR2 = float(2.0 * np.sum(np.log(R.diagonal())))
    return FixedBasis(np.ascontiguousarray(Xt), yt, R, gamma, ldR2)


def _column_norms(X: np.ndarray) -> np.ndarray:
    """‖xⱼ‖ per column (column by column: numpy's axis-0 reduction of a narrow n×p matrix is
    many times slower)."""
    return np.array([np.sqrt(np.dot(X[:, j], X[:, j])) for j in range(X.shape[1])])


def _check_rank(R: np.ndarray, norms: np.ndarray, names: list[str] | None) -> None:
    """Raise :class:`~mixedbridge.errors.ModelError` for the first column of X that is (to
    :data:`RANK_EPS`) a linear combination of the earlier ones."""
    bad = np.flatnonzero(~(np.abs(R.diagonal()) > RANK_EPS * norms))
    if bad.size:
        j = int(bad[0])
        name = names[j] if names else f"number {j + 1}"
        raise ModelError(f"the fixed-effects column {name!r} is a linear combination of the earlier "
                         "ones (or zero); drop it or the column it duplicates")


def _middle(v: np.ndarray) -> float:
    """A middle value of v that is one of its elements (the upper median)."""
    k = v.size // 2
    return float(np.partition(v, k)[k])


def _constant_column(X: np.ndarray) -> int | None:
    """The first non-zero constant column of X, or None."""
    if X.shape[0] == 0:
        return None
    for j in range(X.shape[1]):
        col = X[:, j]
        if col[0] != 0 and np.all(col == col[0]):
            return j
    return None


def _centred_response(X: np.ndarray, y: np.ndarray,
                      offset: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """y − o − Xs and s: with a constant column j (value k), s = (c_y − c_o)/k·e_j and
    y − o − Xs = (y − c_y) − (o − c_o); without one, s = 0."""
    shift = np.zeros(X.shape[1])
    j = _constant_column(X)
    if j is None or y.size == 0:
        return (y if offset is None else y - offset), shift
    c = _middle(y)
    yo = y - c
    if offset is not None:
        co = _middle(offset)
        yo = yo - (offset - co)
        c = c - co
    shift[j] = c / X[0, j]
    return yo, shift
