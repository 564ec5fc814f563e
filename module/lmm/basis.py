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

from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy.linalg import lapack

from ..errors import ModelError

#: A column whose part not explained by the earlier columns is below this fraction of its norm
#: makes X numerically rank deficient (the design drops such columns at 1e-7 already).
RANK_EPS = 1e-12


class FixedBasis:
    """X = X̃R with W-orthonormal X̃, and the working response ỹ = y − o − Xγ.

    Attributes: ``X`` X̃ (n×p); ``y`` ỹ (n); ``R`` (p×p, upper triangular, positive diagonal);
    ``gamma`` γ (p); ``ldR2`` log|R|² = 2Σ log Rᵢᵢ; ``Xy`` [X̃ ỹ] (n×(p+1), column-major), whose
    columns ``X`` and ``y`` are (None when they are separate arrays); ``source`` None, or what
    computes the basis again once it has let go of its rows (:meth:`let_go_rows`): X̃ and ỹ are
    then computed again (the same values) each time they are read, and not kept.
    """

    def __init__(self, X: np.ndarray | None, y: np.ndarray | None, R: np.ndarray, gamma: np.ndarray,
                 ldR2: float, Xy: np.ndarray | None = None,
                 source: Callable[[], FixedBasis] | None = None) -> None:
        self._X, self._y = X, y
        self.R, self.gamma, self.ldR2, self.Xy, self.source = R, gamma, ldR2, Xy, source

    @property
    def X(self) -> np.ndarray:
        """X̃ (n×p)."""
        X = self.with_rows()._X
        assert X is not None
        return X

    @property
    def y(self) -> np.ndarray:
        """ỹ (n)."""
        y = self.with_rows()._y
        assert y is not None
        return y

    def let_go_rows(self, source: Callable[[], FixedBasis]) -> FixedBasis:
        """This basis without its n rows (X̃, ỹ), which ``source`` computes again when read
        (the same values): a fitted model then keeps only its data and its cross-products."""
        return FixedBasis(None, None, self.R, self.gamma, self.ldR2, None, source)

    def with_rows(self) -> FixedBasis:
        """This basis, or the one ``source`` computes again when the rows were let go: read X̃ and
        ỹ from it when both are needed (one computation)."""
        if self._X is not None or self.source is None:
            return self
        return self.source()

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
    weights w and offset o (see the module's docstring).

    X̃ and ỹ are the columns of one column-major n×(p+1) array, computed in place (LAPACK's
    QR and Q overwrite the copy of X; the projections run over row chunks): no n-row
    temporaries, the values numpy's QR and whole-array products give, except X̃ᵀr of a large X
    (see :data:`ROW_MAJOR_BELOW`)."""
    n, p = X.shape
    Xy = np.empty((n, p + 1), order="F")
    r = Xy[:, p]
    shift = _centred_response(X, y, offset, r)
    if p == 0:
        return FixedBasis(Xy[:, :0], r, np.zeros((0, 0)), np.zeros(0), 0.0, Xy)
    sw = None if weights is None else np.sqrt(weights)
    Q = Xy[:, :p]
    if sw is None:
        Q[...] = X
        norms = _column_norms(X)
    else:
        np.multiply(X, sw[:, None], out=Q)
        norms = _column_norms(Q)
    R = _qr_in_place(Q)
    _check_rank(R, norms, names)
    signs = np.where(R.diagonal() < 0, -1.0, 1.0)
    Q *= signs
    R *= signs[:, None]
    if sw is not None:
        r *= sw
    coef = np.zeros(p)
    Qt = np.ascontiguousarray(Q).T if Q.size < ROW_MAJOR_BELOW else Q.T
    for _ in range(2):
        c = Qt @ r
        _subtract_product(r, Q, c)
        coef += c
    gamma = _solve_upper(R, coef) + shift
    if sw is not None:
        Q /= sw[:, None]
        r /= sw
    ldR2 = float(2.0 * np.sum(np.log(R.diagonal())))
    return FixedBasis(Q, r, R, gamma, ldR2, Xy)


def _qr_in_place(A: np.ndarray) -> np.ndarray:
    """R of the thin QR factorisation A = QR, A (n×p, column-major) overwritten by Q (LAPACK's
    dgeqrf and dorgqr, as ``numpy.linalg.qr``)."""
    qr, tau, _, info = lapack.dgeqrf(A, overwrite_a=1)
    if info != 0 or not np.shares_memory(qr, A):
        raise np.linalg.LinAlgError("QR of the fixed-effects matrix failed")
    p = A.shape[1]
    R = np.array(qr[:p, :], order="C")
    R[_strictly_lower(p)] = 0.0  # numpy.triu's values, without its mask and selection
    q, _, info = lapack.dorgqr(qr, tau, overwrite_a=1)
    if info != 0 or not np.shares_memory(q, A):
        raise np.linalg.LinAlgError("QR of the fixed-effects matrix failed")
    return R


@lru_cache(maxsize=16)
def _strictly_lower(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the cells below the diagonal of a p×p matrix (read-only)."""
    rows, cols = np.tril_indices(p, -1)
    rows.flags.writeable = cols.flags.writeable = False
    return rows, cols


#: Size of X (n·p) below which X̃ᵀr is formed from a row-major copy of X̃: BLAS sums it in
#: another order than from the column-major X̃, so small models keep the numbers of the row-major
#: basis of earlier versions bit for bit; larger ones take no copy (the same to rounding).
ROW_MAJOR_BELOW = 100_000

#: Rows per chunk of :func:`_subtract_product`.
CHUNK_ROWS = 16_384


def _subtract_product(r: np.ndarray, Q: np.ndarray, c: np.ndarray) -> None:
    """r ← r − Qc over row chunks (each row's product is the whole product's)."""
    for start in range(0, r.size, CHUNK_ROWS):
        stop = min(r.size, start + CHUNK_ROWS)
        r[start:stop] -= Q[start:stop] @ c


def _column_norms(X: np.ndarray) -> np.ndarray:
    """‖xⱼ‖ per column (column by column: numpy's axis-0 reduction of a narrow n×p matrix is
    many times slower)."""
    return np.array([np.sqrt(np.dot(X[:, j], X[:, j])) for j in range(X.shape[1])])


def _check_rank(R: np.ndarray, norms: np.ndarray, names: list[str] | None) -> None:
    """Raise :class:`~mixedbridge.errors.ModelError` for the first column of X that is (to
    :data:`RANK_EPS`) a linear combination of the earlier ones."""
    bad = [j for j, (r, norm) in enumerate(zip(R.diagonal().tolist(), norms.tolist()))
           if not abs(r) > RANK_EPS * norm]  # p numbers: Python's comparisons, not numpy calls
    if bad:
        j = bad[0]
        name = names[j] if names else f"number {j + 1}"
        raise ModelError(f"the fixed-effects column {name!r} is a linear combination of the earlier "
                         "ones (or zero); drop it or the column it duplicates")


def _middle(v: np.ndarray, in_place: bool = False) -> float:
    """A middle value of v that is one of its elements (the upper median); ``in_place``
    reorders v instead of a copy."""
    k = v.size // 2
    if in_place:
        v.partition(k)
        return float(v[k])
    return float(np.partition(v, k)[k])


def _constant_column(X: np.ndarray) -> int | None:
    """The first non-zero constant column of X, or None."""
    if X.shape[0] == 0:
        return None
    for j in range(X.shape[1]):
        col = X[:, j]
        if col[0] != 0 and (col == col[0]).all():
            return j
    return None


def _centred_response(X: np.ndarray, y: np.ndarray, offset: np.ndarray | None,
                       out: np.ndarray) -> np.ndarray:
    """``out`` ← y − o − Xs; returns s: with a constant column j (value k),
    s = (c_y − c_o)/k·e_j and y − o − Xs = (y − c_y) − (o − c_o); without one, s = 0."""
    shift = np.zeros(X.shape[1])
    j = _constant_column(X)
    if j is None or y.size == 0:
        if offset is None:
            out[...] = y
        else:
            np.subtract(y, offset, out=out)
        return shift
    out[...] = y
    c = _middle(out, in_place=True)
    np.subtract(y, c, out=out)
    if offset is not None:
        co = _middle(offset)
        out -= offset - co
        c = c - co
    shift[j] = c / X[0, j]
    return shift
