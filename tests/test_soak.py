"""A short soak in CI: mixed requests through one supervised worker (long form: tests/soak.py)."""
from __future__ import annotations

import pytest

from .soak import soak

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def test_short_soak_answers_everything_and_matches_fresh_processes():
    figures = soak(n=260, seed=7, faults=True)
    assert figures["requests"] == 260
    assert figures["fault"] == 2 and figures["errors_by_code"].get("timeout") == 1
    assert figures["errors_by_code"].get("crash") == 1
    assert figures["valid"] > 20 and figures["invalid"] > 100 and figures["hostile"] > 5
    assert figures["unreadable"] > 5 and figures["errors_by_code"]["spec"] > figures["unreadable"]
    assert figures["rss_last_quarter_mb"] < 2 * figures["rss_first_quarter_mb"] + 200
