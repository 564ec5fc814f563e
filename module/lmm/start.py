"""Starting values of θ for models whose evaluations are expensive: moment estimates read from
the cross-products, so the optimizer starts near θ̂ instead of at lme4's θ = 1, with a small
first trust region.

Why: on InstEval (three crossed intercepts, a 1,156-row dense fill-in) BOBYQA from θ = 1 spends
73 of its 107 evaluations getting within 10 of the optimum (θ̂ ≈ (0.28, 0.44, 0.09)). From these
estimates ((0.27, 0.45, 0.12)) it needs 44 with NLopt's default first step, 29 with a step of
:data:`INITIAL_STEP` (25-31 for steps 0.02-0.05, 38-40 for 0.075-0.1); on crossed synthetic
data (2 θ) 16-23 against 28-34 from θ = 1. The optimum reached is the same (within 1e-12
relative). Small models keep lme4's start and lme4's path, evaluation for evaluation.

For each template diagonal element (column a of a grouping factor's block) the one-way
analysis of variance of the fixed-effects residual ỹ on that column's levels gives, with
cᵢ = Σ w x_a² and sᵢ = Σ w x_a ỹ over the rows of level i (both already in A):
SSB = Σ sᵢ²/cᵢ, the within mean square σ_w² = (ỹᵀWỹ − SSB)/(n − p − G) and
τ² = max(0, (SSB − G σ_w²)/Σcᵢ). With σ² = ỹᵀWỹ/(n − p) − Σ τ² Σcᵢ/n (at least a tenth of
the first term) the start is θ = τ/σ, raised to :data:`START_FLOOR`; off-diagonal elements
start at 0.
"""
from __future__ import annotations

import numpy as np

from .blocks import Crossprod
from .remat import ReStructure

#: Size of the dense fill-in block from which a fit starts from moment estimates.
MOMENT_START_FILL = 500
#: Smallest start of a template diagonal element (BOBYQA's first points then stay off the
#: bound).
START_FLOOR = 0.05
#: BOBYQA's first step for every θ element from a moment start (θ is a ratio of standard
#: deviations, so one absolute resolution fits all elements).
INITIAL_STEP = 0.05


def wants_moment_start(A: Crossprod) -> bool:
    """Whether evaluations are expensive enough (a dense fill-in of at least
    :data:`MOMENT_START_FILL` rows) for moment starting values to pay."""
    return A.q_rest >= MOMENT_START_FILL


def _column_sums(A: Crossprod, block: int, a: int) -> tuple[np.ndarray, np.ndarray]:
    """(cᵢ, sᵢ) of column a of block ``block`` per level, read from the cross-products."""
    if block == 0:
        return A.A00[:, a, a], A.Ax0[-1, :, a]
    b = A.rest[block - 1]
    idx = int(A.offsets[block - 1]) + np.arange(b.nlevels) * b.p + a
    return A.Arr[idx, idx], A.Axr[-1, idx]


def _between(c: np.ndarray, s: np.ndarray, yy: float, resid_df: int) -> tuple[float, float] | None:
    """(τ², Σcᵢ) of one column by the one-way analysis of variance, or None when it has no
    within-level degrees of freedom."""
    seen = c > 0
    G = int(np.count_nonzero(seen))
    within_df = resid_df - G
    if G == 0 or within_df <= 0:
        return None
    ssb = float(np.sum(s[seen] ** 2 / c[seen]))
    sw2 = max(yy - ssb, 0.0) / within_df
    total = float(np.sum(c))
    return max(0.0, (ssb - G * sw2) / total), total


def moment_start(A: Crossprod, structure: ReStructure) -> tuple[np.ndarray, np.ndarray]:
    """Moment estimates of θ and BOBYQA's first steps (:data:`INITIAL_STEP`) for the blocked
    cross-products ``A`` of ``structure``."""
    theta = structure.theta0.astype(float)
    steps = np.full(theta.shape, INITIAL_STEP)
    yy, resid_df = float(A.Axx[-1, -1]), A.n - A.p
    if resid_df <= 0 or yy <= 0:
        return theta, steps
    found: list[tuple[int, float]] = []
    explained = 0.0
    for j, blk in enumerate(structure.blocks):
        for k in np.flatnonzero(blk.rows == blk.cols):
            c, s = _column_sums(A, j, int(blk.rows[k]))
            got = _between(c, s, yy, resid_df)
            if got is not None:
                found.append((int(blk.theta_index[k]), got[0]))
                explained += got[0] * got[1] / A.n
    total = yy / resid_df
    sigma2 = max(total - explained, 0.1 * total)
    for i, tau2 in found:
        theta[i] = max(np.sqrt(tau2 / sigma2), START_FLOOR)
    return theta, steps
