"""JASP-shaped errors: an analysis-level error that names the option at fault."""
from __future__ import annotations

from ..errors import MixedBridgeError


class JaspOptionError(MixedBridgeError):
    """A JASP option document that cannot be run; ``option`` is the option's name, ``path`` the
    JSON pointer inside the document (``/fixedEffects/value/1``)."""

    def __init__(self, option: str, message: str, path: str = "") -> None:
        super().__init__("options", message, path or (f"/{option}" if option else ""))
        self.option = option


def error_document(message: str, option: str = "", path: str = "", kind: str = "validationError",
                   title: str = "Linear Mixed Models") -> dict:
    """The results document of an analysis that stopped: JASP's ``status`` plus an ``error``
    object (``type`` = JASP's error status, ``errorMessage``) and, ours, the option and path."""
    return {"status": "error", "title": title, "name": "",
            "error": {"type": kind, "errorMessage": message, "option": option, "path": path},
            ".meta": []}
