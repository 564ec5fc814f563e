"""A :class:`~mixedbridge.lmm.LinearMixedModel` built from a bundled data set and a formula, as
the engine builds it (the tests that pin the estimator's internals start from it)."""
from __future__ import annotations

import numpy as np

from mixedbridge import datasets
from mixedbridge.design import fixed_design, random_designs
from mixedbridge.formula import parse_formula
from mixedbridge.frame import model_frame
from mixedbridge.lmm import LinearMixedModel


def dataset_model(ds: str, formula: str, reml: bool = True, weights: np.ndarray | None = None) -> LinearMixedModel:
    """The unfitted model of ``formula`` on the bundled data set ``ds`` (REML unless ``reml`` is
    False; prior ``weights`` per row, if given)."""
    df, factors = datasets.load(ds)
    desc = parse_formula(formula)
    frame = model_frame(df, desc, {}, factors)
    fd = fixed_design(desc, frame)
    return LinearMixedModel(fd.X, fd.names, frame.response(desc), random_designs(desc, frame), weights,
                            reml=reml)
