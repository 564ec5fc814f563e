"""The hypothesis matrices' short routes give the old routes' matrices exactly: type I contrasts
skip the Doolittle factorization when the only rows wanted are Lᵀ's last (e_p); type III's
indicator design reads each variable once from the model frame's arrays instead of pandas'
columns. Pinned to copies of the replaced code on the inference cases (factors, numeric × factor,
sum contrasts, three-way interactions, a matrix variable)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mixedbridge import analysis
from mixedbridge.inference import contrasts as ctr

from .inference_cases import cases

CASES = {**cases(), "sleepstudy-poly": {"analysis": "lmm", "data": {"dataset": "sleepstudy"},
                                        "formula": "Reaction ~ poly(Days, 2) + (1 | Subject)"}}


def _old_type1(lay: ctr.TermLayout) -> dict[str, np.ndarray]:
    """type1 as it was: always the factorization."""
    X = lay.X
    p = X.shape[1]
    if p == 0:
        return {t: np.zeros((0, 0)) for t in lay.labels}
    Lt = np.ones((1, 1)) if p == 1 else ctr.doolittle(X.T @ X)[0].T
    return {t: Lt[lay.columns(t), :] for t in lay.labels}


def _old_rd_design(lay: ctr.TermLayout) -> tuple[np.ndarray, list[str]]:
    """The indicator design as it was: pandas' columns, each term on its own."""
    blocks, names = [], []
    if lay.intercept:
        blocks.append(np.ones((lay.X.shape[0], 1)))
        names.append("(Intercept)")
    data = lay.problem.frame.data
    for vs in lay.variables:
        cols: list[np.ndarray] = [np.ones(len(data))]
        nms: list[str] = [""]
        for v in vs:
            matrix = lay.problem.frame.matrices.get(v)
            if matrix is not None:
                pieces = [(data[c].to_numpy(dtype=float), c) for c in matrix]
            elif lay.numeric[v]:
                pieces = [(data[v].to_numpy(dtype=float), v)]
            else:
                col = data[v]
                codes = col.cat.codes.to_numpy()
                pieces = [((codes == j).astype(float), f"{v}{lev}") for j, lev in enumerate(col.cat.categories)]
            cols = [c * pv for pv, _ in pieces for c in cols]
            nms = [(nm + ":" if nm else "") + pn for _, pn in pieces for nm in nms]
        blocks.append(np.column_stack(cols))
        names += nms
    return np.column_stack(blocks), names


@pytest.fixture(scope="module", params=sorted(CASES))
def layout(request):
    spec = {**CASES[request.param]}
    spec["options"] = {**spec.get("options", {}), "df_method": "asymptotic", "anova": False}
    return ctr.layout(analysis.run(spec).outcome.problem)


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for t in a:
        assert a[t].shape == b[t].shape, t
        np.testing.assert_array_equal(a[t], b[t], err_msg=t)


def test_type1_is_the_factorization(layout):
    _same(ctr.type1(layout), _old_type1(layout))


def test_type1_of_one_covariate_is_the_last_row_whatever_the_scale(layout):
    lay = dataclasses.replace(layout, X=layout.X * np.geomspace(1.0, 1e9, layout.X.shape[1]))
    _same(ctr.type1(lay), _old_type1(lay))


def test_indicator_design_is_pandas_columns(layout):
    tl = ctr._treatment_layout(layout)
    new, old = ctr._rd_design(tl), _old_rd_design(tl)
    assert new[1] == old[1]
    np.testing.assert_array_equal(new[0], old[0])
    for kind in ("II", "III"):
        assert all(np.isfinite(L).all() for L in ctr.contrasts(layout, kind).values())
