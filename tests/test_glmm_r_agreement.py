"""``engine: both`` on the GLMM cases (tests/glmm_cases.py): the native estimator against glmer,
every table cell within the issue's GLMM tolerances (module/agreement.py: objective 1e-6
relative and never worse than glmer's, fixed effects 1e-3, SEs and variance components 2e-3).

The lme4 engine itself equals plain glmer (tests/test_glmm_r_engine.py), so these comparisons
measure the native engine against glmer. Cases where the native estimator does not yet agree are
marked ``xfail(strict=True)`` with what was measured: they fail as soon as the native engine
agrees, so the mark must then go.
"""
from __future__ import annotations

import pytest

import mixedbridge
from mixedbridge.agreement import TOLERANCES_GLMM, failures

from .glmm_cases import CASES, spec

pytestmark = pytest.mark.r

#: Cases the native engine does not yet match (none since glmm-speed: bacteria_cauchit agrees
#: once stage 2 minimises lme4's evaluation of the criterion, see glmm.model.lme4_criterion).
NOT_YET: dict[str, str] = {}
#: Cases whose two fits take more than about 5 s here (VerbAgg, Contraception, glmer.nb's θ search).
SLOW = {"verbagg", "contraception", "epil_nb"}


def _param(name: str):
    marks = []
    if name in SLOW:
        marks.append(pytest.mark.slow)
    if name in NOT_YET:
        marks.append(pytest.mark.xfail(strict=True, reason=NOT_YET[name]))
    return pytest.param(name, marks=marks)


def test_glmm_tolerances_are_the_issues():
    assert (TOLERANCES_GLMM["objective"], TOLERANCES_GLMM["fixed"], TOLERANCES_GLMM["se"],
            TOLERANCES_GLMM["varcomp"]) == (1e-6, 1e-3, 2e-3, 2e-3)


@pytest.mark.parametrize("name", [_param(n) for n in CASES])
def test_native_agrees_with_glmer(with_r, name):
    res = mixedbridge.run(spec(name, "both"))
    table = res.table("comparison")
    tables = {r["table"] for r in table.rows}
    assert {"parameters", "fit", "random_effects", "groups"} <= tables
    bad = failures(table)
    assert not bad, "; ".join(f"{r['table']} {r['row']} {r['column']}: native {r['native']} lme4 {r['lme4']}"
                              for r in bad[:8])


@pytest.mark.subprocess
def test_cli_check_compares_a_glmm(with_r, tmp_path):
    """``mixedbridge check`` (both engines, exit 1 on disagreement) on a glmm spec file."""
    import json
    import subprocess
    import sys

    path = tmp_path / "cbpp.json"
    path.write_text(json.dumps({k: v for k, v in spec("cbpp_agq25", "native").items() if k != "engine"}))
    done = subprocess.run([sys.executable, "-m", "mixedbridge.cli", "check", str(path), "--format", "json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "comparison" in done.stdout or "cells" in done.stdout
