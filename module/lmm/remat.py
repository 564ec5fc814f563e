"""Random-effects terms and the layout of θ, following lme4's ``mkReTrms``; modelled on
MixedModels.jl's ``ReMat`` (``src/remat.jl``): the term is the one owner of its part of θ.

A term i with pᵢ columns and ℓᵢ levels contributes the block Λᵢ = I_ℓᵢ ⊗ Tᵢ of Λ; θ lists the
lower triangle of each Tᵢ column-wise, terms in lme4's order (decreasing number of levels, see
:func:`lme4_order`). Random effects are numbered level-major (level, then column) as in lme4.

A :class:`ReTerm` knows where each of its θ elements sits in Tᵢ and in θ, their lower bounds
and lme4's start, θ → Tᵢ, Σᵢ = σ²TᵢTᵢᵀ, standard deviations and correlations (both ways), lme4's
names of its variance parameters, and its columns of Z and block of Λ.

For the computation, terms sharing a grouping factor are amalgamated into one term
(MixedModels.jl's ``amalgamate``): its template is block-diagonal over the merged terms, so that
the factor's Z'Z block stays uniform block-diagonal.

A zero standard deviation leaves its correlations undefined, and lme4 reports them in two ways,
both from the same Σᵢ: ``VarCorr`` (and ``as.data.frame(VarCorr(fm))``) divides by the sds and
shows NaN (:meth:`ReTerm.sd_corr`); the sd/correlation vector of ``confint`` (profile and
bootstrap, lme4's ``Cv_to_Sv``/``cov2sdcor``) turns that NaN into 0 (:meth:`ReTerm.sdcor`).
Checked with lme4 1.1-31 on a fit with θ₁ = 0 in ``(Days | Subject)``: VarCorr's correlation is
NaN, ``Cv_to_Sv`` gives 0 with the warning "NA values in sdcor matrix converted to 0".
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

from ..design import ReTermData


def lme4_order(nlevels: list[int]) -> list[int]:
    """Order of the random-effects terms as lme4 sorts them.

    lme4's ``mkReTrms`` reorders only if some term has more levels than the one before it, and
    then uses ``rev(order(nl))``: decreasing number of levels, with ties in *reversed* input
    order.
    """
    nl = list(nlevels)
    if len(nl) < 2 or not any(b > a for a, b in zip(nl, nl[1:])):
        return list(range(len(nl)))
    return sorted(range(len(nl)), key=nl.__getitem__)[::-1]  # a stable sort, as order()'s


def lower_triangle(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each θ element of a p×p template: the lower triangle, column-wise
    (new arrays; the layout is worked out once per p)."""
    rows, cols = _lower_triangle(p)
    return rows.copy(), cols.copy()


@lru_cache(maxsize=32)
def _lower_triangle(p: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.tril_indices(p)
    order = np.lexsort((rows, cols))
    return rows[order], cols[order]


def param_name(names: list[str], row: int, col: int) -> str:
    """lme4's (broom.mixed's) name of the variance parameter at (row, col) of Σᵢ for a term with
    columns ``names``: ``sd__Days`` on the diagonal, ``cor__(Intercept).Days`` off it (the
    earlier column first)."""
    if row == col:
        return f"sd__{names[row]}"
    a, b = sorted((row, col))
    return f"cor__{names[a]}.{names[b]}"


def sdcor_layout(names: list[str]) -> list[tuple[int, int, str]]:
    """For each θ element of a term with columns ``names``, in θ order: its row and column in
    Tᵢ (and Σᵢ) and lme4's name of the variance parameter there (:func:`param_name`)."""
    rows, cols = lower_triangle(len(names))
    return [(int(r), int(c), param_name(names, int(r), int(c))) for r, c in zip(rows, cols)]


def sig_names(ntheta: int) -> list[str]:
    """lme4's ``oldNames`` of the variance parameters of ``confint``: .sig01, ..., .sigma."""
    return [f".sig{i + 1:02d}" for i in range(ntheta)] + [".sigma"]


def term_label(term: ReTermData) -> str:
    """lme4-like label of a term, e.g. ``1 + Days | Subject`` or ``0 + Days | Subject``."""
    cols = ["1" if n == "(Intercept)" else n for n in term.names]
    if "1" not in cols:
        cols = ["0"] + cols
    return f"{' + '.join(cols)} | {term.group}"


@dataclass
class ReTerm:
    """One random-effects term (or, amalgamated, all terms of one grouping factor).

    Fields: ``group`` grouping factor; ``levels`` its level labels; ``codes`` n-vector of 0-based
    levels; ``X`` n×p raw model matrix (Zᵢ is its Khatri-Rao product with the indicators of
    ``codes``); ``names`` R's column names of X; ``rows``/``cols`` where each of the term's θ
    elements goes in the p×p template T; ``theta_index`` where it is in θ.
    """

    group: str
    levels: list[str]
    codes: np.ndarray
    X: np.ndarray
    names: list[str]
    rows: np.ndarray
    cols: np.ndarray
    theta_index: np.ndarray

    @classmethod
    def from_data(cls, data: ReTermData, start: int) -> ReTerm:
        """The term of ``data`` whose θ elements start at position ``start`` of θ."""
        p = data.X.shape[1]
        rows, cols = lower_triangle(p)
        return cls(data.group, list(data.levels), np.asarray(data.codes, dtype=np.int64),
                   np.ascontiguousarray(data.X, dtype=float), list(data.names), rows, cols,
                   start + np.arange(rows.size))

    @classmethod
    def amalgamate(cls, terms: list[ReTerm]) -> ReTerm:
        """The terms of one grouping factor as one term with a block-diagonal template."""
        if len(terms) == 1:
            return terms[0]
        offsets = np.cumsum([0] + [t.p for t in terms[:-1]])
        first = terms[0]
        return cls(first.group, first.levels, first.codes,
                   np.ascontiguousarray(np.column_stack([t.X for t in terms]), dtype=float),
                   [n for t in terms for n in t.names],
                   np.concatenate([t.rows + o for t, o in zip(terms, offsets)]),
                   np.concatenate([t.cols + o for t, o in zip(terms, offsets)]),
                   np.concatenate([t.theta_index for t in terms]))

    # -- sizes and θ layout ------------------------------------------------------------------
    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    @property
    def q(self) -> int:
        """Number of random effects ℓ·p."""
        return self.nlevels * self.p

    @property
    def ntheta(self) -> int:
        return self.theta_index.size

    @property
    def is_sd(self) -> np.ndarray:
        """Which θ elements are on the template's diagonal (standard deviations)."""
        return self.rows == self.cols

    @property
    def lower(self) -> np.ndarray:
        """Lower bounds of the term's θ elements: 0 on the diagonal, −∞ off it."""
        return np.where(self.is_sd, 0.0, -np.inf)

    @property
    def theta0(self) -> np.ndarray:
        """lme4's start: 1 on the diagonal, 0 off it."""
        return self.is_sd.astype(float)

    def param_names(self) -> list[str]:
        """lme4's names of the term's variance parameters, in θ order."""
        return [param_name(self.names, int(r), int(c)) for r, c in zip(self.rows, self.cols)]

    # -- θ → covariance ----------------------------------------------------------------------
    def template(self, theta: np.ndarray) -> np.ndarray:
        """T (p×p lower triangular, or block-diagonal when amalgamated) filled from θ."""
        T = np.zeros((self.p, self.p))
        T[self.rows, self.cols] = theta[self.theta_index]
        return T

    def covariance(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """Σᵢ = σ²TTᵀ, the covariance of one level's random effects."""
        T = self.template(theta)
        return sigma**2 * (T @ T.T)

    def sd_corr(self, theta: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        """Standard deviations and correlation matrix of Σᵢ, as lme4's ``VarCorr``: a
        correlation involving a zero sd is NaN, the diagonal is 1 (for one column, its one
        element: the same numbers without the matrix operations)."""
        if self.p == 1:
            t = theta[self.theta_index[0]]
            var = sigma**2 * (t * t)
            return np.sqrt(np.maximum(np.array([var]), 0.0)), np.ones((1, 1))
        cov = self.covariance(theta, sigma)
        sd = np.sqrt(np.maximum(np.diag(cov), 0.0))  # np.clip(·, 0, None)'s own call
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = cov / (sd[:, None] * sd)  # np.outer's products
        np.fill_diagonal(corr, 1.0)
        return sd, corr

    def sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """The term's variance parameters on the sd/correlation scale, in θ order (lme4's
        ``Cv_to_Sv``): sd on the diagonal, correlation off it, 0 where a sd is 0."""
        sd, corr = self.sd_corr(theta, sigma)
        vals = np.where(self.is_sd, sd[self.rows], corr[self.rows, self.cols])
        return np.where(np.isnan(vals), 0.0, vals)

    def sdcor_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of :meth:`sdcor`: sds in [0, ∞), correlations in [−1, 1]."""
        return np.where(self.is_sd, 0.0, -1.0), np.where(self.is_sd, np.inf, 1.0)

    def theta_from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray:
        """The term's θ elements from its sds and correlations (θ order) and σ (lme4's
        ``Sv_to_Cv``): the Cholesky factor of Σᵢ/σ², with zero columns where Σᵢ is singular."""
        sd = np.zeros(self.p)
        R = np.eye(self.p)
        for r, c, v in zip(self.rows, self.cols, values):
            if r == c:
                sd[r] = v
            else:
                R[r, c] = R[c, r] = v
        T = psd_cholesky(np.outer(sd, sd) * R / sigma**2)
        return T[self.rows, self.cols]

    # -- Z and Λ -----------------------------------------------------------------------------
    def z_block(self) -> sp.csr_matrix:
        """Zᵢ (n × ℓp, sparse, level-major columns)."""
        n = self.codes.size
        rows = np.repeat(np.arange(n), self.p)
        cols = (self.codes[:, None] * self.p + np.arange(self.p)[None, :]).ravel()
        return sp.csr_matrix((self.X.ravel(), (rows, cols)), shape=(n, self.q))

    def lambda_block(self, theta: np.ndarray) -> sp.csr_matrix:
        """Λᵢ = I_ℓ ⊗ T (sparse)."""
        return sp.kron(sp.identity(self.nlevels), sp.csr_matrix(self.template(theta)))

    def zlambda(self, u: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """ZᵢΛᵢu for the term's q-vector u (level-major)."""
        b = u.reshape(self.nlevels, self.p) @ self.template(theta).T
        return self.z_times(b)

    def z_times(self, b: np.ndarray) -> np.ndarray:
        """Zᵢb for ℓ×p effects b: Σₐ Xᵢ[:, a]·b[codes, a]; for p ≤ 2 one column at a time (no n×p
        gather; the same sums, in the same order, as the einsum used for wider terms)."""
        if self.p > 2:
            return np.einsum("na,na->n", self.X, b[self.codes])
        out = np.take(b[:, 0], self.codes)
        out *= self.X[:, 0]
        for a in range(1, self.p):
            t = np.take(b[:, a], self.codes)
            t *= self.X[:, a]
            out += t
        return out


def psd_cholesky(C: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a positive semi-definite matrix (zero columns where singular)."""
    p = C.shape[0]
    L = np.zeros_like(C)
    for j in range(p):
        d = C[j, j] - L[j, :j] @ L[j, :j]
        if d <= 1e-14 * max(C[j, j], 1e-300):
            continue
        L[j, j] = np.sqrt(d)
        L[j + 1:, j] = (C[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]) / L[j, j]
    return L


@dataclass
class ReStructure:
    """All random-effects terms of a model.

    Fields: ``terms`` the :class:`ReTerm` list in lme4's order (the order of θ, VarCorr and
    ranef); ``blocks`` the terms amalgamated per grouping factor, in computational order
    (decreasing number of random effects, so that the first block, which stays
    (block-)diagonal, is the largest); ``placement`` for each term its block and its first
    column in that block's template.
    """

    terms: list[ReTerm]
    blocks: list[ReTerm]
    placement: list[tuple[int, int]]

    @property
    def ntheta(self) -> int:
        """Length of θ."""
        return sum(t.ntheta for t in self.terms)

    @property
    def lower(self) -> np.ndarray:
        """Lower bounds of θ (0 on template diagonals, −∞ otherwise)."""
        return np.concatenate([t.lower for t in self.terms])

    @property
    def theta0(self) -> np.ndarray:
        """lme4's start for θ (1 on template diagonals, 0 off)."""
        return np.concatenate([t.theta0 for t in self.terms])

    @property
    def is_sd(self) -> np.ndarray:
        """Which θ elements are on a template's diagonal (standard deviations)."""
        return np.concatenate([t.is_sd for t in self.terms])

    @property
    def q(self) -> int:
        """Number of random effects."""
        return sum(b.q for b in self.blocks)

    @property
    def Gp(self) -> np.ndarray:
        """lme4's ``Gp``: the first column of each term in Z, and q."""
        return np.cumsum([0] + [t.q for t in self.terms]).astype(np.int64)

    def factor_names(self) -> list[str]:
        """Grouping factors in lme4's ``flist`` order (first appearance in term order)."""
        seen: list[str] = []
        for t in self.terms:
            if t.group not in seen:
                seen.append(t.group)
        return seen

    # -- the sd/correlation scale (lme4's confint parameters) --------------------------------
    def sig_names(self) -> list[str]:
        """.sig01, ..., .sigma: the names of :meth:`sdcor`."""
        return sig_names(self.ntheta)

    def sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """(.sig01, ..., .sigma): every term's :meth:`ReTerm.sdcor`, then σ."""
        return np.concatenate([t.sdcor(theta, sigma) for t in self.terms] + [[sigma]])

    def sdcor_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of :meth:`sdcor` (σ in [0, ∞))."""
        bounds = [t.sdcor_bounds() for t in self.terms]
        return (np.concatenate([lo for lo, _ in bounds] + [[0.0]]),
                np.concatenate([hi for _, hi in bounds] + [[np.inf]]))

    def theta_from_sdcor(self, s: np.ndarray) -> np.ndarray:
        """θ from (.sig01, ..., .sigma), the inverse of :meth:`sdcor`."""
        sigma = s[-1]
        return np.concatenate([t.theta_from_sdcor(s[t.theta_index], sigma) for t in self.terms])

    # -- Z and Λ in lme4's term order -----------------------------------------------------------
    def z_matrix(self) -> sp.csr_matrix:
        """Z (n×q, sparse), columns in lme4's order (term, level, column)."""
        return sp.hstack([t.z_block() for t in self.terms], format="csr")

    def lambda_matrix(self, theta: np.ndarray) -> sp.csr_matrix:
        """Λ_θ (q×q, sparse), in the order of :meth:`z_matrix`."""
        return sp.block_diag([t.lambda_block(theta) for t in self.terms], format="csr")

    def z_dense(self) -> np.ndarray:
        """Z as a dense n×q array (the order of :meth:`z_matrix`), for small n·q."""
        n = self.terms[0].codes.size
        out = np.zeros((n, self.q))
        rows = np.arange(n)[:, None]
        for t, start in zip(self.terms, self.Gp):
            out[rows, start + t.codes[:, None] * t.p + np.arange(t.p)[None, :]] = t.X
        return out

    def lambda_dense(self, theta: np.ndarray) -> np.ndarray:
        """Λ_θ as a dense q×q array (the order of :meth:`z_matrix`), for the small q of the
        dense inference algebra: no sparse matrices built per call."""
        out = np.zeros((self.q, self.q))
        for t, start in zip(self.terms, self.Gp):
            at = int(start) + np.arange(t.nlevels)[:, None] * t.p + np.arange(t.p)[None, :]
            out[at[:, :, None], at[:, None, :]] = t.template(theta)
        return out

    def zlambda(self, u: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """ZΛ_θu for a q-vector u in the order of :meth:`z_matrix`."""
        out = np.zeros(self.terms[0].codes.size)
        for t, start in zip(self.terms, self.Gp):
            out += t.zlambda(u[start: start + t.q], theta)
        return out


def build_structure(reterms: list[ReTermData]) -> ReStructure:
    """Order the terms as lme4 does, lay out θ, and amalgamate terms per grouping factor."""
    terms: list[ReTerm] = []
    start = 0
    for i in lme4_order([len(t.levels) for t in reterms]):
        terms.append(ReTerm.from_data(reterms[i], start))
        start += terms[-1].ntheta
    by_group: dict[str, list[int]] = {}
    for j, t in enumerate(terms):
        by_group.setdefault(t.group, []).append(j)
    groups = list(by_group.values())
    blocks = [ReTerm.amalgamate([terms[j] for j in idx]) for idx in groups]
    order = sorted(range(len(blocks)), key=lambda b: -blocks[b].q)
    placement: list[tuple[int, int]] = [(0, 0)] * len(terms)
    for b, g in enumerate(order):
        offset = 0
        for j in groups[g]:
            placement[j] = (b, offset)
            offset += terms[j].p
    return ReStructure(terms, [blocks[g] for g in order], placement)
