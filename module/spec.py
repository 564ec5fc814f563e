"""The analysis spec: read, validate against ``schemas/spec.schema.json``, fill defaults, and find
its data."""
from __future__ import annotations

import copy
import json
import math
from collections import OrderedDict
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, cast

import jsonschema
import pandas as pd

from . import datapath, datasets, strictjson
from .errors import DataError, SpecError
from .families import resolve


@cache
def schema(name: str = "spec") -> dict:
    """A JSON Schema shipped with the package (``spec``, ``results``)."""
    path = resources.files("mixedbridge.schemas").joinpath(f"{name}.schema.json")
    if not path.is_file():
        names = sorted(p.name.removesuffix(".schema.json") for p in resources.files("mixedbridge.schemas").iterdir()
                       if p.name.endswith(".schema.json"))
        raise SpecError(f"unknown schema {name!r}; available: {', '.join(names)}")
    return json.loads(path.read_text(encoding="utf-8"))


def schema_names() -> list[str]:
    return sorted(p.name.removesuffix(".schema.json") for p in resources.files("mixedbridge.schemas").iterdir()
                  if p.name.endswith(".schema.json"))


def json_path(parts) -> str:
    """A JSON-pointer-like path (``/filter/0/column``) from jsonschema's path parts."""
    return "".join(f"/{p}" for p in parts)


def read_spec(source: str | Path | dict) -> tuple[dict, Path | None]:
    """The spec as a dict, and the folder relative data paths resolve against.

    A file must hold strict JSON (no ``NaN``/``Infinity``, no lone surrogates, numbers a double
    can hold, at most :data:`~mixedbridge.strictjson.MAX_DEPTH` levels); a dict may be nested
    that deep at most.
    """
    if isinstance(source, dict):
        strictjson.check(source, strings=False, numbers=False)
        return copy.deepcopy(source), None
    if not isinstance(source, (str, Path)):
        raise SpecError(f"the spec must be a JSON object (or the path of a file holding one), "
                        f"not {type(source).__name__}")
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"spec file {str(path)!r} does not exist") from None
    except UnicodeDecodeError:
        raise SpecError(f"spec file {str(path)!r} is not UTF-8 text") from None
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read spec file {str(path)!r}: {getattr(exc, 'strerror', None) or exc}") from None
    doc = strictjson.loads(text)
    if not isinstance(doc, dict):
        raise SpecError(f"the spec must be a JSON object, not {type(doc).__name__}")
    return doc, path.resolve().parent


def parse_json(text: str) -> dict:
    """Parse spec text, reporting malformed JSON with its line and column."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise SpecError(f"the spec must be a JSON object, not {type(doc).__name__}")
    return doc


def _finite_number(checker, instance) -> bool:
    """JSON Schema's ``number``, less NaN and ±Infinity (which Python's JSON reader accepts)."""
    return jsonschema.Draft202012Validator.TYPE_CHECKER.is_type(instance, "number") and not (
        isinstance(instance, float) and not math.isfinite(instance))


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("number", _finite_number))


@cache
def validator(name: str = "spec", pointer: str = "") -> jsonschema.protocols.Validator:
    """A validator for a shipped schema, or for its part at the JSON Pointer ``pointer``
    (``/$defs/options``), resolving ``$ref`` to the other shipped schemas."""
    from referencing import Registry, Resource

    resources = [(schema(n)["$id"], Resource.from_contents(schema(n))) for n in schema_names()
                 if "$id" in schema(n)]
    root = {"$ref": f"{schema(name)['$id']}#{pointer}"} if pointer else schema(name)
    return _Validator(root, registry=Registry().with_resources(resources))


#: Instances that passed :func:`check` lately, as (schema, pointer, canonical JSON text): a host
#: sends the same spec again with one option changed, and the options are checked twice per run.
_PASSED: OrderedDict[tuple[str, str, str], None] = OrderedDict()
#: How many passed instances are kept, and the longest JSON text kept (inline rows are not).
PASSED_KEEP, PASSED_MAX_CHARS = 64, 20_000


def _passed_key(instance: Any, name: str, pointer: str) -> tuple[str, str, str] | None:
    """The key of ``instance`` in :data:`_PASSED`; None when it is too long or not plain JSON."""
    try:
        text = json.dumps(instance, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return None
    return (name, pointer, text) if len(text) <= PASSED_MAX_CHARS else None


def check(instance: Any, name: str = "spec", pointer: str = "", path: str = "") -> None:
    """Check ``instance`` against a shipped schema (or its part at ``pointer``); an instance equal
    (as canonical JSON) to one that passed lately passes without a second check.

    Raises
    ------
    SpecError
        Naming the first problem and its JSON path, prefixed by ``path`` (where ``instance``
        lies in the spec, e.g. ``/options``).
    """
    key = _passed_key(instance, name, pointer)
    if key is not None and key in _PASSED:
        _PASSED.move_to_end(key)
        return
    _check(instance, name, pointer, path)
    if key is not None:
        _PASSED[key] = None
        while len(_PASSED) > PASSED_KEEP:
            _PASSED.popitem(last=False)


def _check(instance: Any, name: str, pointer: str, path: str) -> None:
    """:func:`check` itself: every error of the validator, the best one reported."""
    errors = sorted(validator(name, pointer).iter_errors(instance),
                    key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        raise SpecError(*_describe(jsonschema.exceptions.best_match(errors), path))


def validate(spec: dict, data_given: bool = False) -> dict:
    """Check the spec against its schema and return it with the schema's defaults filled in
    (top level and ``options``; a glmm's link defaults to its family's canonical link). With
    ``data_given`` (rows passed by the caller, as ``run(spec, data=df)``) the spec may leave
    ``data`` out."""
    from .options import defaults  # here: options reads this module's schemas

    if data_given and "data" not in spec:
        check({**spec, "data": {"records": [{}]}})
    else:
        check(spec)
    out = plain_copy(spec)
    for key, value in defaults("spec").items():
        out.setdefault(key, value)
    out["options"] = {**defaults("spec", "/$defs/options"), **(out.get("options") or {})}
    out["options"] = resolve(out["analysis"], out["options"])
    for i, other in enumerate(out.get("compare") or []):
        kinds = {out["analysis"], other.get("analysis", out["analysis"])}
        if len(kinds) > 1 and "glmm" in kinds:
            raise SpecError(f"/compare/{i}/analysis: a glmm can be compared only with other glmms of the same "
                            "family (the likelihoods must be of the same response)", f"/compare/{i}/analysis")
    return out


_SCALARS = (str, int, float, bool, type(None))


def plain_copy(value: Any) -> Any:
    """A deep copy of JSON-like data: dicts and lists made anew, text, numbers, booleans and None
    kept (they cannot change); anything else by ``copy.deepcopy``. A spec's copy costs a fifth
    of ``copy.deepcopy``'s, which keeps a memo of every object."""
    kind = type(value)
    if kind is dict:
        return {k: plain_copy(v) for k, v in value.items()}
    if kind is list:
        return [plain_copy(v) for v in value]
    if kind in _SCALARS:
        return value
    return copy.deepcopy(value)


def _describe(error: jsonschema.ValidationError, prefix: str = "") -> tuple[str, str]:
    path = prefix + json_path(error.absolute_path)
    where = path or "the spec"
    if error.validator == "enum":
        allowed = ", ".join(repr(v) for v in cast(list, error.validator_value))
        return f"{where}: {error.instance!r} is not allowed; expected one of {allowed}", path
    if error.validator == "additionalProperties":
        return f"{where}: {error.message}", path
    if error.validator == "required":
        return f"{where}: {error.message}", path
    if error.validator == "type":
        return f"{where}: expected {error.validator_value}, got {json.dumps(error.instance)[:60]}", path
    if error.validator == "oneOf" and path == "/data":
        return ("/data: expected exactly one of {\"path\": FILE}, {\"dataset\": NAME} or "
                "{\"records\": [{...}, ...]}"), path
    return f"{where}: {error.message}", path


def load_data(spec: dict, base: Path | None, data: pd.DataFrame | None = None) -> tuple[pd.DataFrame, set[str]]:
    """The rows named by ``spec['data']`` (a DataFrame given by the caller overrides it), and the
    columns known to be factors. A data file is read only where :mod:`mixedbridge.datapath`
    allows."""
    if data is not None:
        if not isinstance(data, pd.DataFrame):
            raise DataError("data must be a pandas DataFrame", "/data")
        return data, set()
    src = spec["data"]
    if "dataset" in src:
        if not isinstance(src["dataset"], str):
            raise DataError(f"the dataset must be named by text, not {type(src['dataset']).__name__}",
                            "/data/dataset")
        return datasets.load(src["dataset"])
    if "records" in src:
        return pd.DataFrame.from_records(_records(src["records"])), set()
    table = datapath.read_table(src["path"], base)
    table.attrs[datapath.FROM_FILE] = True  # errors must not quote a file's content (frame.py)
    return table, set()


def _records(rows: object) -> list:
    """Inline rows: a non-empty list of objects."""
    if not isinstance(rows, list) or not rows:
        raise DataError("the records must be a non-empty list of objects, one per row", "/data/records")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(f"record {i} must be an object (column: value), not {type(row).__name__}",
                            f"/data/records/{i}")
    return rows
