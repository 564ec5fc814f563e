"""Shared fixtures: paths, the results schema validator, and a spec factory; what a test may
need (R, optional packages); the marker guard.

BLAS runs single-threaded in the test process: the tests make many small BLAS calls outside a
fit (which limits its own threads, see ``mixedbridge.lmm.threads``), and OpenBLAS's spin-waiting
threads made them twice as slow on a busy 2-core machine.

Markers (registered in pyproject.toml): ``r`` for a test that uses R, ``subprocess`` for one that
runs a command in a child process, ``slow`` for one that takes more than about 5 s. The guard
fails a test that starts or calls the R worker or runs Rscript without ``r``, or starts another
child process without ``subprocess``, so that ``make test-fast`` leaves out what it claims to.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import jsonschema
import numpy  # noqa: F401 - loaded before the BLAS limit (pytest_configure)
import pytest
import scipy.linalg  # noqa: F401 - idem
from threadpoolctl import threadpool_limits

from mixedbridge.bridge.session import RSession
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
def lapack_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """Models built in the test take the small-model criterion through numpy and LAPACK (the
    route of an install without the compiled ``_envelope``), whose numbers the test pins."""
    from mixedbridge.lmm import dense

    monkeypatch.setattr(dense, "_envelope", None)


@pytest.fixture
def tenthirty_lm() -> dict:
    return {"analysis": "lm", "formula": "load ~ time * group", **TENTHIRTY_LEGPRESS}


def unavailable(message: str, module_level: bool = False) -> NoReturn:
    """Skip for want of an optional requirement (R, rpy2, matplotlib) outside CI; under CI=true the
    requirement is not optional and the test fails instead (a skip is never silent in CI)."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{message} (CI=true: R, lme4, rpy2 and the plots extra are required, not optional)",
                    pytrace=False)
    pytest.skip(message, allow_module_level=module_level)


def require_r() -> None:
    """Start the R worker, or :func:`unavailable` when R, lme4 or rpy2 is missing."""
    from mixedbridge.bridge.session import session
    from mixedbridge.errors import MixedBridgeError

    try:
        session().start()
    except MixedBridgeError as exc:
        unavailable(f"the lme4 engine cannot run here: {exc.message}")


@pytest.fixture(scope="session")
def with_r() -> None:
    """A test that needs R (see :func:`require_r`)."""
    require_r()


# ------------------------------------------------------------------------------ marker guard
_RUNNING: list[pytest.Item] = []
_STARTING_R: list[bool] = []


def _require_marker(marker: str, what: str) -> None:
    item = _RUNNING[-1] if _RUNNING else None
    if item is not None and item.get_closest_marker(marker) is None:
        pytest.fail(f"{item.nodeid} {what} but is not marked {marker!r} (pytestmark or @pytest.mark.{marker})",
                    pytrace=False)


def _guard_r_start(start: Any) -> Any:
    @functools.wraps(start)
    def guarded(self: RSession) -> RSession:
        _require_marker("r", "uses R")
        _STARTING_R.append(True)
        try:
            return start(self)
        finally:
            _STARTING_R.pop()
    return guarded


def _runs_r(command: Any) -> bool:
    """Whether a command starts R itself (Rscript or R)."""
    argv = [command] if isinstance(command, (str, os.PathLike)) else list(command)
    program = (os.fspath(argv[0]).split() or [""])[0] if argv else ""
    return Path(program).name in ("Rscript", "R")


def _guard_popen(init: Any) -> Any:
    @functools.wraps(init)
    def guarded(self: subprocess.Popen, args: Any, *rest: Any, **kwargs: Any) -> None:
        if _runs_r(args):
            _require_marker("r", "runs R")
        elif not _STARTING_R:
            _require_marker("subprocess", "starts a child process")
        init(self, args, *rest, **kwargs)
    return guarded


_BLAS_LIMIT: list[threadpool_limits] = []


def pytest_configure(config: pytest.Config) -> None:
    _BLAS_LIMIT.append(threadpool_limits(limits=1, user_api="blas"))
    RSession.start = _guard_r_start(RSession.start)  # type: ignore[method-assign]
    subprocess.Popen.__init__ = _guard_popen(subprocess.Popen.__init__)  # type: ignore[method-assign]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    _RUNNING.append(item)
    yield
    _RUNNING.pop()
