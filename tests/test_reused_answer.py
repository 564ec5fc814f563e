"""What a reused fit's request no longer recomputes (issue #16: an option click under ``serve``
in milliseconds): the tables of a kept fit and inference, and the digests of a kept model's
design arrays. Each gives what a fresh computation gives, and a caller cannot change it."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

import mixedbridge
from mixedbridge import fit_tables, fitcache
from mixedbridge.kept import KeptByOwners

SLEEP = {"analysis": "lmm", "data": {"dataset": "sleepstudy"}, "formula": "Reaction ~ Days + (Days | Subject)"}


def _run():
    res = mixedbridge.run(SLEEP)
    return res.outcome.problem, res.outcome.lead.fit, res.outcome.lead.inference


def test_kept_tables_equal_built_ones_and_callers_cannot_change_them():
    _, fit, inf = _run()
    built = [t.to_dict() for t in fit_tables._tables(fit, inf)]
    first = fit_tables.tables_for(fit, inf)
    assert [t.to_dict() for t in first] == built
    first[0].rows[0]["estimate"] = -1.0
    first[0].rows.append({})
    first[0].columns[0].title = "changed"
    first[0].footnotes.append("changed")
    first[0].name = "renamed"
    again = fit_tables.tables_for(fit, inf)
    assert again[0] is not first[0]
    assert [t.to_dict() for t in again] == built


def test_kept_tables_are_per_fit_and_inference():
    _, fit, inf = _run()
    without = fit_tables.tables_for(fit, None)
    assert [t.to_dict() for t in without] == [t.to_dict() for t in fit_tables._tables(fit, None)]
    with_inference = fit_tables.tables_for(fit, inf)
    assert json.dumps([t.to_dict() for t in without]) != json.dumps([t.to_dict() for t in with_inference])


def test_kept_tables_are_bounded(monkeypatch):
    monkeypatch.setattr(fit_tables, "_KEPT_TABLES", KeptByOwners(2))
    formulas = ("Reaction ~ Days + (Days | Subject)", "Reaction ~ Days + (1 | Subject)", "Reaction ~ 1 + (1 | Subject)")
    runs = [mixedbridge.run({**SLEEP, "formula": f}).outcome.lead for f in formulas]
    for run in runs:
        fit_tables.tables_for(run.fit, run.inference)
    assert len(fit_tables._KEPT_TABLES) == 2
    assert fit_tables._KEPT_TABLES.get((runs[0].fit, runs[0].inference), "tables") is None
    assert fit_tables._KEPT_TABLES.get((runs[2].fit, runs[2].inference), "tables") is not None


def test_array_digest_is_per_array_and_follows_values_shape_and_type():
    a = np.arange(12.0).reshape(6, 2)
    d = fitcache._array_digest(a)
    assert fitcache._array_digest(a) == d
    assert fitcache._array_digest(a.copy()) == d
    changed = a.copy()
    changed[3, 1] += 1e-12
    assert fitcache._array_digest(changed) != d
    assert fitcache._array_digest(a.reshape(3, 4).copy()) != d
    assert fitcache._array_digest(a.astype(np.float32)) != d


def test_fingerprint_follows_a_replaced_design():
    problem, _, _ = _run()
    before = fitcache.fingerprint(problem)
    assert fitcache.fingerprint(problem) == before
    X = problem.fixed.X.copy()
    X[0, 1] += 1.0
    other = replace(problem, fixed=replace(problem.fixed, X=X))  # the kept model itself stays as it is
    assert fitcache.fingerprint(other) != before
    assert fitcache.fingerprint(problem) == before


def test_kept_marginal_means_equal_computed_ones_and_are_copies():
    pytest.importorskip("matplotlib")
    from mixedbridge.plots import means as meansmod

    from .conftest import TENTHIRTY_LEGPRESS

    res = mixedbridge.run({"analysis": "lmm", "formula": "load ~ time * group + (1 | participant)",
                           **TENTHIRTY_LEGPRESS})
    problem, fit = res.outcome.problem, res.outcome.lead.fit
    computed = meansmod._marginal_means(problem, fit, "time", "group", None, 0.9, None, "response")
    first = meansmod.marginal_means(problem, fit, "time", "group", level=0.9)
    first.table.loc[0, "mean"] = -99.0
    first.notes.append("changed")
    again = meansmod.marginal_means(problem, fit, "time", "group", level=0.9)
    assert again.table is not first.table
    assert again.table.equals(computed.table) and again.notes == computed.notes
    other = meansmod.marginal_means(problem, fit, "time", "group", level=0.95)
    assert not other.table["lower"].equals(computed.table["lower"])


def test_kept_by_owners_keeps_the_newest_while_their_owners_live():
    class Owner:
        pass

    store: KeptByOwners[str] = KeptByOwners(2)
    a, b, c = Owner(), Owner(), Owner()
    for owner, value in ((a, "a"), (b, "b"), (c, "c")):
        store.put((owner,), "k", value)
    assert (store.get((a,), "k"), store.get((b,), "k"), store.get((c,), "k")) == (None, "b", "c")
    assert store.get((b,), "other") is None and store.get((b, c), "k") is None
    del b
    store.put((a,), "k", "a again")  # an entry whose owner has gone makes room first
    assert len(store) == 2 and store.get((a,), "k") == "a again" and store.get((c,), "k") == "c"
