"""Running one analysis over Dask: where the rows come from (a Dask DataFrame, Parquet files, or
in-memory rows split into partitions when ``options.backend`` is ``dask``), the checks of what the
backend offers, and the hand-over to :func:`mixedbridge.analysis.run_prepared`."""
from __future__ import annotations

import time
from pathlib import Path

from ..engines import engines_for, get_engine
from ..errors import SpecError
from ..inference.options import settings as inference_settings
from ..results import Results
from .daskops import is_dask_frame, require_dask
from .parquet import read_parquet
from .prepare import prepare_dask

#: Rows per partition when in-memory rows are split for the Dask backend.
ROWS_PER_PARTITION = 100_000


def wants_dask(spec: dict, data: object) -> bool:
    """Whether the analysis runs over Dask: a Dask frame or Parquet data (unless
    ``options.backend`` is ``memory``), or ``options.backend`` ``dask``."""
    backend = (spec.get("options") or {}).get("backend")
    if backend is not None:
        return backend == "dask"
    return is_dask_frame(data) or (data is None and "parquet" in (spec.get("data") or {}))


def gathered(spec: dict, base: Path | None, data: object) -> object:
    """Rows for the in-memory path: a Dask frame or Parquet data computed into pandas (the
    ``memory`` backend asked for them), anything else as it is."""
    if is_dask_frame(data):
        return data.compute()  # type: ignore[attr-defined]
    if data is None and "parquet" in (spec.get("data") or {}):
        return read_parquet(spec["data"]["parquet"], base).compute()
    return data


def _dask_frame(spec: dict, base: Path | None, data: object):
    """The rows as a Dask DataFrame, the data set's factor columns, and whether they came from files."""
    dd = require_dask().dataframe
    if is_dask_frame(data):
        return data, set(), False
    if data is None and "parquet" in (spec.get("data") or {}):
        return read_parquet(spec["data"]["parquet"], base), set(), True
    from ..spec import load_data
    df, hint = load_data(spec, base, data)  # type: ignore[arg-type]
    nparts = max(1, -(-len(df) // ROWS_PER_PARTITION))
    return dd.from_pandas(df, npartitions=nparts), hint, data is None and "path" in (spec.get("data") or {})


def _check_spec(spec: dict) -> None:
    from .engine import BlockEngine

    if engines_for(spec["engine"]) != [get_engine(BlockEngine.name)]:
        raise SpecError("over Dask only the native engine fits (lme4 needs the rows in R's memory); set "
                        "engine to 'native'", "/engine")
    if spec.get("compare"):
        raise SpecError("model comparisons are not available over Dask yet", "/compare")
    options = spec["options"]
    if options.get("plots"):
        raise SpecError("plots read the rows and are not available over Dask yet", "/options/plots")
    if options.get("emmeans"):
        raise SpecError("estimated marginal means are not available over Dask yet (their reference grid "
                        "reads the rows)", "/options/emmeans")


def run_dask(normalized: dict, base: Path | None, data: object, started: float | None = None) -> Results:
    """One analysis over Dask (see the module's docstring): three passes over the partitions,
    then the fit and the tests on the reduced blocks."""
    from ..analysis import run_prepared
    from .engine import BlockEngine, refuse_settings

    t0 = time.perf_counter() if started is None else started
    _check_spec(normalized)
    refuse_settings(inference_settings(normalized["analysis"], normalized["options"]))
    ddf, hint, from_file = _dask_frame(normalized, base, data)
    prepared = prepare_dask(normalized, ddf, hint, from_file)
    return run_prepared(normalized, prepared.problem, base, None, started=t0, engines=[BlockEngine(prepared)])
