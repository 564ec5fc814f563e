"""``run_many``: many specs on a Dask LocalCluster equal the same specs run one by one, in order,
with a bad spec answered by its error and the others unharmed."""
from __future__ import annotations

import pandas as pd
import pytest

import mixedbridge
from mixedbridge.datasets import load
from mixedbridge.errors import DataError, MixedBridgeError

from .scale_helpers import cell_differences, local_client, need_dask

need_dask()


@pytest.fixture(scope="module")
def client():
    with local_client() as cl:
        yield cl


def _specs(n: int, bad_at: int) -> list[dict]:
    """n sleepstudy specs that differ (subsets of days, ML or REML, with or without a slope), one
    of them naming a column the data do not have."""
    out = []
    for i in range(n):
        days = 4 + i % 6
        formula = "Reaction ~ Days + (Days | Subject)" if i % 2 else "Reaction ~ Days + (1 | Subject)"
        out.append({"analysis": "lmm", "formula": formula, "data": {"dataset": "sleepstudy"},
                    "filter": [{"column": "Days", "lte": days}],
                    "options": {"reml": bool(i % 3), "anova": False, "df_method": "asymptotic"}})
    out[bad_at] = {**out[bad_at], "formula": "Reaction ~ Nonesuch + (1 | Subject)"}
    return out


def _check(specs: list[dict], answers: list, bad_at: int) -> None:
    assert len(answers) == len(specs)
    for i, (spec, got) in enumerate(zip(specs, answers)):
        if i == bad_at:
            assert isinstance(got, DataError) and "Nonesuch" in got.message and got.path == "/formula"
            continue
        alone = mixedbridge.run(spec)
        assert all(v == 0.0 for v in cell_differences(alone, got).values()), i


def test_run_many_equals_separate_runs(client):
    specs = _specs(24, bad_at=5)
    seen: list[int] = []
    answers = mixedbridge.run_many(specs, client, progress=lambda i, a: seen.append(i))
    assert sorted(seen) == list(range(len(specs)))
    _check(specs, answers, 5)


def test_shared_data_is_sent_once(client):
    df, _ = load("sleepstudy")
    specs = [{"analysis": "lmm", "formula": f, "data": {"dataset": "unused"}, "options": {"anova": False}}
             for f in ("Reaction ~ Days + (1 | Subject)", "Reaction ~ 1 + (Days | Subject)")]
    answers = mixedbridge.run_many(specs, client, data=df)
    for spec, got in zip(specs, answers):
        assert cell_differences(mixedbridge.run(spec, data=df), got)


def test_run_many_uses_the_active_client_or_runs_here():
    specs = _specs(3, bad_at=1)
    _check(specs, mixedbridge.run_many(specs), 1)


def test_a_csv_shared_by_specs_is_read_once(client, tmp_path):
    load("sleepstudy")[0].to_csv(tmp_path / "s.csv", index=False)
    specs = [{"analysis": "lmm", "formula": "Reaction ~ Days + (1 | Subject)",
              "data": {"path": str(tmp_path / "s.csv")}, "options": {"anova": False, "reml": r}} for r in (True, False)]
    answers = mixedbridge.run_many(specs, client, data_root=tmp_path)
    assert all(not isinstance(a, MixedBridgeError) for a in answers)
    alone = mixedbridge.run(specs[1], data_root=tmp_path)
    assert all(v == 0.0 for v in cell_differences(alone, answers[1]).values())
    assert isinstance(pd.DataFrame(answers[0].table("parameters").to_pandas()), pd.DataFrame)


@pytest.mark.slow
def test_two_hundred_specs(client):
    specs = _specs(200, bad_at=123)
    _check(specs, mixedbridge.run_many(specs, client), 123)


def test_cli_run_with_dask(tmp_path, capsys):
    from distributed import LocalCluster

    from mixedbridge.cli import main

    load("sleepstudy")[0].to_csv(tmp_path / "s.csv", index=False)
    good = {"analysis": "lmm", "formula": "Reaction ~ Days + (1 | Subject)", "data": {"path": "s.csv"},
            "options": {"anova": False}}
    bad = {**good, "formula": "Reaction ~ Nonesuch + (1 | Subject)"}
    paths = []
    for name, spec in (("good", good), ("bad", bad)):
        (tmp_path / f"{name}.json").write_text(__import__("json").dumps(spec))
        paths.append(str(tmp_path / f"{name}.json"))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        status = main(["run", *paths, "--dask", cluster.scheduler_address, "--format", "json"])
    out = capsys.readouterr()
    assert status == 2
    docs = [__import__("json").loads(line) for line in out.out.splitlines() if line.strip()]
    assert "tables" in docs[0] and docs[1]["error"]["path"] == "/formula"
    assert "[2/2]" in out.err
