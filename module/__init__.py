"""mixedbridge: linear mixed models for a JASP-like host, with a native Python estimator
cross-checked against R's lme4.

>>> import mixedbridge
>>> res = mixedbridge.run({"analysis": "lmm", "data": {"dataset": "sleepstudy"},
...                        "formula": "Reaction ~ Days + (Days | Subject)"})
>>> res.table("parameters").to_pandas()  # doctest: +SKIP
>>> m = mixedbridge.lmer("Reaction ~ Days + (Days | Subject)", "sleepstudy")
>>> m.predict(re_form="~0")  # doctest: +SKIP
"""
from .analysis import run
from .errors import MixedBridgeError
from .results import Results
from .scale import run_many
from .table import Column, Table

__all__ = ["run", "run_many", "Results", "Table", "Column", "MixedBridgeError"]
__version__ = "0.1.0"

# --- the model API (mixedbridge.lmer, lm, glmer, anova, Model), imported on first use -------
#: Name → the module that defines it.
MODEL_API = {"lmer": "model", "lm": "model", "glmer": "model", "anova": "model", "Model": "model"}
__all__ += list(MODEL_API)


def __getattr__(name: str):
    """The model API's names, imported from their module when first asked for."""
    if name in MODEL_API:
        from importlib import import_module

        return getattr(import_module(f".{MODEL_API[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
