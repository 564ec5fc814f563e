"""The architecture's rules, checked on the source: one seam between engines and consumers, no
private imports across packages, no engine chosen by its name outside the registry, and short
functions (cyclomatic complexity at most 25, at most 15 in the JASP adapter)."""
from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from mixedbridge.fit import Fit

from .conftest import ROOT

SOURCES = sorted((ROOT / "module").rglob("*.py")) + sorted((ROOT / "bridge").rglob("*.py"))
#: Where engine names may be spelled out: the registry itself.
REGISTRY = ROOT / "module" / "engines.py"


def _package(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return "/".join(rel.parts[:-1])


def _imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            yield node.level, node.module or "", [a.name for a in node.names]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_imports_across_packages(path):
    tree = ast.parse(path.read_text())
    for level, module, names in _imports(tree):
        if level < 2 and not module.startswith("mixedbridge"):
            continue  # same package (``from .x import _y``) or a third-party module
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        private += [p for p in module.split(".") if p.startswith("_") and not p.startswith("__")]
        assert not private, f"{path.relative_to(ROOT)} imports private {private} from {'.' * level}{module}"


#: Comparisons or look-ups that choose an engine by name.
_BY_NAME = re.compile(r"""(==|!=|\bin\b)\s*\(?\s*["'](native|lme4)["']|\[["'](native|lme4)["']\]""")


@pytest.mark.parametrize("path", [p for p in SOURCES if p != REGISTRY], ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_but_the_registry_branches_on_an_engine_name(path):
    hits = [f"{i}: {line.strip()}" for i, line in enumerate(path.read_text().splitlines(), 1)
            if _BY_NAME.search(line)]
    assert not hits, f"{path.relative_to(ROOT)} chooses an engine by name:\n" + "\n".join(hits)


def test_the_fit_has_no_untyped_extras():
    names = {f.name for f in dataclasses.fields(Fit)}
    assert "extra" not in names and "inference" not in names
    assert Fit.__dataclass_params__.frozen  # type: ignore[attr-defined]


def _complexities(paths):
    cc = pytest.importorskip("radon.complexity")
    for path in paths:
        for block in cc.cc_visit(path.read_text()):
            yield path, block


def test_no_function_is_too_complex():
    over = [f"{p.relative_to(ROOT)}:{b.lineno} {b.name} ({b.complexity})"
            for p, b in _complexities(SOURCES) if b.complexity > 25]
    assert not over, "cyclomatic complexity above 25:\n" + "\n".join(over)


def test_the_jasp_adapter_is_thin():
    jasp = sorted((ROOT / "module" / "jasp").glob("*.py"))
    over = [f"{p.name}:{b.lineno} {b.name} ({b.complexity})" for p, b in _complexities(jasp) if b.complexity > 15]
    assert not over, "JASP adapter functions above complexity 15:\n" + "\n".join(over)
