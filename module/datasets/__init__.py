"""Bundled example data sets (CSV) with their provenance, addressable as ``{"dataset": NAME}``."""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import pandas as pd

from ..errors import DataError


@lru_cache(maxsize=1)
def catalog() -> dict:
    """Name -> {file, rows, factors, source, licence}."""
    return json.loads(resources.files(__name__).joinpath("catalog.json").read_text(encoding="utf-8"))


def load(name: str) -> tuple[pd.DataFrame, set[str]]:
    """A bundled data set (a copy of the one read once per process: a host's repeated requests
    on sleepstudy spent 3 ms of 10 parsing its CSV) and the columns that are factors in the
    original."""
    cat = catalog()
    if name not in cat:
        raise DataError(f"unknown dataset {name!r}; bundled data sets are {', '.join(sorted(cat))}",
                        "/data/dataset")
    return _read(name).copy(), set(cat[name]["factors"])


@lru_cache(maxsize=8)
def _read(name: str) -> pd.DataFrame:
    """The bundled CSV of ``name``, parsed (kept; :func:`load` hands out copies)."""
    with resources.files(__name__).joinpath(catalog()[name]["file"]).open("rb") as fh:
        return pd.read_csv(fh)
