"""The compiled small-model criterion (``mixedbridge.lmm._envelope``) against the numpy and LAPACK
route it replaces where it is built: the same criterion and factor terms to rounding, the same
fits (evaluations, θ̂, estimates) and clear errors for malformed input. The agreement of either
route with lme4 is checked by ``test_lmm_lme4.py`` and ``test_crosscheck.py``."""
from __future__ import annotations

import math
import os
import shutil
import sysconfig

import numpy as np
import pytest

from mixedbridge.lmm import dense as dense_path

from .lmm_models import dataset_model

SMALL = [("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
         ("sleepstudy", "Reaction ~ Days + (Days || Subject)"),
         ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
         ("Pastes", "strength ~ 1 + (1 | batch/cask)"),
         ("Orthodont", "distance ~ age * Sex + (age | Subject)"),
         ("Dyestuff", "Yield ~ 1 + (1 | Batch)")]

compiled_only = pytest.mark.skipif(dense_path._envelope is None, reason="mixedbridge.lmm._envelope not compiled")


def _both(ds: str, formula: str, reml: bool, monkeypatch: pytest.MonkeyPatch):
    """The model built with the compiled criterion and again on the numpy and LAPACK route."""
    compiled = dataset_model(ds, formula, reml=reml)
    with monkeypatch.context() as m:
        m.setattr(dense_path, "_envelope", None)
        plain = dataset_model(ds, formula, reml=reml)
    assert compiled.dense is not None and compiled.dense.compiled is not None
    assert plain.dense is not None and plain.dense.compiled is None
    return compiled, plain


def _thetas(start: np.ndarray, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack([start, start * rng.uniform(0.0, 4.0, (12, start.size)), 0.0 * start])


def _can_compile() -> bool:
    """Whether this Python could have built the extension: its C compiler and headers exist."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    include = sysconfig.get_paths()["include"]
    return shutil.which(cc) is not None and os.path.exists(os.path.join(include, "Python.h"))


def test_compiled_criterion_is_built_under_ci():
    """Under CI=true, where a C compiler and Python's headers are present, the install built the
    compiled criterion: losing it would lose its speed unseen (every number would still agree)."""
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        pytest.skip("only required under CI=true")
    if not _can_compile():
        pytest.skip("no C compiler or Python headers here: the numpy and LAPACK route runs")
    assert dense_path._envelope is not None


@compiled_only
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("ds, formula", SMALL)
def test_criterion_and_terms_agree_with_lapack(ds, formula, reml, monkeypatch):
    """At the start, far from it and on the boundary (θ = 0): the criterion the optimizer calls,
    the objective and log|L_θ|², log|R_X|², r² agree with LAPACK's dense factorisation to 1e-12."""
    compiled, plain = _both(ds, formula, reml, monkeypatch)
    fast, slow = compiled._fit_objective(), plain._fit_objective()
    for theta in _thetas(compiled.structure.theta0):
        assert fast(theta) == pytest.approx(slow(theta), rel=1e-12)
        assert compiled.objective(theta) == fast(theta)
        np.testing.assert_allclose(compiled.dense.factor(theta)[:3], plain.dense.factor(theta)[:3], rtol=1e-12)


@compiled_only
def test_criterion_with_weights_agrees_with_lapack(monkeypatch):
    w = 1.0 + np.arange(180) % 3
    weighted = dataset_model("sleepstudy", "Reaction ~ Days + (Days | Subject)", weights=w)
    with monkeypatch.context() as m:
        m.setattr(dense_path, "_envelope", None)
        plain = dataset_model("sleepstudy", "Reaction ~ Days + (Days | Subject)", weights=w)
    assert weighted.A.sum_log_w != 0.0
    for theta in _thetas(weighted.structure.theta0):
        assert weighted.objective(theta) == pytest.approx(plain.objective(theta), rel=1e-12)


@compiled_only
@pytest.mark.parametrize("ds, formula", SMALL)
def test_fits_agree_with_lapack(ds, formula, monkeypatch):
    """The optimizer takes the same route (evaluations of BOBYQA and of lme4's derivative check)
    to the same optimum: θ̂ to 1e-6, the criterion at θ̂ to 1e-12."""
    compiled, plain = (m.fit() for m in _both(ds, formula, True, monkeypatch))
    a, b = compiled.optsum, plain.optsum
    assert a.feval == b.feval
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-6, atol=1e-9)
    assert a.fmin == pytest.approx(b.fmin, rel=1e-12)
    np.testing.assert_allclose(compiled.beta, plain.beta, rtol=1e-8)


@compiled_only
def test_non_finite_theta_gives_an_infinite_criterion(monkeypatch):
    compiled, plain = _both("sleepstudy", "Reaction ~ Days + (Days | Subject)", True, monkeypatch)
    for theta in (np.array([np.nan, 0.0, 1.0]), np.array([np.inf, 0.0, 1.0])):
        with np.errstate(invalid="ignore"):  # numpy's products of NaN on the LAPACK route
            assert compiled.objective(theta) == math.inf == plain.objective(theta)
        assert not compiled.dense.factor(theta).ok


@compiled_only
def test_envelope_keeps_block_zero_rows_short():
    """sleepstudy's M (39 rows): 18 diagonal 2×2 blocks and three full rows below them, so the
    envelope holds 18·3 + 37 + 38 + 39 = 168 numbers, not the 780 of a dense lower triangle."""
    model = dataset_model("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    assert model.dense.compiled.packed == 168


@compiled_only
def test_malformed_input_is_refused_with_the_argument_named():
    model = dataset_model("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    first, second, coef, cells = model.dense._envelope_form
    Envelope = dense_path._envelope.Envelope
    with pytest.raises(ValueError, match="coef"):
        Envelope(first, second, coef.astype(np.float32), cells, 39, 36)
    with pytest.raises(ValueError, match="coef: expected"):  # one cell fewer than coef's columns
        Envelope(first, second, coef, cells[:-1], 39, 36)
    with pytest.raises(ValueError, match="cells"):
        Envelope(first, second, coef, cells + 1, 39, 36)  # a cell above the diagonal
    with pytest.raises(ValueError, match="q < size"):
        Envelope(first, second, coef, cells, 39, 39)
    criterion = model._fit_objective()
    with pytest.raises(ValueError, match="theta: expected 3 float64"):
        criterion(np.ones(2))
    with pytest.raises(ValueError, match="theta: expected 3 float64"):
        criterion(np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="expected"):
        criterion()
