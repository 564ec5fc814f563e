"""The native linear mixed model built from reduced blocks instead of rows.

:class:`BlockModel` is a :class:`~mixedbridge.lmm.model.LinearMixedModel` whose cross-products
(and fixed-effects basis) were summed over partitions: the optimizer, the checks, β̂, V(β̂), σ̂,
θ̂, the variance components, the conditional modes and condVar, and Satterthwaite's df (through
``objective(θ, reml, sigma)`` and ``vcov``, or exactly from the cross-products) and Kenward-Roger
all work on the blocks alone. What needs the rows (residuals, fitted values, refits for
profiles, bootstrap or likelihood-ratio tests) is refused with an error saying so.
"""
from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np
from scipy.linalg import solve_triangular

from ..design import ReTermData, drop_aliased
from ..errors import ModelError
from ..fit import Fit
from ..lmm.api import model_to_fit
from ..lmm.basis import RANK_EPS, FixedBasis
from ..lmm.blocks import Crossprod
from ..lmm.dense import build_dense
from ..lmm.gram import build_gram_map
from ..lmm.model import LinearMixedModel
from ..lmm.remat import ReStructure, build_structure
from .crossprod import Blocks, QRPiece, r_factor

ROWS_NEEDED = ("needs the rows, which the Dask backend never gathers; fit in memory (options.backend "
               "'memory') for it")


class BlockModel(LinearMixedModel):
    """A linear mixed model from reduced blocks (see the module's docstring); ``nobs`` rows."""

    has_rows: ClassVar[bool] = False
    nobs: int = 0

    @classmethod
    def from_blocks(cls, names: list[str], structure: ReStructure, basis: FixedBasis, blocks: Blocks,
                    reml: bool, weighted: bool) -> BlockModel:
        """The model whose [Z X̃ ỹ]ᵀW[Z X̃ ỹ] blocks are ``blocks`` (in ``basis``), left at θ₀."""
        self = cls.__new__(cls)
        p = len(names)
        self.X, self.names, self.y = np.zeros((0, p)), list(names), np.zeros(0)
        self.reterms = []
        self.weights = np.zeros(0) if weighted else None
        self.offset, self.reml = None, reml
        self.structure, self.basis, self.nobs = structure, basis, blocks.n
        self.A = crossprod_of(structure, blocks, p)
        self.dense = build_dense(self.A, structure)
        self._optsum = self._check = self._beta_tilde = None
        self.L = None  # type: ignore[assignment]
        self.set_theta(structure.theta0)
        return self

    @property
    def n(self) -> int:
        return self.nobs

    def residuals(self) -> np.ndarray:
        """No rows here: an empty array (see :mod:`.residuals` for the map over partitions)."""
        return np.zeros(0)

    def zb(self) -> np.ndarray:
        raise ModelError("Z b for every row " + ROWS_NEEDED)

    def refit(self, y: np.ndarray, *, reml: bool | None = None,
              theta0: np.ndarray | None = None) -> LinearMixedModel:
        raise ModelError("refitting the model (profiles, bootstrap, likelihood-ratio tests, "
                         "Kenward-Roger of an ML fit) " + ROWS_NEEDED)


def crossprod_of(structure: ReStructure, blocks: Blocks, p: int) -> Crossprod:
    """The estimator's :class:`~mixedbridge.lmm.blocks.Crossprod` from the summed blocks."""
    blocks = blocks.dense()
    b0, rest = structure.blocks[0], structure.blocks[1:]
    offsets = np.cumsum([0] + [b.q for b in rest]).astype(np.int64)
    Arr = blocks.Arr.toarray()
    Ar0 = blocks.Ar0.tocsr()
    Ar0.sum_duplicates()
    Ar0.eliminate_zeros()
    gram = build_gram_map(Ar0, blocks.A00) if rest else None
    return Crossprod(b0.nlevels, b0.p, blocks.A00, blocks.Ax0, blocks.Axx, list(rest), offsets, Arr, Ar0,
                     blocks.Axr, gram, blocks.n, p, blocks.sum_log_w)


def structure_of(reterms: list[ReTermData]) -> ReStructure:
    """The random-effects structure (θ layout, lme4's term order) from terms with global levels."""
    return build_structure(reterms)


def kept_columns(piece: QRPiece, names: list[str]) -> list[int]:
    """The fixed-effects columns that are not linear combinations of earlier ones, by
    :func:`mixedbridge.design.drop_aliased`'s rule applied to the R of X (which has X's inner
    products, so the same geometry)."""
    return drop_aliased(piece.Ru, names)[1]


def basis_from(piece: QRPiece, keep: list[int], names: list[str], shift: float,
               shift_column: int | None) -> FixedBasis:
    """The fixed-effects basis (:class:`~mixedbridge.lmm.basis.FixedBasis`) of the kept columns:
    R from the tall-skinny QR of √w X, γ = R⁻¹Qᵀ√w(y − o − c) plus the centring ``shift`` on the
    constant column."""
    k = len(keep)
    R2 = r_factor(piece.Rw[:, keep + [piece.Rw.shape[1] - 1]])
    R, c = R2[:k, :k], R2[:k, k]
    signs = np.where(R.diagonal() < 0, -1.0, 1.0)
    R, c = R * signs[:, None], c * signs
    _check_rank(R, [names[j] for j in keep])
    gamma = solve_triangular(R, c, lower=False) if k else np.zeros(0)
    if shift_column is not None:
        gamma[shift_column] += shift
    ldR2 = float(2.0 * np.sum(np.log(R.diagonal())))
    return FixedBasis(np.zeros((0, k)), np.zeros(0), R, gamma, ldR2)


def gamma0(basis: FixedBasis, shift: float, shift_column: int | None) -> np.ndarray:
    """γ₀ = γ without the centring shift: ỹ = (y − o − c) − Xγ₀."""
    g = basis.gamma.copy()
    if shift_column is not None:
        g[shift_column] -= shift
    return g


def _check_rank(R: np.ndarray, names: list[str]) -> None:
    norms = np.linalg.norm(R, axis=0)
    bad = np.flatnonzero(~(np.abs(R.diagonal()) > RANK_EPS * norms))
    if bad.size:
        raise ModelError(f"the fixed-effects column {names[int(bad[0])]!r} is a linear combination of the "
                         "earlier ones (or zero); drop it or the column it duplicates")


def fit_blocks(model: BlockModel, dropped: list[str], exact: bool = True) -> Fit:
    """Fit the block model (lme4's route, as :func:`mixedbridge.lmm.fit_lmm`) and fill a
    :class:`~mixedbridge.fit.Fit` without per-row quantities (fitted values and residuals come
    from one more map over the partitions when asked); ``exact``: Newton steps to the exact
    optimum after lme4's route (the Dask default; its passes cost far more than the steps)."""
    model.fit(exact=exact)
    fit = model_to_fit(model, dropped)
    return replace(fit, fitted=None, residuals=None, pearson_residuals=None,
                   notes=list(fit.notes) + [f"Fitted over Dask: {model.n:,} rows reduced to their cross-products; "
                                            "fitted values and residuals were not gathered."])
