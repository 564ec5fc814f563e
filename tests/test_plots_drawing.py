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


def test_figures_of_one_size_share_a_renderer_and_their_images_do_not_mix():
    first = _figure(3, "first")
    alone = render.to_bytes(first, "png")
    other = _figure(4, "other")
    assert render.to_bytes(other, "png") != alone
    assert other.canvas.get_renderer() is first.canvas.get_renderer()
    assert render.to_bytes(first, "png") == alone  # drawn again after another figure: the same bytes
    big = render.new_figure(4.0, 3.0)[0]
    big.set_size_inches(40, 30)
    assert big.canvas.get_renderer() is not first.canvas.get_renderer()


def test_svg_text_is_text_and_identical_run_to_run():
    svg = render.to_bytes(_figure(5, "a title"), "svg")
    assert b">a title</text>" in svg and b"sans-serif" in svg
    assert render.to_bytes(_figure(5, "a title"), "svg") == svg
