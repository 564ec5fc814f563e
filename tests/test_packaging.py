"""A regular (non-editable) install ships every subpackage and data file the code reads."""
from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from .conftest import ROOT


def test_every_subpackage_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {"mixedbridge." + p.parent.name for p in (ROOT / "module").glob("*/__init__.py")}
    assert found <= listed, sorted(found - listed)
    for package, folder in (("mixedbridge.schemas", "schemas"), ("mixedbridge.bridge", "bridge")):
        assert package in listed and config["package-dir"][package] == folder


def test_data_files_are_package_data():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package, folder in (("mixedbridge.datasets", "module/datasets"), ("mixedbridge.schemas", "schemas"),
                            ("mixedbridge.jasp", "module/jasp")):
        patterns = data[package]
        files = [p for p in (ROOT / folder).iterdir() if p.suffix in (".csv", ".json")]
        assert files and all(any(p.match(pat) for pat in patterns) for p in files), package


def test_the_r_worker_code_is_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "mixedbridge.bridge.R" in config["packages"]
    patterns = config["package-data"]["mixedbridge.bridge.R"]
    files = [p.relative_to(ROOT / "bridge" / "R") for p in (ROOT / "bridge").rglob("*") if p.suffix == ".R"]
    assert files and all(any(p.match(pat) for pat in patterns) for p in files), files
