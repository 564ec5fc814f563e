"""What users read (issue #17's output polish): one number of decimals per column, whole df as
integers, each footnote once, markdown that a `|` or `\\` cannot break, a short results repr with
summary() and HTML; plot options format, dpi, width and height; population lines per
between-cluster cell."""
from __future__ import annotations

import base64
import re
import struct

import numpy as np
import pandas as pd
import pytest

import mixedbridge
from mixedbridge.datasets import load
from mixedbridge.errors import MixedBridgeError
from mixedbridge.table import Column, Table

from .conftest import EXAMPLES, TENTHIRTY_LEGPRESS


def _rows(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(title)
    out = []
    for line in lines[start + 3:]:
        if not line.strip() or line.startswith("Note"):
            break
        out.append(line)
    return out


def _cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def _decimals(cell: str) -> int:
    return len(cell.split(".")[1]) if "." in cell else 0


@pytest.fixture(scope="module")
def chapter():
    spec = mixedbridge.spec.read_spec(EXAMPLES / "table-12-2-tenthirty-lmm.json")[0]
    spec["options"]["emmeans"] = [{"specs": ["time", "group"], "contrasts": "pairwise"},
                                  {"specs": ["time"], "by": ["group"]}]
    spec["options"]["confint"] = True
    return mixedbridge.run(spec)


def test_one_number_of_decimals_per_column(chapter):
    params = chapter.table("parameters")
    text = params.to_text()
    t_cells = [_cells(line)[-3] for line in _rows(text, "Parameter estimates") if line.startswith("fixed")]
    assert len(t_cells) == 4 and len({_decimals(c) for c in t_cells}) == 1, t_cells  # 13.9158 ... 0.2682


def test_small_values_get_their_significant_figures_and_tiny_ones_g_form():
    col = Column("x")
    values = [251.4, 0.0123, 1e-9]
    d = col.decimals(values)
    assert d == 5  # 0.0123 needs 5 decimals for 4 significant figures; 1e-9 would need more than dp + 3
    assert [col.render(v, d) for v in values] == ["251.40000", "0.01230", "1e-09"]


def test_whole_degrees_of_freedom_are_integers(chapter, tenthirty_lm):
    text = chapter.to_text()
    anova = _rows(text, "Type III analysis of variance table with Satterthwaite's method")
    assert all(_cells(line)[3] == "1" for line in anova), anova  # NumDF
    fit_rows = _rows(text, "Model summary")
    assert fit_rows[0].split()[-1] == "45"  # residual df
    lm_text = mixedbridge.run(tenthirty_lm).table("parameters").to_text()
    assert all(_cells(line)[-2] == "47" for line in _rows(lm_text, "Parameter estimates"))
    satterthwaite = [_cells(line)[4] for line in anova]
    assert satterthwaite and all("." in c for c in satterthwaite)  # DenDF keeps decimals


def test_each_footnote_once(chapter):
    text = chapter.to_text()
    for note in ("Degrees-of-freedom method: satterthwaite", "P value adjustment: holm method for 6 tests"):
        table_notes = text.count(f"Note. {note}")
        assert table_notes >= 1 and text.count(f"Note: {note}") == 0, note
    table = Table("t", "T", [Column("a")], [{"a": 1.0}], ["same", "same", "other"])
    assert table.to_text().count("Note. same") == 1 and table.to_markdown().count("same") == 1
    md = chapter.to_markdown()
    assert md.count("- Note: Degrees-of-freedom method") == 0


def test_markdown_escapes_bars_and_backslashes():
    table = Table("t", "a|b", [Column("label", "x|y", "string"), Column("v")],
                  [{"label": "A|B", "v": 1.0}, {"label": "back\\|slash", "v": 2.0}], ["p|q"])
    lines = table.to_markdown().splitlines()
    assert lines[0] == "**a\\|b**" and "| x\\|y |" in lines[2]
    unescaped = re.compile(r"(?<!\\)(?:\\\\)*\|")  # a bar after an even number of backslashes
    for row in lines[4:6]:
        assert len(unescaped.findall(row)) == 3, row  # two cells: three separators, nothing else
    assert "A\\|B" in lines[4] and "p\\|q" in lines[-1]


def test_results_repr_is_short_with_summary_and_html(chapter):
    text = repr(chapter)
    assert len(text) < 300 and text.startswith("<Results lmm") and "tables parameters, fit" in text
    assert chapter.summary() == chapter.to_text()
    html = chapter._repr_html_()
    assert html.count("<table>") == len(chapter.tables) and "&lt;" not in html.split("<table>")[0][:3]
    assert repr(chapter.table("fit")) == "<Table 'fit': 1 rows × 8 columns>"


def test_html_escapes_labels():
    table = Table("t", "<b>", [Column("label", "<i>", "string")], [{"label": "<script>"}])
    html = table.to_html()
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html


# --- plot options ----------------------------------------------------------------------------
def _png_size(png_b64: str) -> tuple[int, int]:
    raw = base64.b64decode(png_b64)
    return struct.unpack(">II", raw[16:24])


def _plots(requests: list[dict]) -> list[dict]:
    spec = mixedbridge.spec.read_spec(EXAMPLES / "table-12-4-sleepstudy-lmm.json")[0]
    spec["options"] = {"plots": requests}
    return mixedbridge.run(spec).plots


def test_plot_format_dpi_and_size():
    png, svg, both, sized, hires = _plots([
        {"type": "qq", "format": "png"}, {"type": "qq", "format": "svg"}, {"type": "qq"},
        {"type": "qq", "width": 480, "height": 320, "format": "png"},
        {"type": "qq", "dpi": 200, "format": "png"}])
    assert set(png) >= {"png"} and "svg" not in png and "png" not in svg and {"png", "svg"} <= set(both)
    assert (sized["width"], sized["height"]) == (480, 320) == _png_size(sized["png"])
    assert (hires["width"], hires["height"]) == (2 * png["width"], 2 * png["height"]) == _png_size(hires["png"])
    width_only = _plots([{"type": "qq", "width": 300, "format": "png"}])[0]
    assert width_only["width"] == 300
    assert width_only["height"] == pytest.approx(300 * png["height"] / png["width"], abs=1)


def test_bad_plot_options_are_spec_errors():
    spec = mixedbridge.spec.read_spec(EXAMPLES / "table-12-4-sleepstudy-lmm.json")[0]
    spec["options"] = {"plots": [{"type": "qq", "format": "gif"}]}
    with pytest.raises(MixedBridgeError, match="gif"):
        mixedbridge.run(spec)


def test_long_titles_wrap_between_words():
    from mixedbridge.plots.render import new_figure, suptitle

    fig, _ = new_figure(3, 3)
    title = "Estimated marginal means of a_very_long_response_name_that_is_longer_than_the_line by group"
    suptitle(fig, title)
    lines = fig.get_suptitle().split("\n")
    assert "a_very_long_response_name_that_is_longer_than_the_line" in lines and " ".join(lines) == title


# --- population lines per between-cluster cell -----------------------------------------------
@pytest.fixture(scope="module")
def by_sex():
    df, _ = load("sleepstudy")
    subjects = sorted(df.Subject.unique())
    df["sex"] = np.where(df.Subject.isin(subjects[::2]), "female", "male")
    return mixedbridge.lmer("Reaction ~ Days * sex + (Days | Subject)", df)


def _population_lines(fig) -> list[np.ndarray]:
    from mixedbridge.plots.render import _ROLE_ATTR

    return [np.asarray(line.get_ydata()) for ax in fig.axes for line in ax.lines
            if getattr(line, _ROLE_ATTR, None) == "population-line"]


def test_cluster_fits_panels_show_their_cells_population_line(by_sex):
    fig = by_sex.plot("cluster_fits", covariate="Days")
    lines = _population_lines(fig)
    assert len(lines) == 18
    b = by_sex.fixef
    female = np.array([b["(Intercept)"], b["(Intercept)"] + 9 * b["Days"]])
    male = female + np.array([b["sexmale"], b["sexmale"] + 9 * b["Days:sexmale"]])
    kinds = {("female" if np.allclose(y, female) else "male" if np.allclose(y, male) else "neither") for y in lines}
    assert kinds == {"female", "male"}


def test_data_lines_and_shrinkage_draw_one_population_per_cell_with_a_note(by_sex):
    from mixedbridge.plots import figures

    drawn = figures(by_sex.problem, by_sex.fit, {"type": "data_lines", "covariate": "Days"})[0]
    assert len(_population_lines(drawn.figure)) == 2
    assert any("per between-Subject cell of sex (2 lines)" in n for n in drawn.notes)
    legend = [t.get_text() for t in drawn.figure.axes[0].get_legend().get_texts()]
    assert "Population: sex = female" in legend and "Population: sex = male" in legend
    shrink = figures(by_sex.problem, by_sex.fit, {"type": "shrinkage", "covariate": "Days"})[0]
    from mixedbridge.plots.render import describe

    assert describe(shrink.figure)["axes"][0]["roles"]["population"]["artists"] == 2


def test_one_population_line_where_there_are_no_cells():
    m = mixedbridge.lmer("Reaction ~ Days + (Days | Subject)", "sleepstudy")
    from mixedbridge.plots import figures

    drawn = figures(m.problem, m.fit, {"type": "data_lines", "covariate": "Days"})[0]
    assert len(_population_lines(drawn.figure)) == 1 and not any("cell" in n for n in drawn.notes)


def test_categorical_dataframe_spec_matches_levels(tenthirty_lm):
    df, _ = load("tenthirty")
    df = df[df.exercise.eq("legpress") & df.time.isin(["pre", "post"])].assign(
        time=lambda d: pd.Categorical(d.time, ["pre", "post"]))
    res = mixedbridge.run({"analysis": "lm", "formula": "load ~ time * group"}, data=df)
    assert res.table("parameters").rows == mixedbridge.run(
        {**tenthirty_lm, **TENTHIRTY_LEGPRESS}).table("parameters").rows
