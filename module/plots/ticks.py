"""An axis's ticks and tick-label boxes computed once per place, while one figure is laid out and
written (:func:`kept_ticks`).

matplotlib computes an axis's ticks (locator, formatter, each tick moved and relabelled) and
measures its tick labels again each time something asks: a layout pass asks four times per axis
(the axis, its label's place, two spines), a drawing three; an emmeans plot's layout and two
images computed them 30 times where the axes stood in 6 places. The ticks depend only on the
view limits, the axes' place in pixels and the dpi, and the labels' boxes on those and the
renderer that measures them; within :func:`kept_ticks` each is computed again only when one of
those changed (a layout pass moves the axes; an SVG is drawn at 72 dpi), so the images are
those matplotlib draws.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

#: The Axis class, to call the private methods :class:`_KeptTicks` stands in for.
_AXIS: Any = Axis


class _KeptTicks:
    """One axis's ``_update_ticks`` and ``_get_ticklabel_bboxes``, computed again only when the
    axis's view limits, its axes' place in pixels or the figure's dpi changed (or, for the boxes,
    the renderer or the ticks asked about)."""

    def __init__(self, axis: Axis, figure: Figure) -> None:
        self.axis, self.figure = axis, figure
        self.state: tuple | None = None
        self.ticks: list = []
        self.boxes_for: tuple[Any, tuple] | None = None
        self.boxes: tuple[list[Bbox], list[Bbox]] = ([], [])

    def _state(self) -> tuple:
        return tuple(self.axis.get_view_interval()), self.axis.axes.bbox.bounds, self.figure.dpi

    def update_ticks(self) -> list:
        """:meth:`Axis._update_ticks`, computed once per state."""
        state = self._state()
        if state != self.state:
            self.ticks = _AXIS._update_ticks(self.axis)
            self.state = state
            self.boxes_for = None
        return list(self.ticks)

    def ticklabel_bboxes(self, ticks: list, renderer: Any) -> tuple[list[Bbox], list[Bbox]]:
        """:meth:`Axis._get_ticklabel_bboxes`, measured once per state, renderer and ticks (copies:
        a caller may change the boxes it gets)."""
        key = (self._state(), tuple(id(t) for t in ticks))
        if self.boxes_for is None or self.boxes_for[0] is not renderer or self.boxes_for[1] != key:
            self.boxes = _AXIS._get_ticklabel_bboxes(self.axis, ticks, renderer)
            self.boxes_for = (renderer, key)
        return [b.frozen() for b in self.boxes[0]], [b.frozen() for b in self.boxes[1]]


@contextmanager
def kept_ticks(fig: Figure) -> Iterator[None]:
    """Within it, the axes of ``fig`` compute their ticks and measure their tick labels once per
    place (:class:`_KeptTicks`). Only for a figure nobody changes meanwhile (:func:`render.to_plot`
    lays it out and writes its images): a changed locator, formatter or tick label would not be
    seen while its axes stay in place."""
    axes = [axis for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)]
    for axis in axes:
        kept = _KeptTicks(axis, fig)
        vars(axis)["_update_ticks"] = kept.update_ticks
        vars(axis)["_get_ticklabel_bboxes"] = kept.ticklabel_bboxes
    try:
        yield
    finally:
        for axis in axes:
            vars(axis).pop("_update_ticks", None)
            vars(axis).pop("_get_ticklabel_bboxes", None)
