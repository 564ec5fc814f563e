"""The documents run as written: the README's and the tutorial's python code blocks execute in
order (one namespace per document, from the repository root), and docs/api.md is what the
docstrings give (``python -m mixedbridge.docgen``)."""
from __future__ import annotations

import re

import pytest

from mixedbridge import docgen

from .conftest import ROOT

_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def python_blocks(name: str) -> list[str]:
    return _BLOCK.findall((ROOT / name).read_text(encoding="utf-8"))


def run_blocks(name: str, monkeypatch) -> dict:
    import matplotlib.pyplot as plt

    monkeypatch.chdir(ROOT)
    namespace: dict = {"__name__": f"doc:{name}"}
    blocks = python_blocks(name)
    assert blocks, f"{name} has no python code blocks"
    try:
        for i, block in enumerate(blocks):
            exec(compile(block, f"{name}, python block {i + 1}", "exec"), namespace)
    finally:
        plt.close("all")
    return namespace


def test_readme_python_blocks_run(monkeypatch):
    ns = run_blocks("README.md", monkeypatch)
    m = ns["m"]
    assert m.fixef["Days"] == pytest.approx(10.467286, abs=1e-5)
    assert '"df_method": "kenward-roger"' in ns["document"] and ns["res"].table("parameters").rows


def test_readme_shows_the_model_api_before_the_spec():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.index("mixedbridge.lmer(") < text.index('"analysis": "lmm"')


@pytest.mark.slow
def test_tutorial_python_blocks_run_and_give_the_chapters_numbers(monkeypatch):
    ns = run_blocks("docs/tutorial.md", monkeypatch)
    lm1, lmer1, m2, m3 = ns["lm1"], ns["lmer1"], ns["m2"], ns["m3"]
    assert lm1.fixef["timepost:groupRM30"] == pytest.approx(-40.57, abs=0.005)          # Table 12.1
    assert lmer1.fixef["timepost:groupRM30"] == pytest.approx(-39.43, abs=0.005)        # Table 12.2
    assert m2.fixef["timepost:setsmultiple"] == pytest.approx(13.76, abs=0.005)         # Table 12.3
    assert m3.fixef["Days"] == pytest.approx(11.44, abs=0.005)                          # Table 12.4
    assert m3.varcorr["sdcor"].round(2).tolist()[:3] == [31.51, 6.77, -0.25]


def test_api_reference_is_up_to_date():
    assert (ROOT / "docs" / "api.md").read_text(encoding="utf-8") == docgen.render(), (
        "docs/api.md is out of date: run python -m mixedbridge.docgen")
    for name in ("lmer", "predict", "simulate", "r2", "icc", "to_spec", "mixedbridge.run"):
        assert f"`{name}" in docgen.render() or f"{name}(" in docgen.render()
