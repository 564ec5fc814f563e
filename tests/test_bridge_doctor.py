"""``mixedbridge doctor``: versions when R is there, install instructions when it is not."""
from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mixedbridge.bridge import doctor as doctor_module
from mixedbridge.bridge.doctor import doctor

from .conftest import unavailable

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.r
@pytest.mark.subprocess
def test_doctor_reports_versions_or_what_to_install():
    info = doctor()
    for key in ("R", "lme4", "lmerTest", "pbkrtest", "emmeans", "rpy2", "missing", "install", "ok"):
        assert key in info
    if info["ok"]:
        assert info["R"] and info["lme4"] and info["rpy2"]
    elif os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"CI=true but R is not usable: {info}")
    else:
        assert info["missing"] and info["install"] != "nothing to install"


def test_doctor_without_r_says_what_to_install(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    info = doctor_module.doctor()
    assert info["R"] is None and not info["ok"]
    assert "R" in info["missing"] and "lme4" in info["missing"]
    assert ("apt-get install -y --no-install-recommends r-base-core r-cran-lme4 r-cran-lmertest r-cran-pbkrtest "
            "r-cran-emmeans"
            in info["install"])


@pytest.mark.r
@pytest.mark.subprocess
def test_doctor_without_rpy2_says_pip_install(monkeypatch):
    real = importlib.metadata.version

    def version(name):
        if name == "rpy2":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    info = doctor_module.doctor()
    assert info["rpy2"] is None and not info["ok"]
    assert "pip install 'mixedbridge[r]'" in info["install"]


@pytest.mark.subprocess
def test_engine_module_imports_without_rpy2():
    # A child process where rpy2 cannot be imported: the package and the engine module load,
    # and fitting raises EngineError naming what to install.
    code = (
        "import sys; sys.modules['rpy2'] = None\n"
        "import importlib.util as u; real = u.find_spec\n"
        "u.find_spec = lambda n, *a: None if n == 'rpy2' else real(n, *a)\n"
        "import mixedbridge.bridge.engine as e\n"
        "from mixedbridge.errors import EngineError\n"
        "from mixedbridge.formula import parse_formula\n"
        "from mixedbridge.frame import model_frame\n"
        "from mixedbridge.problem import Problem\n"
        "from mixedbridge import datasets\n"
        "df, f = datasets.load('Dyestuff'); d = parse_formula('Yield ~ 1 + (1 | Batch)')\n"
        "p = Problem.build('lmm', d, model_frame(df, d, {}, f), {})\n"
        "try:\n"
        "    e.Lme4Engine(e.RSession()).fit(p)\n"
        "except EngineError as exc:\n"
        "    print('ENGINE-ERROR', exc.message)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ENGINE-ERROR" in out.stdout and "r-base-core" in out.stdout


@pytest.mark.r
@pytest.mark.subprocess
def test_setup_script_is_a_quick_no_op_when_r_is_there():
    if shutil.which("Rscript") is None or not doctor()["ok"]:
        unavailable("R is not installed here; the script would run apt-get")
    out = subprocess.run(["sh", str(ROOT / "bridge" / "setup_r.sh")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "present" in out.stdout
