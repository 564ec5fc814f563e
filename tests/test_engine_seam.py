"""The seam between engines and consumers: engines come from one registry, fits and inference are
immutable, the analysis object keeps every engine's fit and inference, and every plot and JASP
element is produced by whichever engine fitted the model, with that engine's numbers."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import mixedbridge
from mixedbridge import datasets
from mixedbridge.engines import NativeEngine, engine_of, engines_for, get_engine, native_model
from mixedbridge.errors import EngineError
from mixedbridge.fit import NativeBackend, RBackend
from mixedbridge.plots import marginal_means

from .conftest import EXAMPLES, require_r

SLEEP = EXAMPLES / "table-12-4-sleepstudy-lmm.json"
TENTHIRTY = EXAMPLES / "table-12-2-tenthirty-lmm.json"

#: Every plot type, on sleepstudy (a covariate and a grouping factor).
SLEEP_PLOTS = [{"type": "residuals"}, {"type": "qq"}, {"type": "ranef_qq"}, {"type": "caterpillar"},
               {"type": "shrinkage"}, {"type": "cluster_fits", "max_panels": 4}, {"type": "data_lines"}]


def test_engines_come_from_one_registry():
    assert get_engine("native") is get_engine("native")
    assert isinstance(get_engine("native"), NativeEngine)
    assert [e.name for e in engines_for("native")] == ["native"]
    with pytest.raises(EngineError, match="unknown engine 'stan'"):
        get_engine("stan")
    with pytest.raises(EngineError, match="expected one of 'native', 'lme4', 'both'"):
        engines_for("stan")


def test_fit_and_inference_are_immutable_and_gathered_in_the_analysis_object():
    res = mixedbridge.run(SLEEP)
    run = res.outcome.runs["native"]
    assert res.fit is run.fit and engine_of(run.fit) is run.engine
    assert isinstance(run.fit.backend, NativeBackend) and native_model(run.fit).n == run.fit.nobs == 144
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.fit.beta = np.zeros(2)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.inference.coef = {}  # type: ignore[misc]
    assert run.inference.df_method == "satterthwaite"
    assert res.outcome.problem.frame.nobs == 144


def test_native_model_refuses_a_fit_of_another_engine():
    fit = dataclasses.replace(mixedbridge.run(SLEEP).fit, engine="lme4", backend=RBackend(handle=3))
    with pytest.raises(EngineError, match="made by the 'lme4' engine"):
        native_model(fit, "Kenward-Roger's df")


@pytest.mark.r
@pytest.mark.parametrize("engine", ["lme4", "both"])
def test_every_plot_is_drawn_whichever_engine_fitted(engine):
    require_r()
    spec = {**_read(SLEEP), "engine": engine}
    spec["options"] = {**spec.get("options", {}), "plots": SLEEP_PLOTS}
    res = mixedbridge.run(spec)
    assert [p["name"].split("-")[0] for p in res.plots] == [p["type"] for p in SLEEP_PLOTS], res.notes


@pytest.mark.r
def test_kenward_roger_means_plot_of_the_lme4_engine_has_rs_numbers():
    require_r()
    spec = {**_read(TENTHIRTY), "engine": "lme4"}
    spec["options"] = {**spec["options"], "plots": [{"type": "emmeans", "horizontal": "time", "lines": "group",
                                                     "df": "kenward-roger"}],
                       "emmeans": {"specs": ["time", "group"], "df": "kenward-roger"}}
    res = mixedbridge.run(spec)
    assert len(res.plots) == 1 and not any("asymptotic" in n for n in res.notes), res.notes
    problem, fit = res.outcome.problem, res.fit
    assert fit.engine == "lme4"
    means = marginal_means(problem, fit, "time", "group", df="kenward-roger")
    table = res.table("emmeans").to_pandas()
    r_lower = {(str(r["time"]), str(r["group"])): r["lower.CL"] for _, r in table.iterrows()}
    for _, row in means.table.iterrows():
        assert row["lower"] == pytest.approx(r_lower[(str(row["time"]), str(row["group"]))], rel=1e-12)
    native = mixedbridge.run({**spec, "engine": "native"})
    native_lower = native.table("emmeans").to_pandas()["lower.CL"].to_numpy()
    np.testing.assert_allclose(table["lower.CL"].to_numpy(), native_lower, rtol=1e-5)


@pytest.mark.r
def test_jasp_elements_of_the_lme4_engine_are_complete():
    require_r()
    import json

    from mixedbridge.jasp import run_jasp

    request = json.loads((EXAMPLES / "jasp" / "fhch2010-lmm.json").read_text())
    varlist = lambda name: {"optionKey": "variable", "types": [], "value": [{"variable": [name]}]}  # noqa: E731
    options = {**request["options"], "plotHorizontalAxis": varlist("task"), "plotSeparateLines": varlist("stimulus")}
    data = datasets.load("fhch2010")[0]
    native = run_jasp(options, data=data)
    lme4 = run_jasp(options, data=data, engine="lme4")
    elements = [k for k, v in native.items() if isinstance(v, dict) and "status" in v]
    assert "plots" in elements
    for key in elements:
        assert lme4[key]["status"] == native[key]["status"] == "complete", (key, lme4[key].get("error"))


def _read(path) -> dict:
    import json

    return json.loads(path.read_text())
