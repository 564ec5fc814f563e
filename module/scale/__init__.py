"""Past one machine: one linear mixed model over a Dask DataFrame (or Parquet files) without
gathering its rows, and many models at once on a Dask cluster (``docs/scale.md``).

Dask is an optional extra (``pip install 'mixedbridge[dask]'``); nothing here imports it until
it is used.
"""
from .many import run_many
from .residuals import fitted_and_residuals

__all__ = ["run_many", "fitted_and_residuals"]
