"""From JASP's options and data to one model: the rows used, the factors and their levels, and
the lme4 formula JASP's ``.mmModelFormula`` would build, with the same pruning of random slopes.

Variable names only ever enter the formula backtick-quoted, and our formula parser never
evaluates anything. Names that cannot be quoted (holding a backtick) are refused.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import JaspOptionError

INTERACTION = "\u2009\u273b\u2009"
#: Prefix of the numeric columns that carry expanded uncorrelated factor slopes.
RE_PREFIX = ".mbRE"


@dataclass
class Footnote:
    text: str
    symbol: str = "<em>Note.</em>"


@dataclass
class Plan:
    """One model to fit: ``formula``; ``data`` the rows (listwise complete, factors as text);
    ``levels`` per factor; ``factors``; ``n_missing`` rows removed; ``footnotes`` for the ANOVA
    table (terms removed or added); ``re_labels`` expanded slope column → R's column name;
    ``groups`` grouping factors in order; ``reml``; ``analysis``."""

    formula: str
    data: pd.DataFrame
    levels: dict[str, list[str]]
    factors: set[str]
    n_missing: int
    analysis: str
    reml: bool
    footnotes: list[Footnote] = field(default_factory=list)
    re_labels: dict[str, str] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    contrasts: str = "sum"
    requests: list = field(default_factory=list)


def quote(name: str) -> str:
    return f"`{name}`"


def _check_name(name: str, option: str) -> None:
    if "`" in name or name.startswith(RE_PREFIX):
        raise JaspOptionError(option, f"option '{option}': the variable name {name!r} cannot be used in a "
                              f"model (it holds a backtick or starts with {RE_PREFIX!r}); rename the column")


def _level_label(v) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def ready(opts: dict, analysis: str) -> str | None:
    """Why the analysis cannot run yet (JASP's ``.mmReady``), or None."""
    if not opts["dependent"]:
        return "This analysis requires a dependent variable to run."
    if analysis == "lmm" and not opts["randomVariables"]:
        return "This analysis requires at least one random effects grouping factor to run."
    if not opts["fixedEffects"] and not opts["includeIntercept"]:
        return "This analysis requires at least one fixed effect or the intercept to run."
    return None


def prepare(opts: dict, data: pd.DataFrame, analysis: str = "lmm") -> Plan:
    """Check the variables against the data, delete incomplete rows, and build the formula."""
    dep, fixed_vars = opts["dependent"], opts["fixedVariables"]
    random_vars = opts["randomVariables"] if analysis == "lmm" else []
    for option, names in (("dependent", [dep]), ("fixedVariables", fixed_vars), ("randomVariables", random_vars)):
        for i, n in enumerate(names):
            _check_name(n, option)
            if n not in data.columns:
                near = ", ".join(repr(c) for c in list(data.columns)[:12])
                raise JaspOptionError(option, f"option '{option}': variable {n!r} is not a column of the data; "
                                      f"the data have {near}", f"/{option}" + (f"/{i}" if option != "dependent" else ""))
    if dep in fixed_vars or dep in random_vars:
        raise JaspOptionError("dependent", f"option 'dependent': {dep!r} is also a fixed or random variable")
    overlap = sorted(set(fixed_vars) & set(random_vars))
    if overlap:
        raise JaspOptionError("randomVariables", f"option 'randomVariables': {overlap[0]!r} is also in "
                              "fixedVariables; a grouping factor cannot be a fixed effect here")
    needed = list(dict.fromkeys([dep] + fixed_vars + random_vars))
    df = data[needed].copy()
    types = opts.get("types", {})
    if types.get(dep) in ("nominal", "ordinal") or not _is_numeric(df[dep]):
        raise JaspOptionError("dependent", f"option 'dependent': {dep!r} must be a scale (numeric) variable"
                              + ("" if _is_numeric(df[dep]) else "; it holds text"))
    factors: set[str] = set(random_vars)
    for v in fixed_vars:
        declared = types.get(v)
        numeric = _is_numeric(df[v])
        if declared == "scale" and not numeric:
            raise JaspOptionError("fixedVariables", f"option 'fixedVariables': {v!r} is declared 'scale' but holds "
                                  "text; declare it nominal or ordinal")
        if declared in ("nominal", "ordinal") or not numeric:
            factors.add(v)
    for option, names in (("dependent", [dep]), ("fixedVariables", fixed_vars)):
        for v in names:
            if v not in factors and _is_numeric(df[v]):
                vals = df[v].to_numpy(dtype=float)
                if np.isinf(vals).any():
                    raise JaspOptionError(option, f"option '{option}': variable {v!r} has {int(np.isinf(vals).sum())} "
                                          "infinite value(s); remove them or choose another variable")
    complete = df.notna().all(axis=1)
    n_missing = int((~complete).sum())
    df = df[complete].reset_index(drop=True)
    if len(df) == 0:
        raise JaspOptionError("dependent", "no rows remain after removing rows with missing values in the "
                              "dependent, fixed and random variables")
    levels = {}
    for v in factors:
        col = df[v]
        if _is_numeric(col):
            order = [_level_label(x) for x in sorted(col.unique())]
        else:
            order = sorted(col.astype(str).unique())
        df[v] = col.map(_level_label) if _is_numeric(col) else col.astype(str)
        levels[v] = order
        if len(order) < 2:
            option = "randomVariables" if v in random_vars else "fixedVariables"
            raise JaspOptionError(option, f"option '{option}': factor {v!r} has fewer than two levels "
                                  "after removing missing values")
    plan = Plan("", df, levels, factors, n_missing, analysis,
                opts["testMethod"] in ("satterthwaite", "kenwardRoger"), contrasts=opts["factorContrast"])
    plan.formula = _formula(opts, plan, random_vars)
    return plan


def _simplify(terms: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Drop terms contained in another (``*`` brings them back), as JASP's .mmSimplifyTerms."""
    out = []
    for i, t in enumerate(terms):
        if any(set(t) <= set(u) and (set(t) != set(u) or j < i) for j, u in enumerate(terms) if j != i):
            continue
        out.append(t)
    return out


def _star(term: tuple[str, ...]) -> str:
    return "*".join(quote(v) for v in term)


def fixed_terms(opts: dict) -> list[tuple[str, ...]]:
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


def _implied(terms: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Every term that ``a*b*...`` expands to, in R's order (by order, then appearance)."""
    seen: dict[frozenset, tuple[str, ...]] = {}
    for t in terms:
        for k in range(1, len(t) + 1):
            for sub in itertools.combinations(t, k):
                seen.setdefault(frozenset(sub), sub)
    return sorted(seen.values(), key=len)


def _formula(opts: dict, plan: Plan, random_vars: list[str]) -> str:
    fixed = fixed_terms(opts)
    fe = ["1" if opts["includeIntercept"] else "0"] + [_star(t) for t in _simplify(fixed)]
    rhs = "+".join(fe)
    if plan.analysis == "lm":
        return f"{quote(opts['dependent'])}~{rhs}"
    rows = {r["group"]: r for r in opts["randomEffects"]}
    for r in opts["randomEffects"]:
        if r["group"] not in random_vars:
            raise JaspOptionError("randomEffects", f"option 'randomEffects' (/randomEffects/{r['index']}/value): "
                                  f"grouping factor {r['group']!r} is not in randomVariables "
                                  f"({', '.join(random_vars)})", f"/randomEffects/{r['index']}/value")
    parts = []
    for gi, g in enumerate(random_vars):
        row = rows.get(g)
        if row is None:
            row = {"group": g, "correlations": True, "index": None,
                   "components": [(["Intercept"], True)] + [(list(t), True) for t in fixed]}
            plan.footnotes.append(Footnote(f"randomEffects had no row for '{g}'; JASP's default was used (random "
                                           "intercept and every fixed-effects term as a slope, correlated).", "Note:"))
        parts.append(_random_part(row, fixed, plan, gi + 1))
        plan.groups.append(g)
    return f"{quote(opts['dependent'])}~{rhs}+" + "+".join(parts)


def _varies(df: pd.DataFrame, group: str, var: str) -> bool:
    """Whether ``var`` takes more than one value within some level of ``group``."""
    return bool((df.groupby(group, observed=True)[var].nunique() > 1).any())


def _sparse(df: pd.DataFrame, group: str, term: tuple[str, ...], levels: dict) -> bool:
    """Whether every cell of group × term's factors holds at most one observation."""
    counts = df.groupby([group, *term], observed=True).size()
    return bool(counts.max() <= 1)


def _random_part(row: dict, fixed: list[tuple[str, ...]], plan: Plan, gi: int) -> str:
    g, idx = row["group"], row["index"]
    where = f"/randomEffects/{idx}/randomComponents" if idx is not None else "/randomEffects"
    fixed_sets = [frozenset(t) for t in fixed]
    intercept, slopes, unticked = False, [], []
    for j, (comps, on) in enumerate(row["components"]):
        if comps == ["Intercept"]:
            intercept = intercept or on
            continue
        if frozenset(comps) not in fixed_sets:
            raise JaspOptionError("randomEffects", f"option 'randomEffects' ({where}/{j}): random slope "
                                  f"{':'.join(comps)!r} for '{g}' is not a fixed-effects term; random slopes "
                                  "must be terms of fixedEffects", f"{where}/{j}")
        (slopes if on else unticked).append(tuple(comps))
    df = plan.data
    removed_me = [t[0] for t in slopes if len(t) == 1 and not _varies(df, g, t[0])]
    slopes = [t for t in slopes if not set(t) & set(removed_me)]
    removed_te = [t for t in slopes if all(v in plan.factors for v in t) and _sparse(df, g, t, plan.levels)]
    slopes = [t for t in slopes if not any(set(r) <= set(t) for r in removed_te)]
    if removed_me:
        plan.footnotes.append(Footnote(
            f"Random slopes for {', '.join(repr(v) for v in removed_me)} (and the interactions containing them) "
            f"were removed from the '{g}' random effects: the variable does not vary within the levels of '{g}'.",
            "Note:"))
    if removed_te:
        plan.footnotes.append(Footnote(
            f"Random slopes for {', '.join(repr(':'.join(t)) for t in removed_te)} were removed from the '{g}' "
            f"random effects: at most one observation per level of '{g}' and cell of the term.", "Note:"))
    kept = _simplify(slopes)
    implied = {frozenset(s) for t in kept for s in _implied([t])}
    added = [t for t in unticked if frozenset(t) in implied]
    if added:
        plan.footnotes.append(Footnote(
            f"Random slopes for {', '.join(repr(':'.join(t)) for t in added)} were added to the '{g}' random "
            "effects: they are implied by the higher-order random slopes that were selected.", "Note:"))
    if not intercept and not kept:
        gone = [repr(v) for v in removed_me] + [repr(":".join(t)) for t in removed_te]
        extra = (" These were removed because they cannot be estimated from the data: " + ", ".join(gone) + ".") if gone else ""
        raise JaspOptionError("randomEffects", f"option 'randomEffects' ({where}): at least one random effect is "
                              f"needed for the grouping factor '{g}'.{extra}", where)
    bar = "|" if row["correlations"] or not kept else "||"
    if bar == "||" and any(v in plan.factors for t in kept for v in t):
        cols = _expand(kept, plan, gi, intercept)
        return "(" + ("1" if intercept else "0") + "".join("+" + quote(c) for c in cols) + f"||{quote(g)})"
    lhs = ("1" if intercept else "0") + "".join("+" + _star(t) for t in kept)
    return f"({lhs}{bar}{quote(g)})"


def _coded(plan: Plan, var: str, full: bool) -> list[tuple[str, np.ndarray]]:
    """A variable's columns under the factor coding in use (R's names)."""
    x = plan.data[var]
    if var not in plan.factors:
        return [(var, x.to_numpy(dtype=float))]
    lev = plan.levels[var]
    if full:
        return [(f"{var}{lv}", (x == lv).to_numpy(dtype=float)) for lv in lev]
    if plan.contrasts == "sum":
        last = (x == lev[-1]).to_numpy(dtype=float)
        return [(f"{var}{j + 1}", (x == lv).to_numpy(dtype=float) - last) for j, lv in enumerate(lev[:-1])]
    return [(f"{var}{lv}", (x == lv).to_numpy(dtype=float)) for lv in lev[1:]]


def _expand(kept: list[tuple[str, ...]], plan: Plan, gi: int, intercept: bool) -> list[str]:
    """Uncorrelated slopes with factors: each coded column becomes its own numeric variable
    (afex's ``expand_re``), so that every column gets its own variance and no correlation."""
    names = []
    first_factor_done = intercept
    for term in _implied(kept):
        pieces = []
        for v in term:
            full = not first_factor_done and len(term) == 1 and v in plan.factors
            if full:
                first_factor_done = True
            pieces.append(_coded(plan, v, full))
        # R's column order: the first variable varies fastest
        for combo in itertools.product(*reversed(pieces)):
            combo = tuple(reversed(combo))
            label = ":".join(c[0] for c in combo)
            value = np.prod([c[1] for c in combo], axis=0)
            col = f"{RE_PREFIX}{gi}_{len(names) + 1}"
            plan.data[col] = value
            plan.re_labels[col] = label
            names.append(col)
    return names
