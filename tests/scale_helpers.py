"""Shared pieces of the Dask tests: skipping without Dask (failing under CI, where the Makefile
installs the extra), a LocalCluster started by the test, and table comparison."""
from __future__ import annotations

import os
import platform

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


def local_client(n_workers: int = 2):
    """A LocalCluster in this process (2 workers, 1 thread each) and its client."""
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=False, dashboard_address=None)
    return cluster, Client(cluster)


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


def assert_same_tables(reference, other, reordered: list, rtol: float = 1e-9, noise_factor: float = 10.0) -> dict:
    """Every number of ``other`` within ``rtol`` of ``reference``, or within ``noise_factor``
    times what the in-memory fit itself moves when only the order of its rows changes
    (``reordered``: in-memory fits on shuffled rows; the largest movement per column counts).
    Returns the differences."""
    diffs = cell_differences(reference, other)
    moved = [cell_differences(reference, r) for r in reordered]
    noise = {k: max(m[k] for m in moved) for k in diffs}
    bad = {k: (v, noise[k]) for k, v in diffs.items() if v > max(rtol, noise_factor * noise[k])}
    assert not bad, f"cells beyond tolerance (difference, row-order noise): {bad}"
    return diffs
