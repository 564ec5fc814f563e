"""The plots' PNG writer and kept glyph images (issue #16: a plot click under ``serve`` in
milliseconds): the PNG of a plot dict decodes to the pixels matplotlib's own Agg canvas and
Pillow writer give, and text drawn from kept glyph images is matplotlib's, pixel for pixel, at
any sub-pixel position and angle."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

import mixedbridge  # noqa: E402
from mixedbridge.plots import make_plots, pngwrite, render, textcache  # noqa: E402

from .conftest import TENTHIRTY_LEGPRESS  # noqa: E402


def _decoded(png: bytes) -> tuple[str, np.ndarray]:
    """The PNG's mode and its pixels as RGBA."""
    im = Image.open(io.BytesIO(png))
    im.load()
    return im.mode, np.asarray(im.convert("RGBA"))


def _matplotlib_png(fig) -> bytes:
    """The figure as matplotlib's own Agg canvas and Pillow writer give it."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=render.DPI, metadata={"Software": None})
    return buf.getvalue()


def _texts_figure():
    """Texts at fractional places and several angles (each glyph at many sub-pixel offsets)."""
    fig, ax = render.new_figure(4.0, 3.0)
    ax.plot([0, 1, 2], [0.5, 2.25, 1.0], "-o", label="series")
    for k, angle in enumerate((0, 15, 30, 45, 90, 180, 270)):
        ax.text(0.013 * k + 0.1, 0.37 * k + 0.05, f"Wavy text {k}: AVAWAY 0.123", rotation=angle)
    ax.set_title("Title, kerning: AVAWAY")
    ax.set_xlabel("x (units)")
    ax.set_ylabel("rotated −y")
    ax.legend()
    fig.suptitle("Suptitle\non two lines")
    return fig


def test_png_bytes_are_the_buffers_pixels_rgb_when_opaque():
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (7, 5, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    mode, pixels = _decoded(pngwrite.png_bytes(rgba, 100, {"Software": None, "Title": "t"}))
    assert mode == "RGB" and np.array_equal(pixels, rgba)
    im = Image.open(io.BytesIO(pngwrite.png_bytes(rgba, 100, {"Software": None, "Title": "t"})))
    assert im.info.get("Title") == "t" and "Software" not in im.info
    assert im.info["dpi"] == pytest.approx((100, 100), abs=0.01)


def test_png_bytes_keep_alpha_where_a_pixel_is_not_opaque():
    rng = np.random.default_rng(4)
    rgba = rng.integers(0, 256, (6, 9, 4), dtype=np.uint8)
    rgba[0, 0, 3] = 254
    mode, pixels = _decoded(pngwrite.png_bytes(rgba, 72))
    assert mode == "RGBA" and np.array_equal(pixels, rgba)


def test_write_png_to_a_path_and_a_file(tmp_path):
    rgba = np.full((3, 4, 4), 255, np.uint8)
    pngwrite.write_png(tmp_path / "a.png", rgba, 100, None)
    buf = io.BytesIO()
    pngwrite.write_png(buf, rgba, 100, None)
    assert (tmp_path / "a.png").read_bytes() == buf.getvalue() == pngwrite.png_bytes(rgba, 100)


def test_plot_png_is_matplotlibs_pixels_with_kept_glyph_images():
    """Drawn twice (the second time from kept glyph layouts and images) by :func:`to_plot`,
    against matplotlib's own canvas and writer."""
    want = _decoded(_matplotlib_png(_texts_figure()))[1]
    textcache._GLYPHS.clear()
    for _ in range(2):
        fig = _texts_figure()
        plot = render.to_plot("texts", "texts", fig, formats=("png",), layout=lambda f, d: None)
        mode, got = _decoded(base64.b64decode(plot["png"]))
        assert mode == "RGB" and got.shape == want.shape
        assert np.array_equal(got, want)
    assert len(textcache._GLYPHS) > 50  # the glyph images were kept and drawn from


def test_kept_glyph_image_is_freetypes_at_each_sub_pixel_offset():
    """A glyph moved by whole pixels is FreeType's image of it moved: the kept image, placed,
    is the one FreeType renders at the full position."""
    from matplotlib.backends.backend_agg import get_hinting_flag
    from matplotlib.font_manager import FontProperties, findfont, get_font
    from matplotlib.ft2font import RenderMode

    font = get_font(findfont(FontProperties(family="DejaVu Sans")))
    glyph = font.get_char_index(ord("g"))
    flags = get_hinting_flag()
    matrix = textcache._matrix(np.cos(0.3), np.sin(0.3), 0, 1)
    for px, py in ((0, 0), (13, 50), (64 * 7 + 21, 64 * 3 + 63), (64 * 40 + 1, 64 * 11 + 32)):
        buffer, left, top = textcache.glyph_image(font, 10.0, 100, glyph, flags, matrix, px & 63, py & 63)
        font.set_size(10.0, 100)
        font._set_transform([[matrix[0], matrix[1]], [matrix[2], matrix[3]]], [px, py])
        direct = font._render_glyph(glyph, flags, RenderMode.NORMAL)
        assert np.array_equal(buffer, direct.buffer)
        assert (left + (px >> 6), top + (py >> 6)) == (direct.left, direct.top)


def test_emmeans_plot_png_is_matplotlibs_pixels():
    spec = {"analysis": "lmm", "formula": "load ~ time * group + (1 | participant)", **TENTHIRTY_LEGPRESS}
    res = mixedbridge.run(spec)
    problem, fit = res.outcome.problem, res.outcome.lead.fit
    request = {"type": "emmeans", "horizontal": "time", "lines": "group", "background": "jitter"}
    plots, _ = make_plots(problem, fit, [request], formats=("png",))
    drawn = mixedbridge.plots.figures(problem, fit, request)[0].figure
    render.literal_text(drawn)
    want = _decoded(_matplotlib_png(drawn))[1]
    assert np.array_equal(_decoded(base64.b64decode(plots[0]["png"]))[1], want)


def test_glyph_images_stay_bounded_and_draw_the_same(monkeypatch):
    monkeypatch.setattr(textcache, "MAX_GLYPHS", 5)
    textcache._GLYPHS.clear()
    want = _decoded(_matplotlib_png(_texts_figure()))[1]
    plot = render.to_plot("texts", "texts", _texts_figure(), formats=("png",), layout=lambda f, d: None)
    assert np.array_equal(_decoded(base64.b64decode(plot["png"]))[1], want)
    assert 0 < len(textcache._GLYPHS) <= 5
