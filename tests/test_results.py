"""Results documents: schema-valid, and the same tables as JSON, pandas, text and markdown."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import mixedbridge
from mixedbridge.serve import handle
from mixedbridge.table import Table

from .conftest import EXAMPLES


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_every_example_gives_a_schema_valid_document(path, results_validator):
    doc = mixedbridge.run(path).to_dict()
    results_validator(doc)
    names = [t["name"] for t in doc["tables"]]
    assert names[:2] == ["parameters", "fit"]


def test_error_documents_are_schema_valid(results_validator):
    answer = handle(json.dumps({"analysis": "lm", "formula": "y ~ ", "data": {"dataset": "sleepstudy"}}))
    results_validator(answer)
    assert answer["error"]["path"] == "/formula"


def test_table_round_trips_and_renders(tenthirty_lm):
    table = mixedbridge.run(tenthirty_lm).table("parameters")
    again = Table.from_dict(json.loads(json.dumps(table.to_dict())))
    assert again.rows == table.rows
    text = table.to_text()
    assert "timepost:groupRM30" in text and "-40.573" in text and "< .001" in text
    md = table.to_markdown()
    assert md.splitlines()[2].startswith("| Effect | Group | Term |")
    df = table.to_pandas()
    assert list(df.columns) == ["effect", "group", "term", "estimate", "std.error", "statistic", "df", "p.value"]


def test_unknown_table_name_lists_the_tables(tenthirty_lm):
    with pytest.raises(KeyError, match="parameters"):
        mixedbridge.run(tenthirty_lm).table("anova")


@pytest.mark.subprocess
def test_serve_answers_each_line_and_stays_alive(tenthirty_lm):
    requests = [
        json.dumps({"id": 1, "spec": tenthirty_lm}),
        "{broken",
        json.dumps({"analysis": "lm", "formula": "load ~ nothing", "data": tenthirty_lm["data"]}),
        json.dumps({"id": "last", "spec": tenthirty_lm}),
    ]
    proc = subprocess.run([sys.executable, "-m", "mixedbridge.cli", "serve"], input="\n".join(requests) + "\n",
                          capture_output=True, text=True, timeout=120)
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0 and len(answers) == 4
    assert answers[0]["id"] == 1 and answers[0]["tables"][0]["name"] == "parameters"
    assert answers[1]["error"]["code"] == "spec"
    assert answers[2]["error"]["path"] == "/formula"
    assert answers[3]["id"] == "last" and answers[3]["tables"] == answers[0]["tables"]


@pytest.mark.subprocess
def test_cli_schema_lists_and_prints():
    out = subprocess.run([sys.executable, "-m", "mixedbridge.cli", "schema"], capture_output=True, text=True)
    assert {"results", "spec"} <= set(out.stdout.split())
    out = subprocess.run([sys.executable, "-m", "mixedbridge.cli", "schema", "spec"], capture_output=True, text=True)
    assert json.loads(out.stdout)["title"] == "mixedbridge analysis spec"


@pytest.mark.subprocess
def test_cli_validate_reports_rows(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mixedbridge.cli", "validate",
                          str(EXAMPLES / "table-12-4-sleepstudy-lmm.json")], capture_output=True, text=True)
    assert out.returncode == 0 and "144 rows" in out.stdout


def test_plots_come_back_in_the_results_and_validate(results_validator):
    spec = {"analysis": "lmm", "data": {"dataset": "sleepstudy"}, "formula": "Reaction ~ Days + (Days | Subject)",
            "options": {"plots": [{"type": "residuals"}, {"type": "shrinkage", "covariate": "nope"}]}}
    doc = mixedbridge.run(spec).to_dict()
    results_validator(doc)
    assert [p["name"] for p in doc["plots"]] == ["residuals"]
    assert any("shrinkage" in n and "'nope'" in n for n in doc["notes"])


def test_unknown_plot_type_is_a_spec_error():
    spec = {"analysis": "lm", "data": {"dataset": "sleepstudy"}, "formula": "Reaction ~ Days",
            "options": {"plots": [{"type": "pie"}]}}
    with pytest.raises(mixedbridge.MixedBridgeError) as info:
        mixedbridge.run(spec)
    assert info.value.path.startswith("/options/plots/0")
