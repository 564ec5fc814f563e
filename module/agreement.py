"""Cross-check of two engines: every numeric cell of every table, side by side, with the
tolerance for that quantity. The tolerances live here and only here.

Each cell of table ``comparison`` names the quantity it measures, its relative tolerance and the
absolute difference that tolerance allows (``allowed``: the tolerance times the larger of the
reference value and the cell's floor, e.g. the standard error for a fixed effect). When cells
fail, :func:`explain` says in words whether the two optimizers stopped at different objectives.
"""
from __future__ import annotations

from dataclasses import dataclass

from .fit import Fit
from .table import Column, Table

#: Relative tolerances by quantity (issue 'R bridge'): objective 1e-6, fixed effects 1e-4,
#: SEs and variance components 1e-3, df and p-values 2e-3; (issue 'Inference') F statistics and
#: sums of squares 2e-3, likelihood-ratio χ² 1e-6 (of max(χ², 1)), interval limits 1e-3.
TOLERANCES = {
    "objective": 1e-6,
    "fixed": 1e-4,
    "se": 1e-3,
    "varcomp": 1e-3,
    "df": 2e-3,
    "p": 2e-3,
    "statistic": 2e-3,
    "lrt": 1e-6,
    "interval": 1e-3,
}

#: A glmm's tolerances (issue 'GLMMs'): objective 1e-6 relative and never above glmer's, fixed
#: effects 1e-3, SEs and variance components 2e-3 (random-effects modes and their conditional
#: sds with them); the rest as for linear mixed models.
TOLERANCES_GLMM = {**TOLERANCES, "fixed": 1e-3, "se": 2e-3, "varcomp": 2e-3, "statistic": 2e-3}

_OBJECTIVE = {"logLik", "AIC", "BIC", "deviance", "REMLcrit"}
#: A glmm's objective cells and the sign of "better": a higher log-likelihood, a lower AIC, BIC
#: and deviance (−2 log-likelihood).
_ONE_SIDED = {"logLik": 1.0, "AIC": -1.0, "BIC": -1.0, "deviance": -1.0}
_KEYS = {"parameters": ("effect", "group", "term"), "fit": (), "random_effects": ("group", "level", "term"),
         "groups": ("group",), "anova": ("term",), "confint": ("parameter",), "model_comparison": ("model",)}
#: Cells that are random draws (bootstrap p-values): shown, never compared across engines.
_RANDOM = {"p.value.pb"}


def compared(table) -> bool:
    """Whether a table's cells are compared across engines (not bootstrap intervals, whose
    random numbers differ between R and numpy)."""
    return not (table.name == "confint" and "(bootstrap)" in table.title)


def tolerance(table: str, row: dict, column: str, glmm: bool = False) -> tuple[str, float]:
    """The quantity a cell measures and its relative tolerance (a glmm's: :data:`TOLERANCES_GLMM`)."""
    quantity = _quantity(table, row, column)
    return quantity, (TOLERANCES_GLMM if glmm else TOLERANCES)[quantity]


def _quantity(table: str, row: dict, column: str) -> str:
    """The quantity a cell measures (the key of its tolerance)."""
    if column in _OBJECTIVE:
        return "objective"
    if column == "Chisq":
        return "lrt"
    if column in ("lower", "upper"):
        return "interval"
    if table == "anova" and column in ("statistic", "sumsq", "meansq"):
        return "statistic"
    if column in ("df", "df.residual", "nobs", "levels", "NumDF", "DenDF", "Df", "npar"):
        return "df"
    if column == "p.value":
        return "p"
    if table == "parameters" and row.get("effect") == "fixed":
        return "fixed" if column == "estimate" else "se"
    return "varcomp"


_FAMILY_VALUES = ("SE", "df", "lower.CL", "upper.CL", "t.ratio", "p.value")


def _family(table: Table) -> bool:
    """An emmeans-style table (``emmeans``, ``trends``, ``contrasts``): labels, estimate, SE..."""
    names = [c.name for c in table.columns]
    return table.name not in _KEYS and "SE" in names and names.index("SE") >= 1


def key_columns(table: Table) -> tuple[str, ...]:
    """The columns that identify a row: fixed per table, or an emmeans family's label columns
    (every column before its estimate, covariate values included)."""
    if table.name in _KEYS:
        return _KEYS[table.name]
    names = [c.name for c in table.columns]
    return tuple(names[: names.index("SE") - 1]) if _family(table) else ()


def _key(table: Table, row: dict) -> str:
    keys = key_columns(table)
    return " / ".join(str(row.get(k)) for k in keys if row.get(k) is not None) or "(model)"


def family_tolerance(table: Table, column: str) -> tuple[str, float]:
    """Tolerances of an emmeans family's cells: the estimate as a fixed effect, SE and limits as
    SEs, df and p as df and p, t ratios as statistics."""
    names = [c.name for c in table.columns]
    if column == names[names.index("SE") - 1]:
        return "fixed", TOLERANCES["fixed"]
    if column in ("SE", "lower.CL", "upper.CL"):
        return "se", TOLERANCES["se"]
    if column == "df":
        return "df", TOLERANCES["df"]
    if column == "p.value":
        return "p", TOLERANCES["p"]
    return "statistic", TOLERANCES["statistic"]


def _scale(table: Table, row: dict, column: str, sigma: float, glmm: bool = False) -> float:
    """An absolute floor for the relative difference, so cells near zero compare sensibly (a
    glmm's Wald z: 1, since a fixed effect within 1e-3 SEs moves z by 1e-3 on its own)."""
    if glmm and column == "statistic" and table.name == "parameters":
        return 1.0
    if _family(table):
        names = [c.name for c in table.columns]
        if column == names[names.index("SE") - 1] or column in ("lower.CL", "upper.CL"):
            return abs(row.get("SE") or 0.0)
        return 1.0 if column in ("t.ratio", "p.value") else 0.0
    if column in ("estimate", "statistic") and table.name == "parameters" and row.get("effect") == "fixed":
        return abs(row.get("std.error") or 0.0)
    if column == "p.value" or str(row.get("term", "")).startswith("cor__"):
        return 1.0
    if column == "Chisq":
        return 1.0
    if table.name == "confint" and column in ("lower", "upper", "estimate"):
        return abs(row.get("upper") or 0.0) + abs(row.get("lower") or 0.0)
    if table.name in ("random_effects", "parameters"):
        return sigma
    return 0.0


def compare(native: list[Table], other: list[Table], other_name: str = "lme4", sigma: float = 1.0) -> Table:
    """Table ``comparison`` of every numeric cell both engines produced."""
    out = Table("comparison", f"Agreement of the native engine with {other_name}", [
        Column("table", "Table", "string"), Column("row", "Row", "string"),
        Column("column", "Column", "string"), Column("native", "Native"),
        Column(other_name, other_name), Column("abs_diff", "|Difference|", format="sf:3"),
        Column("rel_diff", "Relative", format="sf:3"), Column("quantity", "Quantity", "string"),
        Column("tolerance", "Tolerance", format="sf:2"), Column("allowed", "Allowed", format="sf:2"),
        Column("pass", "Pass", "string"),
    ])
    theirs = {t.name: t for t in other}
    glmm = is_glmm(native)
    for mine in native:
        if mine.name not in theirs or not compared(mine):
            continue
        ref_rows = {_key(mine, r): r for r in theirs[mine.name].rows}
        keys = key_columns(mine)
        for row in mine.rows:
            key = _key(mine, row)
            ref = ref_rows.get(key)
            for col in mine.columns:
                if col.type == "string" or col.name in _RANDOM or col.name in keys:
                    continue
                a = row.get(col.name)
                b = ref.get(col.name) if ref else None
                _add(out, mine, row, key, col.name, a, b, sigma, other_name, glmm)
    return out


def is_glmm(tables: list[Table]) -> bool:
    """Whether the tables are a glmm's (its ``fit`` table names the family)."""
    return any(t.name == "fit" and any(c.name == "family" for c in t.columns) for t in tables)


def _add(out: Table, table: Table, row: dict, key: str, column: str, a, b, sigma: float, other: str,
         glmm: bool = False) -> None:
    if a is None and b is None:
        return
    if isinstance(a, str) or isinstance(b, str):
        return
    quantity, tol = (family_tolerance(table, column) if _family(table)
                     else tolerance(table.name, row, column, glmm))
    cell = {"table": table.name, "row": key, "column": column, "native": a, other: b, "quantity": quantity,
            "tolerance": tol}
    if a is None or b is None:
        out.add_row(**cell, **{"pass": "no"})
        return
    diff = abs(a - b)
    allowed = tol * max(abs(b), _scale(table, row, column, sigma, glmm)) + 1e-12
    ok = diff <= allowed
    if glmm and table.name == "fit" and column in _ONE_SIDED:  # never worse than the reference's optimum
        ok = _ONE_SIDED[column] * (a - b) >= -allowed
    out.add_row(**cell, abs_diff=diff, rel_diff=diff / max(abs(b), 1e-300), allowed=allowed,
                **{"pass": "yes" if ok else "no"})


def failures(table: Table) -> list[dict]:
    return [r for r in table.rows if r["pass"] != "yes"]


#: Relative difference of two objectives below which both optimizers reached the same optimum.
SAME_OPTIMUM = 1e-10


@dataclass(frozen=True)
class Optimum:
    """Where one engine's optimizer stopped.

    Fields: ``engine`` its name; ``criterion`` ``REMLcrit`` or ``deviance``; ``value`` the
    criterion at the estimates; ``converged`` whether the engine's own checks passed;
    ``messages`` the engine's convergence messages (lme4's ``optinfo$conv$lme4$messages``,
    then its warnings that speak of convergence and say something the messages do not).
    """

    engine: str
    criterion: str
    value: float
    converged: bool | None
    messages: tuple[str, ...]


def optimum(engine: str, fit: Fit) -> Optimum | None:
    """The optimum a mixed-model fit reached (None for a regression, which has no optimizer,
    or when the criterion is unknown)."""
    value = fit.reml_crit if fit.reml else fit.deviance
    if fit.analysis == "glmm":  # the objective: −2 log-likelihood
        value = -2.0 * fit.loglik
    if fit.analysis not in ("lmm", "glmm") or value is None:
        return None
    info = fit.optinfo or {}
    converged = info.get("converged")
    said = [str(m) for m in info.get("messages") or []] if converged is False else []
    said += [w for w in fit.warnings if "converge" in w.lower() and not any(m in w for m in said)]
    return Optimum(engine, "REMLcrit" if fit.reml else "deviance", float(value),
                   None if converged is None else bool(converged), tuple(dict.fromkeys(said)))


def _ordered(a: Optimum, b: Optimum) -> tuple[Optimum, Optimum] | None:
    """(lower, higher) when the two objectives differ by more than :data:`SAME_OPTIMUM`."""
    if abs(a.value - b.value) <= SAME_OPTIMUM * max(abs(b.value), 1.0):
        return None
    return (a, b) if a.value < b.value else (b, a)


def lower_objective_note(a: Optimum, b: Optimum) -> str | None:
    """A note when the two engines stopped at different objectives: which one is lower."""
    ordered = _ordered(a, b)
    if ordered is None:
        return None
    return (f"The {ordered[0].engine} engine reached the lower objective ({a.criterion}: {a.engine} "
            f"{a.value:.10g}, {b.engine} {b.value:.10g}).")


def explain(table: Table, a: Optimum | None = None, b: Optimum | None = None) -> str | None:
    """The warning for a comparison with failed cells (None when every cell passed): how many
    failed in which tables and, for mixed models, the likely cause in words (whether one
    optimizer stopped above the other's objective, by how much, and what it reported)."""
    bad = failures(table)
    if not bad:
        return None
    where: dict[str, int] = {}
    for r in bad:
        where[r["table"]] = where.get(r["table"], 0) + 1
    text = (f"{len(bad)} of {len(table.rows)} compared values differ by more than their tolerance ("
            + ", ".join(f"{n} in {t}" for t, n in where.items()) + "); see the comparison table.")
    return text if a is None or b is None else text + " " + _cause(a, b)


def _cause(a: Optimum, b: Optimum) -> str:
    """Why the engines may disagree: an optimizer that stopped early, or not that."""
    ordered = _ordered(a, b)
    if ordered is None:
        return (f"Both engines reached the same {a.criterion} ({a.value:.10g}), so the differences do "
                "not come from an optimizer stopping early.")
    low, high = ordered
    diff = high.value - low.value
    text = (f"The {low.engine} engine reached the lower {a.criterion} ({low.value:.10g} against "
            f"{high.value:.10g} for {high.engine}: {diff:.3g} lower, {diff / abs(high.value):.2g} "
            f"relative), so the {high.engine} fit most likely stopped before the optimum and its "
            "estimates are the less accurate ones")
    if high.messages:
        return text + f"; {high.engine} reported: " + "; ".join(m.rstrip(".") for m in high.messages) + "."
    if high.converged is False:
        return text + f"; {high.engine} reported that it did not converge."
    return text + f"; {high.engine} reported no convergence warning."
