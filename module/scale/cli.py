"""``mixedbridge run SPEC... --dask SCHEDULER``: the specs fitted on a Dask cluster by
:func:`~mixedbridge.scale.many.run_many`, each answer handed to the command line's printer in
the specs' order, progress on stderr as results arrive."""
from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ..errors import EngineError
from .daskops import require_dask
from .many import Answer, run_many


def connect(scheduler: str) -> Any:
    """A client of the scheduler at ``scheduler`` (``tcp://host:8786``, a scheduler file
    ``*.json``), or of a new local cluster for ``local``."""
    require_dask()
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise EngineError("--dask needs dask.distributed: pip install 'mixedbridge[dask]'") from None
    if scheduler == "local":
        return Client(LocalCluster(dashboard_address=None))
    try:
        if scheduler.endswith(".json"):
            return Client(scheduler_file=scheduler, timeout="30s")
        return Client(scheduler, timeout="30s")
    except (OSError, TimeoutError) as exc:
        raise EngineError(f"cannot reach the Dask scheduler {scheduler!r}: {exc}") from None


def run_on_dask(paths: list[str], scheduler: str, data_root: Any, keep_outcome: bool,
                answer: Callable[[str, Answer], int]) -> int:
    """Fit every spec file on the cluster; ``answer(path, results or error)`` prints one and
    gives its exit status; the largest status is returned."""
    client = connect(scheduler)
    done = [0]

    def progress(i: int, _: Answer) -> None:
        done[0] += 1
        print(f"[{done[0]}/{len(paths)}] {paths[i]}", file=sys.stderr, flush=True)

    try:
        answers = run_many(paths, client, data_root=data_root, progress=progress, keep_outcome=keep_outcome)
    finally:
        client.close()
    return max((answer(p, a) for p, a in zip(paths, answers)), default=0)
