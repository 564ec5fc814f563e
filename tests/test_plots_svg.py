"""SVG output of dense plots (issue #16): a collection of more points than
``render.SVG_RASTER_POINTS`` is embedded as an image (a vector marker per point made a 13,000-row
residual plot a 2 MB SVG that took half a second to write); sparse ones stay vector markers, the
figure itself is left as it was, and the output stays byte-identical run to run."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from mixedbridge.plots import describe, render  # noqa: E402


def _figure(npoints: int):
    rng = np.random.default_rng(1)
    fig, ax = render.new_figure(4.0, 3.0)
    render.tag(ax.scatter(rng.normal(size=npoints), rng.normal(size=npoints), s=10), "data")
    ax.set_title("points")
    return fig


def test_dense_scatter_is_an_image_in_the_svg_and_the_figure_is_unchanged():
    fig = _figure(render.SVG_RASTER_POINTS + 1)
    before = describe(fig)
    svg = render.to_bytes(fig, "svg")
    assert b"<image" in svg and svg.count(b"<use") < 100  # glyphs only, no marker per point
    assert not any(c.get_rasterized() for ax in fig.axes for c in ax.collections)
    assert describe(fig) == before
    assert render.to_bytes(fig, "svg") == svg
    png = render.to_bytes(fig, "png")
    assert png[:4] == b"\x89PNG"


def test_sparse_scatter_stays_vector():
    svg = render.to_bytes(_figure(200), "svg")
    assert b"<image" not in svg and svg.count(b"<use") >= 200


def test_a_repeated_plot_request_is_answered_from_the_kept_images(monkeypatch):
    import mixedbridge
    from mixedbridge import plots as plotsmod

    res = mixedbridge.run({"analysis": "lmm", "data": {"dataset": "sleepstudy"},
                           "formula": "Reaction ~ Days + (1 | Subject)"})
    problem, fit = res.outcome.problem, res.outcome.lead.fit
    drawn = []
    builder = plotsmod.BUILDERS["caterpillar"]
    monkeypatch.setitem(plotsmod.BUILDERS, "caterpillar",
                        lambda *a: drawn.append(1) or builder(*a))
    first = plotsmod.make_plots(problem, fit, [{"type": "caterpillar"}])
    again = plotsmod.make_plots(problem, fit, [{"type": "caterpillar"}])
    assert again == first and len(drawn) == 1
    again[0][0]["png"] = "changed"  # answers are copies: the kept images stay as drawn
    assert plotsmod.make_plots(problem, fit, [{"type": "caterpillar"}]) == first and len(drawn) == 1
    other = plotsmod.make_plots(problem, fit, [{"type": "caterpillar", "format": "png"}])
    assert len(drawn) == 2 and "svg" not in other[0][0]
