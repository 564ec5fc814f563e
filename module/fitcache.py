"""Recent fits and prepared models, kept for the next request on the same model (bounded LRUs).

A host that changes only what is computed after the fit (tests, emmeans, plots, tables) sends
the same model again; the analysis runner then reuses the fit instead of refitting, and the
inference when its settings are the same too. The key is a fingerprint of what a fit reads:
the analysis, the parsed formula, the fitting options (every option except :data:`POST_FIT`)
and the prepared rows (column names, types, factor levels and values). A change of data, rows,
formula, ``reml``, ``contrasts``, weights or offset is another key, hence a refit.

The prepared model (:class:`~mixedbridge.problem.Problem`: rows, designs) is kept too, by the
spec's model part (:func:`prepared_key`), when the rows come from a shipped dataset or inline
records (a file may change between requests; a caller's DataFrame is prepared each time).

An engine whose fits live elsewhere (the lme4 engine's models in the R worker) is asked, before
a reuse, whether it still holds the fit (:meth:`Engine.hold`, which also keeps it there), and
told when the cache lets a fit go (:meth:`Engine.release`). ``MIXEDBRIDGE_FIT_CACHE=0`` turns
the cache off (every request refits), as does :func:`disabled` for a block of code.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import astuple, dataclass, field, replace

import numpy as np
import pandas as pd

from .engines import Engine
from .fit import Fit, Inference
from .inference.options import Settings
from .inference.permodel import remembered
from .problem import Problem

#: Options that only change what is computed from a fit: they are left out of the key.
POST_FIT = frozenset({"timeout", "df_method", "anova", "confint", "plots", "emmeans"})
#: Fits kept (per process); the oldest goes first.
MAX_FITS = 4
#: Inference results kept per fit (one per distinct settings).
MAX_INFERENCES = 8


def prepared_key(spec: dict) -> str | None:
    """The key of a validated spec's prepared model: its analysis, formula, rows (dataset or
    records, filter, levels) and fitting options; None when its rows come from a file."""
    if "path" in spec["data"]:
        return None
    part = {k: spec.get(k) for k in ("analysis", "formula", "data", "filter", "levels")}
    part["options"] = {k: v for k, v in spec["options"].items() if k not in POST_FIT}
    # the limits that preparing checks (guard.py, datapath.py) are read from the environment
    part["environment"] = {k: v for k, v in os.environ.items() if k.startswith("MIXEDBRIDGE_")}
    text = json.dumps(part, sort_keys=True, ensure_ascii=False, default=repr)
    return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


class PreparedCache:
    """The last ``size`` prepared models by :func:`prepared_key`."""

    def __init__(self, size: int = MAX_FITS) -> None:
        self.size = size
        self._entries: OrderedDict[str, Problem] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str | None, options: dict) -> Problem | None:
        """The kept model for ``key`` with the request's ``options``, or None."""
        if key is None or not enabled():
            return None
        with self._lock:
            problem = self._entries.get(key)
            if problem is not None:
                self._entries.move_to_end(key)
        return None if problem is None else replace(problem, options=options)

    def put(self, key: str | None, problem: Problem) -> None:
        if key is None or not enabled():
            return
        with self._lock:
            self._entries[key] = problem
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def fingerprint(problem: Problem) -> str:
    """A digest of everything an engine's fit of ``problem`` depends on: the rows (every model
    column with its type, levels and values), the designs (X with its column names and terms,
    each random-effects term's columns, grouping levels and codes) and the fitting options."""
    h = hashlib.blake2b(digest_size=20)

    def add(*parts: object) -> None:
        for part in parts:
            h.update(repr(part).encode())
            h.update(b"\x00")

    fit_options = {k: v for k, v in problem.options.items() if k not in POST_FIT}
    frame, fixed = problem.frame, problem.fixed
    add(problem.analysis, problem.desc.response.label, problem.desc.intercept, sorted(fit_options.items()),
        fixed.names, fixed.dropped, fixed.assign, fixed.terms)
    h.update(remembered(frame, ("fingerprint",), lambda: _frame_digest(frame)))
    h.update(_array_digest(fixed.X))
    for term in problem.reterms:
        add(term.group, term.levels, term.names)
        h.update(_array_digest(term.codes))
        h.update(_array_digest(term.X))
    return h.hexdigest()


def _array_digest(a: np.ndarray) -> bytes:
    """A digest of an array's type, shape and values, computed once per array (the designs of a
    kept prepared model are the same arrays in every request on it, as its frame is)."""
    def digest() -> bytes:
        return hashlib.blake2b(repr((str(a.dtype), a.shape)).encode() + _array_bytes(a), digest_size=20).digest()

    return remembered(a, ("digest",), digest)


def _frame_digest(frame) -> bytes:
    """A digest of a model frame's rows (index, every column with its type, levels and values),
    factors and matrices; computed once per frame (:mod:`.inference.permodel`), which requests
    on a kept prepared model share."""
    h = hashlib.blake2b(digest_size=20)
    for part in (sorted(frame.factors), sorted(frame.matrices.items()), list(frame.data.columns)):
        h.update(repr(part).encode())
        h.update(b"\x00")
    h.update(_array_bytes(frame.data.index.to_numpy()))
    for name, col in frame.data.items():
        h.update(repr((name, str(col.dtype))).encode())
        if isinstance(col.dtype, pd.CategoricalDtype):
            h.update(repr((list(col.cat.categories), col.cat.ordered)).encode())
            h.update(_array_bytes(col.cat.codes.to_numpy()))
        else:
            h.update(_array_bytes(col.to_numpy()))
    return h.digest()


def _array_bytes(a: np.ndarray) -> bytes:
    """The bytes of an array's values (object arrays through their text)."""
    if a.dtype == object:
        return repr(a.tolist()).encode()
    return np.ascontiguousarray(a).tobytes()


@dataclass
class _Entry:
    fit: Fit
    inferences: OrderedDict = field(default_factory=OrderedDict)


class FitCache:
    """The last ``size`` fits by (engine, fingerprint), each with its recent inferences."""

    def __init__(self, size: int = MAX_FITS) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def fit(self, engine: Engine, problem: Problem) -> Fit:
        """``engine.fit(problem)``, or the fit kept from an earlier request on the same model."""
        if not enabled():
            return engine.fit(problem)
        key = (engine.name, fingerprint(problem))
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and engine.hold(entry.fit):
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                self.hits += 1
            return entry.fit
        fit = engine.fit(problem)
        self._store(engine, key, _Entry(fit))
        return fit

    def infer(self, engine: Engine, fit: Fit, settings: Settings, terms: list[str] | None,
              compute: Callable[[], Inference]) -> Inference:
        """``compute()`` (the inference of ``fit`` under ``settings`` and ``terms``), kept with the
        fit when the fit is one of the cache's."""
        entry = self._entry_of(engine, fit)
        if entry is None:
            return compute()
        key = (repr(astuple(settings)), None if terms is None else tuple(terms))
        with self._lock:
            got = entry.inferences.get(key)
            if got is not None:
                entry.inferences.move_to_end(key)
                return got
        inference = compute()
        with self._lock:
            entry.inferences[key] = inference
            while len(entry.inferences) > MAX_INFERENCES:
                entry.inferences.popitem(last=False)
        return inference

    def clear(self) -> None:
        """Let every kept fit go."""
        with self._lock:
            dropped = list(self._entries.items())
            self._entries.clear()
        for (name, _), entry in dropped:
            _release(name, entry.fit)

    def _entry_of(self, engine: Engine, fit: Fit) -> _Entry | None:
        with self._lock:
            return next((e for (name, _), e in self._entries.items() if name == engine.name and e.fit is fit), None)

    def _store(self, engine: Engine, key: tuple[str, str], entry: _Entry) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            self._entries[key] = entry
            dropped = [] if old is None else [(key, old)]
            while len(self._entries) > self.size:
                dropped.append(self._entries.popitem(last=False))
            self.misses += 1
        for (name, _), gone in dropped:
            _release(name, gone.fit)


def _release(engine_name: str, fit: Fit) -> None:
    """Tell the engine that made ``fit`` that the cache no longer keeps it."""
    from .engines import get_engine

    with contextlib.suppress(Exception):  # letting go must never fail a request
        get_engine(engine_name).release(fit)


_DISABLED = threading.local()


def enabled() -> bool:
    """Whether fits are reused (``MIXEDBRIDGE_FIT_CACHE`` not 0 and not inside :func:`disabled`)."""
    if getattr(_DISABLED, "on", False):
        return False
    return os.environ.get("MIXEDBRIDGE_FIT_CACHE", "1").strip() not in ("0", "false", "no", "off")


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Every request inside refits (for comparisons with and without the cache)."""
    before = getattr(_DISABLED, "on", False)
    _DISABLED.on = True
    try:
        yield
    finally:
        _DISABLED.on = before


#: The process's caches, used by :mod:`mixedbridge.analysis`.
FITS = FitCache()
PREPARED = PreparedCache()
