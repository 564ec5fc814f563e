"""Start-up cost: what ``import mixedbridge`` and a plain analysis load (issue #16).

Deterministic checks, not timings: the modules named here cost from a tenth of a second
(pandas, formulaic) to more than a second (scipy.stats) of a cold process, so a request that
does not need them must not import them. Each check runs in a fresh interpreter.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.subprocess

#: Never loaded by ``import mixedbridge`` (the public names are imported on first use).
NOT_ON_IMPORT = ["numpy", "pandas", "scipy", "matplotlib", "rpy2", "jsonschema", "formulaic",
                 "mixedbridge.analysis", "mixedbridge.bridge"]

#: Never loaded by a plain native analysis (no plots, no emmeans, no R, no splines, no JASP request).
NOT_ON_PLAIN_RUN = ["scipy.stats", "scipy.optimize", "scipy.interpolate", "matplotlib", "rpy2",
                    "formulaic", "mixedbridge.bridge", "mixedbridge.plots", "mixedbridge.jasp",
                    "mixedbridge.emmeans", "mixedbridge.scale"]


def _loaded(code: str, names: list[str]) -> list[str]:
    """The modules of ``names`` present in sys.modules after running ``code`` in a fresh Python."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {names!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_loads_nothing_heavy():
    assert _loaded("import mixedbridge", NOT_ON_IMPORT) == []


def test_public_names_still_resolve():
    code = ("import mixedbridge\n"
            "assert callable(mixedbridge.run) and mixedbridge.Table and mixedbridge.Column\n"
            "assert issubclass(mixedbridge.MixedBridgeError, Exception) and mixedbridge.Results\n"
            "assert set(mixedbridge.__all__) <= set(dir(mixedbridge))\n"
            "try:\n    mixedbridge.no_such_name\nexcept AttributeError:\n    pass\n"
            "else:\n    raise SystemExit('no AttributeError')")
    assert _loaded(code, ["mixedbridge.analysis"]) == ["mixedbridge.analysis"]


def test_plain_analysis_loads_only_what_it_needs():
    code = ("import mixedbridge\n"
            "r = mixedbridge.run({'analysis': 'lmm', 'data': {'dataset': 'sleepstudy'},\n"
            "                     'formula': 'Reaction ~ Days + (Days | Subject)'})\n"
            "assert r.table('parameters').rows[1]['p.value'] < 1e-3\n"
            "r = mixedbridge.run({'analysis': 'lmm', 'data': {'dataset': 'sleepstudy'},\n"
            "                     'formula': 'Reaction ~ Days + (Days | Subject)',\n"
            "                     'options': {'df_method': 'kenward-roger'}})\n")
    assert _loaded(code, NOT_ON_PLAIN_RUN) == []


def test_cli_run_loads_only_what_it_needs(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"analysis": "lmm", "data": {"dataset": "sleepstudy"},
                                "formula": "Reaction ~ Days + (Days | Subject)"}))
    code = ("import contextlib, io\nfrom mixedbridge.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert main(['run', {str(spec)!r}]) == 0")
    assert _loaded(code, NOT_ON_PLAIN_RUN) == []


def test_emmeans_and_jasp_still_load_when_asked(tmp_path):
    """The lazy imports are reached: a spec with emmeans loads the emmeans package, and a JASP
    request file run by the CLI loads the JASP adapter (and answers)."""
    code = ("import mixedbridge\n"
            "r = mixedbridge.run({'analysis': 'lmm', 'data': {'dataset': 'sleepstudy'},\n"
            "                     'formula': 'Reaction ~ Days + (1 | Subject)',\n"
            "                     'options': {'emmeans': {'specs': 'Days'}}})\n")
    assert _loaded(code, ["mixedbridge.emmeans", "mixedbridge.jasp"]) == ["mixedbridge.emmeans"]
    request = tmp_path / "jasp.json"
    request.write_text(json.dumps({"jasp": "lmm", "data": {"dataset": "sleepstudy"},
                                   "options": {"dependent": "Reaction", "fixedEffects": ["Days"],
                                               "randomEffects": [{"value": "Subject", "randomComponents": []}]}}))
    code = ("import contextlib, io\nfrom mixedbridge.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    main(['run', {str(request)!r}])")
    assert _loaded(code, ["mixedbridge.jasp"]) == ["mixedbridge.jasp"]
