"""Work one plot request can hand to the next: kept figures and kept layouts.

A host's user clicks through plot options of one fitted model; each click draws a figure anew.
:func:`blank_figure` hands a builder the emptied figure it drew last time (a new figure, with
its axes and ticks, cost more than drawing it), and :func:`kept_layout` gives a figure the
layout computed for the same request before (a request that changes only the image format draws
the same figure). Both only under :func:`mixedbridge.plots.make_plots`, which encodes each figure
at once and lets it go; the images are those of a new figure laid out anew, byte for byte.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from ..kept import KeptByOwners
from .render import DRAW_LOCK, lay_out, new_figure, styled

#: 1×1 figures kept for reuse by :func:`blank_figure`, by key: at most this many.
MAX_KEPT_FIGURES = 4
_FIGURES: OrderedDict[tuple, tuple[Figure, Axes]] = OrderedDict()
_REUSE = threading.local()


@contextmanager
def reusing_figures() -> Iterator[None]:
    """Within it (in this thread), :func:`blank_figure` may hand out a figure drawn before.

    Only :func:`mixedbridge.plots.make_plots` turns this on: it encodes each figure's images at
    once (:func:`to_plot`) and lets the figure go, so a figure handed out again is no longer read.
    Figures given to a caller (:func:`mixedbridge.plots.figures`) are always new."""
    before = getattr(_REUSE, "on", False)
    _REUSE.on = True
    try:
        yield
    finally:
        _REUSE.on = before


def blank_figure(key: tuple, width: float, height: float) -> tuple[Figure, Axes]:
    """A 1×1 figure of ``width`` × ``height`` inches, as :func:`new_figure` makes it.

    Under :func:`reusing_figures` the figure last made for ``key`` is emptied and handed out
    again (a builder asks for one figure per key per call): a new figure cost more than its
    drawing (an Axes with its ticks, each tick two lines, a grid line and two texts, measured
    again in the layout), and emptying restores what the builders read (limits, ticks' places,
    the layout's starting position), so the images are those of a new figure."""
    if not getattr(_REUSE, "on", False):
        return new_figure(width, height)
    with DRAW_LOCK:
        kept = _FIGURES.get(key)
        if kept is None:
            kept = new_figure(width, height)
            _FIGURES[key] = kept
            while len(_FIGURES) > MAX_KEPT_FIGURES:
                _FIGURES.popitem(last=False)
        else:
            _FIGURES.move_to_end(key)
            _empty(*kept, width, height)
    return kept


def _empty(fig: Figure, ax: Axes, width: float, height: float) -> None:
    """Take everything a builder added off a 1×1 figure of :func:`new_figure` and put back its
    size, layout engine, axes position, data limits, autoscaling and colour cycle."""
    with styled():
        for group in (ax.lines, ax.collections, ax.patches, ax.texts, ax.images, ax.artists, ax.tables):
            for artist in list(group):
                artist.remove()
        ax.containers.clear()
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
        for text in list(fig.texts):
            text.remove()
        fig.set_size_inches(width, height)
        fig.set_layout_engine("constrained")
        spec = ax.get_subplotspec()
        if spec is not None:
            ax.set_position(spec.get_position(fig), which="both")
        ax.set_in_layout(True)  # set_position takes an axes out of the layout
        ax.dataLim.set(Bbox.null())
        ax.ignore_existing_data_limits = True
        ax.set_autoscale_on(True)
        ax.set_prop_cycle(None)
        ax.set_title("")
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_visible(True)


#: Layouts kept by :func:`kept_layout`: at most this many (each a few numbers per axes).
MAX_KEPT_LAYOUTS = 64
_LAYOUTS: KeptByOwners[tuple[list[Bbox], list[tuple[Any, Any]]]] = KeptByOwners(MAX_KEPT_LAYOUTS)


def layout_key(owners: tuple, text: str) -> tuple:
    """The key of a layout in :func:`kept_layout`: the objects the figure was drawn from (held
    weakly: a layout is forgotten with them) and a text naming the rest (request, options)."""
    return (owners, text)


def kept_layout(fig: Figure, dpi: int, key: tuple) -> None:
    """:func:`render.lay_out` of ``fig``, or the layout kept for ``key`` when the same owners
    and text drew a figure before (the builders draw identical figures from identical inputs:
    the axes positions and the figure texts' places are what constrained layout sets)."""
    owners, text = key
    with DRAW_LOCK:
        kept = _LAYOUTS.get(owners, text)
        if kept is not None and _apply(fig, *kept):
            return
        lay_out(fig, dpi)
        if fig.subfigs or fig.legends:
            return
        _LAYOUTS.put(owners, text, ([ax.get_position().frozen() for ax in fig.axes],
                                    [(t.get_position(), t.get_verticalalignment()) for t in fig.texts]))


def _apply(fig: Figure, positions: list[Bbox], texts: list[tuple[Any, Any]]) -> bool:
    """Put kept axes positions and figure-text places on ``fig`` and remove its layout engine;
    False (nothing changed) when the figure has other axes or texts than the kept one."""
    if len(positions) != len(fig.axes) or len(texts) != len(fig.texts) or fig.subfigs or fig.legends:
        return False
    for ax, pos in zip(fig.axes, positions):
        ax.set_position(pos, which="both")
        ax.set_in_layout(True)  # set_position takes an axes out of the layout
    for t, (xy, va) in zip(fig.texts, texts):
        t.set_position(xy)
        t.set_verticalalignment(va)
    fig.set_layout_engine(None)
    return True
