"""Tables ``emmeans``, ``contrasts`` and ``trends`` with emmeans's column names: the label
columns (factors named after the factors, ``contrast``), then the estimate (``emmean``,
``estimate``, ``<var>.trend``), ``SE``, ``df``, ``lower.CL``, ``upper.CL`` and, where tested,
``t.ratio`` and ``p.value``. Non-estimable rows keep their labels with empty numbers."""
from __future__ import annotations

import numpy as np

from ..table import Column, Table
from .emm import EstimateFamily

TITLES = {"emmeans": "Estimated marginal means", "contrasts": "Contrasts", "trends": "Estimated marginal trends"}


def family_table(fam: EstimateFamily, name: str | None = None, title: str | None = None) -> Table:
    """A result table from a summarized family."""
    name = name or fam.kind
    if title is None:
        title = TITLES.get(fam.kind, fam.kind)
        if fam.kind == "trends":
            title += f" ({fam.est_name})"
    cols = [Column(n, n, t) for n, t in fam.label_columns]
    cols += [Column(fam.est_name), Column("SE"), Column("df", format="dp:2"),
             Column("lower.CL"), Column("upper.CL")]
    if fam.t is not None:
        cols += [Column(fam.stat_name, format="dp:3"), Column("p.value", type="pvalue")]
    table = Table(name, title, cols)
    estimate, se, df, lower, upper = fam.filled("estimate", "se", "df", "lower", "upper")
    tests = fam.filled("t", "p") if fam.t is not None else None
    for i, lab in enumerate(fam.labels):
        cells = dict(lab)
        cells.update({fam.est_name: _num(estimate[i]), "SE": _num(se[i]), "df": _num(df[i]),
                      "lower.CL": _num(lower[i]), "upper.CL": _num(upper[i])})
        if tests is not None:
            cells.update({fam.stat_name: _num(tests[0][i]), "p.value": _num(tests[1][i])})
        table.add_row(**cells)
    table.footnotes = list(dict.fromkeys(fam.notes))
    return table


def _num(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x
