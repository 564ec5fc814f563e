"""The pieces of :func:`.blockedderivatives.blocked_derivatives` from Q = Ω⁻¹ restricted to the
random effects, for fits whose templates are all well invertible (the common case).

With Λ invertible, D_i = Λ H_i Λᵀ and D_ij = Λ S_ij Λᵀ, where per level of θ_i's block
g_i = T⁻¹E_i, H_i = I ⊗ (g_i + g_iᵀ) and S_ij = I ⊗ (g_ig_jᵀ + g_jg_iᵀ); and ΛᵀMΛ = I − Q (Q from
the REML Ω with X, or the random-effects block alone for V⁻¹ under ML). So

    tr(M D_ij) = tr(S_ij) − tr(Q S_ij),
    tr(M D_i M D_j) = tr(H_iH_j) − tr(Q(H_iH_j + H_jH_i)) + tr(Q H_i Q H_j),
    (D_iv)ᵀM_P(D_jv) = (H_iw)ᵀ(I − Q_P)(H_jw),  vᵀD_iv = wᵀH_iw,  w = Λᵀv.

Q comes from the two-part factor: with F = Ω₀₀⁻¹Ω₀m (sparse: block 0's rows of the rest and X
columns) and K = (L_mmL_mmᵀ)⁻¹ (m×m),

    Q₀₀ = Ω₀₀⁻¹ + FKFᵀ,  Q₀r = −FK_{·r},  Q_rr = K_rr,

so tr(Q₀₀H_iQ₀₀H_j) needs Fᵀ(I⊗h)F (sparse products) and two m×m products, and no q×m matrix
is formed except FK (a sparse-dense product): against M's low-rank form, which needs Ũ (q×m)
and its Gram matrices, a few times fewer operations when the fill-in block is large (InstEval).
A template near singular (a standard deviation below :data:`MIN_SD` relative to σ) would make
I − Q a difference of nearly equal numbers: those fits keep the low-rank form.
"""
from __future__ import annotations

from itertools import product

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack, solve_triangular

from ..lmm.api import auto_threads
from ..lmm.threads import blas_threads, usable_cpus
from .blockedderivatives import Direction, _block_diag, _Blocks, _Layout, _times

#: Smallest |diagonal of a template| (a relative standard deviation) for which Q is used.
MIN_SD = 1e-3


def invertible(structure, theta: np.ndarray) -> bool:
    """Whether every block's template is well invertible at θ."""
    return all(float(np.min(np.abs(np.diag(b.template(theta))))) >= MIN_SD for b in structure.blocks)


class _Inverse:
    """Q = Ω⁻¹ restricted to the random effects in two parts: ``B`` Ω₀₀⁻¹ per level (ℓ₀, p₀, p₀),
    ``F`` Ω₀₀⁻¹Ω₀m (CSR, q₀×m), ``K`` (m×m); m the rest effects, then X when ``with_x``; ``qr``
    the rest effects. No q₀×m dense matrix is formed: FKFᵀ enters through the m×m Gram matrices
    F_aᵀF_c of block 0's columns a, c (:meth:`gram`)."""

    def __init__(self, blk: _Blocks, with_x: bool) -> None:
        L = blk.L
        self.B, self.qr, self.p0 = L.M0inv, blk.qr, blk.p0
        self.K = _k_matrix(blk, with_x)
        parts = []
        if blk.qr:
            parts.append((blk.A0r @ blk.lam_r).tocsr())
        if with_x:
            parts.append(sp.csr_matrix(blk.A0x))
        left = _block_diag(np.matmul(L.M0inv, L.T0.T)).tocsr()
        right = sp.hstack(parts, format="csr") if parts else sp.csr_matrix((blk.q0, 0))
        self.F = (left @ right).tocsr()
        self._grams: dict[tuple[int, int], np.ndarray] = {}

    def gram(self, a: int, c: int) -> np.ndarray:
        """F_aᵀF_c (m×m, dense), F_a the rows of F for block 0's column a; formed once per pair."""
        if a > c:
            return self.gram(c, a).T
        if (a, c) not in self._grams:
            p0 = self.p0
            Fa = self.F if p0 == 1 else self.F[a::p0]
            Fc = Fa if c == a else self.F[c::p0]
            self._grams[a, c] = (Fa.T @ Fc).toarray()
        return self._grams[a, c]

    def k_weighted_gram(self, h: np.ndarray) -> np.ndarray:
        """K Fᵀ(I⊗h)F for a symmetric p₀×p₀ h: the one O(m³) product of the traces (with p₀ = 1,
        h·(K FᵀF), no scaled copy of FᵀF)."""
        G = self.gram(0, 0) if self.p0 == 1 else self.weighted_gram(h)
        with blas_threads(_product_threads(G.shape[0])):
            out = self.K @ G
        if self.p0 == 1:
            out *= h[0, 0]
        return out

    def weighted_gram(self, h: np.ndarray) -> np.ndarray:
        """Fᵀ(I⊗h)F for a symmetric p₀×p₀ h, from the Gram matrices."""
        p0 = self.p0
        out = h[0, 0] * self.gram(0, 0)
        for a in range(p0):
            for c in range(a, p0):
                if (a, c) != (0, 0) and h[a, c] != 0.0:
                    G = self.gram(a, c)
                    out += h[a, c] * (G if a == c else G + G.T)
        return out

    def apply(self, x0: np.ndarray, xr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Q [x₀; x_r] as (block-0 part, rest part): with y = K(x_m − Fᵀx₀), Q₀· = B x₀ − F y."""
        xm = np.zeros(self.K.shape[0])
        xm[: self.qr] = xr
        outm = self.K @ (xm - self.F.T @ x0)
        out0 = np.matmul(self.B, x0.reshape(self.B.shape[0], -1, 1)).ravel() - self.F @ outm
        return out0, outm[: self.qr]


def _k_matrix(blk: _Blocks, with_x: bool) -> np.ndarray:
    """K = (L_mmL_mmᵀ)⁻¹ (full symmetric) from S_r⁻¹, the inverse the factor keeps for condVar
    (:meth:`~mixedbridge.lmm.blocks.BlockedCholesky.rest_inverse`): with L_mm = [[L_rr, 0],
    [L_xr, L_xx]], V = L_xx⁻¹ and Z = V L_xr L_rr⁻¹, K = [[S_r⁻¹ + ZᵀZ, −ZᵀV], [−VᵀZ, VᵀV]]
    (O(p·q_r²) beside the shared inversion)."""
    L, p, qr = blk.L, blk.p, blk.qr
    m = qr + (p if with_x else 0)
    K = np.empty((m, m))
    if not with_x:
        if qr:
            _fill_symmetric(K, L.rest_inverse().T, np.zeros((0, qr)))
        return K
    V, _ = lapack.dtrtri(L.Lxx[:p, :p], lower=1)
    V = np.tril(V)
    if qr:
        Y = solve_triangular(L.rest_factor()[0], L.Lxr[:p].T, lower=True, trans="T", check_finite=False)
        Z = V @ Y.T
        _fill_symmetric(K[:qr, :qr], L.rest_inverse().T, Z)
        K[qr:, :qr] = -(V.T @ Z)
        K[:qr, qr:] = K[qr:, :qr].T
    K[qr:, qr:] = V.T @ V
    return K


#: Rows per step of :func:`_fill_symmetric` (its temporaries are this many rows, not q_r²:
#: fresh pages of a q_r² array cost a cold process more than the arithmetic).
FILL_ROWS = 256


def _fill_symmetric(out: np.ndarray, upper: np.ndarray, Z: np.ndarray) -> None:
    """out ← U + ZᵀZ, U the symmetric matrix whose upper triangle ``upper`` holds, in row blocks
    (each block's rows formed right of the diagonal, then mirrored from the rows above it)."""
    n = out.shape[0]
    for i0 in range(0, n, FILL_ROWS):
        i1 = min(n, i0 + FILL_ROWS)
        out[i0:i1, i0:] = upper[i0:i1, i0:]
        block = out[i0:i1, i0:i1]
        block[...] = np.triu(block) + np.triu(block, 1).T
        if Z.shape[0]:
            out[i0:i1, i0:] += Z[:, i0:i1].T @ Z[:, i0:]
        out[i0:i1, :i0] = out[:i0, i0:i1].T


class _Pieces:
    """The blocks' templates ``T``; per θ element g = T⁻¹E (``g``) and h = g + gᵀ (``h``)."""

    def __init__(self, structure, theta: np.ndarray, dirs: list[Direction]) -> None:
        self.T = [b.template(theta) for b in structure.blocks]
        Tinv = [np.linalg.inv(T) for T in self.T]
        self.g = [Tinv[d.block] @ d.E for d in dirs]
        self.h = [g + g.T for g in self.g]


def _q_diag_sums(inv: _Inverse, blk: _Blocks, lay: _Layout) -> list[np.ndarray]:
    """Σ over levels of Q's diagonal blocks, per factor block."""
    p0 = blk.p0
    s0 = inv.B.sum(axis=0)
    for a in range(p0):
        for b in range(p0):
            s0[a, b] += float(np.einsum("ij,ij->", inv.K, inv.gram(a, b)))
    out = [s0]
    Krr = inv.K[: blk.qr, : blk.qr]
    out += [lay.diag_sum(Krr, b, blk.q0) for b in range(1, len(lay.slices))]
    return out


def _product_threads(m: int) -> int:
    """BLAS threads for one m×m by m×m product (the one O(m³) step of the traces): every usable
    core for a large m when a core is idle now (:func:`~mixedbridge.lmm.api.auto_threads`; InstEval,
    m = 1,158: 58 ms on one thread, 30 ms on two), else one."""
    return usable_cpus() if auto_threads(m) is None else 1


def _qq_traces(inv: _Inverse, blk: _Blocks, lay: _Layout, dirs: list[Direction], pc: _Pieces) -> np.ndarray:
    """tr(Q H_i Q H_j) for every pair of θ elements."""
    k = len(dirs)
    first: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i, d in enumerate(dirs):
        if d.block == 0:
            first[i] = (_times(inv.B, pc.h[i]), inv.k_weighted_gram(pc.h[i]))
    out = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            out[i, j] = out[j, i] = _qq_pair(inv, blk, lay, dirs, pc, (i, j), first)
    return out


def _qq_pair(inv: _Inverse, blk: _Blocks, lay: _Layout, dirs: list[Direction], pc: _Pieces,
             ij: tuple[int, int], first: dict) -> float:
    """tr(Q H_i Q H_j) for one pair (see :func:`_qq_traces`). A block-0 element i with a rest
    block's j: tr(Q_r0H_iQ_0rH_j) = Σ over the rest block's levels of tr(h_j (K FᵀH_iF K)_ll),
    the diagonal blocks read as row products of KFᵀH_iF and K."""
    i, j = ij
    a, b = dirs[i], dirs[j]
    q0 = blk.q0
    if a.block == 0 and b.block == 0:
        (BHi, KFi), (BHj, KFj) = first[i], first[j]
        per_level = float(np.sum(BHi * BHj.transpose(0, 2, 1)))
        mid = inv.F.T @ _block_diag(pc.h[j] @ inv.B @ pc.h[i]).tocsr() @ inv.F
        return per_level + 2.0 * _sparse_dot(mid, inv.K) + float(np.einsum("ij,ji->", KFi, KFj))
    if a.block != 0 and b.block != 0:
        return _rest_pair(inv.K, lay, (a.block, b.block), (pc.h[i], pc.h[j]), q0)
    if a.block != 0:
        i, j, a, b = j, i, b, a
    KFi = first[i][1]
    off = lay.slices[b.block].start - q0
    stop, pb = off + lay.ells[b.block] * lay.ps[b.block], lay.ps[b.block]
    total = 0.0
    for r in range(pb):
        for c in range(pb):
            if pc.h[j][c, r] != 0.0:
                total += pc.h[j][c, r] * float(np.einsum("lc,lc->", KFi[off + r: stop: pb], inv.K[off + c: stop: pb]))
    return total


def _sparse_dot(S: sp.spmatrix, K: np.ndarray) -> float:
    """Σ S∘K for a sparse S and a dense K, K read at S's non-zeros only."""
    S = S.tocsr()
    rows = np.repeat(np.arange(S.shape[0]), np.diff(S.indptr))
    return float(S.data @ K[rows, S.indices])


def _rest_pair(K: np.ndarray, lay: _Layout, blocks: tuple[int, int], hs: tuple[np.ndarray, np.ndarray],
               q0: int) -> float:
    """tr(K_BA H_a K_AB H_b) for θ elements of rest blocks A and B (H = I⊗h per level): with
    K's rows of column r of B's levels against columns r' of A's, Σ h_a[r, r']·h_b[s', s]·
    ⟨K[B_s, A_r], K[B_s', A_r']⟩ (strided views of K, nothing copied)."""
    (ba, bb), (ha, hb) = blocks, hs
    sa, sb = lay.slices[ba], lay.slices[bb]
    pa, pb = lay.ps[ba], lay.ps[bb]
    oa, ea, ob, eb = sa.start - q0, sa.stop - q0, sb.start - q0, sb.stop - q0
    total = 0.0
    for r, r2 in product(range(pa), repeat=2):
        for s_, s2 in product(range(pb), repeat=2):
            coef = ha[r, r2] * hb[s2, s_]
            if coef != 0.0:
                total += coef * float(np.einsum("ij,ij->", K[ob + s_: eb: pb, oa + r: ea: pa],
                                                K[ob + s2: eb: pb, oa + r2: ea: pa]))
    return total


def _per_block(lay: _Layout, dirs: list[Direction], mats: list[np.ndarray], qsum: list[np.ndarray],
               sym: bool) -> np.ndarray:
    """For same-block pairs, 0 across blocks: ℓ·tr(X) − tr(ΣQ_gg X) with X = m_im_jᵀ + m_jm_iᵀ
    (``sym``: tr(S_ij) − tr(Q S_ij)), or ℓ·tr(m_im_j) − tr(ΣQ_gg X) with X = m_im_j + m_jm_i
    (tr(H_iH_j) − tr(Q(H_iH_j + H_jH_i)))."""
    k = len(dirs)
    out = np.zeros((k, k))
    for i, a in enumerate(dirs):
        for j in range(i, k):
            if dirs[j].block != a.block:
                continue
            mi, mj = mats[i], mats[j]
            X = mi @ mj.T + mj @ mi.T if sym else mi @ mj + mj @ mi
            first = float(np.trace(X)) if sym else float(np.trace(mi @ mj))
            out[i, j] = out[j, i] = lay.ells[a.block] * first - float(np.sum(qsum[a.block] * X.T))
    return out


def inverse_pieces(model, blk: _Blocks, lay: _Layout, dirs: list[Direction],
                   v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The inputs of :func:`.blockedderivatives._hessian` (tr(M D_ij) − tr(M D_i M D_j), the
    quadratic forms, vᵀD_iv, vᵀD_ijv) from Q."""
    theta = np.asarray(model.theta, dtype=float)
    pc = _Pieces(model.structure, theta, dirs)
    inv_p = _Inverse(blk, with_x=True)
    inv_t = inv_p if model.reml else _Inverse(blk, with_x=False)
    qsum = _q_diag_sums(inv_t, blk, lay)
    trD = _per_block(lay, dirs, pc.g, qsum, sym=True)
    half = _per_block(lay, dirs, pc.h, qsum, sym=False)
    trDD = half + _qq_traces(inv_t, blk, lay, dirs, pc)
    w = _lambda_t(lay, pc.T, v)
    Hw = [_on_block(lay, d.block, pc.h[i], w) for i, d in enumerate(dirs)]
    QHw = [np.concatenate(inv_p.apply(x[: blk.q0], x[blk.q0:])) for x in Hw]
    k = len(dirs)
    quad = np.array([[float(Hw[i] @ Hw[j]) - float(Hw[i] @ QHw[j]) for j in range(k)] for i in range(k)])
    vDv = np.array([float(w @ x) for x in Hw])
    vDijv = np.array([[float(w @ _on_block(lay, dirs[i].block, pc.g[i] @ pc.g[j].T + pc.g[j] @ pc.g[i].T, w))
                       if dirs[i].block == dirs[j].block else 0.0 for j in range(k)] for i in range(k)])
    return trD - trDD, quad, vDv, vDijv


def _lambda_t(lay: _Layout, T: list[np.ndarray], v: np.ndarray) -> np.ndarray:
    """Λᵀv for a q-vector v (block order)."""
    out = np.empty_like(v)
    for b, sl in enumerate(lay.slices):
        out[sl] = lay.apply(T[b].T, b, v[sl][:, None])[:, 0]
    return out


def _on_block(lay: _Layout, b: int, m: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(I ⊗ m) on block b's part of w, zero elsewhere."""
    out = np.zeros_like(w)
    sl = lay.slices[b]
    out[sl] = lay.apply(m, b, w[sl][:, None])[:, 0]
    return out
