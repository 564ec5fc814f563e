"""Issue 19's numerics: large offsets, extreme scales and the numeric edge cases that ended as
internal errors.

* Item 3: ``y ~ x + (1 | g)`` with y shifted by up to 1e8, x by up to 1e6, a constant offset of
  1e15. The native engine forms its cross-products in a W-orthonormal basis with a residualised
  response (``mixedbridge.lmm.basis``), so every shift gives the unshifted answer mapped to the
  shifted parametrisation. Reference: ``tests/data/numerics/reference.json`` from
  ``tests/data/numerics/reference.R`` (the unshifted lme4/lmerTest/pbkrtest fit mapped exactly;
  lme4 itself drifts on shifted x, see ``lme4_direct`` there), and lme4 through the bridge.
* Item 13: columns beyond 1e±50 (1e±200, denormal) are refused with the column named (lme4 stops
  with "Downdated VtV is not positive definite" / "objective in x0 returns NA" at 1e±200; R's
  ``lm`` gives SEs of Inf or 0 there; Satterthwaite's squared variances overflow from 1e±77); a
  constant offset of 1e15 gives the unshifted fit.
* Item 9: ``I(1e308)``, a response constant up to rounding, n ≤ p, weights of 1e-300, a profile
  level of 0.9999999999999999, an offset with profile intervals and a near-boundary profile whose
  inner fits end in NLopt's round-off stop: a right answer or a ``MixedBridgeError``.
"""
from __future__ import annotations

import numpy as np
import pytest

import mixedbridge
from mixedbridge.errors import ModelError

from .numerics_cases import REFERENCE, offset_data, shifted_data, shifted_spec

SHIFTS = REFERENCE["shifts"]
#: Shifts on which lme4 itself is accurate (its criterion, sds and lmerTest's df stay within the
#: cross-check tolerances): compared cell by cell through ``engine: "both"``.
LME4_ACCURATE = ["y1e6", "y1e8", "x1e3"]


def run_native(df, options: dict | None = None, formula: str = "y ~ x + (1 | g)", analysis: str = "lmm"):
    spec = {"analysis": analysis, "engine": "native", "data": {"dataset": "numerics"},
            "formula": formula, "options": options or {}}
    return mixedbridge.run(spec, data=df)


def fixed_rows(res) -> list[dict]:
    return [r for r in res.table("parameters").rows if r["effect"] == "fixed"]


def ranpar(res, group: str) -> float:
    return next(r["estimate"] for r in res.table("parameters").rows
                if r["effect"] == "ran_pars" and r["group"] == group)


def assert_rel(ours: float, ref: float, tol: float, what: str) -> None:
    assert abs(ours - ref) <= tol * abs(ref), f"{what}: {ours!r} vs R {ref!r} (rel {abs(ours - ref) / abs(ref):.2e})"


def assert_shifted_fit(res, ref: dict, df_key: str = "df", se_key: str = "se") -> None:
    """Criterion (1e-6, never above R's), fixed effects (1e-4 of the SE), SEs, df, σ and the
    group sd (1e-3) against the mapped R reference."""
    fit = res.table("fit").rows[0]
    assert_rel(fit["REMLcrit"], ref["reml_crit"], 1e-6, "REMLcrit")
    assert fit["REMLcrit"] <= ref["reml_crit"] * (1 + 1e-6)
    for row, b, se, df in zip(fixed_rows(res), ref["beta"], ref[se_key], ref[df_key]):
        assert abs(row["estimate"] - b) <= 1e-4 * se, (row["term"], row["estimate"], b)
        assert_rel(row["std.error"], se, 1e-3, f"SE {row['term']}")
        assert_rel(row["df"], df, 1e-3, f"df {row['term']}")
    assert_rel(fit["sigma"], ref["sigma"], 1e-3, "sigma")
    assert_rel(ranpar(res, "g"), ref["sd_g"], 1e-3, "sd(g)")


# -- item 3: large offsets ----------------------------------------------------------------------

@pytest.mark.parametrize("case", list(SHIFTS))
def test_shifted_fit_matches_the_r_reference(case):
    ref = SHIFTS[case]
    res = mixedbridge.run(shifted_spec(ref["shift"]), data=shifted_data(ref["shift"]))
    assert_shifted_fit(res, ref)
    assert not any("converge" in w for w in res.warnings)


@pytest.mark.parametrize("case", ["y1e8", "x1e6", "y1e8_x1e6", "offset1e15"])
def test_shifted_kenward_roger_matches_the_r_reference(case):
    ref = SHIFTS[case]
    spec = shifted_spec(ref["shift"], options={"df_method": "kenward-roger"})
    res = mixedbridge.run(spec, data=shifted_data(ref["shift"]))
    assert_shifted_fit(res, ref, "df_kr", "se_kr")


def test_a_constant_offset_of_1e15_gives_the_unshifted_fit():
    base = run_native(offset_data())
    res = mixedbridge.run(shifted_spec(SHIFTS["offset1e15"]["shift"]),
                          data=shifted_data(SHIFTS["offset1e15"]["shift"]))
    ours, theirs = fixed_rows(res), fixed_rows(base)
    assert ours[0]["estimate"] == pytest.approx(theirs[0]["estimate"] - 1e15, abs=0.125)
    for a, b in zip(ours, theirs):
        assert a["std.error"] == pytest.approx(b["std.error"], rel=1e-6)
    assert ours[1]["estimate"] == pytest.approx(theirs[1]["estimate"], rel=1e-6)
    assert res.table("fit").rows[0]["sigma"] == pytest.approx(base.table("fit").rows[0]["sigma"], rel=1e-6)


def test_rescaling_a_column_changes_the_reml_criterion_by_log_det():
    """X → XT changes log|R_X|² by 2·log|det T| and nothing else (lme4's REMLcrit does too)."""
    from mixedbridge.design import ReTermData
    from mixedbridge.lmm.model import LinearMixedModel

    df = offset_data()
    codes = df["g"].str[1:].astype(int).to_numpy() - 1
    term = ReTermData("g", [f"g{i}" for i in range(1, 7)], codes, np.ones((60, 1)), ["(Intercept)"])
    X = np.column_stack([np.ones(60), df["x"]])
    a = LinearMixedModel(X, ["(Intercept)", "x"], df["y"].to_numpy(), [term])
    b = LinearMixedModel(X * [1.0, 1e3], ["(Intercept)", "x"], df["y"].to_numpy(), [term])
    theta = np.array([1.7])
    assert b.objective(theta) - a.objective(theta) == pytest.approx(2 * np.log(1e3), rel=1e-12)
    b.set_theta(theta)
    a.set_theta(theta)
    assert b.beta[1] * 1e3 == pytest.approx(a.beta[1], rel=1e-12)
    assert b.vcov()[1, 1] * 1e6 == pytest.approx(a.vcov()[1, 1], rel=1e-12)


def test_the_basis_is_orthonormal_and_maps_back():
    from mixedbridge.lmm.basis import fixed_basis

    df = offset_data()
    X = np.column_stack([np.ones(60), df["x"] + 1e6])
    w = 1.0 + np.arange(60) % 3
    y = df["y"].to_numpy() + 1e8
    basis = fixed_basis(X, y, w)
    assert np.abs((basis.X.T * w) @ basis.X - np.eye(2)).max() < 1e-12
    assert np.abs(basis.X @ basis.R - X).max() < 1e-9 * 1e6
    assert abs(np.sum(w * basis.y * basis.X[:, 1])) < 1e-9
    plain = fixed_basis(np.column_stack([np.ones(60), df["x"]]), df["y"].to_numpy(), w)
    slope = plain.gamma[1]
    assert basis.gamma[1] == pytest.approx(slope, rel=1e-9)
    assert basis.gamma[0] == pytest.approx(plain.gamma[0] + 1e8 - 1e6 * slope, abs=1e-2)
    assert np.abs(basis.y - plain.y).max() < 1e-7


# -- item 13: extreme scales ----------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1e-200, 1e200, 1e-310])
def test_a_predictor_at_an_extreme_scale_is_refused_by_name(scale):
    df = offset_data()
    df["x"] = df["x"] * scale
    with pytest.raises(ModelError, match=r"column 'x' of the fixed effects .*Rescale it, e\.g\. multiply it by 1e"):
        run_native(df)


def test_a_random_slope_at_an_extreme_scale_is_refused_by_name():
    df = offset_data()
    df["z"] = df["x"] * 1e-200
    with pytest.raises(ModelError, match=r"column 'z' of the random-effects term \(\(Intercept\) \+ z \| g\)"):
        run_native(df, formula="y ~ x + (z | g)")


def test_an_extreme_predictor_is_refused_by_lm_too():
    """R's lm gives an SE of Inf (1e-200) or 0 (1e200) there: refused, not silently wrong."""
    df = offset_data()
    df["x"] = df["x"] * 1e-200
    with pytest.raises(ModelError, match="column 'x'"):
        run_native(df, formula="y ~ x", analysis="lm")


@pytest.mark.parametrize("scale", [1e-49, 1e49])
def test_predictors_at_the_edge_of_the_range_are_fitted(scale):
    base = fixed_rows(run_native(offset_data()))
    df = offset_data()
    df["x"] = df["x"] * scale
    rows = fixed_rows(run_native(df))
    assert rows[1]["estimate"] * scale == pytest.approx(base[1]["estimate"], rel=1e-6)
    assert rows[1]["std.error"] * scale == pytest.approx(base[1]["std.error"], rel=1e-6)
    assert rows[1]["df"] == pytest.approx(base[1]["df"], rel=1e-4)


# -- item 9: numeric edge cases -------------------------------------------------------------------

def test_a_huge_constant_column_is_refused_by_name():
    with pytest.raises(ModelError, match=r"column 'I\(.*' of the fixed effects has values of order 1e\+308"):
        run_native(offset_data(), formula="y ~ x + I(1e308) + (1 | g)")


def test_a_response_constant_up_to_rounding_is_refused():
    df = offset_data()
    df["y"] = 5.0 + 1e-14 * np.arange(1, 61)
    with pytest.raises(ModelError, match="constant up to rounding error"):
        run_native(df)


@pytest.mark.parametrize("reml", [True, False])
def test_no_more_observations_than_coefficients_is_refused(reml):
    df = offset_data(ngroups=2, per=2)
    with pytest.raises(ModelError, match="4 observations cannot estimate 4 fixed-effect coefficients"):
        run_native(df, {"reml": reml}, formula="y ~ x + I(x^2) + I(x^3) + (1 | g)")


def test_weights_of_1e_minus_300_are_refused_with_what_to_do():
    df = offset_data()
    df["w"] = 1e-300
    with pytest.raises(ModelError, match="Divide the weights by their median") as err:
        run_native(df, {"weights": "w"})
    assert err.value.path == "/options/weights"


def test_one_weight_of_1e_minus_300_matches_the_r_reference():
    ref = REFERENCE["one_tiny_weight"]
    df = offset_data()
    df["w"] = np.r_[1e-300, np.ones(59)]
    res = run_native(df, {"weights": "w"})
    fit = res.table("fit").rows[0]
    assert_rel(fit["REMLcrit"], ref["reml_crit"], 1e-6, "REMLcrit")
    for row, b, se in zip(fixed_rows(res), ref["beta"], ref["se"]):
        assert abs(row["estimate"] - b) <= 1e-4 * se
        assert_rel(row["std.error"], se, 1e-3, "SE")
    assert_rel(fit["sigma"], ref["sigma"], 1e-3, "sigma")
    assert_rel(ranpar(res, "g"), ref["sd_g"], 1e-3, "sd(g)")


def assert_intervals(res, ref: dict) -> None:
    rows = {r["parameter"]: r for r in res.table("confint").rows}
    for name, lo, hi in zip(ref["parameter"], ref["lower"], ref["upper"]):
        scale = abs(lo) + abs(hi)
        assert abs(rows[name]["lower"] - lo) <= 1e-3 * scale, (name, rows[name]["lower"], lo)
        assert abs(rows[name]["upper"] - hi) <= 1e-3 * scale, (name, rows[name]["upper"], hi)


def test_a_profile_level_next_to_one_matches_the_r_reference():
    """lme4's confint gives 0/Inf/NA at this level; the reference solves ζ² = z² directly."""
    ref = REFERENCE["extreme_level"]
    res = run_native(offset_data(), {"confint": {"method": "profile", "level": ref["level"]}})
    assert_intervals(res, ref)


def test_an_offset_with_profile_intervals_matches_the_r_reference():
    df = offset_data()
    df["o"] = (np.arange(1, 61) % 3) * 1.0
    res = run_native(df, {"offset": "o", "confint": {"method": "profile"}})
    assert_intervals(res, REFERENCE["offset_profile"])


def test_a_large_offset_with_profile_intervals_gives_the_unshifted_ones():
    df = offset_data()
    base = {r["parameter"]: r for r in run_native(df, {"confint": {"method": "profile"}}).table("confint").rows}
    df["o"] = 1e15
    rows = run_native(df, {"offset": "o", "confint": {"method": "profile"}}).table("confint").rows
    for r in rows:
        if r["parameter"] == "(Intercept)":
            assert r["lower"] == pytest.approx(base[r["parameter"]]["lower"] - 1e15, abs=0.25)
            continue
        assert r["lower"] == pytest.approx(base[r["parameter"]]["lower"], rel=1e-6)
        assert r["upper"] == pytest.approx(base[r["parameter"]]["upper"], rel=1e-6)


class _RoundoffOpt:
    """An NLopt optimizer that evaluates two points and then stops with RoundoffLimited."""

    def __init__(self, algorithm, n):
        self.fun = None

    def set_min_objective(self, fun):
        self.fun = fun

    def __getattr__(self, name):
        return lambda *args: None

    def optimize(self, x0):
        self.fun(np.asarray(x0) + 0.5, None)
        self.fun(np.asarray(x0) - 0.5, None)
        raise _FakeNlopt.RoundoffLimited()


class _FakeNlopt:
    LN_BOBYQA = 0
    opt = _RoundoffOpt

    class RoundoffLimited(Exception):
        pass


def test_a_profile_fit_stopped_by_roundoff_keeps_its_best_point(monkeypatch):
    from mixedbridge.inference import profile

    monkeypatch.setattr(profile, "nlopt", _FakeNlopt)
    x, f = profile._minimize(lambda v: float((v[0] - 0.8) ** 2), np.array([1.5]),
                             np.array([0.0]), np.array([np.inf]))
    assert x[0] == 1.0 and f == pytest.approx(0.04)


def test_a_near_boundary_profile_survives_nlopt_roundoff():
    """Dyestuff2's fit is singular: the inner fits of its profile end in NLopt's RoundoffLimited
    (lme4's too, with a warning); the best point is kept."""
    spec = {"analysis": "lmm", "engine": "native", "data": {"dataset": "Dyestuff2"},
            "formula": "Yield ~ 1 + (1 | Batch)", "options": {"confint": {"method": "profile"}}}
    assert_intervals(mixedbridge.run(spec), REFERENCE["boundary_profile"])


# -- through the bridge: lme4 in the same run ---------------------------------------------------

def failures(res) -> list[dict]:
    return [r for r in res.table("comparison").rows if r["pass"] != "yes"]


@pytest.mark.r
@pytest.mark.parametrize("case", LME4_ACCURATE)
def test_shifted_fit_agrees_with_lme4_through_the_bridge(with_r, case):
    shift = SHIFTS[case]["shift"]
    for df_method in ("satterthwaite", "kenward-roger"):
        spec = shifted_spec(shift, "both", {"df_method": df_method})
        res = mixedbridge.run(spec, data=shifted_data(shift))
        assert not failures(res), failures(res)[:5]


@pytest.mark.r
@pytest.mark.parametrize("case", ["x1e5", "x1e6", "y1e8_x1e6", "offset1e15"])
def test_shifted_fit_agrees_with_lme4_on_the_equivalent_centred_model(with_r, case):
    """lme4 forms XᵀX and loses precision on shifted x (lmerTest's df for x: 53.39 unshifted,
    57.99 at x + 1e5, 1.81 at x + 1e6); a constant offset of 1e15 stops its optimizer. Its fit of
    the same model without the shift, through the bridge, mapped to the shifted parametrisation
    (intercept β0 + c_y − c_o − c_x·βx, SE from the contrast (1, −c_x)), is the reference."""
    from mixedbridge.analysis import prepare
    from mixedbridge.engines import get_engine

    shift = SHIFTS[case]["shift"]
    spec = mixedbridge.spec.validate(shifted_spec({"y": 0.0, "x": 0.0, "offset": 0.0}, "lme4"))
    lme4 = get_engine("lme4").fit(prepare(spec, data=offset_data()))
    beta = np.array([lme4.beta[0] + shift["y"] - shift["offset"] - shift["x"] * lme4.beta[1], lme4.beta[1]])
    L = np.array([[1.0, -shift["x"]], [0.0, 1.0]])
    se = np.sqrt(np.diag(L @ lme4.vcov @ L.T))
    res = mixedbridge.run(shifted_spec(shift), data=shifted_data(shift))
    for row, b, s in zip(fixed_rows(res), beta, se):
        assert abs(row["estimate"] - b) <= 1e-4 * s + abs(b) * 2e-16, (row["term"], row["estimate"], b)
        assert_rel(row["std.error"], s, 1e-3, f"SE {row['term']}")
    fit = res.table("fit").rows[0]
    assert_rel(fit["REMLcrit"], lme4.reml_crit, 1e-6, "REMLcrit")
    assert_rel(fit["sigma"], lme4.sigma, 1e-3, "sigma")


@pytest.mark.r
def test_offset_and_boundary_profiles_agree_with_lme4_through_the_bridge(with_r):
    df = offset_data()
    df["o"] = (np.arange(1, 61) % 3) * 1.0
    spec = {"analysis": "lmm", "engine": "both", "data": {"dataset": "numerics"}, "formula": "y ~ x + (1 | g)",
            "options": {"offset": "o", "confint": {"method": "profile"}}}
    res = mixedbridge.run(spec, data=df)
    assert not failures(res), failures(res)[:5]
    spec = {"analysis": "lmm", "engine": "both", "data": {"dataset": "Dyestuff2"},
            "formula": "Yield ~ 1 + (1 | Batch)", "options": {"confint": {"method": "profile"}}}
    res = mixedbridge.run(spec)
    assert not failures(res), failures(res)[:5]


@pytest.mark.r
def test_one_tiny_weight_agrees_with_lme4_through_the_bridge(with_r):
    df = offset_data()
    df["w"] = np.r_[1e-300, np.ones(59)]
    spec = {"analysis": "lmm", "engine": "both", "data": {"dataset": "numerics"}, "formula": "y ~ x + (1 | g)",
            "options": {"weights": "w"}}
    res = mixedbridge.run(spec, data=df)
    assert not failures(res), failures(res)[:5]
