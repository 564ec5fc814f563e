"""The host protocol: one JSON request per line in, one JSON results document per line out.

A request is a spec object, or ``{"id": ..., "spec": {...}}``; the answer carries the same
``id``. Every request gets exactly one answer line: results, or ``{"error": {code, message,
path}}``. The worker keeps R (when used) warm across requests.
"""
from __future__ import annotations

import json
import sys
from typing import IO

from .analysis import run
from .errors import MixedBridgeError, SpecError
from .spec import parse_json


def handle(line: str) -> dict:
    """Answer one request line; never raises."""
    request_id = None
    try:
        request = parse_json(line)
        if "spec" in request and isinstance(request.get("spec"), dict):
            request_id = request.get("id")
            request = request["spec"]
        answer = run(request).to_dict()
    except MixedBridgeError as exc:
        answer = {"error": exc.to_dict()}
    except Exception as exc:  # noqa: BLE001 - a worker answers every request
        answer = {"error": {"code": "internal", "message": f"{type(exc).__name__}: {exc}", "path": ""}}
    if request_id is not None:
        answer["id"] = request_id
    return answer


def serve(stdin: IO[str], stdout: IO[str]) -> int:
    """Answer requests until end of input."""
    for line in stdin:
        if not line.strip():
            continue
        answer = handle(line)
        stdout.write(json.dumps(answer, ensure_ascii=False, allow_nan=False) + "\n")
        stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.stdin, sys.stdout))
