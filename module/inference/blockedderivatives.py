"""Exact derivatives of lmerTest's deviance in φ = (θ, σ) and of Var(β̂), for models of any
size, from the estimator's blocked factor (:mod:`~mixedbridge.lmm.blocks`) instead of q×q
dense algebra or numerical differences.

With V = I + ZΛΛᵀZᵀ (relative scale), the deviance of :func:`.satterthwaite.devfun_vp` is

    d(θ, σ) = (n − p_R)·log σ² + log|V| + [log|XᵀV⁻¹X|] + r²(θ)/σ²      (p_R = p under REML)

and with V_i = Z D_i Zᵀ, D_i = Λ_iΛᵀ + ΛΛ_iᵀ, D_ij = Λ_iΛ_jᵀ + Λ_jΛ_iᵀ (Λ_i = ∂Λ/∂θ_i), M the
matrix Zᵀ P_t Z (P_t the REML projection P, or V⁻¹ under ML) and v = ZᵀPy:

    ∂²d/∂θ_i∂θ_j = tr(M D_ij) − tr(M D_i M D_j) + (2 (D_iv)ᵀM_P(D_jv) − vᵀD_ijv)/σ²,
    ∂²d/∂θ_i∂σ = 2vᵀD_iv/σ³,   ∂²d/∂σ² = −2(n − p_R)/σ² + 6r²/σ⁴,

M_P = ZᵀPZ. No Λ⁻¹ appears, so a singular fit is served too.

M comes from the blocks. Ω = [[ΛᵀZᵀZΛ + I, ΛᵀZᵀX], [XᵀZΛ, XᵀX]] is factored in two parts: block
0 (ℓ₀ levels, p₀×p₀ blocks, W₀ = T₀M₀⁻¹T₀ᵀ per level) and the rest, m = [rest effects, X]
(L_mm, the estimator's [[L_rr, 0], [L_xr, R̃_Xᵀ]]). Then P = I − [ZΛ X]Ω⁻¹[ZΛ X]ᵀ gives

    M₀₀ = B₀ − Ũ₀Ũ₀ᵀ,  M₀r = C − Ũ₀Ũ_rᵀ,  M_rr = R_rr − Ũ_rŨ_rᵀ,

B₀ = A₀₀ − A₀₀W₀A₀₀ (per level), H₀ = I − A₀₀W₀, C = H₀A₀r (sparse), R_rr = A_rr − A_r0W₀A₀r,
U = −[[H₀[A₀rΛ_r, A₀x]], [[R_rrΛ_r, A_rx − A_r0W₀A₀x]]] and Ũ = U L_mmᵀ⁻¹ (under ML the X columns
drop out). Every trace is then a per-level sum, a sparse product or an m×m product; the cost is
O(nnz(A_r0)·m + q·m²), not O(q³).

The Jacobian: ∂C/∂θ_i = σ²C_r NᵀD_iN C_r with N = ZᵀV⁻¹X, C_r = (XᵀV⁻¹X)⁻¹; ∂C/∂σ = 2σC_r.

Small models (:func:`dense_derivatives`) keep the dense products as they were, so that their
numbers stay the same bit for bit: lmerTest's df amplify the Hessian's rounding (Penicillin's df
moved by 3e-12 relative when only Ω⁻¹'s memory order changed). Measured and not taken (issue #16):
tr(M D_i M D_j) from gathers of K = ΛᵀM, Q = ΛᵀMΛ and M at the unit positions
(2 tr(K E_i K E_j) + 2 tr(E_iQE_jᵀM)) instead of M D_i and the trace product: no faster on
sleepstudy (a gather pair per (i, j) costs what the three q×q products save) and 1.3e-12 relative
off in the df.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack, solve_triangular

from .denselayout import DenseLayout, dense_layout, strictly_lower

#: Largest m (rest random effects + fixed effects) for which :func:`blocked_derivatives` is
#: used: its cost grows as q·m² (a larger fill-in block is left to numerical differences).
BLOCKED_MAX_M = 2500


@dataclass(frozen=True)
class Direction:
    """∂Λ/∂θ_i seen from one factor block: ``block`` its index, ``E`` the unit matrix of θ_i in the
    block's p_b×p_b template, ``d`` = E Tᵀ + T Eᵀ (D_i per level)."""

    block: int
    E: np.ndarray
    d: np.ndarray


def blocked_applies(model) -> bool:
    """Whether :func:`blocked_derivatives` serves this native model (the fill-in block small
    enough)."""
    A = model.A
    return A.q_rest + A.p <= BLOCKED_MAX_M


def directions(structure, theta: np.ndarray) -> list[Direction]:
    """The :class:`Direction` of every θ element, in θ order."""
    out: dict[int, Direction] = {}
    for t, (b, c0) in zip(structure.terms, structure.placement):
        T = structure.blocks[b].template(theta)
        pb = T.shape[0]
        for r, c, i in zip(t.rows, t.cols, t.theta_index):
            E = np.zeros((pb, pb))
            E[c0 + r, c0 + c] = 1.0
            out[int(i)] = Direction(b, E, E @ T.T + T @ E.T)
    return [out[i] for i in range(len(out))]


class _Blocks:
    """The pieces of M at the model's θ shared by every derivative (see the module docstring):
    ``A`` the cross-products, ``L`` the factor, ``W`` W₀ as a block-sparse matrix, ``C``,
    ``B0``, ``Rrr`` and ``lam_r`` (Λ_r, sparse)."""

    def __init__(self, model) -> None:
        A, L = model.A, model.L
        self.A, self.L, self.p = A, L, A.p
        self.ell0, self.p0, self.q0, self.qr = A.ell0, A.p0, A.ell0 * A.p0, A.q_rest
        self.W = _block_diag(L.W)
        self.H0 = np.eye(A.p0)[None] - A.A00 @ L.W
        self.B0 = A.A00 - A.A00 @ L.W @ A.A00
        self.A0x = A.Ax0[: A.p].reshape(A.p, self.q0).T
        self.A0r = A.Ar0.T.tocsr()
        self.lam_r = sp.csr_matrix((0, 0))
        if A.rest:
            self.lam_r = sp.block_diag([sp.kron(sp.identity(b.nlevels), sp.csr_matrix(T))
                                        for T, b in zip(L.rest_T, A.rest)], format="csr")
        self.C = (_block_diag(self.H0) @ self.A0r).tocsr()
        self.Arx = A.Axr[: A.p].T if A.rest else np.zeros((0, A.p))

    @cached_property
    def Rrr(self) -> np.ndarray:
        """R_rr = A_rr − A_r0W₀A₀r (dense q_r×q_r; the low-rank form needs it whole)."""
        A = self.A
        if not A.rest:
            return np.zeros((0, 0))
        arr = A.Arr.toarray() if sp.issparse(A.Arr) else np.asarray(A.Arr)
        return arr - (A.Ar0 @ self.W @ self.A0r).toarray()

    def rrr_times(self, X: np.ndarray) -> np.ndarray:
        """R_rr X, from the sparse pieces unless R_rr is formed already."""
        if "Rrr" in self.__dict__ or not self.qr:
            return self.Rrr @ X
        return self.A.Arr @ X - self.A.Ar0 @ (self.W @ (self.A0r @ X))

    def u_tilde(self, with_x: bool) -> tuple[np.ndarray, np.ndarray]:
        """(Ũ₀, Ũ_r): U L_mmᵀ⁻¹ with the X columns (REML's P) or without (V⁻¹)."""
        cols0: list[np.ndarray] = []
        colsr: list[np.ndarray] = []
        if self.qr:
            cols0.append((self.C @ self.lam_r).toarray())
            colsr.append((self.lam_r.T @ self.Rrr.T).T)
        if with_x:
            cols0.append(_per_level(self.H0, self.A0x, self.ell0, self.p0))
            colsr.append(self.Arx - (self.A.Ar0 @ (self.W @ self.A0x)))
        m = sum(c.shape[1] for c in cols0)
        if m == 0:
            return np.zeros((self.q0, 0)), np.zeros((self.qr, 0))
        U = -np.vstack([np.hstack(cols0), np.hstack(colsr)])
        Lmm = self._l_mm(with_x)
        Ut, _ = lapack.dtrtrs(Lmm, U.T, lower=1)
        return Ut[:, : self.q0].T.copy(), Ut[:, self.q0:].T.copy()

    def _l_mm(self, with_x: bool) -> np.ndarray:
        """The lower factor of the m block of Ω (rest effects, then X when ``with_x``)."""
        L, p, qr = self.L, self.p, self.qr
        m = qr + (p if with_x else 0)
        out = np.zeros((m, m))
        if qr:
            out[:qr, :qr] = np.tril(L.rest_factor()[0])
            if with_x:
                out[qr:, :qr] = L.Lxr[:p]
        if with_x:
            out[qr:, qr:] = L.Lxx[:p, :p]
        return out

    def m_p(self, x: np.ndarray, U0: np.ndarray, Ur: np.ndarray) -> np.ndarray:
        """M x for a q-vector x (block order), M given by (Ũ₀, Ũ_r)."""
        x0, xr = x[: self.q0], x[self.q0:]
        out0 = _per_level(self.B0, x0[:, None], self.ell0, self.p0)[:, 0] + self.C @ xr
        outr = self.C.T @ x0 + self.Rrr @ xr
        t = U0.T @ x0 + Ur.T @ xr
        return np.concatenate([out0 - U0 @ t, outr - Ur @ t])


def _block_diag(blocks: np.ndarray) -> sp.bsr_matrix:
    """I ⊗ blocks: (ℓ, p, p) per-level blocks as a block-sparse (ℓp)² matrix."""
    ell, p, _ = blocks.shape
    return sp.bsr_matrix((np.ascontiguousarray(blocks), np.arange(ell), np.arange(ell + 1)),
                         shape=(ell * p, ell * p))


def _per_level(blocks: np.ndarray, X: np.ndarray, ell: int, p: int) -> np.ndarray:
    """(I ⊗ blocks) X for X with ℓp level-major rows."""
    return np.matmul(blocks, X.reshape(ell, p, -1)).reshape(ell * p, -1)


class _Layout:
    """Where each factor block's random effects sit in the block order (block 0 first, then the
    rest at their offsets): ``slices`` per block, ``ells`` levels, ``ps`` columns."""

    def __init__(self, A) -> None:
        q0 = A.ell0 * A.p0
        self.slices = [slice(0, q0)] + [slice(q0 + int(o), q0 + int(o) + b.q)
                                        for b, o in zip(A.rest, A.offsets[:-1])]
        self.ells = [A.ell0] + [b.nlevels for b in A.rest]
        self.ps = [A.p0] + [b.p for b in A.rest]

    def apply(self, d: np.ndarray, b: int, X: np.ndarray) -> np.ndarray:
        """(I ⊗ d) applied to the rows of X (rows of block b only)."""
        ell, p = self.ells[b], self.ps[b]
        if p == 1:
            return d[0, 0] * X
        k = X.size // (ell * p)
        Xp = X.reshape(ell, p, k).transpose(1, 0, 2).reshape(p, ell * k)
        return (d @ Xp).reshape(p, ell, k).transpose(1, 0, 2).reshape(X.shape)

    def diag_sum(self, M: np.ndarray, b: int, offset: int) -> np.ndarray:
        """Σ over block b's levels of M's p_b×p_b diagonal blocks (M's rows start at ``offset``)."""
        sl = self.slices[b]
        idx = sl.start - offset + np.arange(self.ells[b])[:, None] * self.ps[b] + np.arange(self.ps[b])[None, :]
        return M[idx[:, :, None], idx[:, None, :]].sum(axis=0)


def _trace_terms(blk: _Blocks, lay: _Layout, dirs: list[Direction], U0: np.ndarray,
                 Ur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tr(M D_ij) and tr(M D_i M D_j) for every pair of θ elements, M given by (Ũ₀, Ũ_r)."""
    k = len(dirs)
    q0, ell0, p0 = blk.q0, blk.ell0, blk.p0
    U0l = U0.reshape(ell0, p0, -1)
    Mrr = blk.Rrr - Ur @ Ur.T
    U0p = U0l.transpose(1, 0, 2).reshape(p0, -1)
    mdiag = [blk.B0.sum(axis=0) - U0p @ U0p.T]
    mdiag += [lay.diag_sum(Mrr, b, q0) for b in range(1, len(lay.slices))]
    S0 = np.matmul(U0l, U0l.transpose(0, 2, 1))
    first = {i: (_times(blk.B0, d.d), _times(S0, d.d)) for i, d in enumerate(dirs) if d.block == 0}
    grams: dict[int, np.ndarray] = {}
    G, DU, Y = [], [], []
    for di in dirs:
        b = di.block
        sl = lay.slices[b]
        rows = U0 if b == 0 else Ur[sl.start - q0: sl.stop - q0]
        if b not in grams:
            grams[b] = _column_grams(rows, lay.ells[b], lay.ps[b])
        G.append(np.einsum("ab,abmn->mn", di.d, grams[b]))
        DU.append(lay.apply(di.d, b, rows))
        Y.append(None if b == 0 else
                 lay.apply(di.d, b, np.ascontiguousarray(Mrr[:, sl.start - q0: sl.stop - q0].T)).T)
    trD = np.zeros((k, k))
    trDD = np.zeros((k, k))
    for i, a in enumerate(dirs):
        for j in range(i, k):
            dj = dirs[j]
            if a.block == dj.block:
                Dij = a.E @ dj.E.T + dj.E @ a.E.T
                trD[i, j] = trD[j, i] = float(np.sum(mdiag[a.block] * Dij))
            trDD[i, j] = trDD[j, i] = _pair_trace(blk, lay, a, dj, (i, j), G, DU, Y, first)
    return trD, trDD


def _times(blocks: np.ndarray, d: np.ndarray) -> np.ndarray:
    """blocks_g·d for every level g of (ℓ, p, p) ``blocks``: one product."""
    p = d.shape[0]
    return (blocks.reshape(-1, p) @ d).reshape(blocks.shape)


def _column_grams(U: np.ndarray, ell: int, p: int) -> np.ndarray:
    """Σ over levels of U_{g,a}ᵀU_{g,b} for a block's column pairs (a, b): (p, p, m, m), from which
    ŨᵀD_iŨ = Σ_ab d_i[a, b]·(this)[a, b] for every θ element of the block (one symmetric
    product per pair instead of one general product per θ element)."""
    m = U.shape[1]
    out = np.empty((p, p, m, m))
    if p == 1:
        out[0, 0] = U.T @ U
        return out
    Ul = U.reshape(ell, p, m)
    for a in range(p):
        Ua = np.ascontiguousarray(Ul[:, a])
        out[a, a] = Ua.T @ Ua
        for b in range(a + 1, p):
            out[a, b] = Ua.T @ Ul[:, b]
            out[b, a] = out[a, b].T
    return out


def _pair_trace(blk: _Blocks, lay: _Layout, a: Direction, b: Direction, ij: tuple[int, int],
                G: list, DU: list, Y: list, first: dict) -> float:
    """tr(M D_i M D_j) for one pair (see :func:`_trace_terms`)."""
    i, j = ij
    low_rank = float(np.sum(G[i] * G[j]))
    if a.block == 0 and b.block == 0:
        (BDi, SDi), (BDj, _) = first[i], first[j]
        base = float(np.sum(BDi * BDj.transpose(0, 2, 1)))
        return base - 2.0 * float(np.sum(BDj * SDi.transpose(0, 2, 1))) + low_rank
    if a.block != 0 and b.block != 0:
        q0 = blk.q0
        sa, sb = lay.slices[a.block], lay.slices[b.block]
        ra, rb = slice(sa.start - q0, sa.stop - q0), slice(sb.start - q0, sb.stop - q0)
        return float(np.sum(Y[i][rb] * Y[j][ra].T))
    if a.block != 0:
        return _pair_trace(blk, lay, b, a, (j, i), G, DU, Y, first)
    sb = lay.slices[b.block]
    rb = slice(sb.start - blk.q0, sb.stop - blk.q0)
    Dr = _rest_direction(lay, b, blk.qr, blk.q0)
    D0C = _block_diag(np.broadcast_to(a.d, (blk.ell0, blk.p0, blk.p0))).tocsr() @ blk.C
    sparse = float(D0C.multiply(blk.C @ Dr).sum())
    CDU = blk.C[:, rb] @ DU[j]
    return sparse - 2.0 * float(np.sum(DU[i] * CDU)) + low_rank


def _rest_direction(lay: _Layout, d: Direction, qr: int, q0: int) -> sp.csr_matrix:
    """D_i of a rest block's θ element as a sparse q_r×q_r matrix."""
    sl = lay.slices[d.block]
    blocks = [sp.csr_matrix((sl.start - q0, sl.start - q0)),
              sp.kron(sp.identity(lay.ells[d.block]), sp.csr_matrix(d.d)),
              sp.csr_matrix((qr - (sl.stop - q0), qr - (sl.stop - q0)))]
    return sp.block_diag(blocks, format="csr")


def _pwrss_gradient_vector(model, blk: _Blocks) -> np.ndarray:
    """v = ZᵀPy (q-vector, block order) = Zᵀỹ − ZᵀX̃β̃ − ZᵀZb̃ from the cross-products."""
    A = blk.A
    beta = model.beta_tilde
    b = model.b_blocks()
    b0 = b[0].ravel()
    br = np.concatenate([x.ravel() for x in b[1:]]) if len(b) > 1 else np.zeros(0)
    A0y = A.Ax0[A.p].ravel()
    v0 = A0y - blk.A0x @ beta - _per_level(A.A00, b0[:, None], blk.ell0, blk.p0)[:, 0]
    if not blk.qr:
        return v0
    arr = A.Arr.toarray() if sp.issparse(A.Arr) else np.asarray(A.Arr)
    v0 = v0 - blk.A0r @ br
    vr = A.Axr[A.p] - blk.Arx @ beta - A.Ar0 @ b0 - arr @ br
    return np.concatenate([v0, vr])


def _z_vinv_x(blk: _Blocks) -> np.ndarray:
    """N = ZᵀV⁻¹X̃ (q×p, block order): N₀ = H₀A₀x − CΛ_rS_r⁻¹Λ_rᵀY, N_r = Y − R_rrΛ_rS_r⁻¹Λ_rᵀY
    with Y = A_rx − A_r0W₀A₀x."""
    N0 = _per_level(blk.H0, blk.A0x, blk.ell0, blk.p0)
    if not blk.qr:
        return N0
    Y = blk.Arx - blk.A.Ar0 @ (blk.W @ blk.A0x)
    Lrr = blk.L.rest_factor()[0]  # only its lower triangle is read
    z = solve_triangular(Lrr, blk.lam_r.T @ Y, lower=True, check_finite=False)
    z = blk.lam_r @ solve_triangular(Lrr, z, lower=True, trans="T", check_finite=False)
    return np.vstack([N0 - blk.C @ z, Y - blk.rrr_times(z)])


def blocked_derivatives(model, inverse: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The Hessian of :func:`.satterthwaite.devfun_vp` in φ = (θ, σ) and the Jacobian of
    :func:`.satterthwaite.covbeta` (p²×(k+1), column-major), at the model's θ and σ̂: from
    Ω⁻¹ (:mod:`.blockedinverse`) when every template is well invertible, else from M's low-rank
    form (``inverse`` True or False chooses; it must then hold for the first)."""
    from .blockedinverse import inverse_pieces, invertible

    theta = np.asarray(model.theta, dtype=float)
    blk = _Blocks(model)
    lay = _Layout(model.A)
    dirs = directions(model.structure, theta)
    v = _pwrss_gradient_vector(model, blk)
    if invertible(model.structure, theta) if inverse is None else inverse:
        pieces = inverse_pieces(model, blk, lay, dirs, v)
    else:
        pieces = _low_rank_pieces(model, blk, lay, dirs, v)
    H = _hessian(model, *pieces)
    N = _z_vinv_x(blk)
    NDN = [N[lay.slices[d.block]].T @ lay.apply(d.d, d.block, N[lay.slices[d.block]]) for d in dirs]
    return H, _vcov_jacobian(model, _reml_cov(blk.L.Lxx[: model.p, : model.p].T), NDN)


def _low_rank_pieces(model, blk: _Blocks, lay: _Layout, dirs: list[Direction],
                     v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The inputs of :func:`_hessian` from M = base − ŨŨᵀ (any θ, singular fits included)."""
    k = len(dirs)
    U0, Ur = blk.u_tilde(with_x=True)
    U0t, Urt = (U0, Ur) if model.reml else blk.u_tilde(with_x=False)
    trD, trDD = _trace_terms(blk, lay, dirs, U0t, Urt)
    Dv = [_apply_direction(lay, d, v) for d in dirs]
    MDv = [blk.m_p(x, U0, Ur) for x in Dv]
    quad = np.array([[float(Dv[i] @ MDv[j]) for j in range(k)] for i in range(k)])
    vDijv = np.array([[_quad_ij(lay, a, b, v) for b in dirs] for a in dirs])
    return trD - trDD, quad, np.array([float(v @ x) for x in Dv]), vDijv


def _hessian(model, traces: np.ndarray, quad: np.ndarray, vDv: np.ndarray, vDijv: np.ndarray) -> np.ndarray:
    """H from tr(M D_ij) − tr(M D_i M D_j) (``traces``), (D_iv)ᵀM_P(D_jv) (``quad``), vᵀD_iv and
    vᵀD_ijv (module docstring), σ̂ and r² of the model."""
    k = vDv.size
    sigma, r2 = model.sigma, model.pwrss
    nr = model.A.n - (model.p if model.reml else 0)
    H = np.zeros((k + 1, k + 1))
    H[:k, :k] = traces + ((quad + quad.T) - vDijv) / sigma**2
    H[:k, k] = H[k, :k] = 2.0 * vDv / sigma**3
    H[k, k] = -2.0 * nr / sigma**2 + 6.0 * r2 / sigma**4
    return H


def _reml_cov(RX: np.ndarray) -> np.ndarray:
    """C_r = (R̃_XᵀR̃_X)⁻¹ from the upper-triangular R̃_X."""
    Rinv = solve_triangular(RX, np.eye(RX.shape[0]), lower=False)
    return Rinv @ Rinv.T


def dense_derivatives(model) -> tuple[np.ndarray, np.ndarray]:
    """:func:`blocked_derivatives` for a small model, with M, M_P and N formed as dense q×q and
    q×p matrices from the cross-products (:func:`lme4_gram`, Z in lme4's order): a few dense
    products instead of the blocked pieces' sparse bookkeeping. The index arrays (Λ's cells, the
    unit patterns Λ_i) come from :func:`.denselayout.dense_layout`, kept per structure shape."""
    layout = dense_layout(model.structure, model.A.m)
    A = lme4_gram(model, layout)
    q, p = model.structure.q, model.p
    theta = np.asarray(model.theta, dtype=float)
    Lam = np.zeros((q, q))
    Lam[layout.lam_rows, layout.lam_cols] = theta[layout.lam_index]
    ZtZ, ZtX = A[:q, :q], A[:q, q: q + p]
    ZtZL = ZtZ @ Lam
    chol = _cholesky(_omega(Lam, ZtZL, ZtX, A[q: q + p, q: q + p]))
    Oinv = _chol_inverse(chol)
    ZW = np.hstack([ZtZL, ZtX])
    M_P = ZtZ - ZW @ Oinv @ ZW.T
    M = M_P if model.reml else ZtZ - ZtZL @ _chol_inverse(chol[:q, :q]) @ ZtZL.T
    y = A[: q + p, q + p]
    v = y[:q] - ZW @ (Oinv @ np.concatenate([Lam.T @ y[:q], y[q:]]))
    at, rows, cols = layout.unit_at
    k = len(layout.units)
    P = np.zeros((k, q, q))
    P[at, rows] = Lam.T[cols]  # P_i = Λ_iΛᵀ, Λ_i the unit pattern at (rows, cols)
    D = P + P.transpose(0, 2, 1)  # D_i = Λ_iΛᵀ + ΛΛ_iᵀ
    MD = M @ D
    traces = 2.0 * _unit_traces(M, layout) - np.einsum("iab,jba->ij", MD, MD)
    Dv = D @ v
    Uv = np.zeros((k, q))
    Uv[at, cols] = v[rows]  # Λ_iᵀv
    H = _hessian(model, traces, Dv @ M_P @ Dv.T, Dv @ v, 2.0 * (Uv @ Uv.T))
    N = ZtX - ZtZL @ lapack.dpotrs(chol[:q, :q], Lam.T @ ZtX, lower=1)[0]
    return H, _vcov_jacobian(model, Oinv[q:, q:], N.T @ D @ N)


def lme4_gram(model, layout: DenseLayout) -> np.ndarray:
    """[Z X̃ ỹ]ᵀW[Z X̃ ỹ] with Z in lme4's order, as :func:`.crossproducts.dense_gram` forms it:
    the fit's dense A (block order, where the fit has one) with the blocks that dense_gram copies
    whole (block 0's diagonal blocks, A_rr, the [X y] corner: with prior weights their two
    triangles may differ in the last bit, where the fit's A mirrors the lower one) copied in, then
    permuted by ``layout.order``."""
    from .crossproducts import dense_gram

    if model.dense is None:
        return dense_gram(model).A
    cp = model.A
    q = model.dense.q
    out = model.dense.full.copy()
    out[layout.a00_at] = cp.A00
    if cp.rest:
        q0 = cp.ell0 * cp.p0
        out[q0:q, q0:q] = cp.Arr.toarray() if sp.issparse(cp.Arr) else cp.Arr
    out[q:, q:] = cp.Axx
    return out if layout.order is None else out[np.ix_(layout.order, layout.order)]


def _omega(Lam: np.ndarray, ZtZL: np.ndarray, ZtX: np.ndarray, XtX: np.ndarray) -> np.ndarray:
    """Ω = [[ΛᵀZᵀZΛ + I, ΛᵀZᵀX], [XᵀZΛ, XᵀX]] (its lower triangle is what the Cholesky reads)."""
    q, p = ZtX.shape
    out = np.empty((q + p, q + p))
    np.matmul(Lam.T, ZtZL, out=out[:q, :q])
    out.ravel()[: q * (q + p + 1): q + p + 1] += 1.0  # the first q diagonal cells
    np.matmul(ZtX.T, Lam, out=out[q:, :q])
    out[:q, q:] = out[q:, :q].T
    out[q:, q:] = XtX
    return out


def _unit_traces(M: np.ndarray, layout: DenseLayout) -> np.ndarray:
    """tr(MΛ_iΛ_jᵀ) for every pair: Λ_iΛ_jᵀ is non-zero only when i and j sit in the same term's
    column (``layout.pair_rows``), then Σ over the levels of M[rows_j, rows_i] (one gather per
    term)."""
    k = len(layout.units)
    out = np.zeros((k, k))
    for i, j, rows_j, rows_i in layout.pair_rows:
        out[i, j] = out[j, i] = M[rows_j, rows_i].sum(axis=1)
    return out


def _cholesky(A: np.ndarray) -> np.ndarray:
    """The lower Cholesky factor of a symmetric positive definite A (LAPACK)."""
    c, info = lapack.dpotrf(A, lower=1, clean=1)
    if info:
        raise np.linalg.LinAlgError("not positive definite")
    return c


def _chol_inverse(c: np.ndarray) -> np.ndarray:
    """(ccᵀ)⁻¹ from a lower Cholesky factor c (LAPACK), as a full symmetric matrix."""
    inv, info = lapack.dpotri(c, lower=1)
    if info:
        raise np.linalg.LinAlgError("singular factor")
    out = inv.T  # LAPACK's is column-major; the products below want rows: its upper triangle
    np.copyto(out, inv, where=strictly_lower(out.shape[0]))
    return out


def _apply_direction(lay: _Layout, d: Direction, v: np.ndarray) -> np.ndarray:
    """D_i v for a q-vector v (block order)."""
    out = np.zeros_like(v)
    sl = lay.slices[d.block]
    out[sl] = lay.apply(d.d, d.block, v[sl][:, None])[:, 0]
    return out


def _quad_ij(lay: _Layout, a: Direction, b: Direction, v: np.ndarray) -> float:
    """vᵀD_ij v = Σ over the block's levels of v_gᵀ(E_iE_jᵀ + E_jE_iᵀ)v_g (0 across blocks)."""
    if a.block != b.block:
        return 0.0
    sl = lay.slices[a.block]
    V = v[sl].reshape(lay.ells[a.block], lay.ps[a.block])
    Dij = a.E @ b.E.T + b.E @ a.E.T
    return float(np.sum((V @ Dij) * V))


def _vcov_jacobian(model, Cr: np.ndarray, NDN: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """∂C/∂φ_j (user's columns, flattened column-major) for C = σ²(XᵀV⁻¹X)⁻¹, from C_r and the
    NᵀD_iN of every θ element."""
    R = model.basis.R
    if R.size == 0:
        return np.zeros((0, len(NDN) + 1))
    sigma = model.sigma
    p = Cr.shape[0]
    dC = np.concatenate([sigma**2 * (Cr @ np.reshape(NDN, (-1, p, p)) @ Cr), (2.0 * sigma * Cr)[None]])
    Rinv, _ = lapack.dtrtri(R, lower=0)
    out = Rinv @ ((dC + dC.transpose(0, 2, 1)) / 2.0) @ Rinv.T
    return out.transpose(0, 2, 1).reshape(dC.shape[0], -1).T
