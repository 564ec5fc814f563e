"""Models too large for the machine are refused before any work, with an estimate."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedbridge
from mixedbridge.design import ReTermData
from mixedbridge.errors import ModelError
from mixedbridge.guard import check_memory, random_effects_bytes


def term(group: str, levels: int, n: int = 10) -> ReTermData:
    return ReTermData(group, [str(i) for i in range(levels)], np.zeros(n, dtype=np.int64), np.ones((n, 1)),
                      ["(Intercept)"])


def test_estimate_is_driven_by_the_second_factor():
    need, q_rest = random_effects_bytes([term("a", 100_000), term("b", 50_000)], n=10, p=1)
    assert q_rest == 50_000
    assert need > 3 * 50_000**2 * 8


def test_small_budget_refuses_with_a_suggestion():
    with pytest.raises(ModelError, match=r"GiB.*b \(2000 levels\).*filter the data"):
        check_memory([term("a", 3000), term("b", 2000)], n=10, p=1, budget=10 * 1024**2)


def test_crossed_factors_with_1e5_levels_are_refused_quickly():
    rng = np.random.default_rng(1)
    n = 300_000
    df = pd.DataFrame({"y": rng.normal(size=n), "a": rng.integers(0, 100_000, n).astype(str),
                       "b": rng.integers(0, 100_000, n).astype(str)})
    with pytest.raises(ModelError, match="would need about"):
        mixedbridge.run({"analysis": "lmm", "formula": "y ~ 1 + (1 | a) + (1 | b)", "data": {"records": [{}]}}, data=df)
