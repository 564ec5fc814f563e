"""The ``serve`` worker warms a model's text in the host's pause (issue #16: a first plot click
under ``serve`` in milliseconds): the default means plot of each factor, drawn from the rows
alone and thrown away, so that the model's first plot click measures and rasterizes no new
text; it keeps no answer, layout or means, changes no image, stops when a request comes, and
never runs during one."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import mixedbridge  # noqa: E402
from mixedbridge import plots as plotsmod  # noqa: E402
from mixedbridge import serve as servemod  # noqa: E402
from mixedbridge.guard import LIMIT_ENV  # noqa: E402
from mixedbridge.kept import KeptByOwners  # noqa: E402
from mixedbridge.plots import means as meansmod  # noqa: E402
from mixedbridge.plots import reuse, textcache  # noqa: E402

from .conftest import TENTHIRTY_LEGPRESS  # noqa: E402

SPEC = {"analysis": "lmm", "formula": "load ~ time * group + (1 | participant)", **TENTHIRTY_LEGPRESS}


@pytest.fixture(scope="module")
def model():
    res = mixedbridge.run(SPEC)
    return res.outcome.problem, res.outcome.lead.fit


@pytest.fixture
def fresh(monkeypatch):
    """Nothing kept or warmed by earlier tests."""
    monkeypatch.setattr(plotsmod, "_KEPT", KeptByOwners(plotsmod.MAX_KEPT_PLOTS))
    monkeypatch.setattr(meansmod, "_KEPT", KeptByOwners(meansmod.MAX_KEPT_MEANS))
    monkeypatch.setattr(reuse, "_LAYOUTS", KeptByOwners(reuse.MAX_KEPT_LAYOUTS))
    monkeypatch.setattr(plotsmod, "_WARMED", set())


def test_data_means_are_the_responses_means_per_level(model):
    problem, _ = model
    got = meansmod.data_means(problem, "group", 0.95)
    frame = problem.frame.data.assign(y=problem.y)
    want = frame.groupby("group", observed=True)["y"].agg(["mean", "sem"])
    assert list(got.table["group"].astype(str)) == [str(x) for x in problem.frame.data["group"].cat.categories]
    assert np.allclose(got.table["mean"], want["mean"].to_numpy())
    assert np.allclose(got.table["upper"] - got.table["mean"], 1.959964 * want["sem"].to_numpy(), rtol=1e-6)
    assert got.factors == ("group", None, None) and got.level == 0.95


def test_warm_text_measures_the_models_text_and_keeps_nothing_else(model, fresh):
    problem, fit = model
    request = {"type": "emmeans", "horizontal": "group"}
    want = plotsmod._make_plots(problem, fit, [request], ("png", "svg"))[0]
    textcache._SHAPED.clear()
    textcache._MEASURED.clear()
    kept = [len(plotsmod._KEPT), len(meansmod._KEPT), len(reuse._LAYOUTS)]
    assert plotsmod.warm_text(problem) == 2 * 2  # two factors, PNG and SVG each
    shaped = {key[0] for key in textcache._SHAPED}
    measured = {key[0] for key in textcache._MEASURED}
    levels = {str(x) for f in ("time", "group") for x in problem.frame.data[f].cat.categories}
    assert levels | {"time", "group", "load"} <= shaped & measured
    assert [len(plotsmod._KEPT), len(meansmod._KEPT), len(reuse._LAYOUTS)] == kept
    assert plotsmod.warm_text(problem) == 0  # the same text: not drawn again
    got = plotsmod.make_plots(problem, fit, [request])[0]
    assert [{k: p[k] for k in want[0]} for p in got] == want


def test_warm_text_stops_when_asked(model, fresh):
    problem, _ = model
    asked = []
    assert plotsmod.warm_text(problem, lambda: asked.append(1) or len(asked) > 3) == 1  # before its SVG
    assert plotsmod.warm_text(problem, lambda: True) == 0
    assert plotsmod.warm_text(problem) == 4  # stopped before the end: warmed again in full


def test_the_worker_warms_each_answered_model_between_requests(model, monkeypatch):
    monkeypatch.delenv(LIMIT_ENV, raising=False)
    monkeypatch.setattr(servemod, "warm_up", lambda: None)
    warmed: list[tuple[object, bool]] = []
    stops = []
    done = threading.Event()

    def record(problem, stop) -> None:
        warmed.append((problem, stop()))
        stops.append(stop)
        done.set()

    monkeypatch.setattr(servemod, "warm_text", record)
    problem, _ = model
    warmer = servemod._Warmer(True)
    session = servemod.Session(analysed=True, problem=problem)
    warmer.busy()
    warmer.after(session)
    time.sleep(0.2)
    assert warmed == []  # not while a request is under way
    warmer.idle()
    assert done.wait(5)
    assert warmed == [(problem, False)] and session.problem is None
    warmer.busy()
    assert stops[0]() is True  # a request has come: the warming stops at its next step
    warmer.idle()
    warmer.close()
    warmer.thread.join(5)
    assert not warmer.thread.is_alive()
