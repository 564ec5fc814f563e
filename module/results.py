"""The results document: what an analysis returns to a host, a script or a terminal."""
from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .table import Table, markdown_cell, markdown_code, printable

if TYPE_CHECKING:
    from .analysis import Analysis
    from .fit import Fit


@dataclass(repr=False)
class Results:
    """``analysis``, ``engine``, the normalized ``spec``, ``tables``, ``notes`` and ``warnings``
    in words, ``timing`` in seconds, ``plots`` (name, title, images), and ``outcome`` (the
    :class:`~mixedbridge.analysis.Analysis` object: prepared problem, fits, inference and emmeans
    answers of each engine; not serialized)."""

    analysis: str
    engine: str
    spec: dict
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timing: dict = field(default_factory=dict)
    plots: list[dict] = field(default_factory=list)
    outcome: Analysis | None = None

    def table(self, name: str) -> Table:
        """The table called ``name``; KeyError lists the ones there are."""
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"no table {name!r}; tables are {', '.join(t.name for t in self.tables)}")

    @property
    def fits(self) -> dict[str, Fit]:
        """Engine name → fit, the leading engine first."""
        return {} if self.outcome is None else {n: r.fit for n, r in self.outcome.runs.items()}

    @property
    def fit(self) -> Fit:
        """The fit of the leading (first) engine that ran."""
        if self.outcome is None:
            raise ValueError("these results hold no fit")
        return self.outcome.lead.fit

    def to_dict(self) -> dict:
        """The results document as JSON-ready data (``mixedbridge schema results``)."""
        return {"analysis": self.analysis, "engine": self.engine, "spec": self.spec,
                "tables": [t.to_dict() for t in self.tables], "notes": list(self.notes),
                "warnings": list(self.warnings), "timing": dict(self.timing),
                "plots": list(self.plots)}

    def to_json(self, indent: int | None = None) -> str:
        """The results document as strict JSON text (no NaN)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def _own_notes(self) -> list[str]:
        """The notes not already printed as a footnote of a table, each once."""
        shown = {f for t in self.tables for f in t.footnotes}
        return [n for n in dict.fromkeys(self.notes) if n not in shown]

    def __repr__(self) -> str:
        """One line: what was fitted and what there is to look at (``summary()`` for the tables)."""
        tables = ", ".join(t.name for t in self.tables)
        extra = [f"{len(x)} {w}{'s' if len(x) != 1 else ''}" for x, w in
                 ((self.plots, "plot"), (self.notes, "note"), (self.warnings, "warning")) if x]
        formula = printable(str(self.spec.get("formula", "")))
        return (f"<Results {self.analysis} {formula!r}, engine {self.engine}: tables {tables}"
                + (f"; {', '.join(extra)}" if extra else "") + ">")

    def summary(self) -> str:
        """Every table as aligned text, with notes and warnings (:meth:`to_text`)."""
        return self.to_text()

    def _repr_html_(self) -> str:
        """The tables as HTML, then notes and warnings (a notebook's view)."""
        esc = html.escape
        head = f"<p><b>{esc(printable(repr(self)[1:-1]))}</b></p>"
        body = "".join(t.to_html() for t in self.tables)
        notes = "".join(f"<p>Note: {esc(printable(n))}</p>" for n in self._own_notes())
        warnings = "".join(f"<p><b>Warning:</b> {esc(printable(w))}</p>" for w in dict.fromkeys(self.warnings))
        return head + body + notes + warnings

    def to_text(self) -> str:
        """Every table as aligned text, then notes and warnings (each once)."""
        head = printable(f"{self.analysis} · {self.spec.get('formula', '')} · engine: {self.engine}")
        parts = [head, ""] + [t.to_text() + "\n" for t in self.tables]
        parts += [f"Note: {printable(n)}" for n in self._own_notes()]
        parts += [f"Warning: {printable(w)}" for w in self.warnings]
        return "\n".join(parts).rstrip() + "\n"

    def to_markdown(self) -> str:
        """Every table as a GitHub-flavoured markdown table, then notes and warnings."""
        formula = markdown_code(str(self.spec.get("formula", "")))
        parts = [f"### {self.analysis}: {formula} ({self.engine})", ""]
        parts += [t.to_markdown() + "\n" for t in self.tables]
        parts += [f"- Note: {markdown_cell(n)}" for n in self._own_notes()]
        parts += [f"- **Warning:** {markdown_cell(w)}" for w in self.warnings]
        return "\n".join(parts).rstrip() + "\n"
