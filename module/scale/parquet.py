"""Parquet data for the Dask backend (``data: {"parquet": "path/or/glob"}``), read only where
:mod:`mixedbridge.datapath` allows: every file the path or glob names must lie, after links are
followed, inside the allowed data folders, outside the system folders, and be a regular
``*.parquet`` file. Errors name the path as the spec gave it, never the folders allowed."""
from __future__ import annotations

import glob
import os
from pathlib import Path

from ..datapath import SYSTEM_FOLDERS, allowed_roots
from ..errors import DataError
from .daskops import require_dask

POINTER = "/data/parquet"


def parquet_files(raw: object, base: Path | None) -> list[str]:
    """The real paths of the Parquet files ``raw`` names (a file, a folder of ``*.parquet`` files,
    or a glob), each checked against the allowed folders."""
    if not isinstance(raw, str) or not raw or "\x00" in raw:
        raise DataError("the parquet path must be a file name, folder or glob (non-empty text)", POINTER)
    joined = os.path.join(base if base is not None else os.getcwd(), raw)
    if os.path.isdir(joined):
        joined = os.path.join(joined, "*.parquet")
    matches = sorted(glob.glob(joined, recursive=False))
    if not matches:
        raise DataError(f"no Parquet file matches {raw!r}", POINTER)
    return [_checked(m, raw, base) for m in matches]


def _checked(path: str, raw: str, base: Path | None) -> str:
    real = os.path.realpath(path)
    roots = allowed_roots(base)
    if not any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots):
        raise DataError(f"parquet path {raw!r} leads outside the folders this host reads data from; use files "
                        "inside them, or have the host allow another folder (--data-root, or data_root= in "
                        "Python)", POINTER)
    if any(real == f or real.startswith(f + os.sep) for f in SYSTEM_FOLDERS):
        raise DataError(f"parquet path {raw!r} names a system file, not a data file", POINTER)
    if not os.path.isfile(real) or not real.lower().endswith(".parquet"):
        raise DataError(f"parquet path {raw!r} matches something that is not a regular *.parquet file", POINTER)
    return real


def read_parquet(raw: object, base: Path | None):
    """A Dask DataFrame of the Parquet files ``raw`` names (see :func:`parquet_files`)."""
    dd = require_dask().dataframe
    return dd.read_parquet(parquet_files(raw, base))
