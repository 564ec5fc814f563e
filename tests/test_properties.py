"""Property-based tests: whatever the spec and data, the answer is results or a structured error.

A bounded profile runs by default; set ``MIXEDBRIDGE_HYPOTHESIS_EXAMPLES`` for a longer run.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mixedbridge
from mixedbridge.errors import MixedBridgeError
from mixedbridge.serve import handle

EXAMPLES = int(os.environ.get("MIXEDBRIDGE_HYPOTHESIS_EXAMPLES", "60"))
PROFILE = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

NAMES = st.sampled_from(["y", "x", "g", "h", "my col", "ünï", "a`b", "x;y", "q\"uote", "__import__", ""])
CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(min_value=-5, max_value=5),
    st.sampled_from(["a", "b", "c", "", " ", "NA", "system('x')"]),
    st.none(),
    st.booleans(),
)


def quote(name: str) -> str:
    return f"`{name}`" if name and "`" not in name else (name or "x")


@st.composite
def frames(draw):
    nrows = draw(st.integers(min_value=0, max_value=30))
    names = draw(st.lists(NAMES, min_size=0, max_size=4, unique=True))
    if draw(st.integers(0, 9)) == 0 and names:
        names.append(names[0])
    ncols = len(names)
    kinds = ["float"] + [draw(st.sampled_from(["float", "int", "text", "mixed", "const", "groups"]))
                         for _ in range(ncols - 1)]
    if draw(st.booleans()) and ncols:
        kinds[0] = draw(st.sampled_from(["int", "text", "mixed", "const"]))
    cols = []
    for kind in kinds:
        if kind == "float":
            values = st.floats(allow_nan=True, allow_infinity=True, width=64)
            col = draw(st.lists(values, min_size=nrows, max_size=nrows))
        elif kind == "int":
            col = draw(st.lists(st.integers(-3, 3), min_size=nrows, max_size=nrows))
        elif kind == "text":
            col = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=nrows, max_size=nrows))
        elif kind == "groups":
            col = [f"s{i % draw(st.integers(1, 6))}" for i in range(nrows)]
        elif kind == "const":
            col = [1.0] * nrows
        else:
            col = draw(st.lists(CELLS, min_size=nrows, max_size=nrows))
        cols.append(col)
    df = pd.DataFrame(dict(zip(range(ncols), cols)))
    df.columns = names
    return df


@st.composite
def formulas(draw, names):
    names = list(names) or ["y"]
    response = quote(names[0])
    rest = names[1:] or names
    pick = lambda: quote(draw(st.sampled_from(rest)))  # noqa: E731
    shape = draw(st.sampled_from(["simple", "inter", "random", "random", "slope", "garbage"]))
    if shape == "simple":
        return f"{response} ~ {pick()}"
    if shape == "inter":
        return f"{response} ~ {pick()} * {pick()}"
    if shape == "random":
        return f"{response} ~ {pick()} + (1 | {pick()})"
    if shape == "slope":
        return f"{response} ~ {pick()} + ({pick()} || {pick()})"
    return draw(st.text(max_size=30))


def check_outcome(spec: dict, df: pd.DataFrame) -> None:
    try:
        res = mixedbridge.run(spec, data=df)
    except MixedBridgeError as exc:
        assert isinstance(exc.message, str) and exc.message
        assert isinstance(exc.path, str)
        return
    doc = json.loads(res.to_json())
    assert doc["tables"] and all(isinstance(t["rows"], list) for t in doc["tables"])


@PROFILE
@given(data=st.data())
def test_any_spec_and_data_give_results_or_a_structured_error(data):
    df = data.draw(frames())
    formula = data.draw(formulas(list(df.columns)))
    analysis = data.draw(st.sampled_from(["lm", "lmm"]))
    spec = {"analysis": analysis, "formula": formula, "data": {"records": [{"x": 1}]}}
    if data.draw(st.booleans()) and len(df.columns):
        spec["filter"] = [{"column": str(df.columns[0]), "not_missing": True}]
    check_outcome(spec, df)


@PROFILE
@given(doc=st.recursive(st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=8)),
                        lambda kids: st.one_of(st.lists(kids, max_size=4),
                                               st.dictionaries(st.sampled_from(
                                                   ["analysis", "formula", "data", "filter", "levels",
                                                    "options", "engine", "records", "path", "dataset"]),
                                                   kids, max_size=5)),
                        max_leaves=12))
def test_any_json_document_gets_one_answer(doc):
    answer = handle(json.dumps(doc))
    assert set(answer) <= {"error", "analysis", "engine", "spec", "tables", "notes", "warnings", "timing", "plots",
                           "id"}
    if "error" in answer:
        assert answer["error"]["code"] != "internal", answer["error"]


def test_collinear_and_constant_predictors():
    x = np.arange(10.0)
    df = pd.DataFrame({"y": x % 3 + 0.5 * x, "x": x, "x2": 2 * x, "c": 1.0})
    res = mixedbridge.run({"analysis": "lm", "formula": "y ~ x + x2 + c", "data": {"records": [{}]}}, data=df)
    assert res.table("parameters").to_pandas()["term"].tolist() == ["(Intercept)", "x"]
    assert all(math.isfinite(v) for v in res.table("parameters").to_pandas()["estimate"])
