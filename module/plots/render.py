"""Figures to plot dicts: deterministic PNG and SVG bytes, base64-encoded, and a summary of what a
figure shows (for tests and for hosts that want to check a plot without looking at it).

Every artist that carries meaning is tagged with a *role* (``data``, ``smooth``,
``population-line``, ``cluster-line``, ``arrow``...) by :func:`tag`; :func:`describe` counts
artists and points per role, so a test can say "the residual plot shows nobs points" without
knowing how matplotlib stores them.
"""
from __future__ import annotations

import base64
import io
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, overload

import matplotlib
import numpy as np

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.artist import Artist  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg  # noqa: E402
from matplotlib.collections import Collection, PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.layout_engine import PlaceHolderLayoutEngine  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402
from matplotlib.text import Text
from matplotlib.ticker import FixedFormatter, FuncFormatter

from ..table import printable
from .pngwrite import write_png
from .textcache import ShapedTextAgg, print_svg
from .ticks import kept_ticks

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

#: Held while figures are drawn: matplotlib's drawing and ``rc_context`` are not thread-safe, and the
#: ``serve`` worker warms up (:func:`warm_up`) in a thread of its own.
DRAW_LOCK = threading.RLock()

#: Dots per inch of the PNG; ``width`` and ``height`` of a plot dict are in pixels at this dpi.
DPI = 100
_ROLE_ATTR = "_mixedbridge_role"

#: Style shared by every plot: readable sizes, no date or software stamps, fixed SVG ids, and
#: text drawn as written (a ``$`` in a name or level is not the start of mathtext). SVG text is
#: written as text in DejaVu Sans (falling back to Verdana, Arial, ..., sans-serif), not as glyph
#: outlines: a third less time to write and less than half the size, and the text can be selected.
STYLE: dict[RcKeyType, Any] = {
    "text.parse_math": False,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "figure.titlesize": 12,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "mixedbridge",
    "svg.fonttype": "none",
    "path.simplify": True,
}


_STYLED = threading.local()


@contextmanager
def styled() -> Iterator[None]:
    """``plt.rc_context(STYLE)``, entered once per thread: a nested call changes nothing (each
    entry copied, validated and restored all of matplotlib's ~300 settings, about 0.3 ms, and a
    plot click entered it five times, each inside the one before)."""
    if getattr(_STYLED, "on", False):
        yield
        return
    with plt.rc_context(STYLE):
        _STYLED.on = True
        try:
            yield
        finally:
            _STYLED.on = False


#: Agg renderers kept for reuse, by (width, height, dpi) in pixels: at most this many, each of at
#: most :data:`POOLED_PIXELS` pixels (a renderer holds its image, 4 bytes a pixel).
MAX_RENDERERS = 4
POOLED_PIXELS = 4_000_000
_RENDERERS: OrderedDict[tuple, RendererAgg] = OrderedDict()


class PooledCanvas(FigureCanvasAgg):
    """An Agg canvas that shares its renderer with every figure of the same size and dpi.

    matplotlib caches the size of each text per renderer; a fresh renderer per figure measured
    every label, tick label and title again with FreeType (in the layout pass and in the draw),
    and allocated its image anew. Drawing holds :data:`DRAW_LOCK`, so one renderer draws one
    figure at a time, and the image is cleared at the start of each draw, so the output is
    unchanged. A figure's ``canvas.buffer_rgba()`` is then only its image until another figure
    of its size is drawn, so only :func:`to_plot` gives its figures this canvas (it reads each
    image at once and lets the figure go); figures handed to a caller keep their own. Its
    renderers keep each text's glyph layout, and its SVG writer each text's size
    (:mod:`textcache`)."""

    def get_renderer(self) -> RendererAgg:
        w, h = self.get_width_height(physical=True)
        key = (w, h, self.figure.dpi)
        with DRAW_LOCK:
            renderer = _RENDERERS.get(key)
            if renderer is None:
                renderer = ShapedTextAgg(w, h, self.figure.dpi)
                if w * h <= POOLED_PIXELS:
                    _RENDERERS[key] = renderer
                    while len(_RENDERERS) > MAX_RENDERERS:
                        _RENDERERS.popitem(last=False)
            else:
                _RENDERERS.move_to_end(key)
        self.renderer = renderer
        return renderer

    def print_svg(self, filename, **kwargs: Any) -> None:
        """The SVG writer of matplotlib, measuring each text once per process
        (:func:`textcache.print_svg`)."""
        print_svg(self.figure, filename, **kwargs)

    #: Whether :meth:`print_png` writes with :func:`pngwrite.write_png` (True: :func:`to_plot`'s
    #: figures) or with matplotlib's own writer (Pillow; other canvases of this class).
    direct_png = False

    def print_png(self, filename_or_obj, *, metadata: dict | None = None, pil_kwargs: dict | None = None,
                  **_: Any) -> None:
        """Draw and write the PNG; with :attr:`direct_png`, by :func:`pngwrite.write_png` (the
        pixels matplotlib's Pillow writer writes, in a quarter of its time; ``metadata`` as
        matplotlib takes it, ``pil_kwargs`` not used), else by matplotlib. ``savefig``'s other
        keywords are not given to matplotlib's writer either."""
        if not self.direct_png:
            return super().print_png(filename_or_obj, metadata=metadata, pil_kwargs=pil_kwargs)
        FigureCanvasAgg.draw(self)
        info = {"Software": f"Matplotlib version{matplotlib.__version__}, https://matplotlib.org/",
                **(metadata or {})}
        write_png(filename_or_obj, np.asarray(self.buffer_rgba()), self.figure.dpi, info)


@overload
def new_figure(width: float, height: float, nrows: Literal[1] = 1, ncols: Literal[1] = 1, *,
               squeeze: Literal[True] = True, **kwargs: Any) -> tuple[Figure, Axes]: ...


@overload
def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1, *,
               squeeze: Literal[False], **kwargs: Any) -> tuple[Figure, np.ndarray]: ...


def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1, *,
               squeeze: bool = True, **kwargs: Any) -> tuple[Figure, Axes | np.ndarray]:
    """A figure of ``width`` × ``height`` inches with a grid of axes, in the shared style.

    Parameters
    ----------
    width, height : float
        Size in inches (pixels = inches × :data:`DPI`).
    nrows, ncols : int
        Axes grid; ``squeeze`` and ``kwargs`` go to :meth:`Figure.subplots` (``sharex``...).

    Returns
    -------
    (Figure, Axes or numpy.ndarray)
        The figure and its axes: a single ``Axes`` for the default 1×1 grid, a 2-d array of
        them with ``squeeze=False``.
    """
    with styled():
        fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=squeeze, **kwargs)
    return fig, axes


def tag(artist: Artist | list | tuple, role: str):
    """Mark an artist (or each of a list of artists) with a role for :func:`describe`."""
    if isinstance(artist, (list, tuple)):
        for a in artist:
            tag(a, role)
    else:
        setattr(artist, _ROLE_ATTR, role)
    return artist


def _points(artist: Artist) -> int:
    if isinstance(artist, PathCollection):
        return len(np.asarray(artist.get_offsets()))
    if isinstance(artist, Line2D):
        return len(np.asarray(artist.get_xdata()))
    if isinstance(artist, Collection):
        offsets = artist.get_offsets()
        return max(len(artist.get_paths()), len(np.asarray(offsets)) if offsets is not None else 0)
    return 1


def _artists(ax) -> list[Artist]:
    return list(ax.lines) + list(ax.collections) + list(ax.patches) + list(ax.texts)


def describe(fig: Figure) -> dict:
    """What a figure shows.

    Returns
    -------
    dict
        ``title`` (the figure's suptitle or ""), ``axes`` one dict per visible axes with
        ``title``, ``xlabel``, ``ylabel``, ``legend`` (entry texts) and ``roles``
        ({role: {"artists": k, "points": m}}), and ``totals`` the roles summed over axes.
        Points are scatter offsets, line vertices, or 1 per arrow/patch.
    """
    axes: list[dict] = []
    totals: Counter[str] = Counter()
    total_points: Counter[str] = Counter()
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        roles: Counter[str] = Counter()
        points: Counter[str] = Counter()
        for art in _artists(ax):
            role = getattr(art, _ROLE_ATTR, None)
            if role is None:
                continue
            roles[role] += 1
            points[role] += _points(art)
        legend = ax.get_legend()
        axes.append({
            "title": ax.get_title(),
            "xlabel": ax.get_xlabel(),
            "ylabel": ax.get_ylabel(),
            "legend": [t.get_text() for t in legend.get_texts()] if legend else [],
            "roles": {r: {"artists": roles[r], "points": points[r]} for r in sorted(roles)},
        })
        totals.update(roles)
        total_points.update(points)
    title = fig.get_suptitle() if hasattr(fig, "get_suptitle") else ""
    return {"title": title, "axes": axes,
            "totals": {r: {"artists": totals[r], "points": total_points[r]} for r in sorted(totals)}}


def count_arrows(fig: Figure) -> int:
    """Number of arrow patches in a figure."""
    return sum(isinstance(p, FancyArrowPatch) for ax in fig.axes for p in ax.patches)


def plot_text(text: str) -> str:
    """Text for a figure: control and format characters but the newline written as escapes
    (the font has no glyph for them)."""
    return "\n".join(printable(line) for line in text.split("\n"))


def literal_text(fig: Figure) -> None:
    """Every text of the figure drawn as written: labels, titles, legend entries and tick labels
    come from column names and level labels, which are data, never mathtext nor control codes."""
    for text in fig.findobj(Text):
        text.set_parse_math(False)
        text.set_text(plot_text(text.get_text()))
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            _literal_ticks(axis.get_major_formatter())


def _literal_ticks(formatter) -> None:
    """Tick labels given as a list (level labels) made :func:`plot_text` where they are kept
    (idempotent: a figure saved twice is wrapped twice, to the same text)."""
    if isinstance(formatter, FixedFormatter):
        formatter.seq = [plot_text(str(s)) for s in formatter.seq]
    elif isinstance(formatter, FuncFormatter):
        func = formatter.func

        def literal(x, pos=None) -> str:
            return plot_text(str(func(x, pos)))

        formatter.func = literal


#: A collection of more points than this is drawn as an image inside an SVG (a vector marker per
#: point made a residual plot of 13,000 rows a 2 MB SVG that took half a second to write).
SVG_RASTER_POINTS = 2000


#: zlib level of the PNG images: a plot's large flat areas compress about as well at 1 as at the
#: default 6 (an emmeans plot 12% larger, a 13,000-point residual plot 4% smaller) in half the time
#: (9 ms against 5 ms; 25 ms against 12 ms).
PNG_COMPRESS_LEVEL = 1


def to_bytes(fig: Figure, fmt: str, dpi: int = DPI) -> bytes:
    """The figure as PNG or SVG bytes, identical for identical figures (no date, no version);
    text is drawn as written (:func:`literal_text`); in an SVG, collections of more than
    :data:`SVG_RASTER_POINTS` points are embedded as an image at ``dpi``."""
    literal_text(fig)
    return _save(fig, fmt, dpi)


def _save(fig: Figure, fmt: str, dpi: int) -> bytes:
    """:func:`to_bytes` of a figure whose text is already literal."""
    buf = io.BytesIO()
    metadata = {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
    extra: dict[str, Any] = {"pil_kwargs": {"compress_level": PNG_COMPRESS_LEVEL}} if fmt == "png" else {}
    dense = [c for ax in fig.axes for c in ax.collections
             if fmt == "svg" and not c.get_rasterized() and _points(c) > SVG_RASTER_POINTS]
    for c in dense:
        c.set_rasterized(True)
    try:
        with DRAW_LOCK, styled():
            fig.savefig(buf, format=fmt, dpi=dpi, metadata=metadata, **extra)
    finally:
        for c in dense:
            c.set_rasterized(False)
    return buf.getvalue()


def lay_out(fig: Figure, dpi: int = DPI) -> None:
    """Run the figure's layout engine once and then remove it: matplotlib's ``savefig`` otherwise
    draws a figure with a layout engine twice per format (a layout pass without rendering, then
    the image), so that a PNG and an SVG of one figure cost four draws instead of two. The
    layout is computed at ``dpi`` (the images'), as ``savefig`` would."""
    engine = fig.get_layout_engine()
    if engine is None:
        return
    before = fig.get_dpi()
    try:
        fig.set_dpi(dpi)
        with DRAW_LOCK, styled():
            if not isinstance(engine, PlaceHolderLayoutEngine):
                engine.execute(fig)
            fig.set_layout_engine(None)
    finally:
        fig.set_dpi(before)


def resize(fig: Figure, dpi: int, width: int | None, height: int | None) -> None:
    """Give the figure ``width`` × ``height`` pixels at ``dpi`` (as R's ``png(width, height, res)``:
    fonts keep their size in points, so a higher dpi at the same pixels draws them larger); one
    of them alone keeps the aspect ratio."""
    if width is None and height is None:
        return
    w, h = fig.get_size_inches()
    new_w = width / dpi if width is not None else w * (height / dpi) / h  # type: ignore[operator]
    new_h = height / dpi if height is not None else h * new_w / w
    fig.set_size_inches(new_w, new_h)


def to_plot(name: str, title: str, fig: Figure, formats: tuple[str, ...] = ("png", "svg"), dpi: int = DPI,
            width: int | None = None, height: int | None = None,
            layout: Callable[[Figure, int], None] = lay_out) -> dict:
    """A results-document plot: ``name``, ``title``, ``width`` and ``height`` in pixels (at
    ``dpi``; ``width``/``height`` resize the figure, :func:`resize`), and each requested format
    base64-encoded (the PNG written by :func:`pngwrite.write_png`: matplotlib's pixels);
    ``layout(fig, dpi)`` lays the figure out (:func:`lay_out`, or one that may reuse a kept
    layout, :func:`reuse.kept_layout`). Meanwhile the axes compute their ticks and measure their
    tick labels once per place (:func:`ticks.kept_ticks`)."""
    resize(fig, dpi, width, height)
    w, h = fig.get_size_inches()
    out = {"name": name, "title": title, "width": int(round(w * dpi)), "height": int(round(h * dpi))}
    canvas = fig.canvas if isinstance(fig.canvas, PooledCanvas) else PooledCanvas(fig)
    canvas.direct_png = True
    literal_text(fig)
    with kept_ticks(fig):
        layout(fig, dpi)
        for fmt in formats:
            out[fmt] = base64.b64encode(_save(fig, fmt, dpi)).decode("ascii")
    return out


def warm_up() -> None:
    """Draw one small figure to PNG and SVG: loads the fonts, the text layout and both writers,
    which a first plot would otherwise pay for."""
    with DRAW_LOCK:
        fig, ax = new_figure(2.0, 1.5)
        ax.plot([0.0, 1.0], [0.0, 1.0], marker="o", label="warm-up")
        ax.set_title("warm-up")
        ax.set_xlabel("x")
        ax.legend()
        for fmt in ("png", "svg"):
            to_bytes(fig, fmt)


def safe_name(text: str) -> str:
    """A file-name-safe plot name part (``cask:batch`` → ``cask_batch``)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def suptitle(fig: Figure, text: str) -> None:
    """A figure title wrapped to the figure's width."""
    import textwrap

    chars = max(30, int(fig.get_size_inches()[0] * DPI / 10))
    fig.suptitle("\n".join(textwrap.wrap(text, chars, break_long_words=False, break_on_hyphens=False)))
