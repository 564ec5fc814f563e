"""The API reference (``docs/api.md``) generated from the public objects' docstrings.

``python -m mixedbridge.docgen`` rewrites ``docs/api.md``; ``python -m mixedbridge.docgen --check``
exits 1 when the file differs from what the docstrings give (tests/test_readme.py runs it).
"""
from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

#: The documented objects, in the reference's order: (dotted name, what it is).
PUBLIC = [
    ("mixedbridge.lmer", "function"), ("mixedbridge.lm", "function"), ("mixedbridge.glmer", "function"),
    ("mixedbridge.anova", "function"), ("mixedbridge.model.Model", "class"),
    ("mixedbridge.model.EmmeansFrames", "class"), ("mixedbridge.model.Summary", "class"),
    ("mixedbridge.run", "function"), ("mixedbridge.results.Results", "class"),
    ("mixedbridge.table.Table", "class"), ("mixedbridge.table.Column", "class"),
    ("mixedbridge.errors.MixedBridgeError", "class"),
]
HEADER = """# API reference

Generated from the docstrings by `python -m mixedbridge.docgen` (do not edit by hand; a test
checks that this file is up to date). For a walk-through see [the tutorial](tutorial.md); for
the JSON spec, `mixedbridge schema spec`.
"""
_SECTION = re.compile(r"^(\w[\w ]*)\n-{3,}$", re.M)


def _resolve(dotted: str):
    import importlib

    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _signature(obj) -> str:
    """``(name: type = default, ...) -> type`` with the annotations as written in the source."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "()"
    parts = []
    for p in sig.parameters.values():
        kind = inspect.Parameter
        stars = "*" if p.kind is kind.VAR_POSITIONAL else "**" if p.kind is kind.VAR_KEYWORD else ""
        text = stars + p.name
        if p.annotation is not p.empty:
            text += f": {p.annotation}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        parts.append(text)
    ret = f" -> {sig.return_annotation}" if sig.return_annotation is not sig.empty else ""
    return f"({', '.join(parts)}){ret}"


def _markdown(doc: str) -> str:
    """A numpy-style docstring as markdown: section titles bold, ``name : type`` entries as list
    items with their indented text joined."""
    doc = _SECTION.sub(lambda m: f"**{m.group(1)}**", doc)
    out: list[str] = []
    for line in doc.splitlines():
        if line.startswith("    ") and out and out[-1].startswith("- "):
            out[-1] += " " + line.strip()
        elif re.match(r"^\w[\w, ]* : ", line) or re.match(r"^\w+$", line) and out and out[-1].startswith("**"):
            name, _, kind = line.partition(" : ")
            out.append(f"- `{name}`" + (f" ({kind}):" if kind else ":"))
        else:
            out.append(line)
    return "\n".join(out).strip()


def _members(cls) -> list[tuple[str, object]]:
    """A class's public methods and properties defined on it (dunders left out), in source order."""
    names = [n for n in cls.__dict__ if not n.startswith("_")]
    return [(n, cls.__dict__[n]) for n in names if callable(cls.__dict__[n]) or isinstance(cls.__dict__[n], property)]


def _entry(dotted: str, kind: str) -> list[str]:
    obj = _resolve(dotted)
    short = dotted if dotted.count(".") == 1 else f"mixedbridge.{dotted.rsplit('.', 1)[1]}"
    title = f"## `{short}{_signature(obj) if kind == 'function' else ''}`"
    lines = [title, "", _markdown(inspect.getdoc(obj) or ""), ""]
    if kind == "class":
        for name, member in _members(obj):
            doc = inspect.getdoc(member) or ""
            if isinstance(member, property):
                lines += [f"### `{name}` (property)", "", _markdown(doc), ""]
            else:
                sig = _signature(member).replace("(self, ", "(").replace("(self)", "()")
                lines += [f"### `{name}{sig}`", "", _markdown(doc), ""]
    return lines


def render() -> str:
    """The whole reference as markdown."""
    lines = [HEADER]
    for dotted, kind in PUBLIC:
        lines += _entry(dotted, kind)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = Path(__file__).resolve().parent.parent / "docs" / "api.md"
    text = render()
    if "--check" in args:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            print(f"{target} is out of date: run python -m mixedbridge.docgen", file=sys.stderr)
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
