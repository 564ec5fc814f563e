"""The cross-check report (issue #14): each compared cell shows the quantity, the tolerance and the
absolute difference it was judged by; a failed comparison is explained in words (which engine
reached the lower objective, by how much, what lme4 reported); ``run`` of a spec with
``"engine": "both"`` exits 1 when a cell fails, as ``check`` does; the markdown stays a table."""
from __future__ import annotations

import json
import re

import pytest

import mixedbridge
from mixedbridge import agreement, cli
from mixedbridge.results import Results
from mixedbridge.table import Column, Table

SLEEP = {"analysis": "lmm", "data": {"dataset": "sleepstudy"}}
#: lme4 1.1-31 stops early here: "Model failed to converge with max|grad| = 0.0263 (tol = 0.002,
#: component 1)"; the native engine reaches a REMLcrit 2e-8 relative lower (tests/test_lmm_lme4.py).
EARLY_STOP = {**SLEEP, "engine": "both", "formula": "Reaction ~ Days + (1 + Days + I(Days^2) | Subject)"}
CLEAN = {**SLEEP, "engine": "both", "formula": "Reaction ~ Days + (Days | Subject)", "options": {"anova": False}}


def _table(*cells: tuple[float | None, float | None, str]) -> Table:
    """A comparison of ``(native, lme4, column)`` cells of the parameters table."""
    mine = Table("parameters", "P", [Column("effect", "Effect", "string"), Column("group", "Group", "string"),
                                     Column("term", "Term", "string"), Column("estimate", "Estimate"),
                                     Column("std.error", "SE")])
    theirs = Table("parameters", "P", mine.columns)
    for i, (a, b, column) in enumerate(cells):
        se = {} if column == "std.error" else {"std.error": 1.0}  # the floor of an estimate
        mine.add_row(effect="fixed", term=f"x{i}", **{column: a}, **se)
        theirs.add_row(effect="fixed", term=f"x{i}", **{column: b}, **se)
    return agreement.compare([mine], [theirs])


def _optima(native: float, lme4: float, messages: tuple[str, ...] = ()) -> tuple[agreement.Optimum, ...]:
    return (agreement.Optimum("native", "REMLcrit", native, True, ()),
            agreement.Optimum("lme4", "REMLcrit", lme4, not messages, messages))


def test_each_cell_shows_its_quantity_tolerance_and_allowed_difference():
    table = _table((10.0, 10.002, "estimate"), (2.0, 2.1, "std.error"))
    by_column = {r["column"]: r for r in table.rows}
    est = by_column["estimate"]
    assert est["quantity"] == "fixed" and est["tolerance"] == agreement.TOLERANCES["fixed"]
    assert est["allowed"] == pytest.approx(1e-4 * 10.002)  # the tolerance times the reference value
    assert est["pass"] == "no" and est["abs_diff"] > est["allowed"]
    se = by_column["std.error"]
    assert se["quantity"] == "se" and se["tolerance"] == agreement.TOLERANCES["se"]
    for row in table.rows:
        assert (row["pass"] == "yes") == (row["abs_diff"] <= row["allowed"])


def test_the_floor_shows_in_the_allowed_difference():
    """A fixed effect near zero is judged against its standard error, and the cell says so."""
    row = _table((1e-9, 2e-9, "estimate")).rows[0]
    assert row["rel_diff"] > row["tolerance"] and row["pass"] == "yes"
    assert row["allowed"] == pytest.approx(1e-4 * 1.0)


def test_all_agree_gives_no_warning():
    assert agreement.explain(_table((1.0, 1.0, "estimate")), *_optima(100.0, 100.0)) is None


def test_early_stop_is_explained_with_lme4s_message():
    said = "Model failed to converge with max|grad| = 0.0262849 (tol = 0.002, component 1)"
    text = agreement.explain(_table((1.0, 1.5, "estimate"), (1.0, 1.0, "std.error")),
                             *_optima(1730.007685, 1730.007722, (said,)))
    assert text is not None
    assert text.startswith("1 of 3 compared values differ by more than their tolerance (1 in parameters)")
    assert "The native engine reached the lower REMLcrit (1730.007685 against 1730.007722 for lme4" in text
    assert "3.7e-05 lower" in text and "2.1e-08 relative" in text
    assert "the lme4 fit most likely stopped before the optimum" in text
    assert text.endswith("lme4 reported: " + said + ".")


def test_lower_objective_of_lme4_names_lme4_and_says_native_was_silent():
    text = agreement.explain(_table((1.0, 1.5, "estimate")), *_optima(200.5, 200.0))
    assert text is not None and "The lme4 engine reached the lower REMLcrit" in text
    assert text.endswith("native reported no convergence warning.")


def test_same_objective_says_it_is_not_an_early_stop():
    text = agreement.explain(_table((1.0, 1.5, "estimate")), *_optima(200.0, 200.0 * (1 + 1e-12)))
    assert text is not None and "Both engines reached the same REMLcrit (200)" in text
    assert "not come from an optimizer stopping early" in text


def test_a_regression_gets_the_count_alone():
    text = agreement.explain(_table((1.0, 1.5, "estimate")))
    assert text == ("1 of 2 compared values differ by more than their tolerance (1 in parameters); "
                    "see the comparison table.")


def test_comparison_markdown_escapes_pipes():
    """The header ``|Difference|`` and a row label with ``|`` stay inside their cells."""
    table = _table((1.0, 1.5, "estimate"))
    table.rows[0]["row"] = "fixed / a|b"
    lines = table.to_markdown().splitlines()[2:]
    assert "\\|Difference\\|" in lines[0] and "a\\|b" in lines[2]
    cells = {len(re.findall(r"(?<!\\)\|", line)) for line in lines}
    assert cells == {len(table.columns) + 1}


def _results(failed: bool) -> Results:
    table = _table((1.0, 1.5 if failed else 1.0, "estimate"))
    return Results("lmm", "both", {"formula": "y ~ x"}, [table])


@pytest.mark.parametrize("failed", [False, True])
def test_run_exit_status_follows_the_comparison(monkeypatch, tmp_path, capsys, failed):
    """``run`` exits 1 when a compared cell fails (the analysis itself stubbed: no R)."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(CLEAN), encoding="utf-8")
    monkeypatch.setattr(cli, "run", lambda path: _results(failed))
    assert cli.main(["run", str(spec)]) == (1 if failed else 0)
    assert "Agreement of the native engine" in capsys.readouterr().out


@pytest.mark.r
def test_lme4_stopping_early_is_reported_and_fails_run(with_r, tmp_path, capsys):
    spec = tmp_path / "early.json"
    spec.write_text(json.dumps(EARLY_STOP), encoding="utf-8")
    assert cli.main(["run", str(spec), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    [warning] = [w for w in doc["warnings"] if "compared values differ" in w]
    assert "The native engine reached the lower REMLcrit" in warning
    assert "so the lme4 fit most likely stopped before the optimum" in warning
    assert "lme4 reported: Model failed to converge with max|grad|" in warning
    comparison = next(t for t in doc["tables"] if t["name"] == "comparison")
    assert all(r["tolerance"] is not None and r["quantity"] for r in comparison["rows"])
    both = [r for r in comparison["rows"] if r["native"] is not None and r["lme4"] is not None]
    assert all(r["allowed"] is not None for r in both)


@pytest.mark.r
def test_check_and_run_fail_on_a_tightened_tolerance_and_say_the_optimum_is_shared(with_r, monkeypatch, tmp_path,
                                                                                      capsys):
    for quantity in ("se", "varcomp"):  # the engines agree there to about 1e-11, not to 1e-15
        monkeypatch.setitem(agreement.TOLERANCES, quantity, 1e-15)
    spec = tmp_path / "clean.json"
    spec.write_text(json.dumps(CLEAN), encoding="utf-8")
    assert cli.main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "failed" in err and "Both engines reached the same REMLcrit" in err
    assert cli.main(["run", str(spec)]) == 1
    monkeypatch.undo()  # the tolerances as they are
    assert cli.main(["run", str(spec)]) == 0
    res = mixedbridge.run(CLEAN)
    assert any("agree within tolerance" in n for n in res.notes)
