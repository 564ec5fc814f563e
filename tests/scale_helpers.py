"""Shared pieces of the Dask tests: skipping without Dask (failing under CI, where the Makefile
installs the extra), a LocalCluster started by the test, and table comparison."""
from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest


def need_dask():
    """The dask module; skip without it, except under CI=true (the extra is installed there).

    distributed asks ``platform.uname().processor`` when a cluster starts, which runs ``uname -p``
    in a child process once per process; it is asked here, at collection, so that no test starts
    a child process (tests/conftest.py fails one that does without the ``subprocess`` marker)."""
    platform.uname().processor  # noqa: B018 - cached by the platform module
    if os.environ.get("CI") == "true":
        import dask
        import distributed  # noqa: F401
        return dask
    dask = pytest.importorskip("dask", reason="the Dask backend needs the 'dask' extra: "
                               "pip install 'mixedbridge[dask]'")
    pytest.importorskip("distributed", reason="the Dask tests need dask.distributed (the 'dask' extra)")
    return dask


@contextmanager
def local_client(n_workers: int = 2) -> Iterator:
    """A client of a LocalCluster in this process (2 workers, 1 thread each), both closed on exit."""
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def cell_differences(a, b) -> dict[tuple[str, str], float]:
    """Largest relative difference per (table, numeric column) of two results; text columns
    and NaN positions must be equal (AssertionError otherwise)."""
    out: dict[tuple[str, str], float] = {}
    assert [t.name for t in a.tables] == [t.name for t in b.tables]
    for ta in a.tables:
        pa, pb = ta.to_pandas(), b.table(ta.name).to_pandas()
        assert list(pa.columns) == list(pb.columns), ta.name
        assert len(pa) == len(pb), ta.name
        for c in pa.columns:
            x, y = pa[c], pb[c]
            if pd.api.types.is_float_dtype(x) or pd.api.types.is_float_dtype(y):
                xv, yv = x.to_numpy(dtype=float), y.to_numpy(dtype=float)
                assert np.array_equal(np.isnan(xv), np.isnan(yv)), (ta.name, c)
                ok = np.isfinite(xv)
                assert np.array_equal(xv[~ok & ~np.isnan(xv)], yv[~ok & ~np.isnan(yv)]), (ta.name, c)
                rel = np.abs(xv[ok] - yv[ok]) / np.maximum(np.abs(xv[ok]), 1e-300)
                out[(ta.name, c)] = float(rel.max()) if rel.size else 0.0
            else:
                assert [str(v) for v in x.fillna("NA")] == [str(v) for v in y.fillna("NA")], (ta.name, c)
    return out


#: The agreement the issue asks for: every number within 1e-9 relative of the in-memory fit.
RTOL = 1e-9

#: p-values and how they are computed from their table's columns.
P_COLUMNS = {("parameters", "p.value"), ("anova", "p.value")}


def _p_value(table: str, stat: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
    """The p-value of ``stat`` with the degrees of freedom in ``frame`` (t: two-sided; F)."""
    from mixedbridge import distributions as dist

    if table == "parameters":
        return 2.0 * dist.t.sf(np.abs(stat), frame["df"].to_numpy(dtype=float))
    return dist.f.sf(stat, frame["NumDF"].to_numpy(dtype=float), frame["DenDF"].to_numpy(dtype=float))


def _mode_scale(frame: pd.DataFrame) -> np.ndarray:
    """Per row of the conditional modes, the largest |mode| of the same grouping factor and term
    (a mode near zero is a difference of larger numbers; its error is that of its term)."""
    keys = [c for c in ("group", "term") if c in frame.columns]
    return frame.groupby(keys)["estimate"].transform(lambda v: np.max(np.abs(v))).to_numpy(dtype=float)


def agreement(reference, other) -> dict[tuple[str, str], float]:
    """Per (table, numeric column), the largest difference of ``other`` from ``reference`` in
    the units its tolerance is stated in: relative for every number, except p-values and
    conditional modes. A p-value is compared with the p-value of the reference's statistic at
    ``other``'s df (what df moves is counted under the df column), relative and divided by its
    condition number |∂log p/∂log statistic| when that exceeds 1 (a tail probability of t = 30
    carries the statistic's relative rounding times t² ≈ 900: it cannot be closer than that); a
    conditional mode relative to the largest mode of its grouping factor and term."""
    out = cell_differences(reference, other)
    for ta in reference.tables:
        pa, pb = ta.to_pandas(), other.table(ta.name).to_pandas()
        if (ta.name, "p.value") in P_COLUMNS and "p.value" in pa:
            stat = pa["statistic"].to_numpy(dtype=float)
            expect = _p_value(ta.name, stat, pb)
            got = pb["p.value"].to_numpy(dtype=float)
            cond = np.abs(_p_value(ta.name, stat * (1 + 1e-6), pb) - _p_value(ta.name, stat * (1 - 1e-6), pb)) \
                / (2e-6 * np.maximum(np.abs(expect), 1e-300))
            ok = np.isfinite(expect) & np.isfinite(got)
            rel = np.abs(got[ok] - expect[ok]) / np.maximum(np.abs(expect[ok]), 1e-300) / np.maximum(cond[ok], 1.0)
            out[(ta.name, "p.value")] = float(rel.max()) if rel.size else 0.0
        if ta.name == "random_effects" and "estimate" in pa:
            x, y = pa["estimate"].to_numpy(dtype=float), pb["estimate"].to_numpy(dtype=float)
            out[(ta.name, "estimate")] = float(np.max(np.abs(x - y) / np.maximum(_mode_scale(pa), 1e-300)))
    return out


def assert_same_tables(reference, other) -> dict:
    """Every number of ``other`` within :data:`RTOL` of ``reference`` (in :func:`agreement`'s
    units), Satterthwaite's df included. Returns the differences."""
    diffs = agreement(reference, other)
    bad = {k: v for k, v in diffs.items() if v > RTOL}
    assert not bad, f"cells beyond tolerance: {bad}"
    return diffs
