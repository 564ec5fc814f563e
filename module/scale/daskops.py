"""The two Dask operations the scale package needs: a map over partitions followed by a tree
sum, and the check that Dask is installed (an optional extra)."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from ..errors import EngineError

#: How many partial results are summed in one task of the tree.
FAN_IN = 4


def require_dask() -> Any:
    """The ``dask`` module, or an error saying how to install it."""
    try:
        import dask
        import dask.dataframe  # noqa: F401
    except ImportError:
        raise EngineError("the Dask backend needs Dask: pip install 'mixedbridge[dask]'", "/options/backend") from None
    return dask


def is_dask_frame(data: object) -> bool:
    """Whether ``data`` is a Dask DataFrame (checked without importing Dask)."""
    return type(data).__module__.split(".")[0] == "dask" and hasattr(data, "to_delayed")


def _sum(*items: Any) -> Any:
    """The sum of the partial results that are not None (None when all are)."""
    present = [x for x in items if x is not None]
    if not present:
        return None
    total = present[0]
    for x in present[1:]:
        total = total + x
    return total


def tree_reduce(parts: list, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(partition, *args)`` on every delayed partition, summed as a tree of fan-in
    :data:`FAN_IN` (``+`` of the results; None results are left out), computed on the current
    scheduler (a ``distributed`` client when one is active)."""
    dask = require_dask()
    # each argument once in the graph, under a name of its own: neither walked item by item
    # for Dask collections nor hashed (a recipe holds the level labels: a million strings)
    shared = [dask.delayed(a, traverse=False, name=f"mixedbridge-arg-{uuid.uuid4().hex}") for a in args]
    level = [dask.delayed(fn, pure=True)(p, *shared) for p in parts]
    while len(level) > 1:
        level = [dask.delayed(_sum, pure=True)(*level[i: i + FAN_IN]) for i in range(0, len(level), FAN_IN)]
    return dask.compute(level[0])[0]
