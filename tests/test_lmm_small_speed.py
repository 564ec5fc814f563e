"""The small-model shortcuts of the native LMM give the numbers of the routes they replace:
LAPACK's triangular solve called directly (``scipy.linalg.solve_triangular``'s call), β̃ solved
once per factor, condVar's fill term from A_r0 in one dense piece, and the model frame's columns
read once (``ColumnCache``). The agreement with lme4 itself is checked by ``test_lmm_lme4.py`` and
``test_crosscheck.py``; these tests pin the equivalences."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla

from mixedbridge import datasets
from mixedbridge.design import fixed_design, random_designs
from mixedbridge.formula import parse_formula
from mixedbridge.frame import ColumnCache, model_frame
from mixedbridge.lmm import LinearMixedModel
from mixedbridge.lmm import model as model_module
from mixedbridge.lmm.model import triangular_solve


def _model(ds: str, formula: str) -> LinearMixedModel:
    df, factors = datasets.load(ds)
    desc = parse_formula(formula)
    frame = model_frame(df, desc, {}, factors)
    fd = fixed_design(desc, frame)
    return LinearMixedModel(fd.X, fd.names, frame.response(desc), random_designs(desc, frame))


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_triangular_solve_is_scipys_call(lower, layout):
    """The same numbers, bit for bit, as scipy's solve_triangular for every memory layout."""
    rng = np.random.default_rng(11)
    n = 5
    full = rng.standard_normal((n + 2, n + 2)) + 4 * np.eye(n + 2)
    a = {"C": np.ascontiguousarray(full[:n, :n]), "F": np.asfortranarray(full[:n, :n]),
         "strided": full[:n, :n].T}[layout]
    tri = np.tril(a) if lower else np.triu(a)
    for b in (rng.standard_normal(n), rng.standard_normal((n, 3))):
        np.testing.assert_array_equal(triangular_solve(tri, b, lower=lower),
                                      sla.solve_triangular(tri, b, lower=lower))
    with pytest.raises(np.linalg.LinAlgError):
        triangular_solve(np.zeros((2, 2)), np.ones(2), lower=True)


def test_beta_tilde_follows_theta():
    """β̃ is solved once per factor: a new θ gives the new β̃, and a caller's copy cannot
    change the cached one."""
    model = _model("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    first = model.beta_tilde
    first[:] = 0.0
    again = model.beta_tilde
    assert np.all(again != 0.0)
    model.set_theta(np.array([0.5, 0.1, 0.3]))
    moved = model.beta_tilde
    Lxx = model.L.Lxx
    p = model.p
    np.testing.assert_array_equal(moved, sla.solve_triangular(Lxx[:p, :p].T, Lxx[p, :p], lower=False))
    assert not np.array_equal(moved, again)


def test_condvar_one_piece_equals_chunks(monkeypatch):
    """condVar's fill term from A_r0 in one dense piece equals the column-chunked route."""
    model = _model("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)")
    model.set_theta(np.array([1.5, 3.2]))
    whole = model.condvar_blocks()
    chunked = model_module._gram_quadratic_chunked
    monkeypatch.setattr(model_module, "_gram_quadratic_chunked",
                        lambda A, X, chunk_entries=4_000_000: chunked(A, X, chunk_entries=A.q_rest * A.p0 * 5))
    for a, b in zip(whole, model.condvar_blocks()):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_column_cache_reads_each_column_once():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    cache = ColumnCache(df)
    assert cache["a"] is cache["a"]
    assert cache.of(df) is cache
    other = df.assign(a=[3.0, 4.0])
    assert cache.of(other) is not cache and cache.of(other)["a"].tolist() == [3.0, 4.0]
