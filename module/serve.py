"""The host protocol: one JSON request per line in, one JSON results document per line out.

A request is a spec object, ``{"id": ..., "spec": {...}}``, or a JASP option document
``{"id": ..., "jasp": "lmm", "options": {...}, "data": {...}}`` (answered in JASP's results
shape); the answer carries the same ``id``. Every request gets exactly one answer line: results, or ``{"error": {code, message,
path}}``. The worker keeps R (when used) warm across requests.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import IO

from .analysis import run
from .errors import MixedBridgeError
from .jasp.request import is_jasp_request, run_request
from .spec import parse_json


def handle(line: str) -> dict:
    """Answer one request line; never raises."""
    request_id = None
    try:
        request = parse_json(line)
        if is_jasp_request(request):
            answer = run_request(request)
            if "id" in request:
                answer["id"] = request["id"]
            return answer
        if "spec" in request and isinstance(request.get("spec"), dict):
            request_id = request.get("id")
            _inject_fault(request)
            request = request["spec"]
        answer = run(request).to_dict()
    except MixedBridgeError as exc:
        answer = {"error": exc.to_dict()}
    except Exception as exc:  # noqa: BLE001 - a worker answers every request
        answer = {"error": {"code": "internal", "message": f"{type(exc).__name__}: {exc}", "path": ""}}
    if request_id is not None:
        answer["id"] = request_id
    return answer


def _inject_fault(request: dict) -> None:
    """Test hook, active only with MIXEDBRIDGE_FAULTS=1: ``{"fault": "crash"|"hang"|"raise"}``."""
    if os.environ.get("MIXEDBRIDGE_FAULTS") != "1" or "fault" not in request:
        return
    fault = request["fault"]
    if fault == "crash":
        os._exit(70)
    if fault == "hang":
        time.sleep(3600)
    if fault == "raise":
        raise RuntimeError("injected fault")


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
