"""Cross-check of two engines: every numeric cell of every table, side by side, with the
tolerance for that quantity. The tolerances live here and only here."""
from __future__ import annotations

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

_OBJECTIVE = {"logLik", "AIC", "BIC", "deviance", "REMLcrit"}
_KEYS = {"parameters": ("effect", "group", "term"), "fit": (), "random_effects": ("group", "level", "term"),
         "groups": ("group",), "anova": ("term",), "confint": ("parameter",), "model_comparison": ("model",)}
#: Cells that are random draws (bootstrap p-values): shown, never compared across engines.
_RANDOM = {"p.value.pb"}


def compared(table) -> bool:
    """Whether a table's cells are compared across engines (not bootstrap intervals, whose
    random numbers differ between R and numpy)."""
    return not (table.name == "confint" and "(bootstrap)" in table.title)


def tolerance(table: str, row: dict, column: str) -> tuple[str, float]:
    """The quantity a cell measures and its relative tolerance."""
    if column in _OBJECTIVE:
        return "objective", TOLERANCES["objective"]
    if column == "Chisq":
        return "lrt", TOLERANCES["lrt"]
    if column in ("lower", "upper"):
        return "interval", TOLERANCES["interval"]
    if table == "anova" and column in ("statistic", "sumsq", "meansq"):
        return "statistic", TOLERANCES["statistic"]
    if column in ("df", "df.residual", "nobs", "levels", "NumDF", "DenDF", "Df", "npar"):
        return "df", TOLERANCES["df"]
    if column == "p.value":
        return "p", TOLERANCES["p"]
    if table == "parameters" and row.get("effect") == "fixed":
        return ("fixed", TOLERANCES["fixed"]) if column == "estimate" else ("se", TOLERANCES["se"])
    return "varcomp", TOLERANCES["varcomp"]


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


def _scale(table: Table, row: dict, column: str, sigma: float) -> float:
    """An absolute floor for the relative difference, so cells near zero compare sensibly."""
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
        Column("rel_diff", "Relative", format="sf:3"), Column("tolerance", "Tolerance", format="sf:2"),
        Column("pass", "Pass", "string"),
    ])
    theirs = {t.name: t for t in other}
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
                _add(out, mine, row, key, col.name, a, b, sigma, other_name)
    return out


def _add(out: Table, table: Table, row: dict, key: str, column: str, a, b, sigma: float, other: str) -> None:
    if a is None and b is None:
        return
    _, tol = family_tolerance(table, column) if _family(table) else tolerance(table.name, row, column)
    if a is None or b is None:
        out.add_row(table=table.name, row=key, column=column, native=a, **{other: b}, tolerance=tol, **{"pass": "no"})
        return
    diff = abs(a - b)
    rel = diff / max(abs(b), 1e-300)
    ok = diff <= tol * max(abs(b), _scale(table, row, column, sigma)) + 1e-12
    out.add_row(table=table.name, row=key, column=column, native=a, **{other: b}, abs_diff=diff,
                rel_diff=rel, tolerance=tol, **{"pass": "yes" if ok else "no"})


def failures(table: Table) -> list[dict]:
    return [r for r in table.rows if r["pass"] != "yes"]
