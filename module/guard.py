"""Resource guard: refuse up front a model whose design or random-effects system would not fit in
the memory this process may use.

The dominant storage of the blocked Cholesky (:mod:`mixedbridge.lmm.blocks`, as in
MixedModels.jl) is the dense fill-in of every grouping factor but the largest: q_r×q_r doubles,
held a few times over (A_rr, S_r, L_rr). lme4's sparse factor meets the same fill-in for crossed
factors, so the estimate guards both engines. Before that, the model matrices themselves (n rows
by the columns the terms' factor levels make) are checked, before any is built.

The memory a fit may plan to use is the least of what the machine has available, what the
process's limits leave (``RLIMIT_AS``, ``RLIMIT_DATA``), what its cgroup leaves, and what is
left under :data:`LIMIT_ENV` (the supervisor's ``--max-rss-mb``).
"""
from __future__ import annotations

import math
import os
import resource
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ModelError

if TYPE_CHECKING:
    from .design import ReTermData
    from .formula import ModelDescription, Term

#: Copies of the q_r×q_r block alive at once during an evaluation.
DENSE_COPIES = 3
#: Copies of a model matrix alive at once while it is built (formulaic's frame, the array, a
#: product of it).
DESIGN_COPIES = 3
#: Share of the available memory a fit may plan to use.
BUDGET_SHARE = 0.7
#: Needs up to this many bytes pass without reading the memory left (reading /proc and the cgroup
#: costs more than a small model's whole fit; the supervisor's limit still applies).
SMALL_NEED = 4 * 2**20
#: Environment variable holding the most resident memory, in MiB, the process may reach (set by
#: the supervisor for its worker).
LIMIT_ENV = "MIXEDBRIDGE_MAX_RSS_MB"
#: Memory assumed available when /proc/meminfo cannot be read.
FALLBACK_BYTES = 8 * 1024**3


def _status_bytes(field: str) -> int:
    """A ``kB`` field of /proc/self/status (``VmRSS``, ``VmSize``, ``VmData``), 0 if unknown."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _meminfo_available() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return FALLBACK_BYTES


def _rlimit_headroom() -> int | None:
    """What ``RLIMIT_AS`` and ``RLIMIT_DATA`` leave above the process's current use."""
    room = []
    for limit, used in ((resource.RLIMIT_AS, "VmSize"), (resource.RLIMIT_DATA, "VmData")):
        soft = resource.getrlimit(limit)[0]
        if soft != resource.RLIM_INFINITY:
            room.append(soft - _status_bytes(used))
    return min(room) if room else None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_headroom() -> int | None:
    """What the process's cgroup (v2, or v1's memory controller) leaves under its limit."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if controllers == "":
            base = Path("/sys/fs/cgroup") / rel.lstrip("/")
            limit, used = _read_int(base / "memory.max"), _read_int(base / "memory.current")
        elif "memory" in controllers.split(","):
            base = Path("/sys/fs/cgroup/memory") / rel.lstrip("/")
            limit, used = _read_int(base / "memory.limit_in_bytes"), _read_int(base / "memory.usage_in_bytes")
        else:
            continue
        if limit is not None and limit < 2**60:
            return limit - (used or 0)
    return None


def _env_headroom() -> int | None:
    """What :data:`LIMIT_ENV` leaves above the process's resident memory."""
    text = os.environ.get(LIMIT_ENV, "")
    try:
        limit = float(text) * 1024**2
    except ValueError:
        return None
    return int(limit) - _status_bytes("VmRSS") if math.isfinite(limit) and limit > 0 else None


def available_bytes() -> int:
    """The memory this process may still take: the least of the machine's ``MemAvailable``
    (or 8 GiB when it cannot be read) and what the process's limits, its cgroup and
    :data:`LIMIT_ENV` leave (never below 0)."""
    room = [_meminfo_available(), _rlimit_headroom(), _cgroup_headroom(), _env_headroom()]
    return max(0, min(r for r in room if r is not None))


def budget_bytes() -> int:
    """The memory a fit may plan to use: :data:`BUDGET_SHARE` of :func:`available_bytes`."""
    return int(BUDGET_SHARE * available_bytes())


def _width(term: Term, nlevels: dict[str, int]) -> int:
    """The fewest columns a term makes: a factor brings at least its levels less one."""
    return math.prod(max(nlevels[v.label] - 1, 1) if v.label in nlevels else 1 for v in term.variables)


def design_columns(desc: ModelDescription, nlevels: dict[str, int]) -> int:
    """The fewest columns of the fixed-effects design and the random-effects terms' raw model
    matrices together, from the factors' level counts (``nlevels``: label → levels)."""
    fixed = int(desc.intercept) + sum(_width(t, nlevels) for t in desc.fixed)
    random = sum(int(r.intercept) + sum(_width(t, nlevels) for t in r.terms) for r in desc.random)
    return fixed + random


def check_design(desc: ModelDescription, nlevels: dict[str, int], n: int, budget: int | None = None) -> None:
    """Raise :class:`ModelError` before any model matrix is built when the matrices of ``n`` rows
    would not fit in the memory budget."""
    columns = design_columns(desc, nlevels)
    need = DESIGN_COPIES * 8 * n * columns
    if budget is None and need <= SMALL_NEED:
        return
    budget = budget_bytes() if budget is None else budget
    if need <= budget:
        return
    terms = desc.fixed + tuple(t for r in desc.random for t in r.terms)
    widest = max(terms, key=lambda t: _width(t, nlevels), default=None)
    which = f"; the widest term is {widest.label} with {_width(widest, nlevels):,}" if widest else ""
    raise ModelError(
        f"the model matrices would need about {need / 1024**3:.1f} GiB ({n:,} rows × at least {columns:,} columns"
        f"{which}), more than the "
        f"{budget / 1024**3:.1f} GiB this process can give a fit. Drop or merge factor levels, or leave out "
        "the widest interactions.")


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
    if budget is None and need <= SMALL_NEED:
        return
    budget = budget_bytes() if budget is None else budget
    if need <= budget:
        return
    factors = ", ".join(sorted({f"{t.group} ({t.nlevels} levels)" for t in reterms}))
    raise ModelError(
        f"this random-effects structure would need about {need / 1024**3:.1f} GiB "
        f"(a dense {q_rest:,}×{q_rest:,} block for the crossed or nested factors beyond the largest one; "
        f"factors: {factors}), more than the {budget / 1024**3:.1f} GiB this process can give a fit. "
        "Fit fewer levels (filter the data), drop a crossed factor, or model it as a fixed effect.")
