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
    """A bundled data set and the columns that are factors in the original."""
    cat = catalog()
    if name not in cat:
        raise DataError(f"unknown dataset {name!r}; bundled data sets are {', '.join(sorted(cat))}",
                        "/data/dataset")
    entry = cat[name]
    with resources.files(__name__).joinpath(entry["file"]).open("rb") as fh:
        df = pd.read_csv(fh)
    return df, set(entry["factors"])
