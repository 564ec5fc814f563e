"""emmeans's ``mvt`` adjustment (issue #14): the multivariate-t box probability against mvtnorm
run to high precision, and the adjusted p-values and intervals of the plain spec against R's
emmeans (the lme4 engine's ``contrast(..., adjust = "mvt")``), to mvtnorm's own precision.

emmeans calls ``mvtnorm::pmvt`` / ``qmvt`` with their defaults (randomized quasi-Monte Carlo,
``abseps = 0.001``), so R's p-values move by about 1e-3 between runs: they are compared to 2e-3
absolute. Our integrator is checked to 3e-5 against ``pmvt(..., algorithm = GenzBretz(abseps =
1e-5, maxpts = 1e6))``.
"""
from __future__ import annotations

import numpy as np
import pytest

from mixedbridge import analysis
from mixedbridge import spec as specmod
from mixedbridge.emmeans import emmeans_tables, mvt
from mixedbridge.engines import get_engine

from .conftest import TENTHIRTY_LEGPRESS, require_r

# the correlation of the 6 pairwise differences of 4 means with variances 1, 2, 1.5, 1 (rank 3),
# and a full-rank one
_C = np.array([[1, -1, 0, 0], [1, 0, -1, 0], [1, 0, 0, -1], [0, 1, -1, 0], [0, 1, 0, -1], [0, 0, 1, -1]], float)
_S = _C @ np.diag([1, 2, 1.5, 1]) @ _C.T
PAIRS = _S / np.sqrt(np.outer(np.diag(_S), np.diag(_S)))
FULL = np.array([[1, 0.5, -0.3], [0.5, 1, 0.2], [-0.3, 0.2, 1]])

#: (correlation, x, df) → P(max |T| < x) and the x with P(max |T| < x) = 0.95, from mvtnorm 1.1-3:
#:   for each case: pmvt(rep(-x, k), rep(x, k), df = df, corr = R,
#:                       algorithm = GenzBretz(abseps = 1e-5, maxpts = 1e6))
#:   and uniroot(function(q) pmvt(rep(-q, k), rep(q, k), df = df, corr = R,
#:               algorithm = GenzBretz(abseps = 1e-5, maxpts = 1e6)) - 0.95, c(1.5, 4.5), tol = 1e-6)
#:   (set.seed(1) first; R and x as below)
PRECISE = [
    (PAIRS, 1.5, 0, 0.565121989680189, 2.5642938804994),
    (PAIRS, 2.5, 7, 0.856798043160371, 3.3031791682207),
    (FULL, 2.0, 0, 0.878554981642938, 2.36747162937967),
    (FULL, 1.2, 3, 0.420492738985227, 4.32639640423507),
]


@pytest.mark.parametrize("corr, x, df, p_r, _", PRECISE)
def test_box_probability_matches_mvtnorm_to_high_precision(corr, x, df, p_r, _):
    p, err = mvt.box_probability(x, corr, df)
    assert err < 2e-5
    assert p == pytest.approx(p_r, abs=3e-5), (x, df)


@pytest.mark.parametrize("corr, x, df, _, q_r", PRECISE)
def test_critical_value_matches_qmvt(corr, x, df, _, q_r):
    assert mvt.critical_value(0.95, df, corr) == pytest.approx(q_r, abs=5e-4), df


def test_emmeans_integer_df():
    """emmeans's ``.fix.df``: at least 1, rounded at .75, 0 (normal) when infinite or > 9999."""
    assert [mvt.emmeans_df(d) for d in (0.4, 7.74, 7.75, np.inf, 12000.0, 42.98)] == [1, 7, 8, 0, 0, 43]


@pytest.fixture(scope="module")
def r_session():
    from mixedbridge.bridge.session import session

    require_r()
    return session().start()


@pytest.mark.r
@pytest.mark.parametrize("spec, request_", [
    ({"analysis": "lm", "formula": "load ~ time * group", **TENTHIRTY_LEGPRESS},
     {"specs": ["time", "group"], "contrasts": "pairwise", "adjust": "mvt"}),
    pytest.param({"analysis": "lmm", "formula": "load ~ time * group + (1 | participant)", **TENTHIRTY_LEGPRESS},
     {"specs": ["time", "group"], "df": "satterthwaite", "adjust": "mvt",
      "contrasts": [{"name": "a", "weights": [1, -1, 0, 0]}, {"name": "b", "weights": [0, 0, 1, -1]},
                    {"name": "c", "weights": [1, -1, -1, 1]}]}, marks=pytest.mark.slow),
    pytest.param({"analysis": "lmm", "data": {"dataset": "cake"},
                  "formula": "angle ~ recipe * temperature + (1 | recipe:replicate)"},
                 {"specs": ["temperature"], "by": ["recipe"], "contrasts": "pairwise", "adjust": "mvt",
                  "df": "asymptotic"}, marks=pytest.mark.slow),
], ids=["tenthirty-lm-pairwise", "tenthirty-lmm-custom-satterthwaite", "cake-by-recipe-asymptotic"])
def test_mvt_matches_emmeans(spec, request_, r_session):
    from mixedbridge.bridge.emmeans_r import emmeans_tables_r

    problem = analysis.prepare(specmod.validate(spec))
    fit = get_engine("native").fit(problem)
    native, notes = emmeans_tables(problem, fit, request_)
    r, _ = emmeans_tables_r(problem, request_, r_session=r_session)
    ours, theirs = native[1].rows, r[1].rows
    assert len(ours) == len(theirs) > 1
    for a, b in zip(ours, theirs):
        assert a["contrast"] == b["contrast"]
        assert a["p.value"] == pytest.approx(b["p.value"], abs=2e-3), a["contrast"]
        half_ours, half_r = a["upper.CL"] - a["estimate"], b["upper.CL"] - b["estimate"]
        assert half_ours == pytest.approx(half_r, rel=3e-3), a["contrast"]
    assert any("mvt method" in n for n in notes)
