"""Model matrices: the fixed-effects design X and each random-effects term's raw model matrix Xᵢ
with its grouping factor, as lme4's ``mkReTrms`` needs them.

Each term's factors are coded by contrasts or by indicators of all their levels as R's
``model.matrix`` codes them (:func:`codings`), so interaction-only and marginality-violating
formulas give lme4's columns and names (``TypeQuebec:Treatmentchilled``, ``group1``). The emmeans
reference grid still reaches formulaic under generated safe names (``v0``, levels ``L0``).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.linalg import lapack

from .errors import ModelError
from .formula import ModelDescription, RandomTerm, Term
from .frame import ModelFrame
from .safenames import SafeNames

#: Relative tolerance under which a column counts as a linear combination of earlier ones
#: (lme4's ``check.rankX`` uses ``qr(X, tol = 1e-7)``).
RANK_TOL = 1e-7

#: A model column whose largest |value| is above MAX_SCALE, or non-zero and below MIN_SCALE, is
#: refused: a coefficient's variance goes as 1/scale² and Satterthwaite's df divides squared
#: variances (1/scale⁴), which must stay inside floating point; lme4 stops at 1e±200 with
#: "Downdated VtV is not positive definite" or "objective in x0 returns NA", and R's lm reports
#: SEs of Inf or 0 there.
MIN_SCALE, MAX_SCALE = 1e-50, 1e50

#: Entries of a model matrix up to which it counts as small: its checks run on the whole matrix
#: at once, and its QR without limiting the BLAS threads (OpenBLAS runs the level-2 calls of
#: an unblocked QR, dgemv and dger, on one thread below 2304·4 and 2048·4 entries).
SMALL_MATRIX = 8192

_COLUMN = re.compile(r"^(?:C\()?v(\d+)(?:, contr\.sum\))?(?:\[(S\.|T\.)?L(\d+)\])?$")


@dataclass
class FixedDesign:
    """Fixed-effects design: ``X`` n×p (aliased columns removed), ``names`` R's column names,
    ``dropped`` names of aliased columns removed, ``assign`` index of the model term of each
    column (0 = intercept, i = ``terms[i-1]``), ``terms`` the model terms' labels."""

    X: np.ndarray
    names: list[str]
    dropped: list[str] = field(default_factory=list)
    assign: list[int] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)


@dataclass
class ReTermData:
    """One random-effects term's data.

    ``group`` grouping factor label (``Subject``, ``cask:batch``); ``levels`` its level labels;
    ``codes`` n-vector of level indices (0-based, int64); ``X`` n×pᵢ raw model matrix Xᵢ (Zᵢ is
    its Khatri-Rao product with the indicators of ``codes``); ``names`` R's column names of Xᵢ.
    """

    group: str
    levels: list[str]
    codes: np.ndarray
    X: np.ndarray
    names: list[str]

    @property
    def nlevels(self) -> int:
        return len(self.levels)


class FormulaicNames:
    """The model frame under generated names for formulaic (``v0``, levels ``L0``; see
    :mod:`mixedbridge.safenames`), with sum contrasts as ``C(v0, contr.sum)``, and the way back
    from formulaic's column names to R's coefficient names.

    Fields: ``frame``; ``contrasts`` (``treatment``/``sum``); ``names`` the
    :class:`~mixedbridge.safenames.SafeNames`; ``safe`` the encoded frame formulaic sees.
    """

    def __init__(self, frame: ModelFrame, contrasts: str) -> None:
        self.frame = frame
        self.contrasts = contrasts
        self._matrices: dict[tuple, tuple[np.ndarray, list[str], list[int]]] = {}
        self._scaled: list[np.ndarray] = []

    def check_scale(self, X: np.ndarray, names: list[str], where: str) -> None:
        """:func:`check_scale` of a matrix of :meth:`matrix`, once per array: a random-effects
        term with the fixed part's columns gets the same array, whose values passed already."""
        if any(X is done for done in self._scaled):
            return
        check_scale(X, names, where)
        self._scaled.append(X)

    @cached_property
    def names(self) -> SafeNames:
        """The frame's generated names (made on first use: the designs read the frame itself)."""
        return SafeNames(self.frame.data, suffix="")

    @cached_property
    def safe(self) -> pd.DataFrame:
        """The encoded frame (made on first use: only formulaic's reference grid reads it)."""
        return self.names.encoded()

    def token(self, label: str) -> str:
        name = self.names.token(label)
        if self.contrasts == "sum" and label in self.frame.factors:
            return f"C({name}, contr.sum)"
        return name

    def rhs(self, intercept: bool, terms: tuple[Term, ...]) -> str:
        parts = ["1" if intercept else "0"]
        parts += [":".join(self.token(v.label) for v in t.variables) for t in terms]
        return " + ".join(parts)

    def r_name(self, column: str) -> str:
        if column == "Intercept":
            return "(Intercept)"
        return ":".join(self._r_piece(piece) for piece in column.split(":"))

    def _r_piece(self, piece: str) -> str:
        m = _COLUMN.match(piece)
        if not m:
            raise ValueError(f"unexpected design column {piece!r}")
        label = self.names.label(m.group(1))
        if m.group(3) is None:
            return label
        j = int(m.group(3))
        if m.group(2) == "S.":
            return f"{label}{j + 1}"
        return f"{label}{self.names.categories(label)[j]}"

    def matrix(self, intercept: bool, terms: tuple[Term, ...]) -> tuple[np.ndarray, list[str], list[int]]:
        """The model matrix of ``terms``, R's column names and each column's term index, coded as
        R's ``model.matrix`` codes it (:func:`codings`). The same terms asked again (a random-effects
        term with the fixed part's columns) get the same array, not a second n-row copy; callers
        must not write into it."""
        key = (intercept, tuple(t.label for t in terms))
        if key not in self._matrices:
            self._matrices[key] = self._build(intercept, terms)
        X, names, assign = self._matrices[key]
        return X, list(names), list(assign)

    def _build(self, intercept: bool, terms: tuple[Term, ...]) -> tuple[np.ndarray, list[str], list[int]]:
        """:meth:`matrix`, made: the columns written once into one n×p array."""
        n = self.frame.nobs
        names, assign = (["(Intercept)"], [0]) if intercept else ([], [])
        cols: list[np.ndarray | None] = [None] if intercept else []
        for i, (term, full) in enumerate(zip(terms, codings(intercept, terms, self.frame.factors)), start=1):
            block: list[np.ndarray | None] = [None]
            labels = [""]
            for v in term.variables:
                pieces = self._pieces(v.label, v.label in full)
                # earlier variables vary fastest, as in R
                block = [col if c is None else c * col for col, _ in pieces for c in block]
                labels = [(lab + ":" if lab else "") + name for _, name in pieces for lab in labels]
            cols += block
            names += labels
            assign += [i] * len(block)
        X = np.empty((n, len(cols)))
        for j, col in enumerate(cols):
            X[:, j] = 1.0 if col is None else col
        X.flags.writeable = False
        return X, names, assign

    def _pieces(self, label: str, full: bool) -> list[tuple[np.ndarray, str]]:
        """A variable's columns in a term: the numeric column, a factor's indicators of every level
        (``full``), or its contrasts (treatment: levels after the first; sum: ``contr.sum``); a
        matrix-valued variable's columns in order."""
        if label in self.frame.matrices:
            return [(self.frame.floats(c), c) for c in self.frame.matrices[label]]
        if label not in self.frame.factors:
            return [(self.frame.floats(label), label)]
        col = self.frame.factor(label)
        if col is None:
            raise ValueError(f"{label!r} is listed as a factor but its column is not one")
        codes, levels = col.codes, col.labels
        ind = [(codes == j).astype(float) for j in range(len(levels))]
        if full:
            return [(x, f"{label}{lev}") for x, lev in zip(ind, levels)]
        if self.contrasts == "sum":
            return [(ind[j] - ind[-1], f"{label}{j + 1}") for j in range(len(levels) - 1)]
        return [(ind[j], f"{label}{levels[j]}") for j in range(1, len(levels))]


def codings(intercept: bool, terms: tuple[Term, ...], factors: set[str]) -> list[set[str]]:
    """Per term, the factors coded by indicators of all their levels rather than by contrasts, by
    R's rule (``TermCode`` in R's model.c): a factor is coded by contrasts when the term without
    it (its margin) is empty or lies inside an earlier term; without an intercept the first factor
    of the first term that has one is coded by indicators too."""
    out: list[set[str]] = []
    first = not intercept
    for i, term in enumerate(terms):
        labels = [v.label for v in term.variables]
        earlier = [{v.label for v in t.variables} for t in terms[:i]]
        full = set()
        for lab in labels:
            if lab not in factors:
                continue
            margin = set(labels) - {lab}
            if first:
                full.add(lab)
                first = False
            elif margin and not any(margin <= e for e in earlier):
                full.add(lab)
        out.append(full)
    return out


def check_scale(X: np.ndarray, names: list[str], where: str) -> None:
    """Raise :class:`~mixedbridge.errors.ModelError` naming the first column of X (in ``where``:
    "fixed effects", "random-effects term (...)") that is not finite or whose scale is outside
    [:data:`MIN_SCALE`, :data:`MAX_SCALE`] (an all-zero column is left to the aliasing rule)."""
    if X.size == 0:
        return
    if X.size <= SMALL_MATRIX:
        top = np.abs(X).max(axis=0).tolist()
    else:  # column by column: numpy's axis-0 reduction of a tall narrow n×p matrix is many times slower
        top = [float(max(X[:, j].max(), -X[:, j].min())) for j in range(X.shape[1])]
    for name, m in zip(names, top):
        if math.isfinite(m) and not (m > MAX_SCALE or 0 < m < MIN_SCALE):
            continue
        label = name if len(name) <= 60 else name[:57] + "..."
        if not math.isfinite(m):
            raise ModelError(f"the column {label!r} of the {where} has infinite or missing values "
                             "(an overflow in a transformation?); rescale or fix it")
        factor = f"1e{-int(np.round(np.log10(m))):+d}"
        raise ModelError(f"the column {label!r} of the {where} has values of order {m:.3g} "
                         f"(outside {MIN_SCALE:.0e} to {MAX_SCALE:.0e} in absolute value): its "
                         "coefficient's variance and its tests cannot be computed in floating point. "
                         f"Rescale it, e.g. multiply it by {factor}, or express it in other "
                         "units")


def drop_aliased(X: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[int]]:
    """Keep the columns that are not linear combinations of earlier ones, in order (as R's
    LINPACK QR with limited pivoting does); returns the kept matrix (X itself when every column
    is kept) and kept indices.

    One Householder QR (R only) answers the common case: when every column's |Rⱼⱼ| is clearly
    above the tolerance, none is aliased. Otherwise the columns are taken one at a time against
    those kept (Gram-Schmidt, twice)."""
    if _full_rank(X):
        return X, list(range(X.shape[1]))
    return _drop_stepwise(X)


#: How far above RANK_TOL every |Rⱼⱼ|/‖xⱼ‖ must be for X to count as of full rank without the
#: column-by-column pass (which decides the columns near the tolerance).
_CLEAR_MARGIN = 10.0


def _full_rank(X: np.ndarray) -> bool:
    """Whether no column of X is (by a margin) near a linear combination of the earlier ones."""
    n, p = X.shape
    if p == 0 or n < p:
        return p == 0
    if X.size <= SMALL_MATRIX:  # below OpenBLAS's threading sizes: no thread pool to limit
        return _clear_rank(X)
    from .lmm.threads import blas_threads  # here: mixedbridge.lmm imports this module

    # one thread: OpenBLAS's threaded QR of a tall narrow matrix is 2-30x slower here (7584 x 6:
    # 0.1 ms against 3-7 ms; 10^6 x 10: 0.15 s against 0.25-0.3 s), its dot product of a column
    # of more than 10,000 rows wakes the pool too, and the idle threads spin
    with blas_threads(1):
        return _clear_rank(X)


def _clear_rank(X: np.ndarray) -> bool:
    """:func:`_full_rank` of a matrix with at least as many rows as columns: every column's
    |Rⱼⱼ| of one Householder QR (R only) above the tolerance by :data:`_CLEAR_MARGIN`."""
    norms = [math.sqrt(float(np.dot(X[:, j], X[:, j]))) for j in range(X.shape[1])]
    if not all(math.isfinite(m) and m != 0 for m in norms):
        return False
    if len(norms) == 1:  # one column (an intercept): its |R₁₁| is its norm, far above the tolerance
        return True
    qr, _, _, info = lapack.dgeqrf(np.array(X, order="F"), overwrite_a=1)  # into one copy, not two
    if info != 0:
        return False
    return all(r > _CLEAR_MARGIN * RANK_TOL * m for r, m in zip(np.abs(np.diagonal(qr)).tolist(), norms))


def _drop_stepwise(X: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """:func:`drop_aliased` column by column."""
    n = X.shape[0]
    Q = np.empty((n, 0))
    keep: list[int] = []
    for j in range(X.shape[1]):
        x = X[:, j]
        norm = np.linalg.norm(x)
        r = x - Q @ (Q.T @ x)
        r = r - Q @ (Q.T @ r)
        rn = np.linalg.norm(r)
        if norm == 0 or rn <= RANK_TOL * norm:
            continue
        Q = np.column_stack([Q, r / rn])
        keep.append(j)
    return (X if len(keep) == X.shape[1] else X[:, keep]), keep


def fixed_design(desc: ModelDescription, frame: ModelFrame, contrasts: str = "treatment",
                 safe: FormulaicNames | None = None) -> FixedDesign:
    """Build X for the fixed part, dropping aliased columns as lme4 does (``safe``: the frame's
    :class:`FormulaicNames`, shared with :func:`random_designs` so equal designs share rows)."""
    safe = safe or FormulaicNames(frame, contrasts)
    X, names, assign = safe.matrix(desc.intercept, desc.fixed)
    safe.check_scale(X, names, "fixed effects")
    Xk, keep = drop_aliased(X, names)
    dropped = [names[j] for j in range(len(names)) if j not in keep]
    return FixedDesign(Xk, [names[j] for j in keep], dropped, [assign[j] for j in keep],
                       [t.label for t in desc.fixed])


def random_designs(desc: ModelDescription, frame: ModelFrame, contrasts: str = "treatment",
                   safe: FormulaicNames | None = None) -> list[ReTermData]:
    """Each random-effects term's Xᵢ and grouping factor (``safe`` as in :func:`fixed_design`)."""
    safe = safe or FormulaicNames(frame, contrasts)
    return [_reterm(r, frame, safe) for r in desc.random]


def _reterm(term: RandomTerm, frame: ModelFrame, safe: FormulaicNames) -> ReTermData:
    X, names, _ = safe.matrix(term.intercept, term.terms)
    safe.check_scale(X, names, f"random-effects term ({' + '.join(names)} | {term.group_label})")
    levels, codes = frame.grouping(term.group)
    return ReTermData(term.group_label, levels, codes, X, names)
