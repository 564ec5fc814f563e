"""Uniform result tables: one shape whichever engine made the numbers, as JSON, pandas or text."""
from __future__ import annotations

import html
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType

import numpy as np
import pandas as pd

#: Column types a host can render; ``pvalue`` is a number shown as ``< .001`` when tiny.
TYPES = ("integer", "number", "pvalue", "string")
DEFAULT_FORMATS = {"integer": "", "number": "sf:4;dp:3", "pvalue": "dp:3;p:.001", "string": ""}
#: Unicode categories written as escapes in text and markdown: control characters (ANSI
#: escapes, newlines, tabs), format characters (bidirectional overrides) and line separators.
ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
#: Number columns holding degrees of freedom or counts: whole numbers there are written as integers.
COUNT_COLUMNS = frozenset({"df", "Df", "NumDF", "DenDF", "df.residual", "npar", "nobs", "df1", "df2"})
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with its control and format characters written as escapes (``\\x1b``, ``\\n``,
    ``\\u202e``), so that data cannot drive a terminal or break a line of a table."""
    if text.isprintable():
        return text
    return "".join(_escape(c) if unicodedata.category(c) in ESCAPED_CATEGORIES else c for c in text)


def markdown_cell(text: str) -> str:
    """Text for a markdown table cell or list item: printable, ``\\`` and ``|`` escaped (so that
    a backslash before a bar cannot unescape it)."""
    return printable(text).replace("\\", "\\\\").replace("|", "\\|")


def markdown_code(text: str) -> str:
    """Text as a markdown code span, fenced by more backticks than it holds in a row."""
    text = printable(text)
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (run + 1)
    pad = " " if run or text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


@lru_cache(maxsize=256)
def _format_options(fmt: str) -> Mapping[str, str]:
    """JASP's format string as {key: value}: ``sf:4;dp:3`` is ``{"sf": "4", "dp": "3"}``; read
    once per format (a table writes thousands of cells with a handful of formats), so read-only."""
    pairs = (part.partition(":") for part in fmt.split(";") if ":" in part)
    return MappingProxyType({key: value for key, _, value in pairs})


@dataclass
class Column:
    """A table column: ``name`` (key in rows), ``title`` (header), ``type`` and ``format``
    (JASP's format string: ``sf:4;dp:3`` significant figures / decimals, ``p:.001`` threshold)."""

    name: str
    title: str | None = None
    type: str = "number"
    format: str | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"column type {self.type!r} not in {TYPES}")
        self.title = self.title if self.title is not None else self.name
        self.format = self.format if self.format is not None else DEFAULT_FORMATS[self.type]

    def to_dict(self) -> dict:
        """The column as JSON-ready data."""
        return {"name": self.name, "title": self.title, "type": self.type, "format": self.format}

    def render(self, value, decimals: int | None = None) -> str:
        """The cell as text, following the column's format; ``decimals`` (from
        :meth:`decimals`) writes every number of a column with as many decimals."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if self.type == "string":
            return str(value)
        if self.type == "integer":
            return str(int(value))
        opts = _format_options(self.format or "")
        if self.type == "pvalue" and "p" in opts and value < float(opts["p"]):
            return f"< {opts['p']}"
        if isinstance(value, float) and math.isinf(value):
            return "∞" if value > 0 else "-∞"
        dp = int(opts.get("dp", 3))
        sf = int(opts["sf"]) if "sf" in opts else None
        fixed = _with_decimals(value, decimals)
        if fixed is not None:
            return fixed
        if sf is not None and value != 0 and abs(value) < 10 ** (sf - dp - 1):
            return f"{value:.{sf}g}"
        return f"{value:.{dp}f}"

    def decimals(self, values: list) -> int | None:
        """One number of decimals for all of a number column's cells: none for counts
        (degrees of freedom that are whole numbers), else the format's ``dp``, more where a small
        value needs them for its ``sf`` significant figures (at most ``dp`` + 3; smaller values
        are written in ``g`` form). None for other column types."""
        if self.type != "number":
            return None
        numbers = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        if numbers and self.name in COUNT_COLUMNS and all(v.is_integer() for v in numbers):
            return 0
        opts = _format_options(self.format or "")
        dp = int(opts.get("dp", 3))
        if "sf" not in opts:
            return dp
        sf = int(opts["sf"])
        small = [abs(v) for v in numbers if v != 0 and abs(v) < 10 ** (sf - dp - 1)]
        needs = [sf - 1 - math.floor(math.log10(v)) for v in small]
        return max([dp] + [n for n in needs if n <= dp + 3])


@dataclass
class Table:
    """A result table: ``name`` (stable key), ``title``, ``columns``, ``rows`` (dicts keyed by
    column name; missing cells are ``None``) and ``footnotes``."""

    name: str
    title: str
    columns: list[Column]
    rows: list[dict] = field(default_factory=list)
    footnotes: list[str] = field(default_factory=list)

    def column(self, name: str) -> Column:
        """The column called ``name`` (KeyError when there is none)."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def add_row(self, **cells) -> None:
        """Append a row; cells not given are ``None``; unknown cells are a programming error."""
        unknown = set(cells) - {c.name for c in self.columns}
        if unknown:
            raise KeyError(f"table {self.name!r} has no column(s) {sorted(unknown)}")
        self.rows.append({c.name: _plain(cells.get(c.name)) for c in self.columns})

    def add_columns(self, **cells) -> None:
        """Append rows given column-wise: each cell is a sequence (one value per row) or a scalar
        (the same in every row); the same values as :meth:`add_row` row by row (numpy numbers to
        Python, NaN and infinities to None), in one pass over numeric arrays."""
        unknown = set(cells) - {c.name for c in self.columns}
        if unknown:
            raise KeyError(f"table {self.name!r} has no column(s) {sorted(unknown)}")
        n = max((len(v) for v in cells.values() if _is_sequence(v)), default=1)
        cols = [_plain_column(cells.get(c.name), n) for c in self.columns]
        names = [c.name for c in self.columns]
        self.rows.extend(dict(zip(names, row)) for row in zip(*cols))

    def to_dict(self) -> dict:
        """The table as JSON-ready data (the results document's table shape)."""
        return {"name": self.name, "title": self.title, "columns": [c.to_dict() for c in self.columns],
                "rows": [dict(r) for r in self.rows], "footnotes": list(self.footnotes)}

    @classmethod
    def from_dict(cls, d: dict) -> Table:
        """A table from :meth:`to_dict`'s data."""
        return cls(d["name"], d["title"], [Column(**c) for c in d["columns"]],
                   [dict(r) for r in d["rows"]], list(d.get("footnotes", [])))

    def to_pandas(self) -> pd.DataFrame:
        """Rows as a DataFrame with the column names as keys (numbers as floats)."""
        return pd.DataFrame(self.rows, columns=[c.name for c in self.columns])

    def _cells(self) -> list[list[str]]:
        decimals = [c.decimals([r.get(c.name) for r in self.rows]) for c in self.columns]
        return [[printable(_render(c, r.get(c.name), d)) for c, d in zip(self.columns, decimals)] for r in self.rows]

    def notes(self) -> list[str]:
        """The footnotes, each once."""
        return list(dict.fromkeys(self.footnotes))

    def _header(self) -> list[str]:
        return [printable(str(c.title)) for c in self.columns]

    def to_text(self) -> str:
        """Aligned plain text for a terminal: title, header, rows, footnotes (control characters
        written as escapes)."""
        header = self._header()
        cells = self._cells()
        widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(header)]
        right = [c.type != "string" for c in self.columns]

        def line(vals: list[str]) -> str:
            return "  ".join(v.rjust(w) if r else v.ljust(w) for v, w, r in zip(vals, widths, right)).rstrip()

        out = [printable(self.title), line(header), "  ".join("-" * w for w in widths)]
        out += [line(row) for row in cells]
        out += [f"Note. {printable(f)}" for f in self.notes()]
        return "\n".join(out)

    def to_markdown(self) -> str:
        """A GitHub-flavoured markdown table with the title in bold (control characters written
        as escapes, ``|`` escaped)."""
        header = [markdown_cell(h) for h in self._header()]
        align = ["---:" if c.type != "string" else ":---" for c in self.columns]
        out = [f"**{markdown_cell(self.title)}**", "", "| " + " | ".join(header) + " |",
               "| " + " | ".join(align) + " |"]
        out += ["| " + " | ".join(markdown_cell(v) for v in row) + " |" for row in self._cells()]
        out += [""] + [f"*Note.* {markdown_cell(f)}" for f in self.notes()] if self.footnotes else []
        return "\n".join(out)

    def to_html(self) -> str:
        """An HTML table (for notebooks): caption, header, formatted cells, footnotes; every text
        escaped."""
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in self._header())
        align = ["right" if c.type != "string" else "left" for c in self.columns]
        body = "".join("<tr>" + "".join(f'<td style="text-align:{a}">{esc(v)}</td>' for v, a in zip(row, align))
                       + "</tr>" for row in self._cells())
        notes = "".join(f"<p><i>Note.</i> {esc(printable(f))}</p>" for f in self.notes())
        return (f"<table><caption>{esc(printable(self.title))}</caption><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>{notes}")

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return f"<Table {self.name!r}: {len(self.rows)} rows × {len(self.columns)} columns>"


def _render(column: Column, value, decimals: int | None) -> str:
    """``column.render(value, decimals)``; the common cell (a finite float of a number column with
    common decimals) written at once, without the format checks that cannot apply to it."""
    if type(value) is float and column.type == "number" and math.isfinite(value):
        fixed = _with_decimals(value, decimals)
        if fixed is not None:
            return fixed
    return column.render(value, decimals)


def _with_decimals(value, decimals: int | None) -> str | None:
    """A number with a column's common ``decimals``; None without them or when the value is too
    small to show with them (it is then written by the format's significant figures)."""
    if decimals is not None and (value == 0 or abs(value) >= 10.0 ** -decimals):
        return f"{value:.{decimals}f}"
    return None


def _is_sequence(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def _plain_column(values, n: int) -> list:
    """:func:`_plain` of each of ``n`` values (a scalar repeated); a float array converted at once."""
    if not _is_sequence(values):
        return [_plain(values)] * n
    arr = np.asarray(values) if isinstance(values, np.ndarray) else None
    if arr is not None and arr.dtype.kind == "f":
        out = arr.astype(object)
        out[~np.isfinite(arr)] = None
        return out.tolist()
    return [_plain(v) for v in values]


def _plain(value):
    """JSON-ready scalar: numpy numbers to Python, NaN and infinities to None."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value
