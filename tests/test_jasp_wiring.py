"""JASP option documents through the CLI and the serve worker, and the manifest command."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import EXAMPLES

JASP_EXAMPLE = EXAMPLES / "jasp" / "fhch2010-lmm.json"


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mixedbridge.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.subprocess
def test_manifest_lists_both_analyses_with_schemas_and_defaults():
    doc = json.loads(cli("manifest").stdout)
    names = [a["name"] for a in doc["analyses"]]
    assert names == ["lmm", "lm", "glmm"]
    lmm = doc["analyses"][0]
    assert lmm["defaults"]["factorContrast"] == "sum" and lmm["defaults"]["testMethod"] == "satterthwaite"
    assert lmm["options"]["type"] == "object"


@pytest.mark.subprocess
def test_run_answers_a_jasp_request_in_jasp_shape():
    out = cli("run", str(JASP_EXAMPLE))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["status"] == "complete"
    assert {"ANOVAsummary", "FEsummary", "EMMsummary"} <= set(doc)


@pytest.mark.subprocess
def test_serve_answers_jasp_requests_and_errors_with_ids():
    request = json.loads(JASP_EXAMPLE.read_text())
    bad = {**request, "options": {**request["options"], "fixedEffects": {"optionKey": "components", "types": [],
                                                                          "value": [{"components": ["nope"]}]}}}
    lines = [json.dumps({**request, "id": "a"}), json.dumps({**bad, "id": "b"}), json.dumps({**request, "id": "c"})]
    out = cli("serve", stdin="\n".join(lines) + "\n")
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert [a["id"] for a in answers] == ["a", "b", "c"]
    assert answers[0]["status"] == "complete" and answers[2]["ANOVAsummary"] == answers[0]["ANOVAsummary"]
    assert answers[1]["status"] == "error" and answers[1]["error"]["option"] == "fixedEffects"


def test_plot_options_give_the_estimated_means_plot():
    import base64

    from mixedbridge import datasets
    from mixedbridge.jasp import run_jasp

    request = json.loads(JASP_EXAMPLE.read_text())
    varlist = lambda name: {"optionKey": "variable", "types": [], "value": [{"variable": [name]}]}  # noqa: E731
    options = {**request["options"], "plotHorizontalAxis": varlist("task"), "plotSeparateLines": varlist("stimulus"),
               "plotBackgroundData": varlist("id"), "plotBackgroundElement": "violin"}
    doc = run_jasp(options, data=datasets.load("fhch2010")[0])
    plot = doc["plots"]
    assert plot["status"] == "complete" and plot["encoding"] == "base64"
    png = base64.b64decode(plot["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (plot["width"], plot["height"])
    assert next(m for m in doc[".meta"] if m["name"] == "plots")["type"] == "image"
