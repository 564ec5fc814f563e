"""How a plot is drawn to its images (issue #16: a plot click under ``serve`` in milliseconds): the
layout is computed once and each format drawn once; figures of one size share an Agg renderer
without their images mixing; SVG text is text; the bytes stay the same run to run."""
from __future__ import annotations

import base64

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.figure import Figure  # noqa: E402

from mixedbridge.plots import render  # noqa: E402


def _figure(seed: int, title: str = "points"):
    rng = np.random.default_rng(seed)
    fig, ax = render.new_figure(4.0, 3.0)
    render.tag(ax.plot(rng.normal(size=30), rng.normal(size=30), "o"), "data")
    ax.set_title(title)
    ax.set_xlabel("x label")
    return fig


def test_png_and_svg_of_a_figure_cost_one_layout_and_one_draw_each(monkeypatch):
    draws: list[object] = []
    original = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, renderer: draws.append(self) or original(self, renderer))
    fig = _figure(1)
    plot = render.to_plot("p", "P", fig)
    assert draws.count(fig) == 2  # savefig with a layout engine would add a layout pass per format
    assert fig.get_layout_engine() is None
    assert base64.b64decode(plot["png"])[:4] == b"\x89PNG" and base64.b64decode(plot["svg"])[:5] == b"<?xml"


def test_the_layout_is_the_constrained_one():
    laid, saved = _figure(2), _figure(2)
    render.lay_out(laid)
    saved.savefig(__import__("io").BytesIO(), format="png", dpi=render.DPI)  # matplotlib's own layout pass
    for a, b in zip(laid.axes, saved.axes):
        assert np.allclose(a.get_position().bounds, b.get_position().bounds, atol=1e-9)


def test_plots_of_one_size_share_a_renderer_and_their_images_do_not_mix():
    first = render.to_plot("first", "First", _figure(3, "first"), formats=("png",))
    other_fig = _figure(4, "other")
    other = render.to_plot("other", "Other", other_fig, formats=("png",))
    assert other["png"] != first["png"]
    again = render.to_plot("first", "First", _figure(3, "first"), formats=("png",))
    assert again["png"] == first["png"]  # drawn after another figure of its size: the same bytes
    assert isinstance(other_fig.canvas, render.PooledCanvas)
    assert other_fig.canvas.get_renderer() is render.PooledCanvas(_figure(5)).get_renderer()
    huge = _figure(6)
    huge.set_size_inches(40, 30)
    assert render.PooledCanvas(huge).get_renderer() is not render.PooledCanvas(huge).get_renderer()
    assert not isinstance(_figure(7).canvas, render.PooledCanvas)  # a caller's figure keeps its own canvas


def test_svg_text_is_text_and_identical_run_to_run():
    svg = render.to_bytes(_figure(5, "a title"), "svg")
    assert b">a title</text>" in svg and b"sans-serif" in svg
    assert render.to_bytes(_figure(5, "a title"), "svg") == svg


def _lowess_by_partition(x, y, frac, iterations=3, grid=80):
    """The smoother written the direct way: each local fit on the k nearest points found by a
    partition of all distances (what :func:`lowess` finds as a slice of the sorted points)."""
    n = len(x)
    xs = np.unique(x)
    if len(xs) > grid:
        xs = np.linspace(xs[0], xs[-1], grid)
    k = max(2, min(n, int(np.ceil(frac * n))))
    w = np.ones(n)
    for it in range(iterations + 1):
        ys = []
        for x0 in xs:
            d = np.abs(x - x0)
            idx = np.argpartition(d, k - 1)[:k] if k < n else np.arange(n)
            wt = (1 - np.clip(d[idx] / (d[idx].max() * 1.000001), 0, 1) ** 3) ** 3 * w[idx]
            xm, ym = np.average(x[idx], weights=wt), np.average(y[idx], weights=wt)
            sxx = (wt * (x[idx] - xm) ** 2).sum()
            flat = sxx <= 1e-12 * max(1.0, xm**2) * wt.sum()  # no slope to fit: the weighted mean
            ys.append(ym if flat else ym + (wt * (x[idx] - xm) * (y[idx] - ym)).sum() / sxx * (x0 - xm))
        ys = np.array(ys)
        if it < iterations:
            res = y - np.interp(x, xs, ys)
            w = (1 - np.clip(res / (6 * np.median(np.abs(res))), -1, 1) ** 2) ** 2
    return xs, ys


@pytest.mark.parametrize("case", ["continuous", "ties", "few points"])
def test_lowess_windows_are_the_nearest_points(case):
    from mixedbridge.plots.smooth import lowess

    rng = np.random.default_rng(7)
    x = {"continuous": rng.normal(size=3000), "ties": rng.integers(0, 25, 800).astype(float),
         "few points": rng.normal(size=12)}[case]
    y = np.sin(x) + rng.normal(scale=0.3, size=len(x))
    got, want = lowess(x, y, frac=0.4), _lowess_by_partition(x, y, 0.4)
    assert np.array_equal(got[0], want[0])
    assert np.allclose(got[1], want[1], rtol=1e-12, atol=1e-12)
