"""``Table.add_columns``: rows given column-wise hold the same cells as ``add_row`` row by row
(numpy numbers as Python numbers, NaN and infinities as None, scalars repeated)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mixedbridge.table import Column, Table


def _table() -> Table:
    return Table("t", "T", [Column("g", "G", "string"), Column("level", "Level", "string"),
                            Column("x", "X"), Column("n", "N", "integer"), Column("y", "Y")])


def test_add_columns_equals_add_row():
    x = np.array([1.5, np.nan, np.inf, -2.0])
    n = np.array([1, 2, 3, 4])
    levels = [np.str_("a"), "b", "c", "d"]
    by_row, by_column = _table(), _table()
    for i in range(4):
        by_row.add_row(g="grp", level=levels[i], x=x[i], n=n[i])
    by_column.add_columns(g="grp", level=levels, x=x, n=n)
    assert by_column.rows == by_row.rows
    assert json.dumps(by_column.to_dict()) == json.dumps(by_row.to_dict())
    assert [type(r["x"]) for r in by_column.rows] == [float, type(None), type(None), float]
    assert [type(r["n"]) for r in by_column.rows] == [int] * 4
    assert all(r["y"] is None for r in by_column.rows)


def test_add_columns_refuses_unknown_columns():
    with pytest.raises(KeyError):
        _table().add_columns(nope=[1.0])
