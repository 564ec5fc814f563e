"""Resource guard: refuse up front a model whose random-effects system would not fit in memory.

The dominant storage of the blocked Cholesky (:mod:`mixedbridge.lmm.blocks`, as in
MixedModels.jl) is the dense fill-in of every grouping factor but the largest: q_r×q_r doubles,
held a few times over (A_rr, S_r, L_rr). lme4's sparse factor meets the same fill-in for crossed
factors, so the estimate guards both engines.
"""
from __future__ import annotations

from collections import defaultdict

from .design import ReTermData
from .errors import ModelError

#: Copies of the q_r×q_r block alive at once during an evaluation.
DENSE_COPIES = 3
#: Share of the available memory a fit may plan to use.
BUDGET_SHARE = 0.7


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (or 8 GiB when it cannot be read)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 1024**3


def random_effects_bytes(reterms: list[ReTermData], n: int, p: int) -> tuple[int, int]:
    """Estimated peak bytes of the random-effects system, and q_r (the fill-in order)."""
    per_factor: dict[str, int] = defaultdict(int)
    for t in reterms:
        per_factor[t.group] += t.nlevels * t.X.shape[1]
    sizes = sorted(per_factor.values(), reverse=True)
    q0, q_rest = (sizes[0], sum(sizes[1:])) if sizes else (0, 0)
    dense = DENSE_COPIES * q_rest * q_rest * 8
    sparse = 8 * (4 * q0 + 3 * n * (p + 2))
    return dense + sparse, q_rest


def check_memory(reterms: list[ReTermData], n: int, p: int, budget: int | None = None) -> None:
    """Raise :class:`ModelError` with an estimate and a suggestion when the model would not fit."""
    need, q_rest = random_effects_bytes(reterms, n, p)
    budget = int(BUDGET_SHARE * available_bytes()) if budget is None else budget
    if need <= budget:
        return
    factors = ", ".join(sorted({f"{t.group} ({t.nlevels} levels)" for t in reterms}))
    raise ModelError(
        f"this random-effects structure would need about {need / 1024**3:.1f} GiB "
        f"(a dense {q_rest:,}×{q_rest:,} block for the crossed or nested factors beyond the largest one; "
        f"factors: {factors}), more than the {budget / 1024**3:.1f} GiB this machine can give a fit. "
        "Fit fewer levels (filter the data), drop a crossed factor, or model it as a fixed effect.")
