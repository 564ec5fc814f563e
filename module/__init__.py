"""mixedbridge: linear mixed models for a JASP-like host, with a native Python estimator
cross-checked against R's lme4.

>>> import mixedbridge
>>> res = mixedbridge.run({"analysis": "lmm", "data": {"dataset": "sleepstudy"},
...                        "formula": "Reaction ~ Days + (Days | Subject)"})
>>> res.table("parameters").to_pandas()  # doctest: +SKIP
"""
from .analysis import run
from .errors import MixedBridgeError
from .results import Results
from .scale import run_many
from .table import Column, Table

__all__ = ["run", "run_many", "Results", "Table", "Column", "MixedBridgeError"]
__version__ = "0.1.0"
