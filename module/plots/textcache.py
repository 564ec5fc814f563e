"""Text shaped and measured once per process, not once per image: the renderers of
:class:`render.PooledCanvas`.

FreeType lays a string out at about 16 µs a character (kerning, fallback fonts), and matplotlib
does it again for every image: Agg shapes each text it draws (an emmeans plot's fifteen texts,
4-5 ms of a 30 ms PNG) and the SVG writer measures each text with a new renderer per image (as
much again). A string's layout depends only on the string, the font properties and the dpi, so
both are kept here, by those, and the images are byte for byte matplotlib's own. So are a
font's ascent, descent and line gap, which matplotlib looks up in the font's tables for every
text it places (each label in the layout and in each image). And so is each glyph's image:
FreeType renders every glyph of every text anew for every PNG (an emmeans plot's 125 glyphs,
about 5 ms); an image depends only on the font, size, glyph, rotation and the origin's offset
within a pixel, and is kept by those (:func:`glyph_image`).

The Agg side reads matplotlib's glyph drawing of 3.11 (``RendererAgg._draw_text_glyphs_and_boxes``,
``FT2Font._layout``, ``_set_transform`` and ``_render_glyph``); with a matplotlib without them,
:data:`SHAPES_AGG_TEXT` is False and Agg draws text as it always does.
"""
from __future__ import annotations

import io
import math
from functools import lru_cache
from typing import Any

import numpy as np
from matplotlib import cbook, font_manager
from matplotlib.backends.backend_agg import RendererAgg, get_hinting_flag
from matplotlib.backends.backend_mixed import MixedModeRenderer
from matplotlib.backends.backend_svg import RendererSVG
from matplotlib.ft2font import FT2Font, RenderMode

#: How many shaped or measured strings each cache keeps (cleared when full; a plot has dozens).
MAX_TEXTS = 4096
#: How many glyph images :func:`glyph_image` keeps (cleared when full; an emmeans plot draws about
#: 125, a caterpillar plot of 700 levels a few thousand; each a few hundred bytes).
MAX_GLYPHS = 16384

#: Whether this matplotlib draws Agg text from a layout that can be kept (3.11's glyph drawing).
SHAPES_AGG_TEXT = (hasattr(RendererAgg, "_draw_text_glyphs_and_boxes") and hasattr(FT2Font, "_layout")
                   and hasattr(FT2Font, "_render_glyph") and hasattr(FT2Font, "_set_transform"))

_SHAPED: dict[tuple, tuple] = {}
_GLYPHS: dict[tuple, tuple] = {}
_MEASURED: dict[tuple, tuple[float, float, float]] = {}
_HEIGHTS: dict[tuple, tuple[float | None, float | None, float | None]] = {}

#: The font tables and keys matplotlib reads a font's line gap, ascent and descent from, in order.
_HEIGHT_TABLES = (("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"),
                  ("hhea", "lineGap", "ascent", "descent"))


def _remember(cache: dict, key: tuple, value: Any, limit: int | None = None) -> Any:
    if len(cache) >= (MAX_TEXTS if limit is None else limit):
        cache.clear()
    cache[key] = value
    return value


def font_heights(prop, dpi: float) -> tuple[float | None, float | None, float | None]:
    """The ascent, descent and line gap of the font of ``prop`` at ``dpi``, in pixels, as
    ``Text`` computes them from the font's tables (None, None, None where this matplotlib finds
    fonts otherwise: it then computes them itself)."""
    key = (hash(prop), dpi)
    got = _HEIGHTS.get(key)
    if got is None:
        got = _remember(_HEIGHTS, key, _font_heights(prop, dpi))
    return got


def _font_heights(prop, dpi: float) -> tuple[float | None, float | None, float | None]:
    find = getattr(font_manager.fontManager, "_find_fonts_by_props", None)
    if find is None:
        return None, None, None
    font: Any = font_manager.get_font(find(prop))  # its tables are read by name
    for table_name, gap_key, ascent_key, descent_key in _HEIGHT_TABLES:
        table = font.get_sfnt_table(table_name)
        if table is None:
            continue
        scale = 1 / font.get_sfnt_table("head")["unitsPerEm"] * prop.get_size_in_points() * dpi / 72
        return table[ascent_key] * scale, -table[descent_key] * scale, table[gap_key] * scale
    return None, None, None


class ShapedTextAgg(RendererAgg):
    """An Agg renderer that keeps each text's glyph layout (glyphs and their offsets from the
    text's origin) by string, font properties and dpi, and draws a kept text from it."""

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        """Draw ``s`` as :meth:`RendererAgg.draw_text` does, shaping it only the first time."""
        features = mtext.get_fontfeatures() if mtext is not None else None
        language = mtext.get_language() if mtext is not None else None
        if ismath or not SHAPES_AGG_TEXT or not (language is None or isinstance(language, str)):
            return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        flags = get_hinting_flag()
        key = (s, hash(prop), self.dpi, flags, tuple(features or ()), language)
        glyphs = _SHAPED.get(key)
        if glyphs is None:
            font = self._prepare_font(prop)
            items = font._layout(s, flags=flags, features=features, language=language)
            size = prop.get_size_in_points()
            glyphs = _remember(_SHAPED, key, tuple((item.ft_object, size, item.glyph_index, 0, 1, item.x, item.y)
                                                   for item in items))
        self._draw_text_glyphs_and_boxes(gc, x, y, angle, glyphs, [])

    def _draw_text_glyphs_and_boxes(self, gc, x, y, angle, glyphs, boxes):
        """Draw glyphs as :meth:`RendererAgg._draw_text_glyphs_and_boxes` does, each glyph image
        rendered by FreeType only once per font, size, glyph, rotation and sub-pixel offset
        (:func:`glyph_image`); boxes (mathtext) and unantialiased text as matplotlib draws them."""
        if boxes or not SHAPES_AGG_TEXT or not gc.get_antialiased():
            return super()._draw_text_glyphs_and_boxes(gc, x, y, angle, glyphs, boxes)
        cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        flags = get_hinting_flag()
        height = self.height
        for font, size, glyph_index, slant, extend, dx, dy in glyphs:  # dy is upwards
            matrix = _matrix(cos, sin, slant, extend)
            px = round(0x40 * (x + dx * cos - dy * sin))
            py = round(0x40 * (height - y + dx * sin + dy * cos))  # FreeType's y is upwards
            buffer, left, top = glyph_image(font, size, self.dpi, glyph_index, flags, matrix, px & 63, py & 63)
            # draw_text_image's y is downwards and the bitmap's bottom side
            self._renderer.draw_text_image(buffer, left + (px >> 6), int(height) - top - (py >> 6) + buffer.shape[0],
                                           0, gc)

    def _get_font_height_metrics(self, prop):
        """matplotlib's hook for a font's ascent, descent and line gap: :func:`font_heights`
        at this renderer's dpi (the figure's: a pooled renderer is chosen by it)."""
        return font_heights(prop, self.dpi)


@lru_cache(maxsize=64)
def _matrix(cos: float, sin: float, slant: float, extend: float) -> tuple[int, int, int, int]:
    """FreeType's 16.16 transform of a glyph, as matplotlib rounds it (rotation × slant and extent)."""
    m = (0x10000 * np.array([[cos, -sin], [sin, cos]]) @ [[extend, extend * slant], [0, 1]]).round().astype(int)
    return int(m[0, 0]), int(m[0, 1]), int(m[1, 0]), int(m[1, 1])


def glyph_image(font: FT2Font, size: float, dpi: float, glyph_index: int, flags, matrix: tuple[int, int, int, int],
                sub_x: int, sub_y: int) -> tuple[np.ndarray, int, int]:
    """A glyph's antialiased image, rendered at the sub-pixel offset (``sub_x``, ``sub_y``) in
    64ths of a pixel, and the place of its left and top side relative to the whole pixel of
    the origin.

    FreeType renders a glyph's outline moved by the origin; moved by whole pixels, the image is
    the same and only its place moves, so one rendering serves each offset within a pixel."""
    key = (font, size, dpi, glyph_index, flags, matrix, sub_x, sub_y)
    got = _GLYPHS.get(key)
    if got is None:
        ft: Any = font  # matplotlib's private glyph rendering of 3.11 (SHAPES_AGG_TEXT)
        ft.set_size(size, dpi)
        ft._set_transform([[matrix[0], matrix[1]], [matrix[2], matrix[3]]], [sub_x, sub_y])
        bitmap = ft._render_glyph(glyph_index, flags, RenderMode.NORMAL)
        got = _remember(_GLYPHS, key, (bitmap.buffer, bitmap.left, bitmap.top), MAX_GLYPHS)
    return got


class MeasuredSVG(RendererSVG):
    """The SVG renderer with each text's width, height and descent kept by string and font
    properties (it measures at 72 dpi with the same text-to-path tool for every image)."""

    def get_text_width_height_descent(self, s, prop, ismath):
        """:meth:`RendererSVG.get_text_width_height_descent`, measured once per string and font."""
        if ismath:
            return super().get_text_width_height_descent(s, prop, ismath)
        key = (s, hash(prop))
        got = _MEASURED.get(key)
        if got is None:
            got = _remember(_MEASURED, key, super().get_text_width_height_descent(s, prop, ismath))
        return got

    def _get_font_height_metrics(self, prop):
        """matplotlib's hook for a font's ascent, descent and line gap: :func:`font_heights`
        at 72 dpi (an SVG is drawn at 72 dpi)."""
        return font_heights(prop, 72)


def print_svg(figure, filename, *, bbox_inches_restore=None, metadata=None, **_: Any) -> None:
    """Write ``figure`` as SVG as ``FigureCanvasSVG.print_svg`` does, with :class:`MeasuredSVG`
    (``savefig``'s other keywords, which matplotlib's own writer is not given, are ignored).
    Into a binary file the text is gathered and encoded once (matplotlib encodes each of the
    thousand small pieces its XML writer writes)."""
    with cbook.open_file_cm(filename, "w", encoding="utf-8") as opened:
        if cbook.file_requires_unicode(opened):
            _draw_svg(figure, opened, bbox_inches_restore, metadata)
            return
        text = io.StringIO()
        _draw_svg(figure, text, bbox_inches_restore, metadata)
        opened.write(text.getvalue().encode("utf-8"))


def _draw_svg(figure, fh, bbox_inches_restore, metadata) -> None:
    """Draw ``figure`` with :class:`MeasuredSVG` onto the text file ``fh``, at 72 dpi."""
    dpi = figure.dpi
    figure.dpi = 72
    width, height = figure.get_size_inches()
    renderer = MixedModeRenderer(figure, width, height, dpi,
                                 MeasuredSVG(width * 72, height * 72, fh, image_dpi=dpi, metadata=metadata),
                                 bbox_inches_restore=bbox_inches_restore)
    figure.draw(renderer)
    renderer.finalize()
