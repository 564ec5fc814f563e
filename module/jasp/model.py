"""From JASP's options and data to one model, as JASP's ``.mmReadData`` and ``.mmModelFormula``
build it: the rows used, the factors and their levels, and the model with JASP's pruning of
random slopes.

The rows are prepared by :func:`mixedbridge.frame.model_frame` (listwise deletion over the
dependent, fixed and random variables, which JASP reads together; factor levels and their
labels). The model is a syntax tree assembled here and turned into a
:class:`~mixedbridge.formula.ModelDescription` by :func:`mixedbridge.formula.from_tree`; no
formula text is written to be parsed again. The text (every name backtick-quoted) is written
only for the spec :func:`mixedbridge.jasp.translate` returns, backticks and backslashes in
names escaped as R writes them.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..formula import ModelDescription, Node, deparse, from_tree, left_spine
from ..frame import ModelFrame, model_frame
from .errors import JaspOptionError
from .options import TEST_METHODS

INTERACTION = "\u2009\u273b\u2009"
#: JASP's import threshold between categorical and scale (Preferences → Data, default 10).
SCALE_THRESHOLD = 10

Term = tuple[str, ...]


@dataclass
class Footnote:
    text: str
    symbol: str = "<em>Note.</em>"


@dataclass(frozen=True)
class Variables:
    """The variables JASP reads: ``dependent``, ``fixed`` (``fixedVariables``) and ``random``
    (the grouping factors; none for ``lm``)."""

    dependent: str
    fixed: list[str]
    random: list[str]

    @property
    def all(self) -> list[str]:
        return list(dict.fromkeys([self.dependent] + self.fixed + self.random))

    def by_option(self) -> list[tuple[str, list[str]]]:
        return [("dependent", [self.dependent]), ("fixedVariables", self.fixed), ("randomVariables", self.random)]

    def label(self, name: str) -> str:
        """The model frame's label of a variable: R's deparsed name (``x``, ```my var```), the
        plain column name for a grouping factor."""
        return name if name in self.random else deparse(Node("name", name))


@dataclass
class RandomPart:
    """One grouping factor's random-effects term: ``node`` its ``( ... | group)`` (or
    ``( ... || group)``); ``footnotes`` on slopes removed or added."""

    node: Node
    footnotes: list[Footnote] = field(default_factory=list)


@dataclass
class Model:
    """One model to fit, built from JASP's options.

    Fields: ``analysis``; ``variables``; ``factors`` the JASP variables that are factors;
    ``read`` every variable's prepared column over the rows used (listwise complete in all of
    them); ``frame`` the model's frame on those rows (the deletion made when reading on
    record); ``tree`` the formula (response, right-hand side); ``desc`` its model description;
    ``reml``; ``footnotes`` for the ANOVA table (slopes removed or added).
    """

    analysis: str
    variables: Variables
    factors: set[str]
    read: ModelFrame
    frame: ModelFrame
    tree: tuple[Node, Node]
    desc: ModelDescription
    reml: bool
    footnotes: list[Footnote] = field(default_factory=list)

    @property
    def groups(self) -> list[str]:
        return self.variables.random

    @property
    def n_missing(self) -> int:
        return self.frame.n_missing

    @property
    def formula(self) -> str:
        """The formula as text, every name backtick-quoted (JASP's ``.mmModelFormula``)."""
        lhs, rhs = self.tree
        return f"{text(lhs)}~{text(rhs)}"

    @property
    def levels(self) -> dict[str, list[str]]:
        """Each factor's level labels, in order."""
        return {v: [str(c) for c in self.column(v).cat.categories] for v in self.variables.all if v in self.factors}

    def column(self, name: str) -> pd.Series:
        """The prepared column of a JASP variable."""
        return self.read.data[self.variables.label(name)]

    def rows(self) -> pd.DataFrame:
        """The rows used, by JASP's variable names: values as given, factors as their level
        labels."""
        out = self.frame.source[self.variables.all].reset_index(drop=True)
        for v, lev in self.levels.items():
            out[v] = np.asarray(lev, dtype=object)[self.column(v).cat.codes.to_numpy()]
        return out


def quote(name: str) -> str:
    """A name in backticks, a backslash before each backslash or backtick in it."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def text(node: Node) -> str:
    """Formula text of a tree built here (names quoted, no spaces)."""
    if node.kind == "name":
        return quote(str(node.value))
    if node.kind == "num":
        return deparse(node)
    if node.kind == "paren":
        return f"({text(node.children[0])})"
    first, rest = left_spine(node, {str(node.value)} if node.kind == "bin" else set())
    if not rest:
        left, right = node.children
        return f"{text(left)}{node.value}{text(right)}"
    return text(first) + "".join(f"{op}{text(right)}" for op, right in rest)


def _check_column(data: pd.DataFrame, name: str, option: str, path: str) -> None:
    """The variable is one column of the data, and it has values."""
    if name not in data.columns:
        near = ", ".join(repr(c) for c in list(data.columns)[:12])
        raise JaspOptionError(option, f"option '{option}': variable {name!r} is not a column of the data; "
                              f"the data have {near}", path)
    if list(data.columns).count(name) > 1:
        raise JaspOptionError(option, f"option '{option}': the data have more than one column named {name!r}; "
                              "rename the columns so that each name is used once", path)
    if not data[name].notna().any():
        raise JaspOptionError(option, f"option '{option}': variable {name!r} has no values (it is missing in "
                              "every row); choose another variable", path)


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def ready(opts: dict, analysis: str) -> tuple[str, str] | None:
    """What the analysis still needs before it can run (JASP's ``.mmReady``): the option to
    fill in and why, or None."""
    if not opts["dependent"]:
        return "dependent", "This analysis requires a dependent variable to run."
    if analysis == "lmm" and not opts["randomVariables"]:
        return "randomVariables", "This analysis requires at least one random effects grouping factor to run."
    if not opts["fixedEffects"] and not opts["includeIntercept"]:
        return "fixedEffects", "This analysis requires at least one fixed effect or the intercept to run."
    return None


def build(opts: dict, data: pd.DataFrame, analysis: str = "lmm") -> Model:
    """Check the variables against the data, read the rows, and build the model."""
    variables = _variables(opts, data, analysis)
    factors = _factors(opts, data, variables)
    _check_finite(data, variables, factors)
    read = _read(data, variables, factors)
    fixed = fixed_terms(opts)
    parts = _random_parts(opts, fixed, read, variables, factors) if analysis == "lmm" else []
    tree = (_name(variables.dependent), _plus(_fixed_part(opts, fixed) + [p.node for p in parts]))
    desc = from_tree(*tree)
    frame = _model_rows(read, desc, variables, factors)
    reml = analysis == "lm" or TEST_METHODS[opts["testMethod"]].reml
    return Model(analysis, variables, factors, read, frame, tree, desc, reml, [n for p in parts for n in p.footnotes])


# ------------------------------------------------------------------------- variables, rows
def _variables(opts: dict, data: pd.DataFrame, analysis: str) -> Variables:
    """The variables, checked: usable names, columns of the data, no variable in two roles."""
    v = Variables(opts["dependent"], opts["fixedVariables"], opts["randomVariables"] if analysis == "lmm" else [])
    for option, names in v.by_option():
        for i, n in enumerate(names):
            _check_column(data, n, option, f"/{option}" + (f"/{i}" if option != "dependent" else ""))
    if v.dependent in v.fixed or v.dependent in v.random:
        raise JaspOptionError("dependent", f"option 'dependent': {v.dependent!r} is also a fixed or random variable")
    overlap = sorted(set(v.fixed) & set(v.random))
    if overlap:
        raise JaspOptionError("randomVariables", f"option 'randomVariables': {overlap[0]!r} is also in "
                              "fixedVariables; a grouping factor cannot be a fixed effect here")
    return v


def imported_type(col: pd.Series) -> str:
    """The column type JASP's importer gives a column (its "threshold for scale", 10): text is
    nominal; whole numbers with at most 10 distinct values are ordinal, nominal when 2; other
    numbers are scale."""
    if not _is_numeric(col):
        return "nominal"
    x = col.dropna().to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    distinct = len(np.unique(x))
    if len(x) and np.all(x == np.round(x)) and distinct <= SCALE_THRESHOLD:
        return "nominal" if distinct == 2 else "ordinal"
    return "scale"


def _factors(opts: dict, data: pd.DataFrame, v: Variables) -> set[str]:
    """The variables that are factors: grouping factors, and fixed variables typed nominal or
    ordinal (declared in the options or beside the data, else by JASP's import rule) or
    holding text. The dependent must be a scale variable."""
    types = opts.get("types", {})
    dep = data[v.dependent]
    if types.get(v.dependent) in ("nominal", "ordinal") or not _is_numeric(dep):
        raise JaspOptionError("dependent", f"option 'dependent': {v.dependent!r} must be a scale (numeric) variable"
                              + ("" if _is_numeric(dep) else "; it holds text"))
    factors = set(v.random)
    for x in v.fixed:
        declared, numeric = types.get(x) or imported_type(data[x]), _is_numeric(data[x])
        if declared == "scale" and not numeric:
            raise JaspOptionError("fixedVariables", f"option 'fixedVariables': {x!r} is declared 'scale' but holds "
                                  "text; declare it nominal or ordinal")
        if declared in ("nominal", "ordinal") or not numeric:
            factors.add(x)
    return factors


def _check_finite(data: pd.DataFrame, v: Variables, factors: set[str]) -> None:
    """No infinite values in the numeric dependent and fixed variables."""
    for option, names in v.by_option()[:2]:
        for x in names:
            if x in factors or not _is_numeric(data[x]):
                continue
            n_inf = int(np.isinf(data[x].to_numpy(dtype=float)).sum())
            if n_inf:
                raise JaspOptionError(option, f"option '{option}': variable {x!r} has {n_inf} infinite value(s); "
                                      "remove them or choose another variable")


def _read(data: pd.DataFrame, v: Variables, factors: set[str]) -> ModelFrame:
    """The rows JASP reads (complete in every variable), prepared by :func:`model_frame`."""
    rows = data[v.all].reset_index(drop=True)
    if not rows.notna().all(axis=1).any():
        raise JaspOptionError("dependent", "no rows remain after removing rows with missing values in the "
                              "dependent, fixed and random variables")
    reading = _plus([_one(True)] + [_name(x) for x in v.fixed] + [_bar(_one(True), "|", g) for g in v.random])
    frame = model_frame(rows, from_tree(_name(v.dependent), reading), {}, factors)
    for x in v.all:
        if x in factors and len(frame.data[v.label(x)].cat.categories) < 2:
            option = "randomVariables" if x in v.random else "fixedVariables"
            raise JaspOptionError(option, f"option '{option}': factor {x!r} has fewer than two levels "
                                  "after removing missing values")
    return frame


def _model_rows(read: ModelFrame, desc: ModelDescription, v: Variables, factors: set[str]) -> ModelFrame:
    """The model's frame: the rows read, prepared for the model's variables (the rows are
    complete: nothing more is deleted; the deletion made when reading stays on record)."""
    rows = read.source
    levels = {x: [str(c) for c in read.data[v.label(x)].cat.categories] for x in v.all if x in factors}
    frame = model_frame(rows, desc, {"levels": levels}, factors)
    return replace(frame, n_missing=read.n_missing, notes=list(read.notes))


def _by_name(frame: ModelFrame, v: Variables) -> pd.DataFrame:
    """The prepared columns of the variables, keyed by their JASP names."""
    return pd.DataFrame({n: frame.data[v.label(n)] for n in v.all})


# ---------------------------------------------------------------------------- the formula
def _name(name: str) -> Node:
    return Node("name", name)


def _one(intercept: bool) -> Node:
    return Node("num", 1.0 if intercept else 0.0)


def _join(op: str, nodes: list[Node]) -> Node:
    """``a op b op c`` as R's parser nests it (left to right)."""
    out = nodes[0]
    for n in nodes[1:]:
        out = Node("bin", op, (out, n))
    return out


def _plus(nodes: list[Node]) -> Node:
    return _join("+", nodes)


def _star(term: Term) -> Node:
    return _join("*", [_name(v) for v in term])


def _bar(lhs: Node, op: str, group: str) -> Node:
    return Node("paren", None, (Node("bar", op, (lhs, _name(group))),))


def _simplify(terms: list[Term]) -> list[Term]:
    """Drop terms contained in another (``*`` brings them back), as JASP's .mmSimplifyTerms."""
    out = []
    for i, t in enumerate(terms):
        if any(set(t) <= set(u) and (set(t) != set(u) or j < i) for j, u in enumerate(terms) if j != i):
            continue
        out.append(t)
    return out


def fixed_terms(opts: dict) -> list[Term]:
    """The fixed-effects terms, checked against ``fixedVariables``."""
    out = []
    for i, comps in enumerate(opts["fixedEffects"]):
        for v in comps:
            if v not in opts["fixedVariables"]:
                raise JaspOptionError("fixedEffects", f"option 'fixedEffects' (/fixedEffects/{i}): term "
                                      f"{':'.join(comps)!r} names {v!r}, which is not in fixedVariables "
                                      f"({', '.join(opts['fixedVariables']) or 'none'})", f"/fixedEffects/{i}")
        if len(set(comps)) != len(comps):
            raise JaspOptionError("fixedEffects", f"option 'fixedEffects' (/fixedEffects/{i}): a variable repeats "
                                  f"in term {':'.join(comps)!r}", f"/fixedEffects/{i}")
        out.append(tuple(comps))
    return out


def _fixed_part(opts: dict, fixed: list[Term]) -> list[Node]:
    return [_one(opts["includeIntercept"])] + [_star(t) for t in _simplify(fixed)]


def _implied(terms: list[Term]) -> list[Term]:
    """Every term that ``a*b*...`` expands to, in R's order (by order, then appearance)."""
    seen: dict[frozenset, Term] = {}
    for t in terms:
        for k in range(1, len(t) + 1):
            for sub in itertools.combinations(t, k):
                seen.setdefault(frozenset(sub), sub)
    return sorted(seen.values(), key=len)


# ---------------------------------------------------------------------- random effects
def _random_parts(opts: dict, fixed: list[Term], frame: ModelFrame, v: Variables,
                  factors: set[str]) -> list[RandomPart]:
    """Each grouping factor's random-effects term, in the order of ``randomVariables``."""
    rows = {r["group"]: r for r in opts["randomEffects"]}
    for r in opts["randomEffects"]:
        if r["group"] not in v.random:
            raise JaspOptionError("randomEffects", f"option 'randomEffects' (/randomEffects/{r['index']}/value): "
                                  f"grouping factor {r['group']!r} is not in randomVariables "
                                  f"({', '.join(v.random)})", f"/randomEffects/{r['index']}/value")
    data = _by_name(frame, v)
    parts = []
    for g in v.random:
        row, notes = (rows[g], []) if g in rows else _default_row(g, fixed)
        part = _random_part(row, fixed, data, factors)
        part.footnotes[:0] = notes
        parts.append(part)
    return parts


def _default_row(group: str, fixed: list[Term]) -> tuple[dict, list[Footnote]]:
    """JASP's random-effects row for a grouping factor the document has none for."""
    row = {"group": group, "correlations": True, "index": None,
           "components": [(["Intercept"], True)] + [(list(t), True) for t in fixed]}
    return row, [Footnote(f"randomEffects had no row for '{group}'; JASP's default was used (random intercept "
                          "and every fixed-effects term as a slope, correlated).", "Note:")]


def _random_part(row: dict, fixed: list[Term], data: pd.DataFrame, factors: set[str]) -> RandomPart:
    """One grouping factor's ``( ... | group)``: the selected slopes less those that cannot be
    estimated, plus the lower-order slopes the kept ones imply."""
    g, idx = row["group"], row["index"]
    where = f"/randomEffects/{idx}/randomComponents" if idx is not None else "/randomEffects"
    intercept, slopes, unticked = _components(row, fixed, where)
    constant, slopes = _drop_constant(slopes, data, g)
    sparse, slopes = _drop_sparse(slopes, data, g, factors)
    kept = _simplify(slopes)
    implied = {frozenset(s) for s in _implied(kept)}
    added = [t for t in unticked if frozenset(t) in implied]
    if not intercept and not kept:
        raise _no_effect(g, where, constant, sparse)
    part = _random_node(intercept, kept, row["correlations"], g)
    part.footnotes = _pruning_notes(g, constant, sparse, added)
    return part


def _components(row: dict, fixed: list[Term], where: str) -> tuple[bool, list[Term], list[Term]]:
    """The random intercept, the selected slopes and the slopes left unselected; every slope
    must be a fixed-effects term."""
    fixed_sets = [frozenset(t) for t in fixed]
    intercept = False
    slopes: list[Term] = []
    unticked: list[Term] = []
    for j, (comps, on) in enumerate(row["components"]):
        if comps == ["Intercept"]:
            intercept = intercept or on
            continue
        if frozenset(comps) not in fixed_sets:
            raise JaspOptionError("randomEffects", f"option 'randomEffects' ({where}/{j}): random slope "
                                  f"{':'.join(comps)!r} for '{row['group']}' is not a fixed-effects term; random "
                                  "slopes must be terms of fixedEffects", f"{where}/{j}")
        (slopes if on else unticked).append(tuple(comps))
    return intercept, slopes, unticked


def _drop_constant(slopes: list[Term], data: pd.DataFrame, group: str) -> tuple[list[str], list[Term]]:
    """Variables with a slope that do not vary within the levels of ``group``, and the slopes
    left without them (and the interactions containing them)."""
    constant = [t[0] for t in slopes if len(t) == 1 and not _varies(data, group, t[0])]
    return constant, [t for t in slopes if not set(t) & set(constant)]


def _drop_sparse(slopes: list[Term], data: pd.DataFrame, group: str,
                 factors: set[str]) -> tuple[list[Term], list[Term]]:
    """Factor slopes with at most one observation per level of ``group`` and cell, and the
    slopes left without them (and the terms containing them)."""
    sparse = [t for t in slopes if all(v in factors for v in t) and _sparse(data, group, t)]
    return sparse, [t for t in slopes if not any(set(r) <= set(t) for r in sparse)]


def _varies(df: pd.DataFrame, group: str, var: str) -> bool:
    """Whether ``var`` takes more than one value within some level of ``group``."""
    return bool((df.groupby(group, observed=True)[var].nunique() > 1).any())


def _sparse(df: pd.DataFrame, group: str, term: Term) -> bool:
    """Whether every cell of group × term's factors holds at most one observation."""
    counts = df.groupby([group, *term], observed=True).size()
    return bool(counts.max() <= 1)


def _pruning_notes(g: str, constant: list[str], sparse: list[Term], added: list[Term]) -> list[Footnote]:
    notes = []
    if constant:
        notes.append(Footnote(
            f"Random slopes for {', '.join(repr(v) for v in constant)} (and the interactions containing them) "
            f"were removed from the '{g}' random effects: the variable does not vary within the levels of '{g}'.",
            "Note:"))
    if sparse:
        notes.append(Footnote(
            f"Random slopes for {', '.join(repr(':'.join(t)) for t in sparse)} were removed from the '{g}' "
            f"random effects: at most one observation per level of '{g}' and cell of the term.", "Note:"))
    if added:
        notes.append(Footnote(
            f"Random slopes for {', '.join(repr(':'.join(t)) for t in added)} were added to the '{g}' random "
            "effects: they are implied by the higher-order random slopes that were selected.", "Note:"))
    return notes


def _no_effect(g: str, where: str, constant: list[str], sparse: list[Term]) -> JaspOptionError:
    gone = [repr(v) for v in constant] + [repr(":".join(t)) for t in sparse]
    extra = (" These were removed because they cannot be estimated from the data: " + ", ".join(gone) + "."
             if gone else "")
    return JaspOptionError("randomEffects", f"option 'randomEffects' ({where}): at least one random effect is "
                           f"needed for the grouping factor '{g}'.{extra}", where)


def _random_node(intercept: bool, kept: list[Term], correlations: bool, g: str) -> RandomPart:
    """``(1 + slopes | g)``, or ``(1 + slopes || g)`` when uncorrelated, as JASP writes it: lme4
    splits ``||`` into one term per slope, so a factor slope keeps the correlations among its
    own columns (JASP does not expand factors as afex's ``expand_re`` would)."""
    op = "|" if correlations or not kept else "||"
    return RandomPart(_bar(_plus([_one(intercept)] + [_star(t) for t in kept]), op, g))
