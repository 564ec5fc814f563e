"""Work a plot click hands to the next (issue #16: an emmeans or plot change under ``serve`` in
milliseconds): the kept one-panel figure, the layout kept for a request that changes only the
image format, and text shaped and measured once per process. Every image stays byte for byte
the one a new figure, laid out anew and drawn by matplotlib's own renderers, gives."""
from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.backends.backend_svg import FigureCanvasSVG  # noqa: E402

import mixedbridge  # noqa: E402
from mixedbridge import plots as plotsmod  # noqa: E402
from mixedbridge.kept import KeptByOwners  # noqa: E402
from mixedbridge.plots import describe, figures, make_plots, render, reuse, textcache  # noqa: E402

from .conftest import TENTHIRTY_LEGPRESS  # noqa: E402

SPEC = {"analysis": "lmm", "formula": "load ~ time * group + (1 | participant)", **TENTHIRTY_LEGPRESS}

#: Requests of one panel (the kept figure) and of two (a new figure each time), with and without
#: lines, backgrounds, sizes and formats.
REQUESTS = [
    {"type": "emmeans", "horizontal": "time"},
    {"type": "emmeans", "horizontal": "group", "format": "svg"},
    {"type": "emmeans", "horizontal": "time", "lines": "group", "background": "jitter"},
    {"type": "emmeans", "horizontal": "group", "lines": "time", "background": "boxjitter", "width": 420},
    {"type": "emmeans", "horizontal": "time", "background": "violin", "format": "png", "dpi": 72},
    {"type": "emmeans", "horizontal": "time", "panels": "group"},
]


@pytest.fixture(scope="module")
def model():
    res = mixedbridge.run(SPEC)
    return res.outcome.problem, res.outcome.lead.fit


@pytest.fixture
def fresh(monkeypatch):
    """Nothing kept from earlier tests: no answers, figures or layouts."""
    monkeypatch.setattr(plotsmod, "_KEPT", KeptByOwners(plotsmod.MAX_KEPT_PLOTS))
    monkeypatch.setattr(reuse, "_FIGURES", type(reuse._FIGURES)())
    monkeypatch.setattr(reuse, "_LAYOUTS", KeptByOwners(reuse.MAX_KEPT_LAYOUTS))


def _new_figure_images(problem, fit, request) -> list[dict]:
    """The plot drawn on a new figure and laid out anew (no reuse: what make_plots gave before)."""
    return plotsmod._make_plots(problem, fit, [request], ("png", "svg"))[0]


def test_kept_figures_and_layouts_draw_the_images_of_new_figures(model, fresh, monkeypatch):
    problem, fit = model
    expected = [_new_figure_images(problem, fit, r) for r in REQUESTS]
    for _ in range(2):  # the second round reuses the figure and, per request, the layout
        for request, want in zip(REQUESTS, expected):
            # draw, do not answer from kept images
            monkeypatch.setattr(plotsmod, "_KEPT", KeptByOwners(plotsmod.MAX_KEPT_PLOTS))
            got = make_plots(problem, fit, [request])[0]
            assert [{k: p.get(k) for k in want[0]} for p in got] == want
    assert len(reuse._FIGURES) == 1  # one kept figure: the one-panel means plot at its size


def test_a_format_change_reuses_the_layout_and_other_requests_do_not(model, fresh, monkeypatch):
    problem, fit = model
    laid: list[object] = []
    original = reuse.lay_out
    monkeypatch.setattr(reuse, "lay_out", lambda fig, dpi: laid.append(fig) or original(fig, dpi))
    make_plots(problem, fit, [{"type": "emmeans", "horizontal": "time"}])
    make_plots(problem, fit, [{"type": "emmeans", "horizontal": "time", "format": "png"}])
    make_plots(problem, fit, [{"type": "emmeans", "horizontal": "time", "format": "svg"}])
    assert len(laid) == 1
    make_plots(problem, fit, [{"type": "emmeans", "horizontal": "group", "format": "svg"}])
    make_plots(problem, fit, [{"type": "emmeans", "horizontal": "time", "width": 300}])
    assert len(laid) == 3


def test_a_kept_layout_is_forgotten_with_its_fit(model, fresh):
    problem, fit = model

    class Owner:
        pass

    owner = Owner()
    fig_a = figures(problem, fit, {"type": "emmeans", "horizontal": "time"})[0].figure
    reuse.kept_layout(fig_a, render.DPI, reuse.layout_key((owner,), "one"))
    kept = reuse._LAYOUTS.get((owner,), "one")
    assert kept is not None and len(kept[0]) == len(fig_a.axes)
    del owner
    fig_b = figures(problem, fit, {"type": "emmeans", "horizontal": "time"})[0].figure
    other = Owner()
    reuse.kept_layout(fig_b, render.DPI, reuse.layout_key((other,), "one"))  # same text, another owner
    assert fig_b.get_layout_engine() is None
    assert [ax.get_position().bounds for ax in fig_b.axes] == [ax.get_position().bounds for ax in fig_a.axes]


def test_figures_given_to_a_caller_are_never_kept_ones(model, fresh):
    problem, fit = model
    make_plots(problem, fit, [{"type": "emmeans", "horizontal": "time"}])
    first = figures(problem, fit, {"type": "emmeans", "horizontal": "time"})[0]
    before = describe(first.figure)
    second = figures(problem, fit, {"type": "emmeans", "horizontal": "group"})[0]
    make_plots(problem, fit, [{"type": "emmeans", "horizontal": "group"}])
    kept = {id(fig) for fig, _ in reuse._FIGURES.values()}
    assert first.figure is not second.figure and not {id(first.figure), id(second.figure)} & kept
    assert describe(first.figure) == before


def test_blank_figure_is_new_outside_make_plots_and_emptied_inside():
    key = ("test", 3.0, 2.0)
    assert reuse.blank_figure(key, 3.0, 2.0)[0] is not reuse.blank_figure(key, 3.0, 2.0)[0]
    with reuse.reusing_figures():
        fig, ax = reuse.blank_figure(key, 3.0, 2.0)
        ax.plot([0, 1], [5, 6], "o")
        ax.scatter([0, 1], [5, 6])
        ax.legend(["x"])
        ax.set_xlim(-3, 3)
        fig.suptitle("kept")
        fig.set_size_inches(6, 4)
        again, ax2 = reuse.blank_figure(key, 3.0, 2.0)
    assert again is fig and ax2 is ax
    assert not ax.lines and not ax.collections and ax.get_legend() is None and not fig.texts
    assert tuple(fig.get_size_inches()) == (3.0, 2.0)
    assert ax.get_autoscalex_on() and ax.get_autoscaley_on()
    assert fig.get_layout_engine() is not None and ax.get_in_layout()
    assert np.allclose(ax.get_position().bounds, ax.get_subplotspec().get_position(fig).bounds)
    reuse._FIGURES.pop(key)


def _text_figure():
    fig, ax = render.new_figure(3.0, 2.0)
    ax.plot([0, 1, 2], [1.5, -0.25, 3.0], "-o", label="a line")
    ax.set_title("A title with kerning: AVAWAY")
    ax.set_xlabel("x (units)")
    ax.set_ylabel("−y")
    ax.legend()
    fig.suptitle("Suptitle\non two lines")
    return fig


def test_shaped_and_measured_text_draw_matplotlibs_own_images():
    """The pooled canvas (kept glyph layouts, text sizes and font heights) against matplotlib's
    own Agg and SVG canvases, twice (the second time from what was kept)."""
    def image(pooled: bool, fmt: str) -> bytes:
        fig = _text_figure()
        (render.PooledCanvas if pooled else FigureCanvasAgg)(fig)
        render.literal_text(fig)
        render.lay_out(fig)  # measured by Agg, as to_plot lays a figure out
        if fmt == "svg" and not pooled:
            FigureCanvasSVG(fig)
        return render._save(fig, fmt, render.DPI)

    for _ in range(2):
        assert image(True, "png") == image(False, "png")
        assert image(True, "svg") == image(False, "svg")
    key = next(iter(textcache._MEASURED))
    assert isinstance(textcache._MEASURED[key][0], float)


def test_font_heights_are_the_font_tables_values():
    from matplotlib.font_manager import FontProperties

    prop = FontProperties(size=10)
    ascent, descent, gap = textcache.font_heights(prop, 100)
    assert ascent is not None and descent is not None and gap is not None
    assert 8 < ascent + descent < 16  # a 10-point font at 100 dpi is ~14 px from top to bottom
    assert textcache.font_heights(prop, 200)[0] == pytest.approx(2 * ascent)
    assert textcache.font_heights(FontProperties(size=20), 100)[0] == pytest.approx(2 * ascent)


def test_text_caches_stay_bounded(monkeypatch):
    monkeypatch.setattr(textcache, "MAX_TEXTS", 3)
    cache: dict = {}
    for k in range(10):
        textcache._remember(cache, (k,), k)
    assert len(cache) <= 3 and cache[(9,)] == 9


def test_warm_up_makes_the_one_panel_figure_and_changes_no_image(model, fresh):
    problem, fit = model
    request = {"type": "emmeans", "horizontal": "time"}
    want = _new_figure_images(problem, fit, request)
    plotsmod.warm_up()
    assert len(reuse._FIGURES) == 1
    kept = next(iter(reuse._FIGURES.values()))[0]
    got = make_plots(problem, fit, [request])[0]
    assert next(iter(reuse._FIGURES.values()))[0] is kept
    assert [{k: p.get(k) for k in want[0]} for p in got] == want
    buf = io.BytesIO()
    kept.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"
