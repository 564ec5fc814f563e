"""numpy's LAPACK gufuncs for small float64 matrices, without ``numpy.linalg``'s Python wrappers.

``np.linalg.cholesky``, ``solve``, ``eigvalsh`` and ``eigh`` check shapes and types, choose a gufunc of
``numpy.linalg._umath_linalg`` and call it with the floating-point error state set so that a
failed factorisation (the gufunc flags "invalid" and fills its output with NaN) raises
``LinAlgError``. On the 3×3 Hessian of the derivative check that work costs several times the
factorisation (measured here: the three calls 28.6 µs through the wrappers, 9.0 µs direct). The
functions below call the same gufuncs with the same signatures on the same arrays, hence the same
LAPACK routines on the same layout and the same numbers, and raise ``LinAlgError`` in the same
cases (an "invalid" flag, read as numpy's ``FloatingPointError``); they take float64 arrays of
square matrices, which their callers guarantee. ``_umath_linalg`` is private: where a numpy
release lacks it or these gufuncs, the public functions are used (the same numbers, slower).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.linalg
from numpy.linalg import LinAlgError

_umath_linalg: Any = getattr(numpy.linalg, "_umath_linalg", None)

#: Whether the gufuncs are reachable (else the public ``numpy.linalg`` functions serve).
DIRECT = all(hasattr(_umath_linalg, name) for name in ("cholesky_lo", "solve1", "eigvalsh_lo", "eigh_lo"))


def _direct(name: str, signature: str, failure: str, *args: np.ndarray) -> np.ndarray:
    """The gufunc ``name`` of ``_umath_linalg`` on ``args`` under ``numpy.linalg``'s error state
    with "invalid" raising, read as ``LinAlgError(failure)`` as ``numpy.linalg`` raises it."""
    try:
        with np.errstate(invalid="raise", over="ignore", divide="ignore", under="ignore"):
            return getattr(_umath_linalg, name)(*args, signature=signature)
    except FloatingPointError:
        raise LinAlgError(failure) from None


def cholesky(a: np.ndarray) -> np.ndarray:
    """``np.linalg.cholesky(a)``: the lower Cholesky factors of a (stacked) float64 matrix."""
    if not DIRECT:
        return np.linalg.cholesky(a)
    return _direct("cholesky_lo", "d->d", "Matrix is not positive definite", a)


def solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.linalg.solve(a, b)`` for a float64 matrix a and vector b."""
    if not DIRECT:
        return np.linalg.solve(a, b)
    return _direct("solve1", "dd->d", "Singular matrix", a, b)


def eigvalsh(a: np.ndarray) -> np.ndarray:
    """``np.linalg.eigvalsh(a)``: the eigenvalues (ascending) of a symmetric float64 matrix from
    its lower triangle."""
    if not DIRECT:
        return np.linalg.eigvalsh(a)
    return _direct("eigvalsh_lo", "d->d", "Eigenvalues did not converge", a)


def eigh(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.linalg.eigh(a)``: the eigenvalues (ascending) and eigenvectors of a symmetric float64
    matrix from its lower triangle (Satterthwaite's 4×4 Hessian: 4 µs of its 6 saved)."""
    if not DIRECT:
        return np.linalg.eigh(a)
    evals, evecs = _direct("eigh_lo", "d->dd", "Eigenvalues did not converge", a)
    return evals, evecs
