"""The benchmark models: bundled data sets and seeded synthetic data.

A :class:`Case` knows its formula, how to build its data (a DataFrame plus the columns that are
factors), and how each peer expresses it (statsmodels needs its own spelling, or cannot)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Case:
    name: str
    formula: str
    source: str                       # "dataset:NAME" or "synthetic:KIND"
    params: tuple = ()                # synthetic parameters as (key, value) pairs
    size: str = "small"               # small | medium | large: repeat policy and process isolation
    statsmodels: dict | None = None   # smf.mixedlm keyword arguments, or None if not expressible
    sm_note: str = ""                 # how statsmodels expresses it, or why it is not run
    sm_status: str = "not expressible"  # status when ``statsmodels`` is None: or "not attempted"
    description: str = ""
    limit_s: float | None = None      # wall-clock limit per engine, overriding the size's default

    def data(self) -> tuple[pd.DataFrame, set[str]]:
        kind, _, arg = self.source.partition(":")
        if kind == "dataset":
            from mixedbridge.datasets import load
            return load(arg)
        p = dict(self.params)
        if arg == "slope":
            return synth_slope(**p), {"g"}
        if arg == "crossed":
            return synth_crossed(**p), {"a", "b"}
        raise ValueError(f"unknown case source {self.source!r}")

    def as_dict(self) -> dict:
        return {"name": self.name, "formula": self.formula, "source": self.source,
                "params": dict(self.params), "size": self.size, "description": self.description,
                "statsmodels": self.sm_note}


def synth_slope(n: int, groups: int, seed: int = 20240601) -> pd.DataFrame:
    """y = 1 + 0.5·x + b0[g] + b1[g]·x + e with (b0, b1) ~ N(0, sd (1, 0.5), corr 0.5), e ~ N(0, 1);
    balanced groups (n/groups rows each), x ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), -(-n // groups))[:n]
    sd = np.array([1.0, 0.5])
    corr = np.array([[1.0, 0.5], [0.5, 1.0]])
    b = rng.multivariate_normal(np.zeros(2), corr * np.outer(sd, sd), size=groups)
    x = rng.standard_normal(n)
    y = 1.0 + 0.5 * x + b[g, 0] + b[g, 1] * x + rng.standard_normal(n)
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical.from_codes(g, [f"g{i}" for i in range(groups)])})


def synth_crossed(n: int, levels: int, seed: int = 20240602) -> pd.DataFrame:
    """y = 1 + 0.5·x + a[i] + b[j] + e, a, b ~ N(0, 1), e ~ N(0, 1); every level of a and of b
    occurs n/levels times, paired at random (so the a×b fill-in block is dense)."""
    rng = np.random.default_rng(seed)
    ia = rng.permutation(np.resize(np.arange(levels), n))
    ib = rng.permutation(np.resize(np.arange(levels), n))
    ua, ub = rng.standard_normal(levels), rng.standard_normal(levels)
    x = rng.standard_normal(n)
    y = 1.0 + 0.5 * x + ua[ia] + ub[ib] + rng.standard_normal(n)
    names = [f"L{i}" for i in range(levels)]
    return pd.DataFrame({"y": y, "x": x, "a": pd.Categorical.from_codes(ia, names),
                         "b": pd.Categorical.from_codes(ib, names)})


_ONE_GROUP = "crossed factors as variance components inside a single all-rows group"


def full_cases() -> list[Case]:
    return [
        Case("sleepstudy", "Reaction ~ Days + (Days | Subject)", "dataset:sleepstudy",
             statsmodels={"formula": "Reaction ~ Days", "groups": "Subject", "re_formula": "~Days"},
             description="180 rows, 18 subjects, correlated intercept and slope"),
        Case("Penicillin", "diameter ~ 1 + (1|plate) + (1|sample)", "dataset:Penicillin",
             statsmodels={"formula": "diameter ~ 1", "groups": "__one__", "re_formula": "0",
                          "vc_formula": {"plate": "0 + C(plate)", "sample": "0 + C(sample)"}},
             sm_note=_ONE_GROUP, description="144 rows, 24 plates × 6 samples, fully crossed"),
        Case("Pastes", "strength ~ 1 + (1|batch/cask)", "dataset:Pastes",
             statsmodels={"formula": "strength ~ 1", "groups": "batch", "re_formula": "1",
                          "vc_formula": {"cask": "0 + C(cask)"}},
             sm_note="cask as a variance component within batch",
             description="60 rows, casks nested in 10 batches"),
        Case("fhch2010", "log_rt ~ task * stimulus + (1 + stimulus | id) + (1 | item)", "dataset:fhch2010",
             size="medium", sm_note="crossed id and item with a correlated by-id slope (variance components "
                                    "inside one group cannot carry the correlation)",
             description="12,960 rows, 45 participants × 600 items, crossed, correlated slope"),
        Case("InstEval", "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", "dataset:InstEval",
             size="large", statsmodels={"formula": "y ~ service", "groups": "__one__", "re_formula": "0",
                                        "vc_formula": {"s": "0 + C(s)", "d": "0 + C(d)",
                                                       "deptservice": "0 + C(deptservice)"},
                                        "derive": {"deptservice": ["dept", "service"]}},
             sm_note=_ONE_GROUP + " (dense 73,421 × 4,128 design)",
             description="73,421 rows, 2,972 students × 1,128 lecturers crossed, plus dept:service"),
        Case("synth-100k", "y ~ x + (1 + x | g)", "synthetic:slope", (("n", 100_000), ("groups", 1_000)),
             size="large", statsmodels={"formula": "y ~ x", "groups": "g", "re_formula": "~x"},
             description="100,000 rows, 1,000 groups, correlated intercept and slope (seeded)"),
        Case("synth-1M", "y ~ x + (1 + x | g)", "synthetic:slope", (("n", 1_000_000), ("groups", 10_000)),
             size="large", statsmodels={"formula": "y ~ x", "groups": "g", "re_formula": "~x"},
             description="1,000,000 rows, 10,000 groups, correlated intercept and slope (seeded)"),
        Case("synth-crossed", "y ~ x + (1 | a) + (1 | b)", "synthetic:crossed", (("n", 100_000), ("levels", 5_000)),
             size="large", limit_s=150.0, sm_status="not attempted",
             sm_note="the one-group device needs a dense 100,000 × 10,000 design (8 GB)",
             description="100,000 rows, two crossed factors of 5,000 levels each, paired at random (seeded)"),
    ]


def quick_cases() -> list[Case]:
    """Tiny inputs for the smoke test: the three small data sets and miniature synthetic ones."""
    small = [c for c in full_cases() if c.size == "small"]
    return small + [
        Case("synth-slope-tiny", "y ~ x + (1 + x | g)", "synthetic:slope", (("n", 2_000), ("groups", 40)),
             statsmodels={"formula": "y ~ x", "groups": "g", "re_formula": "~x"},
             description="2,000 rows, 40 groups, correlated intercept and slope (seeded)"),
        Case("synth-crossed-tiny", "y ~ x + (1 | a) + (1 | b)", "synthetic:crossed", (("n", 2_000), ("levels", 50)),
             statsmodels={"formula": "y ~ x", "groups": "__one__", "re_formula": "0",
                          "vc_formula": {"a": "0 + C(a)", "b": "0 + C(b)"}},
             sm_note=_ONE_GROUP, description="2,000 rows, 50 × 50 crossed levels (seeded)"),
    ]
