"""Text shaped and measured once per process, not once per image: the renderers of
:class:`render.PooledCanvas`.

FreeType lays a string out at about 16 µs a character (kerning, fallback fonts), and matplotlib
does it again for every image: Agg shapes each text it draws (an emmeans plot's fifteen texts,
4-5 ms of a 30 ms PNG) and the SVG writer measures each text with a new renderer per image (as
much again). A string's layout depends only on the string, the font properties and the dpi, so
both are kept here, by those, and the images are byte for byte matplotlib's own. So are a
font's ascent, descent and line gap, which matplotlib looks up in the font's tables for every
text it places (each label in the layout and in each image).

The Agg side reads matplotlib's glyph drawing of 3.11 (``RendererAgg._draw_text_glyphs_and_boxes``
and ``FT2Font._layout``); with a matplotlib without them, :data:`SHAPES_AGG_TEXT` is False and Agg
draws text as it always does.
"""
from __future__ import annotations

import codecs
from typing import Any

from matplotlib import cbook, font_manager
from matplotlib.backends.backend_agg import RendererAgg, get_hinting_flag
from matplotlib.backends.backend_mixed import MixedModeRenderer
from matplotlib.backends.backend_svg import RendererSVG
from matplotlib.ft2font import FT2Font

#: How many shaped or measured strings each cache keeps (cleared when full; a plot has dozens).
MAX_TEXTS = 4096

#: Whether this matplotlib draws Agg text from a layout that can be kept (3.11's glyph drawing).
SHAPES_AGG_TEXT = hasattr(RendererAgg, "_draw_text_glyphs_and_boxes") and hasattr(FT2Font, "_layout")

_SHAPED: dict[tuple, tuple] = {}
_MEASURED: dict[tuple, tuple[float, float, float]] = {}
_HEIGHTS: dict[tuple, tuple[float | None, float | None, float | None]] = {}

#: The font tables and keys matplotlib reads a font's line gap, ascent and descent from, in order.
_HEIGHT_TABLES = (("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"),
                  ("hhea", "lineGap", "ascent", "descent"))


def _remember(cache: dict, key: tuple, value: Any) -> Any:
    if len(cache) >= MAX_TEXTS:
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

    def _get_font_height_metrics(self, prop):
        """matplotlib's hook for a font's ascent, descent and line gap: :func:`font_heights`
        at this renderer's dpi (the figure's: a pooled renderer is chosen by it)."""
        return font_heights(prop, self.dpi)


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
    (``savefig``'s other keywords, which matplotlib's own writer is not given, are ignored)."""
    with cbook.open_file_cm(filename, "w", encoding="utf-8") as opened:
        fh: Any = opened if cbook.file_requires_unicode(opened) else codecs.getwriter("utf-8")(opened)
        dpi = figure.dpi
        figure.dpi = 72
        width, height = figure.get_size_inches()
        renderer = MixedModeRenderer(figure, width, height, dpi,
                                     MeasuredSVG(width * 72, height * 72, fh, image_dpi=dpi, metadata=metadata),
                                     bbox_inches_restore=bbox_inches_restore)
        figure.draw(renderer)
        renderer.finalize()
