"""Hypothesis matrices L for the terms of the fixed-effects model, as lmerTest builds them
(``get_contrasts_type1``, ``get_contrasts_type2_unfolded``, ``get_contrasts_type3``).

* Type I: rows of t(U) from the Doolittle (LU, no pivoting) factorisation of XᵀX, so that the
  hypothesis for a term is "its columns after the earlier ones".
* Type II: a term contained in no other term is tested marginally (its own coefficients = 0);
  otherwise the columns of the term and of every term containing it are moved last and the term's
  rows of the Doolittle factor of the re-ordered XᵀX are used.
* Type III: the "rank-deficient" design X̃ (every term coded by all its indicator columns) is
  expressed in the full-rank treatment design, L = ginv(X)X̃ transposed; from the highest-order
  term down, each term's columns are made orthogonal to those of the terms containing it; the
  rows for X's columns give, per term, the hypothesis matrix; finally it is mapped to the
  fitted coding by ginv(X_treatment)·X. The result does not depend on the contrast coding.

"Contains": term F2 contains F1 when F1's variables are a proper subset of F2's and both have
the same numeric (non-factor) variables (lmerTest's ``term_contain``), where a term's variables
are those R's terms object codes 1 in its factor pattern, so that a term whose main effect is
missing (``x + x:f``, ``f + f:g``, ``a*b - a``) contains nothing and is tested at the reference
level, as lmerTest tests it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..design import fixed_design
from ..problem import Problem


@dataclass
class TermLayout:
    """Fixed-effects terms and the columns of X they own.

    ``labels`` term labels in model order; ``variables`` per term its variable labels;
    ``numeric`` variable label → True for numeric variables; ``intercept``; ``X``, ``names``,
    ``assign`` the fitted design (0 = intercept, i = ``labels[i-1]``).
    """

    labels: list[str]
    variables: list[list[str]]
    numeric: dict[str, bool]
    intercept: bool
    X: np.ndarray
    names: list[str]
    assign: list[int]
    problem: Problem = field(repr=False)

    def columns(self, term: str) -> list[int]:
        """Columns of X belonging to ``term`` (``(Intercept)`` for the intercept)."""
        idx = 0 if term == "(Intercept)" else self.labels.index(term) + 1
        return [j for j, a in enumerate(self.assign) if a == idx]

    def coded(self) -> dict[str, set[str]]:
        """Per term, its variables whose entry in R's ``attr(terms, "factors")`` is 1 (``TermCode``
        in R's model.c): the term without the variable is empty or lies inside an earlier term.
        Variables whose margin is missing (entry 2, as Variety in ``Variety + Variety:nitroF``)
        are left out, as lmerTest's ``term_contain`` leaves them out."""
        out: dict[str, set[str]] = {}
        for i, (term, vs) in enumerate(zip(self.labels, self.variables)):
            earlier = [set(v) for v in self.variables[:i]]
            out[term] = {v for v in vs if not (margin := set(vs) - {v})
                         or any(margin <= e for e in earlier)}
        return out

    def containment(self) -> dict[str, list[str]]:
        """For each term, the terms that contain it (lmerTest's ``containment``)."""
        vars_ = self.coded()
        nums = {t: {x for x in v if self.numeric.get(x, True)} for t, v in vars_.items()}
        return {t: [u for u in self.labels
                    if vars_[t] <= vars_[u] and vars_[u] - vars_[t] and nums[t] == nums[u]]
                for t in self.labels}

    def order(self, term: str) -> int:
        return len(self.variables[self.labels.index(term)])


def layout(problem: Problem) -> TermLayout:
    """The term layout of a prepared problem's fixed part."""
    desc = problem.desc
    labels = [t.label for t in desc.fixed]
    variables = [[v.label for v in t.variables] for t in desc.fixed]
    numeric = {v: v not in problem.frame.factors for vs in variables for v in vs}
    fx = problem.fixed
    return TermLayout(labels, variables, numeric, desc.intercept, fx.X, list(fx.names),
                      list(fx.assign), problem)


# -- linear algebra as R does it ---------------------------------------------------------------

def zapsmall(x: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's ``zapsmall``: round to ``digits`` significant digits relative to max|x|."""
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return x
    mx = float(np.nanmax(np.abs(x)))
    d = max(0, digits - int(np.ceil(np.log10(mx)))) if mx > 0 else digits
    return np.round(x, d)


def ginv(X: np.ndarray) -> np.ndarray:
    """MASS::ginv: Moore-Penrose inverse over singular values > √ε·d₁."""
    U, d, Vt = np.linalg.svd(X, full_matrices=False)
    tol = np.sqrt(np.finfo(float).eps) * (d[0] if d.size else 0.0)
    keep = d > max(tol, 0.0)
    return (Vt[keep].T / d[keep]) @ U[:, keep].T


def doolittle(x: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """LU factorisation without pivoting (lmerTest's ``doolittle``), zeroing |entries| < eps."""
    n = x.shape[0]
    L = np.eye(n)
    U = np.zeros((n, n))
    for i in range(n):
        U[i, :] = x[i, :] - L[i, :i] @ U[:i, :]
        if i + 1 < n:
            col = x[i + 1:, i] - L[i + 1:, :i] @ U[:i, i]
            L[i + 1:, i] = 0.0 if abs(U[i, i]) < eps else col / U[i, i]
    L[np.abs(L) < eps] = 0.0
    U[np.abs(U) < eps] = 0.0
    return L, U


def _resid(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Residuals of the least-squares regression of the columns of y on x (``lm.fit``)."""
    if x.shape[1] == 0:
        return y
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return y - x @ coef


# -- the three types --------------------------------------------------------------------------

def type1(lay: TermLayout) -> dict[str, np.ndarray]:
    """Rows of Lᵀ, L the Doolittle factor of XᵀX. When every term owns X's last column or none,
    no factorization: L is unit lower triangular (zapping leaves its ones), so Lᵀ's last row is
    e_p whatever XᵀX is. That is the one-covariate model (``y ~ x + (x | g)``), whose type III
    table is type I's; XᵀX and the factorization cost ~15 of its anova's ~35 µs."""
    X = lay.X
    p = X.shape[1]
    if p == 0:
        return {t: np.zeros((0, 0)) for t in lay.labels}
    cols = {t: lay.columns(t) for t in lay.labels}
    if all(c in ([], [p - 1]) for c in cols.values()):
        Lt = np.eye(p)
    else:
        Lt = np.ones((1, 1)) if p == 1 else doolittle(X.T @ X)[0].T
    return {t: Lt[c, :] for t, c in cols.items()}


def _single(lay: TermLayout) -> bool:
    return lay.X.shape[1] <= 1 or len(lay.labels) <= 1


def type2(lay: TermLayout) -> dict[str, np.ndarray]:
    """lmerTest's ``get_contrasts_type2_unfolded``."""
    if _single(lay):
        return type1(lay)
    X = lay.X
    p = X.shape[1]
    contained = lay.containment()
    out: dict[str, np.ndarray] = {}
    for term in lay.labels:
        cols = lay.columns(term)
        if not contained[term]:
            out[term] = np.eye(p)[cols, :]
            continue
        moved = list(cols)
        for c in contained[term]:
            moved += lay.columns(c)
        rest = [j for j in range(p) if j not in moved]
        perm = rest + moved
        Xn = X[:, perm]
        Lc = doolittle(Xn.T @ Xn)[0].T
        rows = [k for k, j in enumerate(perm) if j in cols]
        Lrows = Lc[rows, :]
        back = np.empty_like(Lrows)
        back[:, perm] = Lrows
        out[term] = back
    return out


def _rd_design(lay: TermLayout) -> tuple[np.ndarray, list[str]]:
    """The indicator design X̃ (every term coded by all its indicator columns) and its column
    names, stacked once (n×m, C order)."""
    columns: list[np.ndarray] = []
    names: list[str] = []
    if lay.intercept:
        columns.append(np.ones(lay.X.shape[0]))
        names.append("(Intercept)")
    pieces: dict[str, list[tuple[np.ndarray, str]]] = {}
    for vs in lay.variables:
        for v in vs:
            if v not in pieces:
                pieces[v] = _variable_pieces(lay, v)
        cols, nm = _rd_columns_ordered(lay, [pieces[v] for v in vs])
        columns += cols
        names += nm
    return np.column_stack(columns), names


def _variable_pieces(lay: TermLayout, v: str) -> list[tuple[np.ndarray, str]]:
    """Variable ``v``'s columns in the indicator design and their names: a matrix's columns, a
    numeric variable itself, a factor's indicator per level. Read from the model frame's own
    arrays (:meth:`~mixedbridge.frame.ModelFrame.floats`, ``factor``), once a variable: pandas'
    column access costs ~10 µs a time (Orthodont's type III contrasts: 440 -> ~200 µs)."""
    frame = lay.problem.frame
    matrix = frame.matrices.get(v)
    if matrix is not None:
        return [(frame.floats(c), c) for c in matrix]
    if lay.numeric[v]:
        return [(frame.floats(v), v)]
    factor = frame.factor(v)
    if factor is None:
        raise ValueError(f"type III contrasts: {v!r} is neither numeric nor a factor of the model frame")
    return [((factor.codes == j).astype(float), f"{v}{lev}") for j, lev in enumerate(factor.labels)]


def _rd_columns_ordered(lay: TermLayout, term_pieces: list[list[tuple[np.ndarray, str]]]
                        ) -> tuple[list[np.ndarray], list[str]]:
    """One term's indicator columns (products of its variables' pieces) and their names."""
    cols: list[np.ndarray] = [np.ones(lay.X.shape[0])]
    names: list[str] = [""]
    for pieces in term_pieces:
        # earlier variables vary fastest: outer loop over the new variable's pieces
        cols = [c * pv for pv, _ in pieces for c in cols]
        names = [(nm + ":" if nm else "") + pn for _, pn in pieces for nm in names]
    return cols, names


def _treatment_layout(lay: TermLayout) -> TermLayout:
    pr = lay.problem
    if pr.options.get("contrasts", "treatment") == "treatment":
        return lay
    fx = fixed_design(pr.desc, pr.frame, "treatment")
    return TermLayout(lay.labels, lay.variables, lay.numeric, lay.intercept, fx.X, list(fx.names),
                      list(fx.assign), pr)


def type3(lay: TermLayout) -> dict[str, np.ndarray]:
    """lmerTest's ``get_contrasts_type3`` (via ``extract_contrasts_type3``)."""
    if _single(lay):
        return type1(lay)
    tl = _treatment_layout(lay)
    X = tl.X
    rdX, rd_names = _rd_design(tl)
    gX = ginv(X)
    L = zapsmall((gX @ rdX).T)                 # rows: rdX columns, cols: X columns
    contained = tl.containment()
    order = sorted(range(len(tl.labels)), key=lambda i: -tl.order(tl.labels[i]))
    for i in order:
        term = tl.labels[i]
        if contained[term]:
            own = tl.columns(term)
            other = [j for c in contained[term] for j in tl.columns(c)]
            L[:, own] = zapsmall(_resid(L[:, other], L[:, own]))
    missing = [nm for nm in tl.names if nm not in rd_names]
    if missing:
        raise ValueError(f"type III contrasts: columns {missing} not found among the indicator columns")
    rows = [rd_names.index(nm) for nm in tl.names]
    L = L[rows, :]
    out = {}
    for term in tl.labels:
        Lt = L[:, tl.columns(term)].T
        out[term] = Lt[np.abs(Lt).sum(axis=1) > 1e-8, :]
    mapping = zapsmall(gX @ lay.X)
    return {t: m @ mapping for t, m in out.items()}


def contrasts(lay: TermLayout, kind: str = "III") -> dict[str, np.ndarray]:
    """Hypothesis matrix per term for ``kind`` in I, II, III."""
    return {"I": type1, "II": type2, "III": type3}[kind](lay)
