"""JASP's results shapes: tables, containers, footnotes, and the document around them.

A table serializes as jaspResults does: ``title``, ``name``, ``status``, ``schema.fields``
(``name``, ``title``, ``type``, ``format``, optional ``overTitle`` and ``.footnotes``), ``data``
(one dict per row; NaN written ``"NaN"`` and infinities ``"∞"``/``"-∞"``, as jaspResults
writes R's values), ``footnotes`` (``symbol``, ``text``, ``cols``, ``rows``, ``myOrder``). A
container has a ``collection`` keyed ``<container>_<child>``. An element that could not be
computed carries ``status: "error"`` and ``error: {type, errorMessage}``.
"""
from __future__ import annotations

import math

FORMATS = {"number": "sf:4;dp:3", "pvalue": "dp:3;p:.001"}
NOTE = "<em>Note.</em>"


def vovk_sellke(p):
    """Vovk-Sellke maximum p-ratio: 1 / (-e p ln p) for p <= 1/e, else 1."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return None
    if p <= 0:
        return math.inf
    return 1.0 / (-math.e * p * math.log(p)) if p <= 1 / math.e else 1.0


def _cell(v):
    if v is None:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"  # jaspResults writes R's NaN so (NA, here None, stays empty)
        if math.isinf(v):
            return "∞" if v > 0 else "-∞"
    return v


class JElement:
    """What every jaspResults element has: ``name``, ``title``, ``kind``, the options it depends
    on, and an error message that makes its status ``error``."""

    kind = "element"

    def __init__(self, name: str, title: str, depends: list[str] | None = None) -> None:
        self.name, self.title = name, title
        self.depends = list(depends or [])
        self.error: str | None = None

    def fail(self, message: str) -> None:
        self.error = message

    def _head(self) -> dict:
        return {"title": self.title, "name": self.name, "status": "error" if self.error else "complete"}

    def _with_error(self, d: dict) -> dict:
        if self.error:
            d["error"] = {"type": "badData", "errorMessage": self.error}
        return d

    def meta(self) -> dict:
        return {"name": self.name, "title": self.title, "type": self.kind, "mustBe": sorted(self.depends),
                "mustContain": {}, "info": ""}


class JTable(JElement):
    """A jaspResults table under construction."""

    kind = "table"

    def __init__(self, name: str, title: str, depends: list[str] | None = None) -> None:
        super().__init__(name, title, depends)
        self.fields: list[dict] = []
        self.rows: list[dict] = []
        self.footnotes: list[dict] = []

    def col(self, name: str, title: str, type_: str = "number", overtitle: str | None = None) -> JTable:
        f = {"name": name, "title": title, "type": type_}
        if type_ in FORMATS:
            f["format"] = FORMATS[type_]
        if overtitle:
            f["overTitle"] = overtitle
        self.fields.append(f)
        return self

    def has(self, name: str) -> bool:
        return any(f["name"] == name for f in self.fields)

    def add(self, **cells) -> None:
        names = {f["name"] for f in self.fields}
        unknown = set(cells) - names
        if unknown:
            raise KeyError(f"table {self.name!r} has no column(s) {sorted(unknown)}")
        self.rows.append({k: _cell(v) for k, v in cells.items()})

    def note(self, text: str, symbol: str = NOTE, cols: list[str] | None = None) -> None:
        for fn in self.footnotes:
            if fn["text"] == text and fn["symbol"] == symbol:
                return
        order = len(self.footnotes)
        self.footnotes.append({"symbol": symbol, "text": text, "cols": cols, "rows": None, "myOrder": order})
        for f in self.fields:
            if cols and f["name"] in cols:
                f.setdefault(".footnotes", []).append(order)

    def to_dict(self) -> dict:
        return self._with_error({
            **self._head(), "casesAcrossColumns": False, "overTitle": any("overTitle" in f for f in self.fields),
            "schema": {"fields": [dict(f) for f in self.fields]}, "data": [dict(r) for r in self.rows],
            "footnotes": [dict(f) for f in self.footnotes]})


class JPlot(JElement):
    """A jaspResults image: the PNG (base64) in ``data``, its SVG beside it, size in pixels."""

    kind = "image"

    def __init__(self, name: str, title: str, depends: list[str] | None = None) -> None:
        super().__init__(name, title, depends)
        self.image: dict | None = None
        self.notes: list[str] = []

    def to_dict(self) -> dict:
        d = self._head()
        if self.image is not None:
            d.update(data=self.image.get("png"), svg=self.image.get("svg"), width=self.image["width"],
                     height=self.image["height"], encoding="base64")
        return self._with_error(d)


class JContainer(JElement):
    """A jaspResults container: children keyed ``<name>_<child>`` in ``collection``."""

    kind = "collection"

    def __init__(self, name: str, title: str, depends: list[str] | None = None) -> None:
        super().__init__(name, title, depends)
        self.children: list[tuple[str, JTable]] = []

    def add(self, key: str, table: JTable) -> JTable:
        table.name = f"{self.name}_{key}"
        self.children.append((key, table))
        return table

    def to_dict(self) -> dict:
        return self._with_error({**self._head(), "collection": {t.name: t.to_dict() for _, t in self.children}})

    def meta(self) -> dict:
        return {**super().meta(), "meta": [t.meta() for _, t in self.children]}


def document(elements: list, title: str, extra: dict | None = None) -> dict:
    """The results document: ``.meta``, one key per element, ``citation``, ``name``, ``status``."""
    doc: dict = {".meta": [e.meta() for e in elements]}
    for e in elements:
        doc[e.name] = e.to_dict()
    doc["title"] = title
    doc["status"] = "complete"
    doc["citation"] = ["mixedbridge (2026). Linear mixed models for a JASP-like host [Computer software]."]
    doc["name"] = ""
    if extra:
        doc.update(extra)
    return doc
