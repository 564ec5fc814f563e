"""Kenward-Roger adjusted covariance and denominator df, as pbkrtest 0.5 (``vcovAdj``,
``KRmodcomp``, ``Lb_ddf``), computed without any n×n matrix.

pbkrtest's parametrisation: Σ = Σ_h γ_h G_h with γ the lower triangles of the random-effects
covariance matrices (column-wise) and σ²; G_h = Z(I_ℓ ⊗ E_h)Zᵀ (E_h = e_ae_aᵀ on the diagonal,
e_ae_bᵀ + e_be_aᵀ off it) and G = I for σ². Σ is linear in γ, so R_hj = 0. With
Φ = (XᵀΣ⁻¹X)⁻¹:

* P_h = −XᵀΣ⁻¹G_hΣ⁻¹X, Q_hj = XᵀΣ⁻¹G_hΣ⁻¹G_jΣ⁻¹X, K_hj = tr(Σ⁻¹G_hΣ⁻¹G_j);
* I_hj = K_hj − 2tr(ΦQ_hj) + tr(ΦP_hΦP_j) (twice the expected information), W = 2I⁻¹;
* Φ_A = Φ + 2Φ[Σ_hj W_hj(Q_hj − P_hΦP_j)]Φ;
* for L with q = rank(L): Θ = Lᵀ(LΦLᵀ)⁻¹L, A₁ = Σ W_hj tr(ΘΦP_hΦ)tr(ΘΦP_jΦ),
  A₂ = Σ W_hj tr(ΘΦP_hΦΘΦP_jΦ), B = (A₁+6A₂)/(2q), g = ((q+1)A₁−(q+4)A₂)/((q+2)A₂),
  c₁ = g/(3q+2(1−g)), c₂ = (q−g)/(3q+2(1−g)), c₃ = (q+2−g)/(3q+2(1−g)),
  ρ = ((1−A₂/q)/(1−c₂B))²(1+c₁B)/(q(1−c₃B)), m = 4 + (q+2)/(qρ−1),
  λ = m(1−A₂/q)/(m−2); F = λ·(Lβ)ᵀ(LΦ_ALᵀ)⁻¹(Lβ)/q ~ F(q, m).

Scaling: Σ = σ²V, V = I + ZΛΛᵀZᵀ, and by Woodbury V⁻¹ = I − ZKZᵀ with K = Λ(ΛᵀZᵀZΛ + I)⁻¹Λᵀ.
With N = I − K·ZᵀZ and D = K·ZᵀX every product above reduces to q×q, q×p and p×p blocks:
ZᵀV⁻¹Z = ZᵀZ·N, ZᵀV⁻¹X = ZᵀX − ZᵀZ·D, ZᵀV⁻²Z = NᵀZᵀZN, ZᵀV⁻²X = Nᵀ(ZᵀV⁻¹X),
XᵀV⁻²X = (X − ZD)ᵀ(X − ZD), XᵀV⁻³X = XᵀV⁻²X − (ZᵀV⁻¹X)ᵀK(ZᵀV⁻¹X),
tr(V⁻²) = n − 2tr(KZᵀZ) + tr((KZᵀZ)²). Selections E_h act on ℓ-row slices.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular

from .. import distributions as dist
from ..errors import ModelError
from ..lmm.threads import blas_threads
from .crossproducts import DenseGram, dense_gram
from .permodel import remembered


@dataclass
class KRBasis:
    """Φ_A (``PhiA``), Φ (``Phi``) and the P_h (``P``) for the model's W-orthonormal columns
    X̃ = XR⁻¹ (``model.basis``), where no cancellation occurs when a column sits on a large
    offset; a contrast L of the user's β is LR⁻¹ there (:meth:`contrast`)."""

    PhiA: np.ndarray
    Phi: np.ndarray
    P: list[np.ndarray]
    R: np.ndarray

    def contrast(self, L: np.ndarray) -> np.ndarray:
        """LR⁻¹ for the rows of L."""
        return solve_triangular(self.R, np.atleast_2d(L).T, trans="T", lower=False).T


@dataclass
class KRAdjusted:
    """``PhiA`` Φ_A; ``Phi`` Φ; ``P`` list of P_h (of the user's columns); ``W``; ``beta``;
    ``sigma``; ``condi`` the smallest |eigenvalue| of the information (pbkrtest's ``condi``);
    ``basis`` the same in the model's basis (:class:`KRBasis`), from which the tests are
    computed."""

    PhiA: np.ndarray
    Phi: np.ndarray
    P: list[np.ndarray]
    W: np.ndarray
    beta: np.ndarray
    sigma: float
    condi: float
    basis: KRBasis


def _params(terms, offsets) -> list[list[np.ndarray] | None]:
    """For each variance parameter (θ order, then σ²), index sets (idx_i, idx_j) with
    E_h = Σ S_iS_jᵀ, from each term's positions of its θ elements and its first column in Z
    (``offsets``); None for σ²."""
    out: list = []
    for t, off in zip(terms, offsets):
        base = off + np.arange(t.nlevels) * t.p
        for a, b in zip(t.rows, t.cols):
            ia, ib = base + a, base + b
            out.append([(ia, ia)] if a == b else [(ia, ib), (ib, ia)])
    out.append(None)
    return out


def vcov_adjusted(model) -> KRAdjusted:
    """pbkrtest's ``vcovAdj`` for a native REML fit (model left at θ̂); computed once per model
    and θ̂ (:mod:`.permodel`)."""
    theta = np.asarray(model.theta, dtype=float)
    return remembered(model, ("kenward-roger", theta.tobytes()), lambda: _vcov_adjusted(model))


@dataclass
class GammaPieces:
    """The derivatives of Σ = Σ_h γ_h G_h at the fit that Kenward-Roger needs, in the model's
    basis X̃ and scaled as pbkrtest scales them (see the module docstring).

    ``pars`` the index sets of each γ_h (None for σ²); ``s2`` σ̂²; ``Phi`` Φ; ``P`` the P_h;
    ``Q`` the Q_hj (h ≤ j); ``K`` the K_hj = tr(Σ⁻¹G_hΣ⁻¹G_j); ``info2`` the tr(PG_hPG_j) (P the
    REML projection); ``Kl`` Λ(ΛᵀZᵀZΛ + I)⁻¹Λᵀ; ``D`` Kl·ZᵀX̃; ``Azz`` ZᵀV⁻¹Z; ``Axx`` X̃ᵀV⁻¹X̃;
    ``KZ`` Kl·ZᵀZ; ``gram`` the cross-products [Z X̃ ỹ]ᵀW[Z X̃ ỹ] they are made of.
    """

    pars: list
    s2: float
    Phi: np.ndarray
    P: list[np.ndarray]
    Q: dict
    K: np.ndarray
    info2: np.ndarray
    sigma: float
    Kl: np.ndarray
    D: np.ndarray
    Azz: np.ndarray
    Axx: np.ndarray
    KZ: np.ndarray
    gram: DenseGram


def gamma_pieces(model) -> GammaPieces:
    """:class:`GammaPieces` of a native fit at its current θ (dense q×q algebra: q random
    effects; computed once per model and θ, see :mod:`.permodel`)."""
    theta = np.asarray(model.theta, dtype=float)

    def compute() -> GammaPieces:
        # many mid-sized dense products: OpenBLAS's threads cost more than they give here, and
        # on a busy machine their spin-waiting made a 690×690 Cholesky take seconds
        with blas_threads(1):
            return _gamma_pieces(model)

    return remembered(model, ("gamma pieces", theta.tobytes()), compute)


def _gamma_pieces(model) -> GammaPieces:
    """:func:`gamma_pieces` computed."""
    structure = model.structure
    theta = np.asarray(model.theta, dtype=float)
    gram = dense_gram(model)
    n, q = gram.n, gram.q
    Lam_d = structure.lambda_dense(theta)
    ZtZ, ZtX, XtX = gram.ZtZ, gram.ZtX, gram.XtX
    M = Lam_d.T @ ZtZ @ Lam_d + np.eye(q)
    cf = cho_factor(M, lower=True)
    K = Lam_d @ cho_solve(cf, Lam_d.T)
    KZ = K @ ZtZ
    N = np.eye(q) - KZ
    D = K @ ZtX
    Azz = ZtZ @ N
    Azx = ZtX - ZtZ @ D
    Axx = XtX - ZtX.T @ D
    B2zz = N.T @ ZtZ @ N
    B2zx = N.T @ Azx
    B2xx = XtX - ZtX.T @ D - D.T @ ZtX + D.T @ ZtZ @ D
    B3xx = B2xx - Azx.T @ K @ Azx
    trV2 = n - 2.0 * np.trace(KZ) + float(np.sum(KZ * KZ.T))

    model.set_theta(theta)
    sigma = model.sigma
    s2 = sigma**2
    Phi = s2 * np.linalg.inv(Axx)
    Phi = (Phi + Phi.T) / 2
    pars = _params(structure.terms, structure.Gp[:-1])
    k = len(pars)

    def xgx(h):  # XᵀV⁻¹G_hV⁻¹X
        if h is None:
            return B2xx
        return sum(Azx[i].T @ Azx[j] for i, j in h)

    P = [-(xgx(h) / s2**2) for h in pars]
    P = [(m + m.T) / 2 for m in P]

    pairs = _theta_pairs(structure.terms)
    cross = _TermProducts(structure, Azz, Azx)

    def q_(r, s):  # XᵀV⁻¹G_rV⁻¹G_sV⁻¹X
        hr, hs = pars[r], pars[s]
        if hr is None and hs is None:
            return B3xx
        if hr is None:
            return sum(B2zx[i].T @ Azx[j] for i, j in hs)
        if hs is None:
            return sum(Azx[i].T @ B2zx[j] for i, j in hr)
        return cross.q(pairs[r], pairs[s])

    def ktr(r, s):  # tr(V⁻¹G_rV⁻¹G_s)
        hr, hs = pars[r], pars[s]
        if hr is None and hs is None:
            return trV2
        if hr is None:
            hr, hs = hs, hr
        if hs is None:
            return sum(float(B2zz[j, i].sum()) for i, j in hr)  # the traces of B2zz[j][:, i]
        return cross.k(pairs[r], pairs[s])

    Q = {}
    IE2 = np.empty((k, k))
    KE = np.empty((k, k))
    for r in range(k):
        for s in range(r, k):
            Q[r, s] = q_(r, s) / s2**3
            Kt = ktr(r, s) / s2**2
            KE[r, s] = KE[s, r] = Kt
            IE2[r, s] = IE2[s, r] = Kt - 2.0 * np.sum(Phi * Q[r, s]) + np.sum((Phi @ P[r]) * (P[s] @ Phi))
    return GammaPieces(pars, s2, Phi, P, Q, KE, IE2, sigma, K, D, Azz, Axx, KZ, gram)


def _theta_pairs(terms) -> list[tuple[int, list[tuple[int, int]]]]:
    """For each θ element (θ order): its term's index and the (row, column) pairs of the term's
    template whose selections make up E_h (one on the diagonal, both orders off it)."""
    out = []
    for ti, t in enumerate(terms):
        for a, b in zip(t.rows, t.cols):
            a, b = int(a), int(b)
            out.append((ti, [(a, a)] if a == b else [(a, b), (b, a)]))
    return out


class _TermProducts:
    """The θ-θ pieces of :func:`gamma_pieces` from each pair of terms' blocks at once: with
    A = ZᵀV⁻¹Z and B = ZᵀV⁻¹X̃ viewed per term as (levels, columns, ...) arrays,
    XᵀV⁻¹G_rV⁻¹G_sV⁻¹X = Σ_{u,v} B[u,i]ᵀ A[u,j,v,k] B[v,l] and tr(V⁻¹G_rV⁻¹G_sV⁻¹) =
    Σ_{u,v} A[u,j,v,k] A[v,l,u,i] for the template pairs (i, j) of r and (k, l) of s."""

    def __init__(self, structure, Azz: np.ndarray, Azx: np.ndarray) -> None:
        self.Azz = Azz
        self.blocks = [(slice(off, off + t.nlevels * t.p), t.nlevels, t.p)
                       for t, off in zip(structure.terms, structure.Gp[:-1])]
        self.B = [Azx[sl].reshape(n, p, -1) for sl, n, p in self.blocks]
        self._cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _pair(self, t1: int, t2: int) -> tuple[np.ndarray, np.ndarray]:
        got = self._cache.get((t1, t2))
        if got is None:
            (s1, n1, p1), (s2, n2, p2) = self.blocks[t1], self.blocks[t2]
            A12 = self.Azz[s1, s2].reshape(n1, p1, n2, p2)
            A21 = self.Azz[s2, s1].reshape(n2, p2, n1, p1)
            W = np.tensordot(np.tensordot(self.B[t1], A12, axes=([0], [0])), self.B[t2], axes=([3], [0]))
            M = np.tensordot(A12, A21, axes=([0, 2], [2, 0]))  # (j, k, l, i)
            got = self._cache[t1, t2] = (W.transpose(0, 2, 3, 4, 1, 5), M.transpose(3, 0, 1, 2))
        return got

    def q(self, r: tuple[int, list], s: tuple[int, list]) -> np.ndarray:
        W = self._pair(r[0], s[0])[0]
        return sum(W[i, j, k, m] for i, j in r[1] for k, m in s[1])

    def k(self, r: tuple[int, list], s: tuple[int, list]) -> float:
        M = self._pair(r[0], s[0])[1]
        return float(sum(M[i, j, k, m] for i, j in r[1] for k, m in s[1]))


def _vcov_adjusted(model) -> KRAdjusted:
    """:func:`vcov_adjusted` computed."""
    if not model.reml:
        raise ModelError("Kenward-Roger needs a REML fit (pbkrtest refits ML fits with REML); "
                         "set options.reml to true", "/options/reml")
    if model.weights is not None:
        raise ModelError("Kenward-Roger with prior weights is not supported (pbkrtest ignores them)",
                         "/options/weights")
    g = gamma_pieces(model)
    theta = np.asarray(model.theta, dtype=float)
    model.set_theta(theta)
    p = model.p
    sigma = g.sigma
    Phi, P, Q, IE2, k = g.Phi, g.P, g.Q, g.info2, len(g.pars)
    ev = np.linalg.eigvalsh(IE2)
    condi = float(np.min(np.abs(ev)))
    W = 2.0 * (np.linalg.inv(IE2) if condi > 1e-10 else np.linalg.pinv(IE2))
    W = (W + W.T) / 2
    U = np.zeros((p, p))
    for r in range(k):
        for s in range(r + 1, k):
            U += W[r, s] * (Q[r, s] - P[r] @ Phi @ P[s])
    U = U + U.T
    for r in range(k):
        U += W[r, r] * (Q[r, r] - P[r] @ Phi @ P[r])
    PhiA = Phi + 2.0 * Phi @ U @ Phi
    R = model.basis.R
    Rinv = solve_triangular(R, np.eye(p), lower=False)
    return KRAdjusted(Rinv @ PhiA @ Rinv.T, Rinv @ Phi @ Rinv.T, [R.T @ Ph @ R for Ph in P], W,
                      model.beta, sigma, condi, KRBasis(PhiA, Phi, P, R))


def _a1a2(P: list[np.ndarray], W: np.ndarray, L: np.ndarray, V0: np.ndarray) -> tuple[float, float]:
    Theta = L.T @ np.linalg.solve(L @ V0 @ L.T, L)
    TV = Theta @ V0
    us = [TV @ Ph @ V0 for Ph in P]
    tr = [np.trace(u) for u in us]
    k = len(us)
    A1 = A2 = 0.0
    for i in range(k):
        for j in range(i, k):
            e = 1.0 if i == j else 2.0
            A1 += e * W[i, j] * tr[i] * tr[j]
            A2 += e * W[i, j] * float(np.sum(us[i] * us[j].T))
    return A1, A2


def _div0(x: float, y: float, tol: float = 1e-14) -> float:
    return 1.0 if abs(x) < tol and abs(y) < tol else x / y


def _ddf(A1: float, A2: float, q: float) -> tuple[float, float]:
    B = (A1 + 6.0 * A2) / (2.0 * q)
    g = ((q + 1.0) * A1 - (q + 4.0) * A2) / ((q + 2.0) * A2)
    den = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2.0 - g) / den
    V0 = 1.0 + c1 * B
    V1 = 1.0 - c2 * B
    V2 = 1.0 - c3 * B
    V0 = 0.0 if abs(V0) < 1e-10 else V0
    rho = (1.0 / q) * _div0(1.0 - A2 / q, V1) ** 2 * V0 / V2
    df2 = 4.0 + (q + 2.0) / (q * rho - 1.0)
    return df2, B


def vcov_adjusted_reml(model) -> KRAdjusted:
    """pbkrtest's ``vcovAdj`` for any native fit: an ML fit is first refitted by REML, as
    pbkrtest does (``update(object, . ~ ., REML = TRUE)``); the model is left as it is."""
    if model.reml:
        return vcov_adjusted(model)
    theta = np.asarray(model.theta, dtype=float)
    return remembered(model, ("kenward-roger, REML refit", theta.tobytes()),
                      lambda: vcov_adjusted(model.refit(model.y, reml=True)))


def lb_ddf(kr: KRAdjusted, L: np.ndarray, V0: np.ndarray) -> float:
    """pbkrtest's ``Lb_ddf(L, V0, Vadj)``: the Kenward-Roger df of Lβ from the unadjusted
    covariance ``V0`` (user's columns) and vcovAdj's P_h and W, as emmeans computes them for
    its rows (with ``V0`` the fit's own covariance, ML or REML)."""
    R = kr.basis.R
    A1, A2 = _a1a2(kr.basis.P, kr.W, kr.basis.contrast(L), R @ np.asarray(V0, dtype=float) @ R.T)
    return _ddf(A1, A2, 1.0)[0]


def contest1d(kr: KRAdjusted, L: np.ndarray) -> dict:
    """t test with the adjusted SE and KR df (lmerTest ``contest1D``, ``pbkrtest::Lb_ddf``)."""
    L = np.atleast_2d(np.ravel(L))
    est = float(L[0] @ kr.beta)
    Lt = kr.basis.contrast(L)
    v = float(Lt[0] @ kr.basis.PhiA @ Lt[0])
    A1, A2 = _a1a2(kr.basis.P, kr.W, Lt, kr.basis.Phi)
    df, _ = _ddf(A1, A2, 1.0)
    se = np.sqrt(v)
    t = est / se
    return {"estimate": est, "std.error": se, "df": df, "statistic": t,
            "p.value": float(2.0 * dist.t.sf(abs(t), df))}


def contest_md(kr: KRAdjusted, L: np.ndarray) -> dict:
    """F test of Lβ = 0 (``pbkrtest::KRmodcomp``), as lmerTest's anova reports it: MS from the
    unscaled Wald statistic, F = λ·F_U."""
    L = np.atleast_2d(np.asarray(L, dtype=float))
    if L.shape[0] == 0:
        return {"sumsq": np.nan, "meansq": np.nan, "NumDF": np.nan, "DenDF": np.nan, "statistic": np.nan,
                "p.value": np.nan}
    q = float(np.linalg.matrix_rank(L))
    Lt = kr.basis.contrast(L)
    A1, A2 = _a1a2(kr.basis.P, kr.W, Lt, kr.basis.Phi)
    df2, _ = _ddf(A1, A2, q)
    fscale = 1.0 if abs(df2 - 2.0) < 0.01 else df2 * (1.0 - A2 / q) / (df2 - 2.0)
    Lb = L @ kr.beta
    wald = float(Lb @ np.linalg.solve(Lt @ kr.basis.PhiA @ Lt.T, Lb))
    FU = wald / q
    F = fscale * FU
    ms = FU * kr.sigma**2
    return {"sumsq": ms * q, "meansq": ms, "NumDF": int(q), "DenDF": df2, "statistic": F,
            "p.value": float(dist.f.sf(F, q, df2))}
