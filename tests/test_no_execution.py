"""Nothing in a spec or a data set is executed: hostile column names, levels and formulas reach
the native engine as data only. A sentinel file proves it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedbridge
from mixedbridge.errors import MixedBridgeError


def hostile_names(sentinel) -> list[str]:
    return [
        f"__import__('os').system('touch {sentinel}')",
        f"`); system('touch {sentinel}'); (`",
        f"\"; system(\"touch {sentinel}\"); \"",
        f"x; import os; os.system('touch {sentinel}')",
    ]


@pytest.mark.parametrize("which", range(4))
def test_hostile_column_names_and_levels_are_data(tmp_path, which):
    sentinel = tmp_path / "SENTINEL"
    name = hostile_names(sentinel)[which]
    rng = np.random.default_rng(which)
    groups = [f"{name}{i % 6}" for i in range(60)]
    df = pd.DataFrame({"y": rng.normal(size=60), name: np.arange(60) % 5 * 1.0, "g": groups})
    formula = f"y ~ `{name}` + (1 | g)" if "`" not in name else "y ~ 1 + (1 | g)"
    res = mixedbridge.run({"analysis": "lmm", "formula": formula, "data": {"records": [{}]}}, data=df)
    levels = res.table("random_effects").to_pandas()["level"].tolist()
    assert levels[0] == f"{name}0"
    assert not sentinel.exists()


@pytest.mark.parametrize("formula", [
    "y ~ __import__('os').system('touch {s}')",
    "y ~ eval('1')",
    "y ~ exec(x)",
    "y ~ I(__import__)",
    "y ~ x + (1 | system('touch {s}'))",
    "y ~ log(x).__class__",
    "y ~ x[0]",
    "y ~ {{x}}",
])
def test_hostile_formulas_are_refused_without_running(tmp_path, formula):
    sentinel = tmp_path / "SENTINEL"
    df = pd.DataFrame({"y": [1.0, 2.0, 3.5, 4.0], "x": [1.0, 2.0, 3.0, 4.0], "__import__": [1.0, 0.0, 1.0, 0.0]})
    spec = {"analysis": "lm", "formula": formula.format(s=sentinel), "data": {"records": [{}]}}
    try:
        mixedbridge.run(spec, data=df)
    except MixedBridgeError as exc:
        assert exc.path == "/formula" or exc.code == "data"
    assert not sentinel.exists()
