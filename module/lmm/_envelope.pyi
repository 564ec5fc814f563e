"""Type information for the compiled small-model criterion (``_envelope.c``)."""
from typing import Any

import numpy as np

class Envelope:
    """ΛᵀAΛ + I_q's envelope Cholesky factor at θ and the criterion profiled over σ."""

    packed: int

    def __init__(self, first: np.ndarray, second: np.ndarray, coef: np.ndarray, cells: np.ndarray, size: int,
                 q: int, dof: float = ..., sum_log_w: float = ..., ldR: float = ..., reml: bool = ...) -> None: ...
    def __call__(self, theta: np.ndarray, gradient: Any = ...) -> float: ...
    def terms(self, theta: np.ndarray) -> tuple[float, float, float] | None: ...
