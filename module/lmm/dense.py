"""Small-model path for the objective: the whole Λ-scaled [Z X y]ᵀW[Z X y] as one dense matrix.

For a few dozen random effects (sleepstudy: q = 36) the blocked factorisation is dominated by
numpy call overhead; one dense (q+m)×(q+m) matrix and one LAPACK Cholesky per θ is several
times faster. It gives the same three numbers (log|L_θ|², log|R_X|², r²) as
:func:`~.blocks.update_L`; the quantities at θ̂ (β̂, ũ, condVar) always come from the blocked
factor.

Λ is linear in θ: with v = (θ, 1) and Eₖ the 0/1 pattern of vₖ in Λ (the last one the identity of
the [X y] rows), ΛᵀAΛ + I_q = Σₖₗ vₖvₗ EₖᵀAEₗ + I_q is a quadratic form in v. Its
(nθ+1)(nθ+2)/2 coefficient matrices are formed once, so an evaluation is one matrix-vector
product (no Λ to fill, no two matrix products) and one Cholesky factorisation.

Compiled route (``_envelope.c``, built at install where a C compiler is present): the same sums
over M's cells that can be non-zero, M's Cholesky factor within its envelope (each row from its
first non-zero column: sleepstudy's 18 diagonal 2×2 blocks stay 2×2) and the criterion, in one
call of about 1 µs where numpy and LAPACK take about 10 µs (issue #16: their per-call overhead,
not the arithmetic, was the cost of a small model's 43 + 18 evaluations). It agrees with the
LAPACK route to rounding (1e-14 relative), not bit for bit; the optimizer, the objective at θ̂
and the derivative check then all call it (:meth:`DenseSystem.profiled`), and the estimates at θ̂
still come from the blocked factor. Without it everything below runs as before.

Measured and not taken (issue #16): when block 0 is scalar (D diagonal), forming only D, the rows
beside it and the trailing corner and factoring the Schur complement C − BᵀD⁻¹B (8 or 12 rows)
costs more numpy calls than the 32- or 42-row dense factorisation saves (Penicillin 11.7 against
8.1 µs, Pastes 12.5 against 12.2 µs per evaluation). Writing only M's cells that can be
non-zero per evaluation (a scatter into a kept matrix, which LAPACK then copies) instead of the
product over all size² columns: no fewer instructions on sleepstudy, 12% more per evaluation on
Pastes (the derivative check's batch does write only those cells: there its product over all
columns costs more than the scatter). LAPACK's lower Cholesky (``dpotrf`` 'L') takes 14% fewer
instructions than the upper one but differs by rounding (1e-13 relative), so it is not used.
For the optimizer's evaluations (:meth:`DenseSystem.profiled`), per sleepstudy evaluation (callgrind):
scipy's BLAS ``dgemv`` on M's product takes 4.5k fewer instructions than numpy's ``matmul`` (26k)
but is another OpenBLAS build than numpy's, so not surely the same operations; ``np.dot`` with
``out`` takes 35k; the pairs vₖvₗ as Python floats (8.4k), from ``np.multiply.outer`` (16k) or
from one gather (8.8k) cost no less than two gathers and a product (8.2k).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import NamedTuple

import numpy as np
from scipy.linalg import lapack

from . import gufuncs
from .blocks import Crossprod
from .remat import ReStructure

try:
    from . import _envelope
except ImportError:  # not compiled (no C compiler at install): numpy and LAPACK do the same sums
    _envelope = None  # type: ignore[assignment]

_LOG2PI = float(np.log(2.0 * np.pi))
#: Largest number of random effects q for which the dense path is used.
DENSE_MAX_Q = 160
#: Most numbers of the zeroed work array that :meth:`DenseSystem.factor_many` keeps between calls
#: (1 MB).
KEEP_BATCH_ENTRIES = 131_072
#: Most numbers the quadratic form's coefficient matrices may hold (4 MB); above it each
#: evaluation forms ΛᵀAΛ by two matrix products instead.
QUADRATIC_MAX_ENTRIES = 500_000


class DenseFactor(NamedTuple):
    """What the objective needs from L(θ): ``ldL2`` log|L_θ|², ``ldRX2`` log|R_X|², ``pwrss``
    r²(θ), ``ok`` whether the Cholesky factorisation succeeded."""

    ldL2: float
    ldRX2: float
    pwrss: float
    ok: bool


_FAILED = DenseFactor(math.inf, math.inf, math.inf, False)


@dataclass
class DenseSystem:
    """The dense A (``full``, (q+m)×(q+m), order: block 0, rest blocks, [X y]) and where each θ
    element goes in the dense Λ (``rows``, ``cols``, ``index``); ``q`` random effects, ``p``
    fixed effects; ``q0`` random effects in block 0, whose A is block-diagonal by levels of
    ``p0`` columns (0: no such block, every cell of M may be non-zero)."""

    full: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    index: np.ndarray
    q: int
    p: int
    q0: int = 0
    p0: int = 1

    def __post_init__(self) -> None:
        size = self.full.shape[0]
        self._diag_q = np.arange(self.q) * (size + 1)  # flat positions of the first q diagonal cells
        self._segments = np.array([0, self.q, size - 1])  # log-diagonal sums: L_θ, R_X (the rest is r)
        ntheta = int(self.index.max()) + 1 if self.index.size else 0
        quadratic = _quadratic_form(self, ntheta)
        self._form = quadratic
        self._cells = None if quadratic is None else quadratic[3:]
        self._v = np.ones(ntheta + 1)  # (θ, 1), filled per evaluation
        self._batch: tuple[np.ndarray, np.ndarray] | None = None
        self._envelope_form: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.compiled: _envelope.Envelope | None = None
        self._criteria: dict[tuple[int, float, float | None], _envelope.Envelope] = {}
        if quadratic is not None and _envelope is not None:
            first, second, _, cells, coef = quadratic  # the pairs, the K × cells C and its cells
            self._envelope_form = (first, second, coef, cells)
            self.compiled = _envelope.Envelope(first, second, coef, cells, size, self.q)

    @cached_property
    def _quadratic(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The pairs and C over all size² cells (K × size², zero off the cells that can be
        non-zero) for the numpy and LAPACK route, formed on first use: the compiled route reads
        C's columns of those cells alone, and C over all cells can hold megabytes."""
        if self._form is None:
            return None
        first, second, spread, _, coef = self._form
        out = np.zeros((len(first), self.full.size))
        out.reshape(-1)[spread] = coef.reshape(-1)
        return first, second, out

    def _compiled_criterion(self, dof: int, sum_log_w: float, ldR2: float | None) -> _envelope.Envelope:
        """:meth:`profiled` compiled, one per (``dof``, ``sum_log_w``, ``ldR2``), kept: the fit's
        minimum, the objective at θ̂ and the derivative check's points are then one function's."""
        key = (dof, sum_log_w, ldR2)
        kept = self._criteria.get(key)
        if kept is None:
            assert self._envelope_form is not None
            kept = self._criteria[key] = _envelope.Envelope(
                *self._envelope_form, self.full.shape[0], self.q, float(dof), float(sum_log_w),
                0.0 if ldR2 is None else float(ldR2), ldR2 is not None)
        return kept

    def _terms(self, theta: np.ndarray) -> DenseFactor:
        """:meth:`factor` through the compiled envelope factorisation (:data:`compiled`)."""
        assert self.compiled is not None
        terms = self.compiled.terms(np.ascontiguousarray(theta, dtype=float))
        return _FAILED if terms is None else DenseFactor(*terms, True)

    def factor(self, theta: np.ndarray) -> DenseFactor:
        """log|L_θ|², log|R_X|² and r² at θ from one dense Cholesky factorisation (few numpy
        calls: this runs once per objective evaluation; LAPACK reads M's lower triangle only), or
        from the compiled one (:data:`compiled`) where it was built."""
        if self.compiled is not None:
            return self._terms(theta)
        if self._quadratic is not None:
            first, second, coef = self._quadratic
            v = self._v
            v[:-1] = theta
            M = ((v[first] * v[second]) @ coef).reshape(self.full.shape)
        else:
            lam = np.eye(self.full.shape[0])
            lam[self.rows, self.cols] = theta[self.index]
            M = lam.T @ self.full @ lam
            M.flat[self._diag_q] += 1.0
        U, info = lapack.dpotrf(M.T, 0, 0, 1)  # lower=0, clean=0, overwrite_a=1 (positional: fewer instructions)
        if info != 0:
            return _FAILED
        ld, lx, _ = np.add.reduceat(np.log(U.diagonal()), self._segments).tolist()
        return DenseFactor(2.0 * ld, 2.0 * lx, U.item(-1) ** 2, True)

    def profiled(self, dof: int, sum_log_w: float, ldR2: float | None) -> Callable[[np.ndarray], float] | None:
        """The criterion profiled over σ at θ as the optimizer evaluates it (REML with ``ldR2``,
        log|R|² of the fixed-effects basis, ML without; ``dof`` n − p or n, ``sum_log_w``
        log|W|): :meth:`factor`'s operations, then :meth:`.model.LinearMixedModel._profiled`'s,
        in their order (the same numbers), in one function with its own work arrays (θ's v, M),
        so that no numpy array, named tuple or Python frame is built that the criterion does not
        need (a fit makes dozens of evaluations of a few microseconds each). None without the
        quadratic form or when ``dof`` ≤ 0."""
        if self._envelope_form is not None and dof > 0:
            return self._compiled_criterion(dof, sum_log_w, ldR2)
        quadratic = self._quadratic
        if quadratic is None or dof <= 0:
            return None
        first, second, coef = quadratic
        size = self.full.shape[0]
        v = np.ones(len(self._v))
        head = v[:-1]
        M = np.empty((size, size))
        flat, MT = M.reshape(-1), M.T
        segments = self._segments
        matmul, potrf, log, reduceat, isfinite = np.matmul, lapack.dpotrf, np.log, np.add.reduceat, math.isfinite
        const = 1.0 + _LOG2PI
        reml = ldR2 is not None
        ldR = 0.0 if ldR2 is None else ldR2

        def criterion(theta: np.ndarray) -> float:
            head[...] = theta
            matmul(v[first] * v[second], coef, out=flat)
            U, info = potrf(MT, 0, 0, 1)
            if info != 0:
                return math.inf
            ld, lx, _ = reduceat(log(U.diagonal()), segments).tolist()
            ldL2, pwrss = 2.0 * ld, U.item(-1) ** 2
            if not isfinite(ldL2) or pwrss <= 0:
                return math.inf
            val = ldL2 - sum_log_w + dof * (const + log(pwrss / dof))
            if reml:
                val += 2.0 * lx + ldR
            return float(val)

        return criterion

    def _batch_work(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """A zeroed (count, size²) array for :meth:`factor_many` and a (count, K) one whose last
        column is 1 (v = (θ, 1) per row), kept between calls when the first holds at most
        :data:`KEEP_BATCH_ENTRIES` numbers (the cells written are the same each time, so the rest
        stays zero and the ones stay; a fresh array of this size costs more than the products)."""
        kept = self._batch
        if kept is not None and kept[0].shape[0] == count:
            return kept
        out = np.zeros((count, self.full.size)), np.ones((count, len(self._v)))
        if out[0].size <= KEEP_BATCH_ENTRIES:
            self._batch = out
        return out

    def factor_many(self, thetas: np.ndarray) -> DenseFactors | None:
        """:meth:`factor` at each row of ``thetas`` (the same numbers) from batched products and
        one batched Cholesky factorisation (the derivative check's points); None without the
        quadratic form or when some factorisation fails (the caller then factors one θ at a
        time)."""
        if self._form is None or self._cells is None:
            return None
        first, second = self._form[:2]
        cells, coef = self._cells
        size = self.full.shape[0]
        Ms, V = self._batch_work(len(thetas))
        V[:, :-1] = thetas
        Ms[:, cells] = (V[:, first] * V[:, second]) @ coef
        try:
            L = gufuncs.cholesky(Ms.reshape(len(thetas), size, size))
        except np.linalg.LinAlgError:
            return None
        sums = np.add.reduceat(np.log(L.diagonal(0, 1, 2)), self._segments, axis=1)
        twice = 2.0 * sums[:, :2]
        pwrss = np.array([r ** 2 for r in L[:, -1, -1].tolist()])  # Python's power, as factor's
        return DenseFactors(twice[:, 0], twice[:, 1], pwrss)


class DenseFactors(NamedTuple):
    """:class:`DenseFactor`'s numbers at several θ (arrays; every factorisation succeeded)."""

    ldL2: np.ndarray
    ldRX2: np.ndarray
    pwrss: np.ndarray


def _quadratic_form(system: DenseSystem, ntheta: int) -> QuadraticForm | None:
    """ΛᵀAΛ + I_q as Σ over pairs k ≤ l of vₖvₗ·Cₖₗ, v = (θ, 1): the pairs (k and l, K indices
    into v each) and the coefficient matrices C (K × size², I_q folded into the pair of the last
    v), set on the lower triangle's cells that can be non-zero (:func:`_lower_cells`) and zero
    elsewhere (LAPACK reads the lower triangle only), as where C's values go in the flattened
    C (``spread``: :attr:`DenseSystem._quadratic` forms C when a route needs it); those cells
    (flat C-order indices) and their columns of C (K × cells: a batch of θ multiplies these
    alone, one θ on the LAPACK route the whole of C, which is cheaper than scattering, the
    compiled route the cells'), for θ of ``ntheta`` elements; None when C would hold more than
    :data:`QUADRATIC_MAX_ENTRIES` numbers. Where each coefficient is read from A depends on the
    layout alone (:func:`_quadratic_plan`, formed once per layout)."""
    size = system.full.shape[0]
    first, second = _pairs(ntheta + 1)
    if len(first) * size * size > QUADRATIC_MAX_ENTRIES:
        return None
    rows, cols, index = (np.asarray(a, dtype=np.intp).tobytes() for a in (system.rows, system.cols, system.index))
    plan = _quadratic_plan(size, system.q, system.q0, system.p0, rows, cols, index)
    if plan is None:
        return None
    padded = np.zeros((size + 1, size + 1))
    padded[:size, :size] = system.full
    flat = padded.reshape(-1)
    coef = flat.take(plan.direct)
    at = coef.reshape(-1)  # flat positions: cheaper than a 2-d selection, the same cells
    at[plan.off] += flat.take(plan.mirrored).reshape(-1)
    at[plan.diag] += 1.0
    return first, second, plan.spread, plan.cells, coef


class QuadraticPlan(NamedTuple):
    """Where :func:`_quadratic_form` reads each coefficient in the flattened A padded by a zero
    row and column: ``direct`` (K × cells) A[sₖ[i], sₗ[j]], ``mirrored`` the added
    A[sₖ[j], sₗ[i]] for the pairs k < l (``off``: where they go in the flattened K × cells C);
    ``diag`` where the ones of I_q go in it; ``cells`` the lower triangle's cells that can be
    non-zero (flat C-order indices); ``spread`` where C's values go in the flattened K × size²
    C of all cells."""

    direct: np.ndarray
    off: np.ndarray
    mirrored: np.ndarray
    diag: np.ndarray
    cells: np.ndarray
    spread: np.ndarray


@lru_cache(maxsize=8)
def _quadratic_plan(size: int, q: int, q0: int, p0: int, rows_b: bytes, cols_b: bytes,
                    index_b: bytes) -> QuadraticPlan | None:
    """The :class:`QuadraticPlan` of a dense layout (Λ's cells ``rows``, ``cols`` and their θ
    ``index`` as bytes of intp arrays), or None when a column of Λ holds two cells of one θ
    element; read-only arrays, shared by the models of one layout."""
    rows_l, cols_l, index = (np.frombuffer(b, dtype=np.intp) for b in (rows_b, cols_b, index_b))
    ntheta = int(index.max()) + 1 if index.size else 0
    k_all = ntheta + 1
    first, second = _pairs(k_all)
    # source[k, j]: the row of vₖ's cell in column j of Λ (size: none); a column holds at most
    # one cell of each vₖ, so (EₖᵀAEₗ)[i, j] = A[source[k, i], source[l, j]] (0 where none)
    source = np.full((k_all, size), size)
    source[ntheta] = np.arange(size)  # Λ's cells that no θ sets: the identity's
    source[ntheta, cols_l[rows_l == cols_l]] = size
    source[index, cols_l] = rows_l
    if np.any(np.bincount(index * size + cols_l, minlength=k_all * size) > 1):
        return None
    rows, cols = _lower_cells(size, q0, p0)
    # Cₖₗ[i, j] = A[sₖ[i], sₗ[j]] + A[sₖ[j], sₗ[i]] for k < l (EₖᵀAEₗ + its transpose)
    at_rows, at_cols = source[:, rows], source[:, cols]  # per cell, the row of each v in its Λ column
    off = first != second
    ncells, cells = len(rows), rows * size + cols
    plan = QuadraticPlan(at_rows[first] * (size + 1) + at_cols[second],
                         (np.flatnonzero(off)[:, None] * ncells + np.arange(ncells)).ravel(),
                         at_cols[first[off]] * (size + 1) + at_rows[second[off]],
                         (len(first) - 1) * ncells + np.flatnonzero((rows == cols) & (rows < q)), cells,
                         (np.arange(len(first))[:, None] * (size * size) + cells).ravel())
    for a in plan:
        a.flags.writeable = False
    return plan


@lru_cache(maxsize=16)
def _pairs(k_all: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs k ≤ l of indices into v (row-major upper-triangle order)."""
    first, second = np.triu_indices(k_all)
    first.flags.writeable = second.flags.writeable = False
    return first, second


def _lower_cells(size: int, q0: int, p0: int) -> tuple[np.ndarray, np.ndarray]:
    """The cells (i ≥ j) of M = ΛᵀAΛ + I_q that can be non-zero: in block 0's rows those of a
    level's diagonal block (A₀₀ is block-diagonal by levels and Λ₀ keeps each level's columns
    together), every cell in the rows below it."""
    rows, cols = _lower_triangle(size)
    keep = (rows >= q0) | (rows // p0 == cols // p0)
    return rows[keep], cols[keep]


@lru_cache(maxsize=32)
def _lower_triangle(size: int, k: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the lower triangle (below the k-th diagonal) of a size×size matrix
    (row-major order)."""
    rows, cols = np.tril_indices(size, k)
    rows.flags.writeable = cols.flags.writeable = False
    return rows, cols


#: What :func:`_quadratic_form` returns: pairs (first, second), C, cells, C at the cells.
QuadraticForm = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def wants_dense(structure: ReStructure) -> bool:
    """Whether the objective is evaluated densely: q ≤ :data:`DENSE_MAX_Q`."""
    return structure.q <= DENSE_MAX_Q


def build_dense(A: Crossprod, structure: ReStructure) -> DenseSystem | None:
    """The dense system when :func:`wants_dense`, else None."""
    q = structure.q
    if not wants_dense(structure):
        return None
    q0 = A.ell0 * A.p0
    m = A.m
    full = np.zeros((q + m, q + m))
    full[_level_blocks(A.ell0, A.p0)] = A.A00  # the diagonal blocks of block 0, all at once
    xy = slice(q, q + m)
    full[xy, :q0] = A.Ax0.reshape(m, q0)
    if A.rest:
        rs = slice(q0, q)
        full[rs, rs] = A.Arr
        full[rs, :q0] = A.ar0_array()
        full[xy, rs] = A.Axr
    full[xy, xy] = A.Axx
    upper_rows, upper_cols = _lower_triangle(q + m, -1)[::-1]
    full[upper_rows, upper_cols] = full[upper_cols, upper_rows]  # the lower triangle's values
    rows, cols, index = _lambda_cells(tuple((blk.p, blk.nlevels, *(np.asarray(a, dtype=np.intp).tobytes()
                                                                   for a in (blk.rows, blk.cols, blk.theta_index)))
                                            for blk in structure.blocks))
    return DenseSystem(full, rows, cols, index, q, A.p, q0, A.p0)


@lru_cache(maxsize=16)
def _level_blocks(ell0: int, p0: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns (read-only, broadcasting to ℓ₀×p₀×p₀) of block 0's diagonal blocks in the
    dense A."""
    at = p0 * np.arange(ell0)[:, None, None]
    a = np.arange(p0)
    rows, cols = at + a[:, None], at + a[None, :]
    rows.flags.writeable = cols.flags.writeable = False
    return rows, cols


@lru_cache(maxsize=8)
def _lambda_cells(blocks: tuple[tuple[int, int, bytes, bytes, bytes], ...]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each θ element goes in the dense Λ (rows, columns, θ index; read-only), from the
    blocks' (p, levels, template rows, template columns, θ index as bytes of intp arrays)."""
    rows, cols, index = [], [], []
    offset = 0
    for p, nlevels, rows_b, cols_b, index_b in blocks:
        t_rows, t_cols, t_index = (np.frombuffer(b, dtype=np.intp) for b in (rows_b, cols_b, index_b))
        base = offset + p * np.arange(nlevels)[:, None]
        rows.append((base + t_rows).ravel())
        cols.append((base + t_cols).ravel())
        index.append(np.tile(t_index, nlevels))
        offset += p * nlevels
    out = np.concatenate(rows), np.concatenate(cols), np.concatenate(index)
    for a in out:
        a.flags.writeable = False
    return out
