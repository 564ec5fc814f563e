"""The data of the numerics tests (issue 19), made exactly as ``tests/data/numerics/reference.R``
makes them: an integer LCG (exact in doubles in both languages), so Python and R fit the same
numbers without a data file."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

#: Reference values written by ``Rscript tests/data/numerics/reference.R``.
REFERENCE = json.loads((Path(__file__).resolve().parent / "data" / "numerics" / "reference.json").read_text())


def lcg_uniform(n: int, seed: int) -> np.ndarray:
    """n uniforms from s ← (69069·s + 1) mod 2³², u = (s + ½)/2³² (R's ``lcg_uniform``)."""
    s = seed
    out = np.empty(n)
    for k in range(n):
        s = (69069 * s + 1) % 4294967296
        out[k] = (s + 0.5) / 4294967296
    return out


def offset_data(ngroups: int = 6, per: int = 10, seed: int = 19) -> pd.DataFrame:
    """y = 1 + 2x + b_g + e for ``ngroups`` groups of ``per`` (R's ``offset_data``): x, b and e
    from sums of three uniforms."""
    n = ngroups * per
    u = lcg_uniform(3 * (2 * n + ngroups), seed).reshape(-1, 3)
    z = u[:, 0] + u[:, 1] + u[:, 2] - 1.5
    x, e, b = 2 * z[:n], z[n: 2 * n], 2 * z[2 * n: 2 * n + ngroups]
    g = np.repeat(np.arange(ngroups), per)
    return pd.DataFrame({"y": 1 + 2 * x + b[g] + e, "x": x, "g": [f"g{i + 1}" for i in g]})


def shifted_data(shift: dict) -> pd.DataFrame:
    """:func:`offset_data` with y + shift["y"], x + shift["x"] and a constant offset column ``o``
    of shift["offset"]."""
    df = offset_data()
    df["y"] = df["y"] + shift["y"]
    df["x"] = df["x"] + shift["x"]
    df["o"] = float(shift["offset"])
    return df


def shifted_spec(shift: dict, engine: str = "native", options: dict | None = None) -> dict:
    """The spec of ``y ~ x + (1 | g)`` on :func:`shifted_data` (with the offset when it has one)."""
    opts = dict(options or {})
    if shift["offset"]:
        opts["offset"] = "o"
    return {"analysis": "lmm", "engine": engine, "data": {"dataset": "numerics"},
            "formula": "y ~ x + (1 | g)", "options": opts}
