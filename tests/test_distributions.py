"""mixedbridge.distributions gives exactly what scipy.stats gives (same special functions, same
handling of invalid parameters, of the support's ends and of scalars)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mixedbridge import distributions as dist

X = np.array([-np.inf, -40.0, -3.1, -1.0, -1e-12, 0.0, 1e-12, 0.3, 1.0, 2.5, 7.0, 60.0, np.inf, np.nan])
Q = np.array([-0.1, 0.0, 1e-300, 1e-12, 0.001, 0.025, 0.5, 0.8, 0.975, 1 - 1e-12, 1.0, 1.1, np.nan])
DF = [0.0, -1.0, 0.5, 1.0, 3.7, 16.999, 150.0, 1e6, np.inf, np.nan]


def same(a, b) -> None:
    assert np.shape(a) == np.shape(b) and type(a) is type(b)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["t", "chi2"])
@pytest.mark.parametrize("df", DF)
def test_one_parameter(name, df):
    ours, theirs = getattr(dist, name), getattr(stats, name)
    for method in ("sf", "ppf", "isf"):
        values = X if method == "sf" else Q
        with np.errstate(all="ignore"):
            same(getattr(ours, method)(values, df), getattr(theirs, method)(values, df))
            for v in values:
                same(getattr(ours, method)(v, df), getattr(theirs, method)(v, df))


@pytest.mark.parametrize("dfn", [0.0, 1.0, 2.0, 7.5])
@pytest.mark.parametrize("dfd", [-1.0, 1.0, 3.3, 45.0, 1e7, np.inf])
def test_f(dfn, dfd):
    with np.errstate(all="ignore"):
        same(dist.f.sf(X, dfn, dfd), stats.f.sf(X, dfn, dfd))
        same(dist.f.ppf(Q, dfn, dfd), stats.f.ppf(Q, dfn, dfd))
        same(dist.f.sf(2.0, dfn, dfd), stats.f.sf(2.0, dfn, dfd))


def test_normal_and_broadcasting():
    same(dist.norm.sf(X), stats.norm.sf(X))
    same(dist.norm.ppf(Q), stats.norm.ppf(Q))
    same(dist.norm.isf(Q), stats.norm.isf(Q))
    same(dist.norm.ppf(0.975), stats.norm.ppf(0.975))
    dfs = np.array([1.0, 5.0, np.inf, 30.0])
    same(dist.t.sf(np.abs(X[:4]), dfs), stats.t.sf(np.abs(X[:4]), dfs))
    same(dist.t.ppf(0.975, dfs), stats.t.ppf(0.975, dfs))
