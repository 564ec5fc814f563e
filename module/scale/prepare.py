"""One model over a Dask DataFrame: the passes over the partitions and the prepared model.

* pass 1: each partition's model frame gives its factor levels, rows kept and rows deleted
  (listwise deletion) and the sums that centre the response; the levels are merged with R's
  order rules (:mod:`.levels`);
* pass 2: the tall-skinny QR of [X, √w X, √w(y − o − c)] on the global levels (:mod:`.crossprod`):
  aliased columns, the fixed-effects basis, the scale and response checks;
* pass 3: the blocks of [Z X̃ ỹ]ᵀW[Z X̃ ỹ], summed as a tree, and a small sample of rows (the
  first rows of each cell of the fixed-effects factors) that the type III contrasts are built on.

Everything after pass 3 (the optimizer, the fit, the tests) runs here on the reduced blocks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..design import FixedDesign, FormulaicNames, ReTermData, check_scale
from ..errors import DataError, FormulaError, ModelError
from ..formula import ModelDescription, parse_formula
from ..frame import ModelFrame
from ..guard import check_memory
from ..lmm.basis import FixedBasis
from ..problem import Problem
from .blockmodel import BlockModel, basis_from, gamma0, kept_columns, structure_of
from .crossprod import Blocks, QRPiece, part_blocks, qr_piece, r_factor, to_basis
from .daskops import tree_reduce
from .levels import LevelsSeen, check_listed, combo_levels, ordered
from .partition import FrameRecipe, PartArrays, design_factors, levels_seen, part_arrays, part_frame

#: Rows per cell of the fixed-effects factors kept in the sample the type III contrasts use.
SAMPLE_PER_CELL = 40


@dataclass
class Pass1:
    """Pass 1 of one partition or a subtree: levels seen, rows after filters (``filtered``),
    rows deleted (``missing``), rows used (``nobs``), Σy and Σo over them."""

    seen: LevelsSeen
    filtered: int = 0
    missing: int = 0
    nobs: int = 0
    ysum: float = 0.0
    osum: float = 0.0

    def __add__(self, other: Pass1) -> Pass1:
        return Pass1(self.seen.merge(other.seen), self.filtered + other.filtered, self.missing + other.missing,
                     self.nobs + other.nobs, self.ysum + other.ysum, self.osum + other.osum)


def pass1(pdf: pd.DataFrame, recipe: FrameRecipe) -> Pass1:
    seen, pf = levels_seen(pdf, recipe)
    out = Pass1(seen, pf.filtered, pf.missing)
    if pf.frame is not None:
        out.nobs = pf.frame.nobs
        out.ysum = float(pf.frame.response(recipe.desc).sum())
        o = pf.frame.offset
        out.osum = 0.0 if o is None else float(o.sum())
    return out


@dataclass
class Centre:
    """The centring of the response: y − o − c with c = ``cy`` − ``co`` (only with an intercept,
    as :mod:`mixedbridge.lmm.basis` centres on a constant column)."""

    cy: float = 0.0
    co: float = 0.0
    on: bool = False

    def apply(self, a: PartArrays) -> np.ndarray:
        y = a.y - self.cy if self.on else a.y
        if a.offset is None:
            return y
        return y - (a.offset - self.co if self.on else a.offset)


@dataclass
class Pass2:
    """Pass 2 of a partition or subtree: the basis piece and the design's column names and
    terms (``assign``), and the random-effects terms' column names."""

    piece: QRPiece
    names: list[str] = field(default_factory=list)
    assign: list[int] = field(default_factory=list)
    re_names: list[list[str]] = field(default_factory=list)

    def __add__(self, other: Pass2) -> Pass2:
        first = self if self.names or not other.names else other
        return Pass2(self.piece + other.piece, first.names, first.assign, first.re_names)


def pass2(pdf: pd.DataFrame, recipe: FrameRecipe, centre: Centre) -> Pass2 | None:
    pf = part_frame(pdf, recipe)
    a = part_arrays(pdf, recipe, pf)
    if a is None or pf.frame is None:
        return None
    frame = pf.frame
    safe = FormulaicNames(_global_frame(frame, recipe), recipe.contrasts)
    _, names, assign = safe.matrix(recipe.desc.intercept, recipe.desc.fixed)
    return Pass2(qr_piece(a.X, centre.apply(a), a.y, a.weights), names, assign, [t.names for t in a.reterms])


def _global_frame(frame: ModelFrame, recipe: FrameRecipe) -> ModelFrame:
    data = frame.data.copy()
    for lab in design_factors(frame, recipe):
        data[lab] = data[lab].cat.set_categories(recipe.level_index(lab))
    return ModelFrame(data, set(frame.factors), data, frame.n_missing, [], frame.matrices)


@dataclass
class Pass3:
    """Pass 3 of a partition or subtree: the blocks and the sample rows."""

    blocks: Blocks
    sample: pd.DataFrame

    def __add__(self, other: Pass3) -> Pass3:
        return Pass3(self.blocks + other.blocks, pd.concat([self.sample, other.sample]))


@dataclass
class BasisPlan:
    """What pass 3 needs from pass 2: kept columns, R, γ₀ and the centring."""

    keep: list[int]
    basis: FixedBasis
    g0: np.ndarray
    centre: Centre


def pass3(pdf: pd.DataFrame, recipe: FrameRecipe, plan: BasisPlan, cells: list[str]) -> Pass3 | None:
    pf = part_frame(pdf, recipe)
    a = part_arrays(pdf, recipe, pf)
    if a is None or pf.frame is None:
        return None
    X = a.X[:, plan.keep]
    Xt, yt = to_basis(X, plan.centre.apply(a), plan.basis.R, plan.g0)
    blocks = part_blocks(structure_of(a.reterms), Xt, yt, a.weights)
    data = _global_frame(pf.frame, recipe).data
    sample = data.groupby(cells, observed=True).head(SAMPLE_PER_CELL) if cells else data.head(SAMPLE_PER_CELL)
    return Pass3(blocks, sample)


@dataclass
class Prepared:
    """A model prepared over Dask: the :class:`~mixedbridge.problem.Problem` the tables and
    tests read (its frame a sample of rows, its X see :func:`_problem`), the block model ready to
    fit, the aliased columns dropped, whether X has XᵀX of every row (``gram_exact``) and
    whether the design of the sample has full column rank (``sample_full_rank``); for the map of
    :mod:`.residuals`: the frame ``recipe``, the kept columns and the Dask DataFrame."""

    problem: Problem
    model: BlockModel
    dropped: list[str]
    gram_exact: bool = True
    sample_full_rank: bool = True
    recipe: FrameRecipe | None = None
    keep: list[int] = field(default_factory=list)
    ddf: Any = None


def prepare_dask(spec: dict, ddf, factor_hint: set[str] | None = None, from_file: bool = False) -> Prepared:
    """Prepare the validated ``spec``'s model over the Dask DataFrame ``ddf`` (three passes)."""
    desc = parse_formula(spec["formula"])
    check_analysis(spec, desc)
    recipe = FrameRecipe.from_spec(desc, spec, factor_hint or set(), from_file).with_integer_groups(
        dict(ddf.dtypes.items()))
    parts = ddf.to_delayed()
    p1 = tree_reduce(parts, pass1, recipe)
    _check_rows(p1, ddf, recipe)
    _global_levels(p1.seen, recipe, ddf)
    centre = Centre(p1.ysum / p1.nobs, p1.osum / p1.nobs, desc.intercept)
    p2 = tree_reduce(parts, pass2, recipe, centre)
    names = p2.names
    check_scale(p2.piece.colmax[None, :], names, "fixed effects")
    keep = kept_columns(p2.piece, names)
    shift_col = 0 if desc.intercept else None
    basis = basis_from(p2.piece, keep, names, centre.cy - centre.co, shift_col)
    reterms = _global_reterms(desc, recipe, p2.re_names)
    _check_model(p2.piece, reterms, len(keep), p1.nobs)
    check_memory(reterms, 0, len(keep))
    plan = BasisPlan(keep, basis, gamma0(basis, centre.cy - centre.co, shift_col), centre)
    cells = sorted({v.label for t in desc.fixed for v in t.variables} & _factor_labels(recipe))
    p3 = tree_reduce(parts, pass3, recipe, plan, cells)
    model = BlockModel.from_blocks([names[j] for j in keep], structure_of(reterms), basis, p3.blocks,
                                   bool(spec["options"].get("reml", True)), p3.blocks.sum_log_w != 0.0
                                   or bool(spec["options"].get("weights")))
    dropped = [names[j] for j in range(len(names)) if j not in keep]
    gram = r_factor(p2.piece.Ru[:, keep]) if gram_suffices(desc) else None
    problem = _problem(spec, desc, recipe, p3.sample, p1, names, keep, p2.assign, reterms, gram)
    full_rank = gram is not None or np.linalg.matrix_rank(problem.fixed.X) == len(keep)
    return Prepared(problem, model, dropped, gram is not None, bool(full_rank), recipe, keep, ddf)


def gram_suffices(desc: ModelDescription) -> bool:
    """Whether the anova contrasts need only XᵀX of every row (types I and II, and type III with
    one fixed term, which lmerTest computes as type I), rather than the design of a sample."""
    return len(desc.fixed) <= 1


#: Why GLMMs are refused over Dask.
NO_GLMM = ("GLMMs are not supported over Dask: PIRLS needs a pass over the rows per iteration (one "
           "Dask job per step); fit in memory")


def check_analysis(spec: dict, desc: ModelDescription) -> None:
    """Refuse what the Dask backend does not fit: GLMMs, ordinary regressions, models without a
    random-effects term."""
    family = (spec.get("options") or {}).get("family")
    if spec["analysis"] == "glmm" or family not in (None, "gaussian"):
        raise FormulaError(NO_GLMM, "/analysis")
    if spec["analysis"] != "lmm":
        raise FormulaError(f"over Dask only linear mixed models (analysis 'lmm') are fitted, not "
                           f"{spec['analysis']!r}", "/analysis")
    if not desc.random:
        raise FormulaError("analysis 'lmm' needs at least one random-effects term such as (1 | participant)")


def _check_rows(p1: Pass1, ddf, recipe: FrameRecipe) -> None:
    if p1.filtered == 0 and recipe.spec.get("filter"):
        raise DataError("the filters leave no rows", "/filter")
    if p1.nobs == 0:
        raise DataError("no complete rows remain: every row misses a value of a model variable", "/data")


def _order_of(label: str, recipe: FrameRecipe, ddf) -> tuple[str, list | None]:
    """How the levels of factor ``label`` are ordered (:data:`.levels.ORDERS`)."""
    var = next((v for v in recipe.desc.variables if v.label == label), None)
    column = label
    if var is not None and not var.is_column:
        if var.is_logical:
            return "logical", None
        if var.function == "cut":
            return "interval", None
        column = var.columns[0]
    if column in recipe.given:
        return "given", recipe.given[column]
    dtype = ddf.dtypes[column] if column in ddf.columns else object
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    return ("number" if numeric else "text"), None


def _global_levels(seen: LevelsSeen, recipe: FrameRecipe, ddf) -> None:
    """The whole data's levels of every factor and grouping factor, into ``recipe``."""
    for col, given in recipe.given.items():
        check_listed(col, seen.listed.get(col, set()), given)
    seen.settle_values()
    for label, values in seen.values.items():
        recipe.values[label] = values
        recipe.levels[label] = values.astype(str).tolist()
    for label, labels in seen.present.items():
        order, listed = _order_of(label, recipe, ddf)
        full = ordered(labels, order, listed)
        recipe.levels[label] = [lev for lev in full if lev in labels]
    for group, combos in seen.combos.items():
        recipe.combos[group] = combo_levels(combos, [recipe.levels[g] for g in group])
        recipe.levels[":".join(group)] = [":".join(c) for c in recipe.combos[group]]


def _factor_labels(recipe: FrameRecipe) -> set[str]:
    grouping = {":".join(r.group) for r in recipe.desc.random}
    return {lab for lab in recipe.levels if lab not in grouping or lab in
            {v.label for v in recipe.desc.variables}}


def _global_reterms(desc: ModelDescription, recipe: FrameRecipe, names: list[list[str]]) -> list[ReTermData]:
    return [ReTermData(r.group_label, list(recipe.levels[r.group_label]), np.zeros(0, dtype=np.int64),
                       np.zeros((0, len(nm))), list(nm)) for r, nm in zip(desc.random, names)]


def _check_model(piece: QRPiece, reterms: list[ReTermData], p: int, n: int) -> None:
    """The checks of :func:`mixedbridge.lmm.validate.check_inputs` that the sums allow."""
    seen: set[str] = set()
    for t in reterms:
        nl = len(t.levels)
        if t.group not in seen and nl < 2:
            raise ModelError(f"the grouping factor {t.group!r} has only {nl} level in the data used; a random "
                             "effect needs at least 2 groups")
        if t.group not in seen and nl >= n:
            raise ModelError(f"the grouping factor {t.group!r} has {nl} levels for {n} observations: every "
                             "observation is its own group")
        seen.add(t.group)
        if n <= nl * t.X.shape[1]:
            raise ModelError(f"a term on {t.group!r} has {nl * t.X.shape[1]} random effects for {n} observations; "
                             "simplify the term")
    if piece.ymin == piece.ymax:
        raise ModelError("the response has zero variance (all values are equal); there is nothing to model",
                         "/formula")
    if n <= p:
        raise ModelError(f"{n} observations cannot estimate {p} fixed-effect coefficients and a residual "
                         "variance", "/formula")
    if not piece.wmin > 0:
        raise ModelError("prior weights must be finite and positive, one per observation", "/weights")


def _problem(spec: dict, desc: ModelDescription, recipe: FrameRecipe, sample: pd.DataFrame, p1: Pass1,
             names: list[str], keep: list[int], assign: list[int], reterms: list[ReTermData],
             gram: np.ndarray | None) -> Problem:
    """The Problem the tables and tests read: its frame the sample rows on the global levels; its
    design ``gram`` (a square matrix with XᵀX of every row, all the contrasts of
    :func:`gram_suffices` read) or else the sample's design (type III contrasts of several terms,
    which depend only on how the full-coding columns lie in the span of X, not on which rows)."""
    data = sample.copy()
    factors = {lab for lab in data.columns if isinstance(data[lab].dtype, pd.CategoricalDtype)}
    for lab in factors:
        data[lab] = data[lab].cat.set_categories(recipe.levels.get(lab, list(data[lab].cat.categories)))
    notes = []
    if p1.missing:
        notes.append(f"{p1.missing} row{'s' if p1.missing != 1 else ''} with missing values in model variables "
                     f"removed (listwise deletion); {p1.nobs} rows used.")
    frame = ModelFrame(data, factors, data, p1.missing, notes, dict(data.attrs.get("matrices", {})))
    X, _, _ = FormulaicNames(frame, recipe.contrasts).matrix(desc.intercept, desc.fixed)
    X = np.asarray(X)[:, keep] if gram is None else gram
    fixed = FixedDesign(X, [names[j] for j in keep],
                        [names[j] for j in range(len(names)) if j not in keep], [assign[j] for j in keep],
                        [t.label for t in desc.fixed])
    return Problem("lmm", desc, frame, spec["options"], fixed, reterms)
