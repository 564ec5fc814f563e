"""Shared fixtures: paths, the results schema validator, and a spec factory."""
from __future__ import annotations

import json
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
