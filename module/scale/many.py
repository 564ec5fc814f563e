"""Many models at once: :func:`run_many` fits a list of specs on a Dask cluster.

Each spec is one task running :func:`mixedbridge.run` on a worker. Data that several specs
share is sent to the cluster once: a ``data`` argument given for all specs, and each data file
(``data.path``) read here once, under the data folders allowed here; bundled data sets and
inline records travel with their spec. Results come back in the specs' order; a spec that fails
is answered by its error (a :class:`~mixedbridge.errors.MixedBridgeError`, or the unexpected
exception) in its place, and never stops the others. ``progress`` is told of each result as it
arrives.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import errors
from ..datapath import data_roots
from ..errors import MixedBridgeError
from ..results import Results

#: What :func:`run_many` answers for one spec.
Answer = Results | Exception


@dataclass(frozen=True)
class Failure:
    """An error as it travels back from a worker: the error class's name, its code, message and
    JSON path (rebuilt into the error by :meth:`error`)."""

    kind: str
    code: str
    message: str
    path: str

    def error(self) -> Exception:
        cls = getattr(errors, self.kind, None)
        if isinstance(cls, type) and issubclass(cls, MixedBridgeError):
            return MixedBridgeError(self.code, self.message, self.path) if cls is MixedBridgeError \
                else _rebuilt(cls, self)
        return RuntimeError(f"{self.kind}: {self.message}")


def _rebuilt(cls: type, f: Failure) -> MixedBridgeError:
    exc = cls.__new__(cls)
    MixedBridgeError.__init__(exc, f.code, f.message, f.path)
    return exc


def run_one(spec: dict | str | Path, data: Any = None, roots: Any = None, keep_outcome: bool = False) -> Results | Failure:
    """One spec's results, or its error as a :class:`Failure` (run on a worker)."""
    from ..analysis import run

    try:
        results = run(spec, data=data, data_root=roots)
    except MixedBridgeError as exc:
        return Failure(type(exc).__name__, exc.code, exc.message, exc.path)
    except Exception as exc:  # noqa: BLE001 - one failure never loses the other specs
        return Failure(type(exc).__name__, "internal", str(exc), "")
    return results if keep_outcome else replace(results, outcome=None)


def _data_key(spec: object) -> str | None:
    """A key naming a data file several specs may share (None: the spec carries its own data)."""
    if not isinstance(spec, dict):
        return None
    src = spec.get("data")
    if isinstance(src, dict) and set(src) == {"path"}:
        return json.dumps(src, sort_keys=True)
    return None


def _shared_tables(specs: Sequence[object], roots: Any) -> dict[str, Any]:
    """Each data file named by more than one spec, read once here (None where it cannot be read;
    that spec then reports the error itself)."""
    from ..spec import load_data

    keys = [k for k in (_data_key(s) for s in specs) if k is not None]
    out: dict[str, Any] = {}
    for key in {k for k in keys if keys.count(k) > 1}:
        try:
            with data_roots(roots):
                out[key] = load_data({"data": json.loads(key)}, None)[0]
        except MixedBridgeError:
            continue
    return out


def _client(client: Any) -> Any:
    """The client given, the one active in this process, or None (run here, one by one)."""
    if client is not None:
        return client
    try:
        from distributed import get_client
        return get_client()
    except (ImportError, ValueError):
        return None


def run_many(specs: Sequence[dict | str | Path], client: Any = None, *, data: Any = None,
             data_root: Any = None, progress: Callable[[int, Answer], None] | None = None,
             keep_outcome: bool = False) -> list[Answer]:
    """Fit every spec, on the Dask cluster of ``client`` (or the active client; without either,
    here one by one), and return their results in order, an error in place of a spec that fails.

    Parameters
    ----------
    specs : list of spec dicts or spec file paths.
    client : a ``distributed.Client``, optional.
    data : rows for every spec (sent to the cluster once), instead of each spec's ``data``.
    data_root : the folders data files may be read from (as :func:`mixedbridge.run`).
    progress : called with (index, answer) as each result arrives.
    keep_outcome : keep each result's ``outcome`` (the fitted models, for plots and later
        requests); by default it is dropped so that only the tables travel back.
    """
    answers: list[Answer | None] = [None] * len(specs)

    def arrived(i: int, got: Results | Failure) -> None:
        answers[i] = got.error() if isinstance(got, Failure) else got
        if progress is not None:
            progress(i, answers[i])  # type: ignore[arg-type]

    shared = _shared_tables(specs, data_root)
    cl = _client(client)
    if cl is None:
        for i, spec in enumerate(specs):
            arrived(i, run_one(spec, _data_for(spec, data, shared), data_root, keep_outcome))
        return answers  # type: ignore[return-value]
    _on_cluster(cl, specs, data, shared, data_root, keep_outcome, arrived)
    return answers  # type: ignore[return-value]


def _data_for(spec: object, data: Any, shared: dict[str, Any]) -> Any:
    if data is not None:
        return data
    key = _data_key(spec)
    return shared.get(key) if key is not None else None


def _on_cluster(cl: Any, specs: Sequence[object], data: Any, shared: dict[str, Any], roots: Any,
                keep_outcome: bool, arrived: Callable[[int, Any], None]) -> None:
    """Submit one task per spec (shared data scattered once) and collect them as they finish."""
    from distributed import as_completed

    scattered = {k: cl.scatter(v, broadcast=False) for k, v in shared.items()}
    given = cl.scatter(data, broadcast=False) if data is not None else None
    futures = {}
    for i, spec in enumerate(specs):
        rows = given if data is not None else _data_for(spec, None, scattered)
        fut = cl.submit(run_one, spec, rows, roots, keep_outcome, pure=False, key=f"mixedbridge-spec-{i}-{id(specs)}")
        futures[fut] = i
    for fut in as_completed(futures):
        i = futures[fut]
        try:
            got = fut.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker answers for its spec only
            got = Failure(type(exc).__name__, "internal", str(exc), "")
        arrived(i, got)
