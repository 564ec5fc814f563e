"""Strict JSON for request lines and spec files: what the standard allows and a double can hold.

Python's :mod:`json` reads ``NaN`` and ``Infinity``, lone surrogates (``"\\ud800"``), numbers
beyond a double's range (``1e400`` becomes ``inf``, a 401-digit integer overflows ``float()``) and
nesting as deep as the interpreter's stack allows. Each of these later breaks a float conversion,
the answer's encoding, or the process. :func:`loads` refuses them up front with the JSON path of the
value at fault.
"""
from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Iterator
from itertools import chain, compress, repeat
from operator import is_
from typing import Any

from .errors import SpecError

#: Deepest nesting of objects and arrays a document may have (a spec needs fewer than ten).
MAX_DEPTH = 64

#: The largest integer that converts to a finite double.
_MAX_INT = int(sys.float_info.max)

class Constant:
    """What ``NaN``, ``Infinity`` or ``-Infinity`` in the text parse to (never a number)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


def parse(text: str) -> Any:
    """Parse JSON text without the strictness checks (``NaN`` and ``Infinity`` become
    :class:`Constant`); :func:`problem` finds what :func:`loads` would refuse.

    Raises
    ------
    SpecError
        Malformed JSON (with line and column), an integer too long to read, or nesting too deep
        for the parser.
    """
    try:
        return json.loads(text, parse_constant=Constant)
    except json.JSONDecodeError as exc:
        raise SpecError(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise SpecError(f"the document is nested too deeply; at most {MAX_DEPTH} levels of objects "
                        "and arrays are allowed") from None
    except ValueError:  # an integer of more than sys.get_int_max_str_digits() digits
        raise SpecError("the document holds a number with too many digits; numbers must fit a "
                        "double (about ±1.8e308)") from None


def loads(text: str) -> Any:
    """Parse strict JSON text.

    Raises
    ------
    SpecError
        As :func:`parse`, and for ``NaN``/``Infinity``, numbers beyond a double's range, lone
        surrogates and nesting deeper than :data:`MAX_DEPTH`, with the value's JSON path.
    """
    doc = parse(text)
    check(doc, strings=may_hold_surrogates(text))
    return doc


def may_hold_surrogates(text: str) -> bool:
    """Whether parsed text can hold a lone surrogate: only through a ``\\uD8xx``-style escape,
    since decoded UTF-8 cannot."""
    return "\\ud" in text or "\\uD" in text


def check(doc: Any, strings: bool = True, numbers: bool = True) -> None:
    """Refuse a parsed document that is not plain JSON (see :func:`problem`)."""
    found = problem(doc, strings=strings, numbers=numbers)
    if found is not None:
        path, message = found
        raise SpecError(f"{path or 'the document'}: {message}", path)


def problem(doc: Any, strings: bool = True, numbers: bool = True) -> tuple[str, str] | None:
    """(JSON path, what is wrong) for the first value that is not plain JSON, or None.

    ``strings`` checks strings and keys for lone surrogates; ``numbers`` checks for ``NaN``,
    ``Infinity`` and numbers beyond a double's range. Nesting is always checked.
    """
    if _clean([doc], 0, strings, numbers):
        return None
    found = _walk(doc, 0, strings, numbers)
    if found is None:
        return None
    parts, message = found
    return "".join(f"/{p}" for p in reversed(parts)), message


def _clean(values: list, depth: int, strings: bool, numbers: bool) -> bool:
    """Whether these values (all at nesting ``depth``) and everything under them are plain JSON.

    One level at a time, with the per-value work in C (``map``, ``compress``), so a request with
    a million records is checked in about the time it takes to parse.
    """
    types = list(map(type, values))
    kinds = set(types)
    if numbers and not _numbers_ok(values, types, kinds):
        return False
    if strings and str in kinds and not _text(_of(values, types, str)):
        return False
    dicts = list(_of(values, types, dict)) if dict in kinds else []
    lists = list(_of(values, types, list)) if list in kinds else []
    if not dicts and not lists:
        return True
    if depth >= MAX_DEPTH or (strings and not _text(chain.from_iterable(map(dict.keys, dicts)))):
        return False
    children = list(chain(chain.from_iterable(map(dict.values, dicts)), chain.from_iterable(lists)))
    return _clean(children, depth + 1, strings, numbers)


def _numbers_ok(values: list, types: list, kinds: set) -> bool:
    """No ``NaN``/``Infinity`` and every number within a double's range."""
    if Constant in kinds:
        return False
    if float in kinds and not all(map(math.isfinite, _of(values, types, float))):
        return False
    return int not in kinds or max(map(abs, _of(values, types, int))) <= _MAX_INT


def _of(values: list, types: list, kind: type) -> Iterator:
    """The values of exactly this type (``bool`` is not ``int`` here)."""
    return compress(values, map(is_, types, repeat(kind)))


def _text(strings: Iterable[str]) -> bool:
    """Whether all these strings are text (no lone surrogate)."""
    try:
        "".join(strings).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _walk(value: Any, depth: int, strings: bool, numbers: bool) -> tuple[list, str] | None:
    """The problem under ``value`` with its path parts innermost first, or None."""
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return _scalar(value, strings, numbers)
    if depth >= MAX_DEPTH:
        return [], f"nested more than {MAX_DEPTH} levels deep; a spec needs far fewer"
    for key, item in items:
        if strings and isinstance(key, str) and _lone_surrogate(key):
            return [_part(key)], "a key holds a lone surrogate (an unpaired \\ud800-\\udfff escape), which is not text"
        found = _walk(item, depth + 1, strings, numbers)
        if found is not None:
            found[0].append(_part(key))
            return found
    return None


def _scalar(value: Any, strings: bool, numbers: bool) -> tuple[list, str] | None:
    if numbers and isinstance(value, Constant):
        return [], f"{value.name} is not a JSON number; write a number or null"
    if numbers and type(value) is float and not math.isfinite(value):
        return [], "a number beyond the range of a double (about ±1.8e308)"
    if numbers and type(value) is int and not -_MAX_INT <= value <= _MAX_INT:
        return [], "a number beyond the range of a double (about ±1.8e308)"
    if strings and type(value) is str and _lone_surrogate(value):
        return [], "a string holds a lone surrogate (an unpaired \\ud800-\\udfff escape), which is not text"
    return None


def _part(key: object) -> str:
    """A path part that is always valid text (a lone surrogate shown as its escape)."""
    return str(key).encode("utf-8", "backslashreplace").decode("utf-8")


def _lone_surrogate(text: str) -> bool:
    """Whether a string holds a code point U+D800..U+DFFF (json leaves escaped pairs joined, so any
    such code point is unpaired)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
