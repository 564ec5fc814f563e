"""The small-data shortcuts of the prepare path give what the routes they replace give: factor
dtypes from ``text_dtype`` equal pandas' public constructor's, the model frame's columns are read
without making its DataFrame (made on first read, equal to the eager one, apart from the caller's
data), a spec is copied as ``copy.deepcopy`` copies it, and a small model matrix's checks decide
as the column-by-column route decides. The numbers themselves are checked against R by
``test_lmm_lme4.py`` and ``test_crosscheck.py``."""
from __future__ import annotations

import copy
import dataclasses
import pickle

import numpy as np
import pandas as pd
import pytest

from mixedbridge import datasets, design, factor, frame
from mixedbridge.design import check_scale, drop_aliased
from mixedbridge.errors import ModelError
from mixedbridge.factor import text_dtype
from mixedbridge.formula import parse_formula
from mixedbridge.frame import model_frame
from mixedbridge.problem import Problem
from mixedbridge.spec import plain_copy, validate


@pytest.mark.parametrize("labels", [["308", "309", "310"], ["b", "a"], ["A:a", "ä", "x y", ""], ["TRUE"]])
def test_text_dtype_is_the_public_constructors(labels):
    made, public = text_dtype(labels), pd.CategoricalDtype(labels)
    assert made == public
    assert made.categories.dtype == public.categories.dtype
    assert made.categories.tolist() == labels and made.ordered == public.ordered
    assert pd.Categorical.from_codes([0, len(labels) - 1], dtype=made).equals(
        pd.Categorical.from_codes([0, len(labels) - 1], dtype=public))


def test_text_dtype_without_the_fast_path(monkeypatch):
    monkeypatch.setattr(factor, "_UNCHECKED", None)
    assert text_dtype(["b", "a"]) == pd.CategoricalDtype(["b", "a"])
    assert text_dtype([]) == pd.CategoricalDtype([])


def test_listed_levels_naming_one_label_twice_are_refused_as_before():
    with pytest.raises(ValueError, match="categories must be unique"):
        frame._as_factor(pd.Series(["1", "b", "1"]), [1, "1", "b"], "/levels/g", "g")


def _frame(formula: str, spec: dict | None = None, ds: str = "sleepstudy"):
    df, hint = datasets.load(ds)
    return df, model_frame(df, parse_formula(formula), validate({"analysis": "lmm", "formula": formula,
                                                                    "data": {"dataset": ds}, **(spec or {})}), hint)


def test_frame_columns_are_read_without_making_the_dataframe():
    df, f = _frame("Reaction ~ Days + (Days | Subject)", {"options": {"weights": "Days"}})
    assert not isinstance(f.__dict__["_data"], pd.DataFrame)
    assert f.nobs == len(df) and f.offset is None
    np.testing.assert_array_equal(f.weights, df["Days"].to_numpy(dtype=float))
    np.testing.assert_array_equal(f.floats("Reaction"), df["Reaction"].to_numpy())
    assert not f.floats("Reaction").flags.writeable and not f.weights.flags.writeable
    assert f.categorical("Subject").categories.tolist()[:2] == ["308", "309"]
    assert f.categorical("Days") is None
    assert not isinstance(f.__dict__["_data"], pd.DataFrame)
    eager = pd.DataFrame({"Reaction": df["Reaction"].to_numpy(), "Days": df["Days"].astype(float),
                          "Subject": pd.Categorical(df["Subject"].astype(str)), "(weights)": df["Days"].astype(float)})
    pd.testing.assert_frame_equal(f.data, eager, check_exact=True)
    assert f.data is f.data and f.data.attrs == {"matrices": {}}
    assert f.categorical("Subject") is f.data["Subject"].array


def test_a_frame_replaced_or_copied_reads_its_own_data():
    _, f = _frame("Reaction ~ Days + (1 | Subject)")
    g = pickle.loads(pickle.dumps(f))
    pd.testing.assert_frame_equal(g.data, f.data)
    pd.testing.assert_frame_equal(copy.deepcopy(f).data, f.data)
    cut = dataclasses.replace(f, data=f.data.iloc[:20])
    assert cut.nobs == 20 and len(cut.floats("Reaction")) == 20
    assert cut.grouping(("Subject",))[0] == ["308", "309"]


@pytest.mark.parametrize("copy_rows", [10_000, 0])
def test_the_frame_keeps_its_values_when_the_data_change(monkeypatch, copy_rows):
    """A short float column is copied, a long one shared under copy-on-write: either way a write
    into the caller's data after the prepare leaves the model frame as it was."""
    monkeypatch.setattr(frame, "COPY_ROWS", copy_rows)
    df = datasets.load("sleepstudy")[0].copy()
    desc = parse_formula("Reaction ~ Days + (1 | Subject)")
    f = model_frame(df, desc, {}, {"Subject"})
    before = f.floats("Reaction").copy()
    df.loc[0, "Reaction"] = -1.0
    df["Reaction"] *= 2
    np.testing.assert_array_equal(f.floats("Reaction"), before)
    np.testing.assert_array_equal(f.data["Reaction"].to_numpy(), before)


def test_unused_levels_of_a_made_factor_are_dropped():
    _, f = _frame("Reaction ~ I(Days > -1) + (1 | Subject)")
    assert f.data["I(Days > -1)"].cat.categories.tolist() == ["TRUE"]
    assert f.categorical("I(Days > -1)").categories.tolist() == ["TRUE"]


def test_plain_copy_is_a_deep_copy():
    spec = {"a": [1, 2.5, {"b": None, "c": True}], "d": "x", "e": (1, [2]), "f": np.float64(1.5)}
    out = plain_copy(spec)
    assert out == copy.deepcopy(spec)
    assert out["a"] is not spec["a"] and out["a"][2] is not spec["a"][2]
    assert out["e"][1] is not spec["e"][1]


@pytest.mark.parametrize("X", [
    np.column_stack([np.ones(30), np.arange(30.0)]),
    np.column_stack([np.ones(30), np.arange(30.0), 2 * np.arange(30.0)]),
    np.column_stack([np.ones(30), np.zeros(30)]),
    np.column_stack([np.ones(30), np.arange(30.0) * 1e-9 + 1]),
    np.ones((30, 1)), np.zeros((30, 1)), np.full((1, 1), -3.0), np.arange(30.0)[:, None] * 1e-40,
])
def test_small_and_large_matrix_routes_agree(monkeypatch, X):
    small = drop_aliased(X, ["a", "b", "c"][: X.shape[1]])
    monkeypatch.setattr(design, "SMALL_MATRIX", 0)
    large = drop_aliased(X, ["a", "b", "c"][: X.shape[1]])
    assert small[1] == large[1]
    np.testing.assert_array_equal(small[0], large[0])


@pytest.mark.parametrize("small", [True, False])
@pytest.mark.parametrize("bad, words", [(np.inf, "infinite or missing"), (np.nan, "infinite or missing"),
                                        (1e60, r"values of order 1e\+60"), (1e-60, "values of order 1e-60")])
def test_scale_check_routes_agree(monkeypatch, small, bad, words):
    if not small:
        monkeypatch.setattr(design, "SMALL_MATRIX", 0)
    X = np.column_stack([np.ones(5), np.arange(5.0), np.full(5, bad)])
    with pytest.raises(ModelError, match=words) as err:
        check_scale(X, ["(Intercept)", "x", "z"], "fixed effects")
    assert "'z'" in str(err.value)
    check_scale(X[:, :2], ["(Intercept)", "x"], "fixed effects")


def test_a_random_term_of_its_own_columns_is_still_checked():
    df = pd.DataFrame({"y": np.arange(20.0), "x": np.arange(20.0) * 1e60, "g": list("ab") * 10})
    desc = parse_formula("y ~ 1 + (x | g)")
    f = model_frame(df, desc, {})
    with pytest.raises(ModelError, match=r"random-effects term \(\(Intercept\) \+ x \| g\)"):
        Problem.build("lmm", desc, f, {})


def test_text_index_without_the_wrapping_fast_path(monkeypatch):
    fast = text_dtype(["b", "a", "ä"])
    monkeypatch.setattr(factor, "_WRAP", None)
    slow = text_dtype(["b", "a", "ä"])
    assert fast == slow and fast.categories.dtype == slow.categories.dtype
    assert fast.categories.tolist() == slow.categories.tolist() == ["b", "a", "ä"]


TEXTS = [
    pd.Series(["b", "a", "c", "a"] * 5, dtype="str"),
    pd.Series(["b", None, "c", "", "ä", "Z", "a b"] * 3, dtype="str"),
    pd.Series(["b", None, "c", "a"] * 5, dtype="string[pyarrow]"),
    pd.Series([None, None], dtype="str"),
    pd.concat([pd.Series(["x", "y"], dtype="str"), pd.Series(["y", "w", None], dtype="str")], ignore_index=True),
]


@pytest.mark.parametrize("col", TEXTS)
def test_pyarrow_text_factor_is_pandas_factorize_route(col):
    """The dictionary-encoded factor of a pyarrow text column is the one pandas' factorize gives
    (the general route), codes, labels and the Categorical made of them."""
    pytest.importorskip("pyarrow")
    fast = factor.arrow_text_factor(col.array)
    assert fast.labels == sorted(set(col.dropna()))
    general = frame._factor_codes(col, None, "/levels/g", "g")
    assert isinstance(general, factor.Factor)
    assert fast.labels == general.labels
    np.testing.assert_array_equal(fast.codes, general.codes)
    public = pd.Categorical(col.astype(object).where(col.notna(), None), categories=sorted(set(col.dropna())))
    assert fast.categorical().equals(public) and fast.categorical().dtype == public.dtype


@pytest.mark.parametrize("col", TEXTS + [pd.Series(["b", None, "c", "a", "ä"] * 40, dtype="str"),
                                         pd.Series([f"s{i % 23}" for i in range(200)], dtype="str")])
def test_pyarrow_text_factor_routes_agree(monkeypatch, col):
    """A short column's factor from its Python strings is the dictionary encoding's, bit for
    bit (codes, their dtype, labels), at any length."""
    pytest.importorskip("pyarrow")
    monkeypatch.setattr(factor, "LIST_ROWS", 10**9)
    listed = factor.arrow_text_factor(col.array)
    monkeypatch.setattr(factor, "LIST_ROWS", -1)
    encoded = factor.arrow_text_factor(col.array)
    assert listed.labels == encoded.labels and all(type(c) is str for c in listed.labels)
    assert listed.codes.dtype == encoded.codes.dtype == np.int64
    np.testing.assert_array_equal(listed.codes, encoded.codes)


def test_a_factor_made_into_a_categorical_is_pandas_own():
    f = factor.Factor(np.array([2, 0, -1, 2, 0]), ["c", "a", "b"])
    cat = f.categorical()
    assert cat is f.categorical()
    assert cat.equals(pd.Categorical(["b", "c", None, "b", "c"], categories=["c", "a", "b"]))
    used = f.used()
    assert used.labels == ["c", "b"]
    assert used.categorical().equals(cat.remove_unused_categories())
    assert f.take(np.array([True, False, True, False, False])).codes.tolist() == [2, -1]
    assert not used.has_unused() and f.has_unused() and used.used() is used


@pytest.mark.parametrize("ds, formula", [("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
                                         ("Penicillin", "diameter ~ sample + (1 | plate)"),
                                         ("Pastes", "strength ~ cask + (1 | batch/cask)")])
def test_columns_read_as_arrays_give_the_series_routes_frame(monkeypatch, ds, formula):
    """Columns read as pandas holds them (no Series) give the model frame and designs that the
    columns' Series give."""
    df, hint = datasets.load(ds)
    desc = parse_formula(formula)
    spec = validate({"analysis": "lmm", "formula": formula, "data": {"dataset": ds}})
    fast = Problem.build("lmm", desc, model_frame(df, desc, spec, hint), spec["options"])
    assert any(isinstance(v, factor.Factor) for v in fast.frame.__dict__["_data"].values.values())
    monkeypatch.setattr(frame, "_COLUMN_ARRAY", None)
    slow = Problem.build("lmm", desc, model_frame(df, desc, spec, hint), spec["options"])
    pd.testing.assert_frame_equal(fast.frame.data, slow.frame.data, check_exact=True)
    np.testing.assert_array_equal(fast.fixed.X, slow.fixed.X)
    assert fast.fixed.names == slow.fixed.names
    for a, b in zip(fast.reterms, slow.reterms):
        assert a.levels == b.levels and a.names == b.names
        np.testing.assert_array_equal(a.codes, b.codes)
        np.testing.assert_array_equal(a.X, b.X)


def test_column_arrays_are_read_only_views():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    arr = frame.ColumnCache(df).array("a")
    assert not arr.flags.writeable and arr.tolist() == [1.0, 2.0]
    assert isinstance(frame.ColumnCache(df).array("b"), type(df["b"].array))


@pytest.mark.parametrize("x", [np.ones(30), np.arange(30.0) - 7, np.full(1, -3.0), np.arange(30.0) * 1e-40,
                               np.full(5, 1e150), np.zeros(4)])
def test_one_column_rank_is_the_qr_verdict(x):
    """A one-column matrix's rank check without its QR gives the QR's verdict."""
    from scipy.linalg import lapack

    X = x[:, None]
    norm = float(np.sqrt(np.dot(x, x)))
    qr = lapack.dgeqrf(np.array(X, order="F"))[0]
    verdict = bool(np.isfinite(norm) and norm != 0
                   and abs(qr[0, 0]) > design._CLEAR_MARGIN * design.RANK_TOL * norm)
    assert design._clear_rank(X) is verdict
