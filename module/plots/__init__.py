"""Plots of a fitted model: residual checks, random effects, shrinkage, data with fitted lines
and estimated marginal means, drawn with matplotlib (Agg) and returned as plot dicts.

>>> plots, notes = make_plots(problem, fit, [{"type": "residuals"}, {"type": "caterpillar"}])

Each plot dict is ``{"name", "title", "width", "height", "png", "svg"}`` with width and height in
pixels (at the request's ``dpi``, default :data:`render.DPI` = 100 dots per inch; ``width`` and
``height`` in pixels resize it, ``format`` png, svg or both chooses the images) and the images
base64-encoded; identical inputs
give byte-identical images. A plot that cannot be drawn becomes a note and the others still come
back. :func:`figures` gives the matplotlib figures themselves and :func:`describe` what one
shows (points, lines, arrows, labels per panel).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import cast

import jsonschema
from matplotlib.figure import Figure

from ..fit import Fit
from ..kept import KeptByOwners
from ..options import defaults
from ..problem import Problem
from .datalines import data_lines_plot
from .means import data_means, draw_means, emmeans_plot, fixed_factors, marginal_means
from .means import warm_up as warm_means
from .modeldata import PlotNote
from .ranef import caterpillar_plot
from .render import DPI, DRAW_LOCK, describe, lay_out, literal_text, styled, to_plot
from .render import warm_up as warm_render
from .residuals import qq_plot, ranef_qq_plot, residual_plot
from .reuse import kept_layout, layout_key, reusing_figures
from .shrinkage import cluster_fits_plot, shrinkage_plot
from .types import Drawn

Builder = Callable[[Problem, Fit, dict], list[Drawn]]

#: Request ``type`` → the function drawing it.
BUILDERS: dict[str, Builder] = {
    "residuals": residual_plot,
    "qq": qq_plot,
    "ranef_qq": ranef_qq_plot,
    "caterpillar": caterpillar_plot,
    "shrinkage": shrinkage_plot,
    "cluster_fits": cluster_fits_plot,
    "data_lines": data_lines_plot,
    "emmeans": emmeans_plot,
}

__all__ = ["make_plots", "figures", "describe", "PlotNote", "Drawn", "BUILDERS", "schema",
           "marginal_means", "DPI", "warm_up", "warm_text"]


def warm_up() -> None:
    """Load what a first plot pays for: fonts, text layout and both image writers
    (:func:`render.warm_up`), and the figure and renderer of a one-panel means plot
    (:func:`means.warm_up`)."""
    warm_render()
    warm_means()


#: How many of a model's factors :func:`warm_text` draws a means plot of (about 40 ms each).
WARM_FACTORS = 3


def warm_text(problem: Problem, stop: Callable[[], bool] | None = None) -> int:
    """Draw, encode and throw away the default emmeans plot of each of the model's first
    :data:`WARM_FACTORS` factors, with the response's means per level in place of the fit's
    (:func:`means.data_means`: no fit, no engine), so that the model's first means plots find
    its level names, variable names, axis labels and titles measured and rasterized (FreeType's
    text extents and glyphs of strings not seen before: 20-40 ms of a first plot click).

    Each step (a figure's drawing and layout, then each image) holds :data:`render.DRAW_LOCK`;
    ``stop()`` true (a request is waiting) ends the warming between steps. The figures are new
    ones (not the kept one-panel figure a request may take meanwhile), and nothing is kept but
    what any drawing keeps (text caches, the pooled renderer): no answer, layout or means.
    A model whose text was warmed before (same response, factors and levels) is not drawn
    again. Returns how many images were written."""
    factors = fixed_factors(problem)[:WARM_FACTORS]
    text = (problem.desc.response.label,
            tuple((f, tuple(str(x) for x in problem.frame.data[f].cat.categories)) for f in factors))
    if text in _WARMED:
        return 0
    written = 0
    for factor in factors:
        request = check_request({"type": "emmeans", "horizontal": factor})
        image = image_options(request)
        if stop is not None and stop():
            return written
        with DRAW_LOCK, styled():
            drawn = draw_means(problem, data_means(problem, factor, float(request["ci_level"])), request)
            literal_text(drawn.figure)
        if stop is not None and stop():
            return written
        with DRAW_LOCK:
            lay_out(drawn.figure, image["dpi"])
        for fmt in image["formats"]:
            if stop is not None and stop():
                return written
            with DRAW_LOCK, styled():
                to_plot(drawn.name, drawn.title, drawn.figure, **{**image, "formats": (fmt,)})
            written += 1
    if len(_WARMED) >= MAX_WARMED:
        _WARMED.clear()
    _WARMED.add(text)
    return written


#: The models' texts :func:`warm_text` has drawn (response label, factors and levels): at most this many.
MAX_WARMED = 64
_WARMED: set[tuple] = set()


@lru_cache(maxsize=1)
def schema() -> dict:
    """The JSON Schema of the plot-request list (``options.plots`` of a spec), schemas/plots."""
    from ..spec import schema as shipped

    return shipped("plots")


def check_request(request: object, index: int = 0) -> dict:
    """A request validated against the schema's item definition, with the defaults the schema
    declares for its type filled in; PlotNote when invalid."""
    item = {**schema()["$defs"]["request"], "$defs": schema()["$defs"]}
    errors = sorted(jsonschema.Draft202012Validator(item).iter_errors(request), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.path)
        raise PlotNote(f"plot request {index}{' ' + where if where else ''}: {e.message}",
                       f"/options/plots/{index}")
    checked = cast(dict, request)  # an object, as the schema just said
    return {**defaults("plots", f"/$defs/{checked['type']}"), **checked}


def figures(problem: Problem, fit: Fit, request: dict) -> list[Drawn]:
    """The drawn figures for one request (matplotlib Figures with names, titles and notes).

    Raises
    ------
    PlotNote
        When the plot cannot be drawn (the message says why).
    """
    request = check_request(request)
    with DRAW_LOCK, styled():
        return BUILDERS[request["type"]](problem, fit, request)


def make_plots(problem: Problem, fit: Fit, requests: list[dict],
               formats: tuple[str, ...] = ("png", "svg")) -> tuple[list[dict], list[str]]:
    """Draw every requested plot.

    Parameters
    ----------
    problem : Problem
        The prepared model (data, designs).
    fit : Fit
        The fitted model (any engine).
    requests : list of dict
        Plot requests, e.g. ``{"type": "shrinkage", "covariate": "Days"}``; see ``schema.json``.
    formats : tuple of str
        Image formats to encode (``png``, ``svg``).

    Returns
    -------
    (plots, notes)
        Plot dicts in request order, and notes in words for plots that could not be drawn or
        were drawn with something left out.
    """
    owners, key = (fit, problem.frame), _kept_key(problem, requests, formats)
    kept = None if key is None else _KEPT.get(owners, key)
    if kept is not None:
        return [dict(p) for p in kept[0]], list(kept[1])
    with DRAW_LOCK, reusing_figures():
        plots, notes = _make_plots(problem, fit, requests, formats)
    if key is not None:
        _KEPT.put(owners, key, ([dict(p) for p in plots], list(notes)))
    return [dict(p) for p in plots], list(notes)


#: Answers of :func:`make_plots` kept, the newest: at most this many. The images are identical
#: for identical inputs, so a host's user who switches a plot option back gets them again without
#: drawing them; an answer goes with its fit.
MAX_KEPT_PLOTS = 8
_KEPT: KeptByOwners[tuple[list[dict], list[str]]] = KeptByOwners(MAX_KEPT_PLOTS)


def _kept_key(problem: Problem, requests: list[dict], formats: tuple[str, ...]) -> str | None:
    """The key of an answer in :data:`_KEPT` beside its fit and model frame: the requests,
    formats and options as text (None when they are not plain JSON)."""
    try:
        return json.dumps([requests, list(formats), problem.options], sort_keys=True)
    except (TypeError, ValueError):
        return None


def _make_plots(problem: Problem, fit: Fit, requests: list[dict],
                formats: tuple[str, ...]) -> tuple[list[dict], list[str]]:
    """:func:`make_plots` while holding :data:`render.DRAW_LOCK`."""
    plots: list[dict] = []
    notes: list[str] = []
    for i, request in enumerate(requests or []):
        kind = request.get("type", "?") if isinstance(request, dict) else "?"
        try:
            given = request
            request = check_request(request, i)
            image = image_options(request, formats if "format" not in given else None)
            drawing = _drawing_text(problem, request)
            with styled():
                drawn = BUILDERS[request["type"]](problem, fit, request)
                for k, d in enumerate(drawn):
                    layout = _layout(layout_key((fit, problem.frame), f"{k} {drawing}") if drawing else None)
                    plots.append(to_plot(_unique(d.name, plots), d.title, d.figure, **image, layout=layout))
                    notes += [f"Plot '{d.name}': {n}" for n in d.notes]
        except PlotNote as exc:
            notes.append(f"Plot {i} ({kind}) not drawn: {exc.message}")
        except Exception as exc:  # a failing plot must not cost the other plots or the tables
            notes.append(f"Plot {i} ({kind}) not drawn: internal error {type(exc).__name__}: {exc}")
    return plots, notes


def _drawing_text(problem: Problem, request: dict) -> str | None:
    """What a checked request draws, as text: the request but its image format, and the
    options but the plot list (None when not plain JSON). Two requests with the same text draw
    the same figures from the same fit and rows, so they share a layout
    (:func:`reuse.kept_layout`): a request that asks again for a plot drawn before, in one
    format only, finds its layout although the plot list it came in differs."""
    options = {k: v for k, v in (problem.options or {}).items() if k != "plots"}
    try:
        return json.dumps([{k: v for k, v in request.items() if k != "format"}, options], sort_keys=True)
    except (TypeError, ValueError):
        return None


def _layout(key: tuple | None) -> Callable[[Figure, int], None]:
    """The layout of a figure drawn for ``key``: a kept one where there is one."""
    if key is None:
        return lay_out

    def lay(fig: Figure, dpi: int) -> None:
        kept_layout(fig, dpi, key)

    return lay


#: The request's ``format`` → the formats encoded.
FORMATS = {"png": ("png",), "svg": ("svg",), "both": ("png", "svg")}


def image_options(request: dict, formats: tuple[str, ...] | None = None) -> dict:
    """:func:`render.to_plot`'s image arguments from a checked request (``format``, ``dpi``,
    ``width``, ``height``); ``formats`` (the caller's) wins over the request's default format."""
    return {"formats": formats or FORMATS[request.get("format", "both")], "dpi": request.get("dpi", DPI),
            "width": request.get("width"), "height": request.get("height")}


def _unique(name: str, plots: list[dict]) -> str:
    taken = {p["name"] for p in plots}
    if name not in taken:
        return name
    k = 2
    while f"{name}-{k}" in taken:
        k += 1
    return f"{name}-{k}"
