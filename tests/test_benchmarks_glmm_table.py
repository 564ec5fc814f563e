"""docs/benchmarks.md's GLMM section is the table of the GLMM results JSON (issue #15 asks for the
glmer, mixedlm and statsmodels rows in that page, not only a link)."""
from __future__ import annotations

import json

from benchmarks.glmm_table import TITLE, section, splice

RESULT = {
    "machine": {"date": "2026-11-30", "cpu": "test", "cores": 2, "loadavg_start": [0.1]},
    "repeats": 3,
    "rows": [{"case": "VerbAgg", "family": "binomial", "nagq": 1, "formula": "r2 ~ 1 + (1 | id)",
              "native": {"seconds": 0.25, "cpu": 0.2, "objective": 100.0},
              "glmer": {"seconds": 5.0, "cpu": 4.0, "objective": 100.001},
              "mixedlm": {"seconds": 1.5, "cpu": 1.0, "objective": 100.0005},
              "statsmodels": "statsmodels not installed"}],
}


def test_section_embeds_the_table(tmp_path):
    path = tmp_path / "glmm.json"
    path.write_text(json.dumps(RESULT), encoding="utf-8")
    text = "\n".join(section(path))
    assert text.startswith(TITLE)
    assert "| VerbAgg (binomial, nAGQ=1) | 0.250 / 0.200 | 5.000 / 4.000 | 20.0× / 20.0× " in text
    assert "| 1.500 / 1.000 | 6.0× / 5.0× | statsmodels not installed |" in text
    assert "100.0000 (-1.0e-05)" in text
    assert "No GLMM results" in "\n".join(section(tmp_path / "missing.json"))


def test_splice_replaces_only_the_glmm_section(tmp_path):
    doc = f"# Benchmarks\n\n## A\n\nkeep\n\n{TITLE}\n\nold link\n\n## Reproduce\n\nkeep too\n"
    out = splice(doc, [TITLE, "", "new table", ""])
    assert "old link" not in out and "new table" in out
    assert out.startswith("# Benchmarks\n\n## A\n\nkeep\n\n") and out.endswith("## Reproduce\n\nkeep too\n")
    assert splice("# B\n", [TITLE, "", "t"]).endswith(f"{TITLE}\n\nt\n\n")
