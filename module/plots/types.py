"""The value every plot builder returns."""
from __future__ import annotations

from dataclasses import dataclass, field

from matplotlib.figure import Figure


@dataclass
class Drawn:
    """A drawn plot: file-safe ``name``, human ``title``, the matplotlib ``figure`` and any
    ``notes`` about what was left out or approximated."""

    name: str
    title: str
    figure: Figure
    notes: list[str] = field(default_factory=list)
