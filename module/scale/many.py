"""Many models at once: :func:`run_many` fits a list of specs on a Dask cluster.

Specs are sent in batches (about four per worker thread, specs that read the same rows
together), each one task running :func:`mixedbridge.run` on its specs in turn on a worker: a
task costs the scheduler and the worker milliseconds, as much as a small model's fit. Data that
several specs share is sent to the cluster once: a ``data`` argument given for all specs, and each data file
(``data.path``) read here once, under the data folders allowed here; bundled data sets and
inline records travel with their spec. Results come back in the specs' order; a spec that fails
is answered by its error (a :class:`~mixedbridge.errors.MixedBridgeError`, or the unexpected
exception) in its place, and never stops the others. ``progress`` is told of each result as its
batch arrives.
"""
from __future__ import annotations

import json
import os
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
        if not (isinstance(cls, type) and issubclass(cls, MixedBridgeError)):
            return RuntimeError(f"{self.kind}: {self.message}")
        if cls is MixedBridgeError:
            return MixedBridgeError(self.code, self.message, self.path)
        exc = cls(self.message, self.path)  # type: ignore[call-arg]
        exc.code = self.code
        return exc


def run_one(spec: dict | str | Path, data: Any = None, roots: Any = None,
            keep_outcome: bool = False) -> Results | Failure:
    """One spec's results, or its error as a :class:`Failure` (run on a worker)."""
    from ..analysis import run

    try:
        results = run(spec, data=data, data_root=roots)
    except MixedBridgeError as exc:
        return Failure(type(exc).__name__, exc.code, exc.message, exc.path)
    except Exception as exc:  # noqa: BLE001 - one failure never loses the other specs
        return Failure(type(exc).__name__, "internal", str(exc), "")
    return results if keep_outcome else replace(results, outcome=None)


def run_batch(specs: list[tuple[int, dict, Any]], data: Any, keep_outcome: bool) -> list[tuple[int, Results | Failure]]:
    """:func:`run_one` of each (index, spec, data folders) on the same ``data`` (run on a worker)."""
    return [(i, run_one(spec, data, roots, keep_outcome)) for i, spec, roots in specs]


#: Batches per worker thread: enough for the load to even out, few enough that a task's own
#: cost stays small beside its fits.
BATCHES_PER_THREAD = 4


@dataclass
class Task:
    """One spec made ready to travel: the spec as a dict (a spec file read here), the folders its
    data may come from, and the key of the data file it reads (None: the spec carries its data),
    or the error that stopped it here."""

    spec: dict | None
    roots: Any
    key: str | None = None
    failure: Failure | None = None


def _task(spec: dict | str | Path, roots: Any) -> Task:
    """Read a spec file here (a worker may not see it); a relative data file or Parquet path is
    made absolute from the spec file's folder, which is also where data may come from unless
    ``roots`` says otherwise."""
    from ..spec import read_spec

    try:
        raw, base = read_spec(spec)
    except MixedBridgeError as exc:
        return Task(None, roots, failure=Failure(type(exc).__name__, exc.code, exc.message, exc.path))
    src = raw.get("data")
    if base is not None and isinstance(src, dict):
        for field in ("path", "parquet"):
            if isinstance(src.get(field), str):
                src[field] = os.path.join(base, src[field])
    here = roots if roots is not None else (str(base) if base is not None else None)
    key = json.dumps(src, sort_keys=True) if isinstance(src, dict) and set(src) == {"path"} else None
    return Task(raw, here, key)


def _shared_tables(tasks: list[Task]) -> dict[str, Any]:
    """Each data file named by a spec, read here once (where it cannot be read, its specs
    report the error themselves)."""
    from ..spec import load_data

    out: dict[str, Any] = {}
    for t in tasks:
        if t.key is None or t.key in out or t.spec is None:
            continue
        try:
            with data_roots(t.roots):
                out[t.key] = load_data({"data": json.loads(t.key)}, None)[0]
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

    tasks = [_task(s, data_root) for s in specs]
    for i, t in enumerate(tasks):
        if t.failure is not None:
            arrived(i, t.failure)
    shared = {} if data is not None else _shared_tables(tasks)
    cl = _client(client)
    if cl is None:
        for i, t in enumerate(tasks):
            if t.spec is not None:
                rows = data if data is not None else shared.get(t.key or "")
                arrived(i, run_one(t.spec, rows, t.roots, keep_outcome))
        return answers  # type: ignore[return-value]
    _on_cluster(cl, tasks, data, shared, keep_outcome, arrived)
    return answers  # type: ignore[return-value]


def _on_cluster(cl: Any, tasks: list[Task], data: Any, shared: dict[str, Any], keep_outcome: bool,
                arrived: Callable[[int, Any], None]) -> None:
    """Submit the specs in batches (shared data scattered once) and collect them as they finish."""
    from distributed import as_completed

    scattered = {k: cl.scatter(v) for k, v in shared.items()}
    given = cl.scatter(data) if data is not None else None
    futures = {}
    for key, batch in _batches(tasks, sum(cl.nthreads().values())):
        rows = given if data is not None else scattered.get(key or "")
        fut = cl.submit(run_batch, batch, rows, keep_outcome, pure=False)
        futures[fut] = [i for i, _, _ in batch]
    for fut in as_completed(futures):
        try:
            got = fut.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker answers for its batch only
            got = [(i, Failure(type(exc).__name__, "internal", str(exc), "")) for i in futures[fut]]
        for i, one in got:
            arrived(i, one)


def _batches(tasks: list[Task], threads: int) -> list[tuple[str | None, list[tuple[int, dict, Any]]]]:
    """The runnable specs grouped by the data they read, cut into batches of about
    len(tasks) / (:data:`BATCHES_PER_THREAD` · threads) specs."""
    groups: dict[str | None, list[tuple[int, dict, Any]]] = {}
    for i, t in enumerate(tasks):
        if t.spec is not None:
            groups.setdefault(t.key, []).append((i, t.spec, t.roots))
    size = max(1, -(-len(tasks) // (BATCHES_PER_THREAD * max(threads, 1))))
    return [(key, items[j: j + size]) for key, items in groups.items() for j in range(0, len(items), size)]
