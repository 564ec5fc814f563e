"""Ticks and tick-label boxes kept per place while a figure is laid out and written (issue #16:
a plot click under ``serve`` in milliseconds): the images are those matplotlib draws when it
computes them every time it is asked, and they are computed fewer times."""
from __future__ import annotations

import contextlib

import pytest

pytest.importorskip("matplotlib")

from matplotlib.axis import Axis  # noqa: E402

import mixedbridge  # noqa: E402
from mixedbridge import plots as plotsmod  # noqa: E402
from mixedbridge.plots import render, ticks  # noqa: E402

from .conftest import TENTHIRTY_LEGPRESS  # noqa: E402

SPEC = {"analysis": "lmm", "formula": "load ~ time * group + (1 | participant)", **TENTHIRTY_LEGPRESS}
#: One panel, panels sharing their y axis, lines with a legend, a residual and a caterpillar plot.
REQUESTS: list[dict] = [
    {"type": "emmeans", "horizontal": "time"},
    {"type": "emmeans", "horizontal": "time", "panels": "group"},
    {"type": "emmeans", "horizontal": "group", "lines": "time", "background": "jitter", "dpi": 72},
    {"type": "residuals"},
    {"type": "caterpillar"},
]


@pytest.fixture(scope="module")
def model():
    res = mixedbridge.run(SPEC)
    return res.outcome.problem, res.outcome.lead.fit


def _images(problem, fit, monkeypatch, keep: bool) -> tuple[list[dict], int]:
    """The plots of :data:`REQUESTS` drawn on new figures, with or without kept ticks, and how
    many times matplotlib computed an axis's ticks."""
    if not keep:
        monkeypatch.setattr(render, "kept_ticks", lambda fig: contextlib.nullcontext())
    calls: list[Axis] = []
    original = vars(Axis)["_update_ticks"]

    def counted(self):
        calls.append(self)
        return original(self)

    monkeypatch.setattr(Axis, "_update_ticks", counted)
    plots = plotsmod._make_plots(problem, fit, REQUESTS, ("png", "svg"))[0]
    monkeypatch.undo()
    return plots, len(calls)


def test_kept_ticks_draw_matplotlibs_images_and_compute_ticks_less_often(model, monkeypatch):
    problem, fit = model
    want, computed = _images(problem, fit, monkeypatch, keep=False)
    got, kept = _images(problem, fit, monkeypatch, keep=True)
    assert len(got) == len(REQUESTS)
    assert [{k: p[k] for k in ("name", "png", "svg")} for p in got] == \
        [{k: p[k] for k in ("name", "png", "svg")} for p in want]
    assert kept < computed / 2


def test_kept_ticks_follow_the_axes_when_the_layout_moves_them():
    fig, ax = render.new_figure(4.0, 3.0)
    ax.plot([0.0, 1.0], [0.0, 100.0])
    render.PooledCanvas(fig)
    fig.set_size_inches(4.0, 1.2)
    with ticks.kept_ticks(fig):
        short = [t.get_loc() for t in ax.yaxis._update_ticks()]
        boxes = ax.yaxis._get_ticklabel_bboxes(ax.yaxis._update_ticks(), fig.canvas.get_renderer())[0]
        boxes[0].x0 = -1e6  # a caller's change does not reach what is kept
        fig.set_size_inches(4.0, 6.0)  # a taller axes fits more ticks
        tall = [t.get_loc() for t in ax.yaxis._update_ticks()]
        again = ax.yaxis._get_ticklabel_bboxes(ax.yaxis._update_ticks(), fig.canvas.get_renderer())[0]
    assert len(tall) > len(short)
    assert all(b.x0 > -1e6 for b in again)
    assert "_update_ticks" not in vars(ax.yaxis) and "_get_ticklabel_bboxes" not in vars(ax.yaxis)
    assert [t.get_loc() for t in ax.yaxis._update_ticks()] == tall
