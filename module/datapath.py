"""Where data files may be read from: CSV files inside the folders the host allows, nothing else.

A spec names its data file by ``data.path``. A host plugin must not let a request read any other
file, so every path is checked before it is opened:

* A relative path is read from the spec file's folder, or the working directory when the spec
  is a dict or a ``serve`` request. ``..`` and symbolic links are followed first, and the file
  they lead to must lie inside one of the allowed data folders.
* The allowed folders are those given by :func:`data_roots` (``--data-root`` for the CLI and
  ``serve``, ``data_root=`` for :func:`mixedbridge.run`). By default it is the one folder relative
  paths are read from: the spec file's folder, or the working directory.
* The file must be a regular file named ``*.csv`` (any case; compressed files are not read, so
  no archive can expand) of at most :data:`MAX_DATA_BYTES`. Folders, FIFOs, devices, sockets
  and anything under /proc, /sys or /dev are refused before they are opened.
* Errors name the path as the spec gave it, never the folders allowed, and never quote the file.

The table is read as R's ``read.csv`` reads it: only empty fields and ``NA`` are missing
(:data:`MISSING_STRINGS`); ``None``, ``NULL``, ``null``, ``nan`` or ``N/A`` in a text column are
values (nlme's Alfalfa has a level ``None``). A column whose every other field is a number is
numeric, where ``NaN``, ``Inf`` and ``-Inf`` (any case, ``Infinity`` too) are R's ``NaN`` and
infinities; ``NaN`` then counts as missing, as ``is.na`` says in R. Unlike R, an empty field in a
text column is missing too (R keeps it as the value ``""``).
"""
from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import pandas as pd

from .errors import DataError, SpecError

#: The allowed data folders, when a caller has set them (:func:`data_roots`).
_ROOTS: ContextVar[tuple[str, ...] | None] = ContextVar("mixedbridge_data_roots", default=None)

#: Pseudo-file systems whose files are never data, whatever folder is allowed.
SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")

#: The file name endings a data file may have (compared without case).
DATA_SUFFIXES = (".csv",)

#: The key in ``DataFrame.attrs`` that marks rows read from a data file.
FROM_FILE = "mixedbridge_from_file"

#: The largest data file read, in bytes (``MIXEDBRIDGE_MAX_DATA_MB`` in MiB overrides it): a
#: larger file, or a sparse one that claims to be, is refused before it is read.
MAX_DATA_BYTES = 1024 * 1024 * 1024

#: The fields of a data file that are missing values (R's ``read.csv``: ``na.strings = "NA"``,
#: and blank fields).
MISSING_STRINGS = ("", "NA")

PathLike = Union[str, "os.PathLike[str]"]
POINTER = "/data/path"


@contextlib.contextmanager
def data_roots(roots: PathLike | Iterable[PathLike] | None) -> Iterator[None]:
    """Allow data files only inside these folders while the block runs (None: keep the current
    setting, by default the folder relative paths are read from)."""
    if roots is None:
        yield
        return
    token = _ROOTS.set(tuple(os.path.realpath(os.fspath(f)) for f in _folders(roots)))
    try:
        yield
    finally:
        _ROOTS.reset(token)


def _folders(roots: object) -> tuple:
    folders = (roots,) if isinstance(roots, (str, os.PathLike)) else roots
    if not isinstance(folders, (list, tuple)) or not folders or \
            not all(isinstance(f, (str, os.PathLike)) and os.fspath(f) for f in folders):
        raise SpecError("data_root must be a folder (a path) or a non-empty list of folders")
    return tuple(folders)


def allowed_roots(base: Path | None) -> tuple[str, ...]:
    """The folders data may come from: those set by :func:`data_roots`, else ``base`` (the spec
    file's folder) or the working directory."""
    roots = _ROOTS.get()
    if roots is not None:
        return roots
    return (os.path.realpath(base if base is not None else os.getcwd()),)


def read_table(raw: object, base: Path | None) -> pd.DataFrame:
    """The rows of the data file ``raw`` (``data.path``), after :func:`locate` allowed it.

    Raises
    ------
    DataError
        At ``/data/path``: the path is not allowed, not a CSV file, or not a readable CSV table.
    """
    with open_data(raw, base) as fh:
        return _parse_csv(fh, str(raw))


def open_data(raw: object, base: Path | None) -> BinaryIO:
    """The data file opened for reading, checked again after opening (it must still be the file
    :func:`locate` allowed: no symbolic link swapped in, no FIFO)."""
    real, expected = locate(raw, base)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        raise DataError(f"data file {raw!r} cannot be read ({exc.strerror})", POINTER) from None
    opened = os.fstat(fd)
    if (opened.st_dev, opened.st_ino) != (expected.st_dev, expected.st_ino) or not stat.S_ISREG(opened.st_mode):
        os.close(fd)
        raise DataError(f"data file {raw!r} changed while it was being opened; try again", POINTER)
    return os.fdopen(fd, "rb")


def locate(raw: object, base: Path | None) -> tuple[str, os.stat_result]:
    """The real path of an allowed data file and its status, checked without opening it.

    Raises
    ------
    DataError
        At ``/data/path`` for a path that is not text, leads outside the allowed folders, names a
        system file, a folder, a FIFO, device or socket, a file not named ``*.csv``, a missing
        file, or an empty one.
    """
    text = _as_text(raw)
    real = os.path.realpath(os.path.join(base if base is not None else os.getcwd(), text))
    _check_inside(real, text, base)
    status = _status(real, text)
    if not real.lower().endswith(DATA_SUFFIXES):
        raise DataError(f"data file {text!r} is not a CSV file; data files are CSV tables named "
                        f"*{'/*'.join(DATA_SUFFIXES)}", POINTER)
    if status is None:
        raise DataError(f"data file {text!r} does not exist", POINTER)
    if status.st_size == 0:
        raise DataError(f"data file {text!r} is empty", POINTER)
    limit = max_data_bytes()
    if status.st_size > limit:
        raise DataError(f"data file {text!r} has {status.st_size / 2**20:.0f} MiB, more than the limit of "
                        f"{limit / 2**20:.0f} MiB (set MIXEDBRIDGE_MAX_DATA_MB to allow more, or read the "
                        "data in parts)", POINTER)
    return real, status


def max_data_bytes() -> int:
    """The data-file size limit: :data:`MAX_DATA_BYTES`, or ``MIXEDBRIDGE_MAX_DATA_MB`` MiB."""
    raw = os.environ.get("MIXEDBRIDGE_MAX_DATA_MB", "")
    if not raw:
        return MAX_DATA_BYTES
    try:
        mb = float(raw)
    except ValueError:
        mb = float("nan")
    if not (mb > 0 and mb < float("inf")):
        raise DataError(f"MIXEDBRIDGE_MAX_DATA_MB must be a positive number of MiB, not {raw[:40]!r}", POINTER)
    return int(mb * 2**20)


def _as_text(raw: object) -> str:
    if not isinstance(raw, str) or not raw:
        raise DataError(f"the data path must be a file name (non-empty text), not {_kind(raw)}", POINTER)
    if "\x00" in raw:
        raise DataError("the data path holds a NUL character; give a file name", POINTER)
    return raw


def _kind(value: object) -> str:
    return "an empty string" if value == "" else type(value).__name__


def _check_inside(real: str, text: str, base: Path | None) -> None:
    if not any(_within(real, root) for root in allowed_roots(base)):
        where = "the spec file's folder" if base is not None else "the working directory"
        raise DataError(f"data path {text!r} leads outside the folders this host reads data from; use a "
                        f"file inside them (relative paths are read from {where}), or have the host allow "
                        "another folder (--data-root, or data_root= in Python)", POINTER)
    if any(_within(real, folder) for folder in SYSTEM_FOLDERS):
        raise DataError(f"data path {text!r} names a system file, not a data file", POINTER)


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _status(real: str, text: str) -> os.stat_result | None:
    """The file's status (None when it does not exist); folders and special files refused."""
    try:
        status = os.stat(real)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DataError(f"data file {text!r} cannot be read ({exc.strerror})", POINTER) from None
    if stat.S_ISDIR(status.st_mode):
        raise DataError(f"data path {text!r} is a folder; name a CSV file", POINTER)
    if not stat.S_ISREG(status.st_mode):
        raise DataError(f"data path {text!r} is not a regular file (a FIFO, device or socket); name a CSV file",
                        POINTER)
    return status


_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _parse_csv(fh: BinaryIO, text: str) -> pd.DataFrame:
    """Read the CSV table; errors describe the problem without quoting the file."""
    try:
        table = pd.read_csv(fh, keep_default_na=False, na_values=list(MISSING_STRINGS))
    except UnicodeDecodeError:
        raise DataError(f"data file {text!r} is not UTF-8 text", POINTER) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {text!r} has no columns", POINTER) from None
    except pd.errors.ParserError as exc:
        found = _FIELDS.search(str(exc))
        detail = (f": line {found[2]} has {found[3]} fields where the first rows have {found[1]}"
                  if found else "")
        raise DataError(f"data file {text!r} is not a well-formed CSV table{detail}", POINTER) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"data file {text!r} cannot be read as a CSV table ({type(exc).__name__})",
                        POINTER) from None
    return _r_numbers(table)


def _r_numbers(table: pd.DataFrame) -> pd.DataFrame:
    """The table with each text column whose every value reads as a number (R's ``NaN``, ``Inf``
    and ``-Inf`` included, which pandas leaves as text once only ``NA`` is missing) made numeric."""
    changed = {}
    for name in table.columns:
        col = table[name]
        if col.dtype == object or pd.api.types.is_string_dtype(col):
            values = _as_numbers(col)
            if values is not None:
                changed[name] = values
    return table.assign(**changed) if changed else table


def _as_numbers(col: pd.Series) -> pd.Series | None:
    """The column as floats when each of its present values is a number as R reads one, else None."""
    present = col.dropna()
    if len(present) == 0 or not all(isinstance(v, str) for v in present):
        return None
    lookup = {}
    for v in pd.unique(present):
        number = _r_number(v)
        if number is None:
            return None
        lookup[v] = number
    return pd.Series([lookup[v] if isinstance(v, str) else np.nan for v in col], index=col.index, dtype=float)


def _r_number(text: str) -> float | None:
    """A field read as R's ``type.convert`` reads a number (decimal or exponent notation, ``NaN``,
    ``Inf``, ``Infinity`` in any case), or None."""
    if "_" in text:
        return None
    try:
        return float(text)
    except ValueError:
        return None
