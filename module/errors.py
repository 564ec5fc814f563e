"""Structured errors: every problem with a spec, data or fit names where it is and what was expected."""
from __future__ import annotations


class MixedBridgeError(Exception):
    """An error a user can act on.

    Attributes
    ----------
    code : str
        Stable machine-readable class of the problem (``spec``, ``data``, ``formula``, ``model``,
        ``engine``, ``fit``).
    message : str
        What is wrong and what was expected, in words.
    path : str
        JSON-pointer-like location in the spec (``/formula``, ``/filter/0/column``) or ``""``.
    """

    exit_code = 2

    def __init__(self, code: str, message: str, path: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path

    def to_dict(self) -> dict:
        """The ``error`` object of a results document."""
        return {"code": self.code, "message": self.message, "path": self.path}


class SpecError(MixedBridgeError):
    """The spec document is malformed or violates the schema."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__("spec", message, path)


class DataError(MixedBridgeError):
    """The data cannot support the analysis (missing column, bad level, no rows...)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__("data", message, path)


class FormulaError(MixedBridgeError):
    """The formula is syntactically wrong or uses something not allowed."""

    def __init__(self, message: str, path: str = "/formula") -> None:
        super().__init__("formula", message, path)


class ModelError(MixedBridgeError):
    """The model cannot be estimated from these data (e.g. a grouping factor with one level)."""

    def __init__(self, message: str, path: str = "/formula") -> None:
        super().__init__("model", message, path)


class EngineError(MixedBridgeError):
    """An engine is unavailable or failed."""

    def __init__(self, message: str, path: str = "/engine") -> None:
        super().__init__("engine", message, path)
