"""Option enums and defaults, read from the shipped JSON Schemas: the one place they are declared.

>>> default("spec", "/options/anova/nsim")
1000
>>> enum("emmeans", "/df")
('satterthwaite', 'kenward-roger', 'asymptotic')

:func:`option` finds the schema of an option by its path in the document it describes (the
JSON path error messages name: ``/options/confint/level``), following ``properties``,
``items``, ``$ref`` (to the same or another shipped schema) and the branches of ``anyOf`` /
``oneOf`` / ``allOf``. :func:`node` finds a part of a schema by its JSON Pointer inside the
schema (``/$defs/caterpillar``), for parts no document path reaches (a plot request's
properties depend on its ``type``). Nothing is cached here: the schemas are loaded (once) by
:func:`mixedbridge.spec.schema`, and every call reads them afresh (a cache of
:func:`defaults` would save ~15 µs a spec, measured, but would miss a schema changed in place).
"""
from __future__ import annotations

import copy
from pathlib import PurePosixPath
from typing import Any

from . import spec

_BRANCHES = ("anyOf", "oneOf", "allOf")


def _parts(pointer: str) -> list[str]:
    """The reference tokens of a JSON Pointer (RFC 6901), ``~1`` and ``~0`` unescaped."""
    if not pointer:
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"{pointer!r} is not a JSON Pointer (it must start with '/')")
    parts = pointer[1:].split("/")
    return [p.replace("~1", "/").replace("~0", "~") for p in parts] if "~" in pointer else parts


def _resolve(name: str, schema: dict) -> tuple[str, dict]:
    """``schema`` with its ``$ref`` followed (its own keywords win over the target's), and the
    name of the shipped schema it now lies in."""
    while "$ref" in schema:
        target, _, fragment = schema["$ref"].partition("#")
        if target:
            name = _schema_name(target)
        found = spec.schema(name)
        for part in _parts(fragment):
            found = found[int(part)] if isinstance(found, list) else found[part]
        schema = {**found, **{k: v for k, v in schema.items() if k != "$ref"}}
    return name, schema


def _schema_name(target: str) -> str:
    """The shipped schema a ``$ref`` target names (``plots.schema.json`` -> ``plots``): the last
    part of its path (a bare file name as it is: pathlib's parsing costs ~5 µs)."""
    name = PurePosixPath(target).name if "/" in target or target == "." else target
    return name.removesuffix(".schema.json")


def _locate(name: str, pointer: str) -> tuple[str, dict]:
    current: Any = spec.schema(name)
    for part in _parts(pointer):
        name, current = _resolve(name, current)
        current = current[int(part)] if isinstance(current, list) else current[part]
    return _resolve(name, current)


def node(name: str, pointer: str = "") -> dict:
    """The part of the shipped schema ``name`` at the JSON Pointer ``pointer``, ``$ref`` followed."""
    return _locate(name, pointer)[1]


def _child(name: str, schema: dict, key: str) -> tuple[str, dict] | None:
    """The schema of member ``key`` of what ``schema`` describes, or None."""
    name, schema = _resolve(name, schema)
    if key in schema.get("properties", {}):
        return name, schema["properties"][key]
    if key.isdigit() and isinstance(schema.get("items"), dict):
        return name, schema["items"]
    for branch in (b for kw in _BRANCHES for b in schema.get(kw, [])):
        found = _child(name, branch, key)
        if found is not None:
            return found
    return None


def option(name: str, path: str) -> dict:
    """The schema of the option at ``path`` (``/options/anova/nsim``) of a document that the
    shipped schema ``name`` describes.

    Raises
    ------
    KeyError
        When the schema declares no such option.
    """
    where: tuple[str, dict] = (name, spec.schema(name))
    for key in _parts(path):
        found = _child(*where, key)
        if found is None:
            raise KeyError(f"the {name} schema declares no option {path!r}")
        where = found
    return _resolve(*where)[1]


def default(name: str, path: str) -> Any:
    """The ``default`` the shipped schema ``name`` declares for the option at ``path`` (a copy)."""
    schema = option(name, path)
    if "default" not in schema:
        raise KeyError(f"the {name} schema declares no default for {path!r}")
    return copy.deepcopy(schema["default"])


def enum(name: str, path: str) -> tuple:
    """The values the shipped schema ``name`` allows for the option at ``path``."""
    schema = option(name, path)
    if "enum" not in schema:
        raise KeyError(f"the {name} schema declares no enum for {path!r}")
    return tuple(schema["enum"])


def defaults(name: str, pointer: str = "") -> dict:
    """The declared defaults of the properties of the object schema at ``pointer`` in the
    shipped schema ``name`` (as :func:`node`), by property name."""
    name, schema = _locate(name, pointer)
    out = {}
    for key, sub in schema.get("properties", {}).items():
        if "$ref" in sub:
            sub = _resolve(name, sub)[1]
        if "default" in sub:
            out[key] = spec.plain_copy(sub["default"])
    return out
