"""mixedbridge: linear mixed models for a JASP-like host, with a native Python estimator
cross-checked against R's lme4.

>>> import mixedbridge
>>> res = mixedbridge.run({"analysis": "lmm", "data": {"dataset": "sleepstudy"},
...                        "formula": "Reaction ~ Days + (Days | Subject)"})
>>> res.table("parameters").to_pandas()  # doctest: +SKIP
>>> m = mixedbridge.lmer("Reaction ~ Days + (Days | Subject)", "sleepstudy")
>>> m.predict(re_form="~0")  # doctest: +SKIP

The public names are imported on first use (module ``__getattr__``), so ``import mixedbridge``
stays cheap: numpy, pandas, scipy and the R bridge load only when a request needs them.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .analysis import run as run
    from .errors import MixedBridgeError as MixedBridgeError
    from .model import Model as Model
    from .model import anova as anova
    from .model import glmer as glmer
    from .model import lm as lm
    from .model import lmer as lmer
    from .results import Results as Results
    from .scale import run_many as run_many
    from .table import Column as Column
    from .table import Table as Table

# Public name -> the submodule that defines it. A new export is one line here (and one in the
# TYPE_CHECKING block above, for type checkers).
_EXPORTS: dict[str, str] = {
    "run": "analysis",
    "Results": "results",
    "Table": "table",
    "Column": "table",
    "MixedBridgeError": "errors",
    "run_many": "scale",
    # the model API, for scripts and notebooks
    "lmer": "model",
    "lm": "model",
    "glmer": "model",
    "anova": "model",
    "Model": "model",
}

__all__ = list(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """A public name, imported from its submodule on first use and then kept in the package."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mixedbridge' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
