"""The Dask backend: one linear mixed model over a Dask DataFrame (or Parquet) equals the
in-memory fit, table by table.

Agreement: every number within 1e-9 relative of the in-memory fit with ``exact_optimum`` (both
fits polish θ̂ to the optimum by Newton steps: mixedbridge.lmm.polish; the Dask backend does so
by default, an in-memory fit when asked), in the units tests/scale_helpers.py states (p-values
against the reference statistic's p-value at the fit's own df; conditional modes relative to
the largest mode of their term). Satterthwaite's df come from exact derivatives computed from the
cross-products (dense algebra up to 300 random effects, the blocked factor above:
mixedbridge.inference.blockedderivatives), so they too agree to 1e-9, InstEval and the
million-row model included.
The reference numbers are the native engine's, which tests/test_lmm_lme4.py checks against
lme4/lmerTest.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedbridge
from mixedbridge.datasets import load
from mixedbridge.errors import MixedBridgeError

from .scale_helpers import assert_same_tables, local_client, need_dask

dask = need_dask()
dd = pytest.importorskip("dask.dataframe")

SLEEP = {"analysis": "lmm", "formula": "Reaction ~ Days + (Days | Subject)", "data": {"dataset": "sleepstudy"}}


@pytest.fixture(scope="module")
def client():
    with local_client() as cl:
        yield cl


def _exact(spec: dict) -> dict:
    """The spec with ``options.exact_optimum`` (the Dask backend's default) for an in-memory fit."""
    return {**spec, "options": {**spec.get("options", {}), "exact_optimum": True}}


def _compare(spec: dict, df: pd.DataFrame, nparts: int) -> dict:
    ref = mixedbridge.run(_exact(spec), data=df)
    got = mixedbridge.run(spec, data=dd.from_pandas(df, npartitions=nparts, sort=False))
    assert got.notes[-1].startswith("Fitted over Dask")
    return assert_same_tables(ref, got)


def test_sleepstudy_equals_in_memory(client):
    df, _ = load("sleepstudy")
    diffs = _compare(SLEEP, df, 4)
    assert {("parameters", "estimate"), ("random_effects", "estimate"), ("fit", "REMLcrit")} <= set(diffs)


def _synthetic(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    """Rows with a treatment factor whose level 'z' occurs only in the last quarter (the last
    partition), a grouping factor with levels only in one partition, missing values, weights and
    an offset."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 40, n)
    g[-200:] = 40 + rng.integers(0, 5, 200)  # groups 40..44 only at the end
    f = rng.choice(["b", "a", "c"], n)
    f[-300:] = rng.choice(["z", "a"], 300)
    x = rng.normal(size=n)
    y = 1.0 + 0.5 * x + (f == "z") * 2.0 + rng.normal(size=45)[g] + 0.4 * rng.normal(size=45)[g] * x \
        + 0.3 * rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, n)
    o = rng.normal(scale=0.1, size=n)
    df = pd.DataFrame({"y": y, "x": x, "f": f, "g": [f"G{v:02d}" for v in g], "w": w, "o": o})
    df.loc[rng.choice(n, 60, replace=False), "x"] = np.nan
    df.loc[rng.choice(n, 40, replace=False), "y"] = np.nan
    df.loc[rng.choice(n, 20, replace=False), "f"] = None
    return df


def test_levels_in_one_partition_missing_rows_weights_offset(client):
    df = _synthetic()
    spec = {"analysis": "lmm", "formula": "y ~ x * f + offset(o) + (1 + x | g)", "data": {"dataset": "x"},
            "options": {"weights": "w"}}
    _compare(spec, df, 4)


def _integer_ids(df: pd.DataFrame, step: int = 1) -> pd.DataFrame:
    """The synthetic rows with integer group ids whose numeric order is not their text order
    (G05 becomes 5·step, G10 10·step; G40 to G44, the groups of the last partition only):
    partitions code them on the whole data's sorted ids, not as labels."""
    return df.assign(g=df["g"].str[1:].astype(np.int64) * step)


@pytest.mark.parametrize("step", [1, 10], ids=["consecutive ids (lookup table)", "sparse ids (binary search)"])
def test_integer_group_ids_in_one_partition(client, step):
    df = _integer_ids(_synthetic(), step)
    spec = {"analysis": "lmm", "formula": "y ~ x * f + offset(o) + (1 + x | g)", "data": {"dataset": "x"},
            "options": {"weights": "w"}}
    diffs = _compare(spec, df, 4)
    got = mixedbridge.run(spec, data=dd.from_pandas(df, npartitions=4, sort=False))
    levels = got.table("random_effects").to_pandas()["level"].unique().tolist()
    assert levels[:3] == [str(step * k) for k in range(3)] and levels[-1] == str(44 * step)
    assert ("random_effects", "estimate") in diffs


def test_integer_group_ids_that_are_also_a_variable(client):
    df = _integer_ids(_synthetic())
    spec = {"analysis": "lmm", "formula": "y ~ x + g + (1 | g)", "data": {"dataset": "x"}}
    _compare(spec, df, 3)


def test_partitions_holding_few_groups_send_blocks_of_their_groups(client):
    """Rows sorted by group: each of 6 partitions sees about a sixth of the groups, so its blocks
    (and partial sums of up to half the groups) hold its groups only."""
    df = _integer_ids(_synthetic()).sort_values("g", kind="stable").reset_index(drop=True)
    spec = {"analysis": "lmm", "formula": "y ~ x * f + offset(o) + (1 + x | g)", "data": {"dataset": "x"},
            "options": {"weights": "w"}}
    _compare(spec, df, 6)


def test_notes_count_the_deleted_rows(client):
    df = _synthetic()
    spec = {"analysis": "lmm", "formula": "y ~ x + (1 | g)", "data": {"dataset": "x"}}
    ref = mixedbridge.run(spec, data=df)
    got = mixedbridge.run(spec, data=dd.from_pandas(df, npartitions=5, sort=False))
    assert [n for n in ref.notes if "listwise" in n] == [n for n in got.notes if "listwise" in n]
    assert got.table("fit").to_pandas()["nobs"].iloc[0] == ref.table("fit").to_pandas()["nobs"].iloc[0]


def test_given_levels_and_crossed_groups(client):
    df = _synthetic()
    df["h"] = np.where(df["x"].fillna(0) > 0, "hi", "lo")
    spec = {"analysis": "lmm", "formula": "y ~ f + (1 | g) + (1 | h:f)", "data": {"dataset": "x"},
            "levels": {"f": ["c", "b", "a", "z"]}, "options": {"anova": {"type": "III"}}}
    _compare(spec, df, 3)


def test_type_two_of_several_terms_is_refused(client):
    df = _synthetic()
    spec = {"analysis": "lmm", "formula": "y ~ x + f + (1 | g)", "data": {"dataset": "x"},
            "options": {"anova": {"type": "II"}}}
    with pytest.raises(MixedBridgeError) as err:
        mixedbridge.run(spec, data=dd.from_pandas(df, npartitions=2, sort=False))
    assert err.value.path == "/options/anova/type"


def test_type_one_of_one_term_is_exact(client):
    df = _synthetic()
    spec = {"analysis": "lmm", "formula": "y ~ f + (1 | g)", "data": {"dataset": "x"},
            "options": {"anova": {"type": "I"}}}
    _compare(spec, df, 3)


def test_backend_dask_splits_in_memory_rows(client):
    spec = {**SLEEP, "options": {"backend": "dask"}}
    got = mixedbridge.run(spec)
    assert got.notes[-1].startswith("Fitted over Dask")


def test_parquet_equals_in_memory(client, tmp_path):
    df, _ = load("sleepstudy")
    for i, part in enumerate(np.array_split(np.arange(len(df)), 3)):
        df.iloc[part].to_parquet(tmp_path / f"part{i}.parquet")
    spec = {**SLEEP, "data": {"parquet": str(tmp_path / "part*.parquet")}}
    got = mixedbridge.run(spec, data_root=tmp_path)
    assert_same_tables(mixedbridge.run(_exact(SLEEP), data=df), got)


def test_kenward_roger_of_a_reml_fit_equals_in_memory(client):
    df, _ = load("sleepstudy")
    spec = {**SLEEP, "options": {"df_method": "kenward-roger", "anova": {"method": "kenward-roger"}}}
    diffs = _compare(spec, df, 3)
    assert {("parameters", "df"), ("parameters", "std.error"), ("anova", "DenDF")} <= set(diffs)


def test_parquet_outside_the_data_folders_is_refused(tmp_path):
    inner = tmp_path / "allowed"
    inner.mkdir()
    load("sleepstudy")[0].to_parquet(tmp_path / "s.parquet")
    spec = {**SLEEP, "data": {"parquet": str(inner / ".." / "s.parquet")}}
    with pytest.raises(MixedBridgeError) as err:
        mixedbridge.run(spec, data_root=inner)
    assert err.value.path == "/data/parquet" and "outside" in err.value.message


@pytest.mark.parametrize("options, where, words", [
    ({"confint": {"method": "profile"}}, "/options/confint/method", "refit"),
])
def test_what_needs_the_rows_is_refused(client, options, where, words):
    df, _ = load("sleepstudy")
    spec = {**SLEEP, "options": options}
    with pytest.raises(MixedBridgeError) as err:
        mixedbridge.run(spec, data=dd.from_pandas(df, npartitions=2))
    assert err.value.path == where and words in err.value.message


def test_whole_column_transformations_are_refused(client):
    df, _ = load("sleepstudy")
    spec = {**SLEEP, "formula": "Reaction ~ scale(Days) + (1 | Subject)"}
    with pytest.raises(MixedBridgeError, match="whole column"):
        mixedbridge.run(spec, data=dd.from_pandas(df, npartitions=2))


def test_lm_over_dask_is_refused(client):
    df, _ = load("sleepstudy")
    spec = {"analysis": "lm", "formula": "Reaction ~ Days", "data": {"dataset": "sleepstudy"}}
    with pytest.raises(MixedBridgeError, match="only linear mixed models"):
        mixedbridge.run(spec, data=dd.from_pandas(df, npartitions=2))


def test_exact_optimum_is_the_dask_default_and_an_in_memory_option(client):
    df, _ = load("sleepstudy")
    lme4_route = mixedbridge.run(SLEEP, data=df).table("fit").to_pandas()["REMLcrit"].iloc[0]
    exact = mixedbridge.run(_exact(SLEEP), data=df).table("fit").to_pandas()["REMLcrit"].iloc[0]
    over_dask = mixedbridge.run({**SLEEP, "options": {"exact_optimum": False}},
                                data=dd.from_pandas(df, npartitions=3, sort=False))
    assert exact <= lme4_route + 1e-12 * abs(lme4_route)
    assert over_dask.table("fit").to_pandas()["REMLcrit"].iloc[0] == pytest.approx(lme4_route, rel=1e-9)


def test_memory_backend_gathers_a_dask_frame(client):
    df, _ = load("sleepstudy")
    spec = {**SLEEP, "options": {"backend": "memory"}}
    got = mixedbridge.run(spec, data=dd.from_pandas(df, npartitions=2))
    assert not any(n.startswith("Fitted over Dask") for n in got.notes)


@pytest.mark.slow
def test_insteval_equals_in_memory(client):
    df, _ = load("InstEval")
    spec = {"analysis": "lmm", "formula": "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)",
            "data": {"dataset": "InstEval"}}
    _compare(spec, df, 8)


@pytest.mark.slow
def test_million_rows_in_16_partitions(client):
    rng = np.random.default_rng(11)
    n, ngroups = 1_000_000, 2000
    g = rng.integers(0, ngroups, n)
    x = rng.normal(size=n)
    b0, b1 = rng.normal(size=ngroups), 0.3 * rng.normal(size=ngroups)
    y = 2.0 + 0.5 * x + b0[g] + b1[g] * x + rng.normal(size=n)
    df = pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})
    spec = {"analysis": "lmm", "formula": "y ~ x + (x | g)", "data": {"dataset": "x"}}
    _compare(spec, df, 16)


def test_lme4_engine_over_dask_is_refused(client):
    df, _ = load("sleepstudy")
    with pytest.raises(MixedBridgeError) as err:
        mixedbridge.run({**SLEEP, "engine": "both"}, data=dd.from_pandas(df, npartitions=2))
    assert err.value.path == "/engine"


@pytest.mark.parametrize("analysis, options", [("glmm", {"family": "poisson"}), ("lmm", {"family": "binomial"})])
def test_glmm_over_dask_is_refused(analysis, options):
    from mixedbridge.formula import parse_formula
    from mixedbridge.scale.prepare import check_analysis

    spec = {**SLEEP, "analysis": analysis, "options": options}
    with pytest.raises(MixedBridgeError, match="PIRLS needs a pass over the rows per iteration"):
        check_analysis(spec, parse_formula(spec["formula"]))


def test_fitted_and_residuals_by_one_more_map(client):
    from mixedbridge.scale import fitted_and_residuals

    df = _synthetic()
    spec = {"analysis": "lmm", "formula": "y ~ x * f + offset(o) + (1 + x | g)", "data": {"dataset": "x"},
            "options": {"weights": "w"}}
    ref = mixedbridge.run(spec, data=df).outcome.lead.fit
    got = fitted_and_residuals(mixedbridge.run(spec, data=dd.from_pandas(df, npartitions=4, sort=False))).compute()
    scale = np.max(np.abs(ref.fitted))
    assert len(got) == len(ref.fitted)
    assert np.max(np.abs(got["fitted"].to_numpy() - ref.fitted)) < 1e-9 * scale
    assert np.max(np.abs(got["residual"].to_numpy() - ref.residuals)) < 1e-9 * scale


def test_a_listed_level_that_never_occurs_is_an_error(client):
    df = _synthetic()
    spec = {"analysis": "lmm", "formula": "y ~ f + (1 | g)", "data": {"dataset": "x"},
            "levels": {"f": ["c", "b", "a", "z", "q"]}}
    with pytest.raises(MixedBridgeError) as err:
        mixedbridge.run(spec, data=dd.from_pandas(df, npartitions=3, sort=False))
    assert err.value.path == "/levels/f/4" and "'q'" in err.value.message
