"""Plots show what they claim: one point per observation, one arrow per cluster, one line per
cluster plus the population line, labelled axes; identical inputs give identical bytes; a plot
that cannot be drawn becomes a note."""
from __future__ import annotations

import base64
import importlib.util
import struct

import jsonschema
import numpy as np
import pytest

from .conftest import EXAMPLES, TENTHIRTY_LEGPRESS, unavailable

if importlib.util.find_spec("matplotlib") is None:
    unavailable("matplotlib is not installed (pip install 'mixedbridge[plots]')", module_level=True)

import mixedbridge
from mixedbridge import spec as specmod
from mixedbridge.analysis import prepare
from mixedbridge.plots import PlotNote, describe, figures, make_plots, marginal_means, schema
from mixedbridge.plots.render import count_arrows
from mixedbridge.plots.smooth import lowess
from mixedbridge.spec import schema as spec_schema


def _problem_and_fit(spec):
    raw, base = specmod.read_spec(spec)
    problem = prepare(specmod.validate(raw), base)
    return problem, mixedbridge.run(spec).fits["native"]


@pytest.fixture(scope="module")
def sleep():
    return _problem_and_fit(EXAMPLES / "table-12-4-sleepstudy-lmm.json")


@pytest.fixture(scope="module")
def tenthirty():
    return _problem_and_fit(EXAMPLES / "table-12-2-tenthirty-lmm.json")


@pytest.fixture(scope="module")
def tenthirty_lm():
    return _problem_and_fit({"analysis": "lm", "formula": "load ~ time * group", **TENTHIRTY_LEGPRESS})


def _one(problem, fit, request):
    drawn = figures(problem, fit, request)
    assert len(drawn) == 1
    return drawn[0], describe(drawn[0].figure)


def _offsets(fig, role):
    from mixedbridge.plots.render import _ROLE_ATTR
    return [c.get_offsets() for ax in fig.axes for c in ax.collections if getattr(c, _ROLE_ATTR, None) == role]


# ---------------------------------------------------------------------------------------------
# Residuals and Q-Q plots
# ---------------------------------------------------------------------------------------------

def test_residual_plot_has_one_point_per_observation_and_a_trend(sleep):
    problem, fit = sleep
    drawn, d = _one(problem, fit, {"type": "residuals"})
    ax = d["axes"][0]
    assert ax["roles"]["data"]["points"] == fit.nobs == 144
    assert ax["roles"]["smooth"]["artists"] == 1
    assert ax["xlabel"] == "Fitted values"
    assert ax["ylabel"].startswith("Standardized residuals")
    assert "Lowess trend" in ax["legend"]
    (xy,) = _offsets(drawn.figure, "data")
    np.testing.assert_allclose(xy[:, 0], fit.fitted)
    np.testing.assert_allclose(xy[:, 1], fit.residuals / fit.sigma)


def test_qq_plot_sorts_the_standardized_residuals(sleep):
    problem, fit = sleep
    drawn, d = _one(problem, fit, {"type": "qq"})
    assert d["axes"][0]["roles"]["data"]["points"] == fit.nobs
    assert d["axes"][0]["xlabel"].startswith("Theoretical quantiles")
    (xy,) = _offsets(drawn.figure, "data")
    np.testing.assert_allclose(xy[:, 1], np.sort(fit.residuals / fit.sigma))
    assert np.all(np.diff(xy[:, 0]) > 0) and abs(xy[:, 0].mean()) < 1e-12


def test_ranef_qq_has_one_panel_per_term(sleep):
    problem, fit = sleep
    _, d = _one(problem, fit, {"type": "ranef_qq"})
    assert [a["title"].split()[0] for a in d["axes"]] == ["(Intercept)", "Days"]
    assert [a["roles"]["data"]["points"] for a in d["axes"]] == [18, 18]


def test_lowess_is_exact_on_a_line_and_robust_to_an_outlier():
    x = np.linspace(0, 10, 50)
    xs, ys = lowess(x, 2 * x + 1)
    np.testing.assert_allclose(ys, 2 * xs + 1, atol=1e-9)
    y = 2 * x + 1
    y[25] += 100
    xs, ys = lowess(x, y)
    assert np.max(np.abs(ys - (2 * xs + 1))) < 1e-6
    big = np.random.default_rng(0).normal(size=5000)
    assert len(lowess(np.arange(5000.0), big)[0]) == 80


# ---------------------------------------------------------------------------------------------
# Random effects
# ---------------------------------------------------------------------------------------------

def test_caterpillar_has_one_point_and_interval_per_level_sorted(sleep):
    problem, fit = sleep
    drawn, d = _one(problem, fit, {"type": "caterpillar"})
    block = fit.ranef[0]
    assert [a["title"] for a in d["axes"]] == block.terms
    for j, (ax, axd) in enumerate(zip(drawn.figure.axes, d["axes"])):
        assert axd["roles"]["data"]["points"] == len(block.levels) == 18
        assert axd["roles"]["interval"]["points"] == 18
        order = np.argsort(block.modes[:, j], kind="stable")
        assert [t.get_text() for t in ax.get_yticklabels()] == [block.levels[i] for i in order]
    xy = _offsets(drawn.figure, "data")[1]
    np.testing.assert_allclose(xy[:, 0], np.sort(block.modes[:, 1]))
    segs = drawn.figure.axes[1].collections[0].get_segments()
    half = np.array([s[1][0] - s[0][0] for s in segs]) / 2
    np.testing.assert_allclose(half, 1.959963984540054 * block.condsd[np.argsort(block.modes[:, 1]), 1])


# ---------------------------------------------------------------------------------------------
# Shrinkage, per-cluster fits and data with lines
# ---------------------------------------------------------------------------------------------

def test_shrinkage_draws_one_arrow_per_cluster_from_own_fit_to_mixed_model(sleep):
    problem, fit = sleep
    drawn, d = _one(problem, fit, {"type": "shrinkage", "covariate": "Days"})
    fig = drawn.figure
    assert count_arrows(fig) == d["totals"]["arrow"]["artists"] == fit.ngroups.get("Subject", 18) == 18
    ax = d["axes"][0]
    assert (ax["xlabel"], ax["ylabel"]) == ("Intercept", "Slope of Days")
    data = problem.frame.data
    own = np.array([np.polyfit(g["Days"], g["Reaction"], 1)[::-1] for _, g in data.groupby("Subject", observed=True)])
    np.testing.assert_allclose(_offsets(fig, "no-pooling")[0], own, rtol=1e-8)
    np.testing.assert_allclose(_offsets(fig, "partial-pooling")[0], fit.beta + fit.ranef[0].modes, rtol=1e-7)
    np.testing.assert_allclose(_offsets(fig, "population")[0][0], fit.beta, rtol=1e-9)
    assert drawn.notes == []


def test_cluster_fits_has_a_panel_per_cluster_with_three_lines(sleep):
    problem, fit = sleep
    _, d = _one(problem, fit, {"type": "cluster_fits", "covariate": "Days"})
    assert len(d["axes"]) == 18
    assert d["totals"]["data"]["points"] == fit.nobs
    for role in ("no-pooling-line", "partial-pooling-line", "population-line"):
        assert d["totals"][role]["artists"] == 18


def test_data_lines_has_a_line_per_cluster_plus_the_population(sleep):
    problem, fit = sleep
    for mode in ("intercepts", "slopes"):
        drawn, d = _one(problem, fit, {"type": "data_lines", "covariate": "Days", "random": mode})
        ax = d["axes"][0]
        lines = ax["roles"]["cluster-line"]["artists"] + ax["roles"]["population-line"]["artists"]
        assert lines == 18 + 1
        assert ax["roles"]["data"]["points"] == fit.nobs
        assert (ax["xlabel"], ax["ylabel"]) == ("Days", "Reaction")
        assert "Population (fixed effects)" in ax["legend"]
        slopes = {round(float(np.diff(line.get_ydata())[0] / np.diff(line.get_xdata())[0]), 8)
                  for line in drawn.figure.axes[0].lines if getattr(line, "_mixedbridge_role", "") == "cluster-line"}
        assert (len(slopes) == 1) == (mode == "intercepts")
    _, d = _one(problem, fit, {"type": "data_lines", "random": "none"})
    assert "cluster-line" not in d["axes"][0]["roles"] and d["axes"][0]["roles"]["population-line"]["artists"] == 1


# ---------------------------------------------------------------------------------------------
# Estimated marginal means
# ---------------------------------------------------------------------------------------------

def test_marginal_means_of_a_saturated_lm_are_the_cell_means(tenthirty_lm):
    problem, fit = tenthirty_lm
    means = marginal_means(problem, fit, "time", "group").table
    cells = problem.frame.data.groupby(["group", "time"], observed=True)["load"]
    np.testing.assert_allclose(means["mean"], cells.mean().to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(means["se"], fit.sigma / np.sqrt(cells.size().to_numpy()), rtol=1e-10)
    from scipy import stats
    np.testing.assert_allclose(means["upper"] - means["mean"], stats.t.ppf(0.975, 47) * means["se"])
    time_only = marginal_means(problem, fit, "time").table
    np.testing.assert_allclose(time_only["mean"], means.groupby("time", observed=True)["mean"].mean(), rtol=1e-10)


def test_emmeans_plot_agrees_with_the_emmeans_table(tenthirty):
    from mixedbridge.emmeans import emmeans_tables
    problem, fit = tenthirty
    means = marginal_means(problem, fit, "time", "group", level=0.9, df="asymptotic").table
    table = emmeans_tables(problem, fit, {"specs": ["time", "group"], "level": 0.9, "df": "asymptotic"})[0][0]
    ref = table.to_pandas()
    np.testing.assert_allclose(means[["mean", "se", "lower", "upper"]].to_numpy(),
                               ref[["emmean", "SE", "lower.CL", "upper.CL"]].to_numpy(dtype=float), rtol=1e-12)
    assert means["time"].astype(str).tolist() == ref["time"].tolist()


def test_emmeans_plot_shows_means_intervals_and_jittered_data(tenthirty):
    problem, fit = tenthirty
    drawn, d = _one(problem, fit, {"type": "emmeans", "horizontal": "time", "lines": "group",
                                   "background": "jitter", "ci_level": 0.9})
    ax = d["axes"][0]
    assert ax["roles"]["mean"] == {"artists": 2, "points": 4}
    assert ax["roles"]["interval"]["points"] == 4
    assert ax["roles"]["background"]["points"] == fit.nobs
    assert ax["xlabel"] == "time" and ax["ylabel"] == "load"
    assert ax["legend"] == ["RM10", "RM30"]
    assert "90%" in d["title"]


def test_emmeans_panels_boxplots_violins_and_aggregated_background(tenthirty):
    problem, fit = tenthirty
    _, d = _one(problem, fit, {"type": "emmeans", "horizontal": "time", "panels": "group", "background": "boxplot",
                               "ci_type": "mean"})
    assert [a["title"] for a in d["axes"]] == ["group = RM10", "group = RM30"]
    assert d["totals"]["background"]["artists"] == 4
    drawn, d = _one(problem, fit, {"type": "emmeans", "horizontal": "time", "lines": "group",
                                   "background": "violin", "background_by": "participant", "ci_type": "none"})
    assert d["totals"]["background"]["artists"] == 4 and "interval" not in d["totals"]
    assert all("Satterthwaite" in n for n in drawn.notes)  # until the inference module offers it


# ---------------------------------------------------------------------------------------------
# make_plots: dicts, determinism, notes, schema
# ---------------------------------------------------------------------------------------------

def _png_size(png_b64: str) -> tuple[int, int]:
    raw = base64.b64decode(png_b64)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", raw[16:24])


def test_make_plots_returns_sized_deterministic_images(sleep, results_validator):
    problem, fit = sleep
    requests = [{"type": "residuals"}, {"type": "shrinkage", "covariate": "Days"}]
    plots, notes = make_plots(problem, fit, requests)
    again, _ = make_plots(problem, fit, requests)
    assert notes == []
    assert [p["name"] for p in plots] == ["residuals", "shrinkage-Days"]
    for p, q in zip(plots, again):
        assert p["png"] == q["png"] and p["svg"] == q["svg"]
        assert _png_size(p["png"]) == (p["width"], p["height"])
        svg = base64.b64decode(p["svg"])
        assert svg.startswith(b"<?xml") and b"<dc:date>" not in svg
    res = mixedbridge.run(EXAMPLES / "table-12-4-sleepstudy-lmm.json")
    res.plots = plots
    results_validator(res.to_dict())


def test_plots_that_cannot_be_drawn_become_notes_and_the_rest_come_back(tenthirty, tenthirty_lm):
    problem, fit = tenthirty
    plots, notes = make_plots(problem, fit, [
        {"type": "shrinkage"},                              # no numeric covariate
        {"type": "data_lines", "covariate": "time"},        # a factor
        {"type": "caterpillar"},
        {"type": "emmeans", "horizontal": "sets"},          # not in the model
        {"type": "bogus"},
        {"type": "emmeans", "horizontal": "time", "lines": "time"},
    ], formats=("png",))
    assert [p["name"] for p in plots] == ["caterpillar-participant"]
    assert len(notes) == 5
    assert "numeric covariate" in notes[0] and "'time' is a factor" in notes[1]
    assert "'sets'" in notes[2] and "'bogus'" in notes[3] and "different factors" in notes[4]
    plots, notes = make_plots(*tenthirty_lm, [{"type": "caterpillar"}, {"type": "qq"}], formats=("png",))
    assert [p["name"] for p in plots] == ["qq"] and "no random effects" in notes[0]
    with pytest.raises(PlotNote, match="not a predictor"):
        figures(problem, fit, {"type": "cluster_fits", "covariate": "nope"})


def test_violin_with_too_few_points_gives_a_note(tenthirty):
    problem, fit = tenthirty
    drawn = figures(problem, fit, {"type": "emmeans", "horizontal": "time", "lines": "group",
                                   "background": "violin", "background_by": "group", "df": "asymptotic"})[0]
    assert len(drawn.notes) == 4 and all("no violin" in n for n in drawn.notes)


def test_request_schema_is_valid_and_accepts_the_documented_requests():
    jsonschema.Draft202012Validator.check_schema(schema())
    validator = jsonschema.Draft202012Validator(schema())
    validator.validate([
        {"type": "residuals"}, {"type": "qq"}, {"type": "ranef_qq"}, {"type": "caterpillar"},
        {"type": "shrinkage", "covariate": "Days"}, {"type": "cluster_fits", "covariate": "Days"},
        {"type": "data_lines", "covariate": "Days", "random": "intercepts"},
        {"type": "emmeans", "horizontal": "time", "lines": "group", "panels": None, "background": "jitter",
         "ci_level": 0.95},
    ])
    for bad in ({"type": "residuals", "covariate": "x"}, {"type": "emmeans", "ci_level": 1.5}, {"covariate": "x"}):
        assert not validator.is_valid([bad])
    assert spec_schema("results")  # the plot dicts' schema the lead's results schema already holds
