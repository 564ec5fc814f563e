"""Shared fixtures: paths, the results schema validator, and a spec factory."""
from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from mixedbridge.spec import schema

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

TENTHIRTY_LEGPRESS = {
    "data": {"dataset": "tenthirty"},
    "filter": [{"column": "exercise", "in": ["legpress"]}, {"column": "time", "in": ["pre", "post"]}],
    "levels": {"time": ["pre", "post"]},
}


@pytest.fixture
def results_validator():
    """Validates a results document (dict) against schemas/results.schema.json."""
    validator = jsonschema.Draft202012Validator(schema("results"))

    def check(doc: dict) -> None:
        validator.validate(json.loads(json.dumps(doc)))

    return check


@pytest.fixture
def tenthirty_lm() -> dict:
    return {"analysis": "lm", "formula": "load ~ time * group", **TENTHIRTY_LEGPRESS}


def require_r() -> None:
    """Skip without R and rpy2 outside CI; under CI=true a missing R is a failure, never a skip."""
    from mixedbridge.bridge.session import session
    from mixedbridge.errors import MixedBridgeError

    try:
        session().start()
    except MixedBridgeError as exc:
        message = f"the lme4 engine cannot run here: {exc.message}"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"{message} (CI=true: R, lme4 and rpy2 are required, not optional)")
        pytest.skip(message)


@pytest.fixture(scope="session")
def with_r() -> None:
    """A test that needs R (see :func:`require_r`)."""
    require_r()
