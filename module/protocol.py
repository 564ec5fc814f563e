"""The host protocol of ``mixedbridge serve`` (version :data:`VERSION`, ``docs/protocol.md``): one
JSON message per line each way.

The supervisor (``mixedbridge serve``) and the worker (``python -m mixedbridge.serve``) read a line
the same way, so a bad line gets the same answer whichever of them refuses it:

* A line is UTF-8 text of at most ``--max-request-mb`` (default :data:`MAX_REQUEST_BYTES`); a
  longer one is skipped to its end and answered with an error. A line of only spaces, tabs and
  carriage returns is ignored.
* It holds one JSON object in strict JSON (:mod:`mixedbridge.strictjson`): no ``NaN`` or
  ``Infinity``, no lone surrogates, numbers a double can hold, at most
  :data:`~mixedbridge.strictjson.MAX_DEPTH` levels of nesting.
* The object is a method call ``{"id", "method": "hello" | "cancel", "params"}``, a run request
  ``{"id", "spec", "timeout", "progress"}`` or a JASP request ``{"id", "jasp", "options", "data",
  "engine", "timeout", "progress"}`` (either may say ``"method": "run"``), or a bare spec. Its
  ``id`` is echoed when it is plain JSON, also on errors; when the line is not JSON at all, an
  ``id`` is still read by a tolerant scan (:func:`scan_id`). JASP requests are answered in JASP's
  results shape, errors included.
* A time limit (``timeout`` beside ``spec`` or ``jasp``, else the spec's ``options.timeout``) is a
  number of seconds above 0 and at most :data:`MAX_TIMEOUT`.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from . import strictjson
from .errors import SpecError

#: Longest request line read, in bytes (``serve --max-request-mb``).
MAX_REQUEST_BYTES = 256 * 2**20
#: Seconds a request may take when neither it nor ``serve --timeout`` says otherwise.
DEFAULT_TIMEOUT = 600.0
#: The longest time limit a request may ask for, in seconds (one day).
MAX_TIMEOUT = 86400.0
#: The most worker processes ``serve --workers`` may start.
MAX_WORKERS = 64
#: The protocol version this server speaks (``hello`` says so).
VERSION = 1
#: The methods a line may name.
METHODS = ("run", "hello", "cancel")
#: The keys of a spec request.
ENVELOPE = ("id", "method", "spec", "timeout", "progress", "fault")
#: The keys of a JASP request that belong to the protocol, not to JASP's option document.
JASP_ENVELOPE = ("method", "progress")
#: Characters of an unreadable line searched for its ``id`` (:func:`scan_id`).
SCAN_CHARS = 2**20

_BLANK = b" \t\r\n"
_CHUNK = 2**20


class BadRequest(Exception):
    """A line that cannot be run; ``answer`` is its answer (with the ``id`` where readable)."""

    def __init__(self, answer: dict) -> None:
        super().__init__(answer.get("error"))
        self.answer = answer


@dataclass(frozen=True)
class Request:
    """One readable request.

    Fields: ``doc`` the parsed line; ``kind`` ``spec`` (``{"spec": ...}``), ``jasp``, ``bare``
    (the line is the spec), ``hello`` or ``cancel``; ``timeout`` the limit it asks for (None: the
    server's); ``id``/``has_id`` the id to echo; ``progress`` whether it asks for progress
    messages (None: the session's choice); ``params`` a method's parameters.
    """

    doc: dict
    kind: str
    timeout: float | None = None
    id: Any = None
    has_id: bool = False
    progress: bool | None = None
    params: dict | None = None

    @property
    def runs(self) -> bool:
        """Whether the request runs an analysis (not a hello or a cancel)."""
        return self.kind in ("spec", "jasp", "bare")

    @property
    def spec(self) -> dict:
        """The analysis spec of a spec or bare request."""
        return self.doc["spec"] if self.kind == "spec" else self.doc

    def tag(self, answer: dict) -> dict:
        """The answer with this request's id."""
        if self.has_id:
            answer["id"] = self.id
        return answer

    def failure(self, code: str, message: str, path: str = "", kind: str = "fatalError") -> dict:
        """An error answer in the request's shape (JASP's for JASP requests, whose error ``type``
        is ``kind``, or ``cancelled`` for a cancelled request), with its id."""
        kind = "cancelled" if code == "cancelled" else kind
        return self.tag(error_answer(code, message, path, self.doc if self.kind == "jasp" else None, kind))

    def progress_line(self, done: int, total: int | None, stage: str) -> bytes:
        """A progress message of this request: ``{"progress": {done, total, stage}, "id"}``."""
        return dump(self.tag({"progress": {"done": done, "total": total, "stage": stage}}))

    @property
    def jasp_doc(self) -> dict:
        """A JASP request's option document without the protocol's keys (``method``, ``progress``)."""
        return {k: v for k, v in self.doc.items() if k not in JASP_ENVELOPE}


def is_jasp(doc: Any) -> bool:
    """Whether a request document is a JASP wrapper; the JASP adapter is imported only for a
    document that has a ``jasp`` key (a plain spec does not load it)."""
    if not (isinstance(doc, dict) and "jasp" in doc):
        return False
    from .jasp.request import is_jasp_request

    return is_jasp_request(doc)


def error_answer(code: str, message: str, path: str = "", jasp: dict | None = None,
                 kind: str = "validationError") -> dict:
    """``{"error": {code, message, path}}``, or for a JASP request (``jasp``) JASP's error document
    with ``kind`` as its error type."""
    if jasp is not None:
        from .jasp.request import failure_document

        return failure_document(jasp, message, path, kind)
    return {"error": {"code": code, "message": message, "path": path}}


# -- reading a request -------------------------------------------------------------------------


def read_request(line: str | bytes, check: bool = True) -> Request:
    """The request on one line.

    ``check=False`` skips the strict-JSON walk over the whole document of a run request (the
    supervisor leaves it to the worker, which refuses such lines in the same words); the id and
    time limit are always checked, and ``hello`` and ``cancel`` lines in full (the supervisor
    answers them itself).

    Raises
    ------
    BadRequest
        With the answer for a line that is not UTF-8, not a JSON object, not strict JSON, or whose
        envelope (keys, ``method``, ``params``, ``spec``, ``timeout``, ``progress``) is wrong.
    """
    text = _decode(line)
    doc = _object(text)
    has_id, ident = readable_id(doc)
    jasp = doc if is_jasp(doc) and doc.get("method", "run") == "run" else None
    try:
        kind = _kind(doc)
        timeout = _time_limit(doc, kind)
        progress = _progress_flag(doc, kind)
        params = _params(doc, kind)
        if check or params is not None:
            strictjson.check(doc, strings=strictjson.may_hold_surrogates(text))
    except SpecError as exc:
        answer = error_answer(exc.code, exc.message, exc.path, jasp)
        raise BadRequest(Request(doc, "jasp" if jasp else "bare", None, ident, has_id).tag(answer)) from None
    return Request(doc, kind, timeout, ident, has_id, progress, params)


def readable_id(doc: dict) -> tuple[bool, Any]:
    """(whether to echo an id, the id): an ``id`` that is plain JSON is echoed as it came."""
    if "id" not in doc or strictjson.problem(doc["id"]) is not None:
        return False, None
    return True, doc["id"]


def _decode(line: str | bytes) -> str:
    """The line as text; bytes that are not UTF-8 are refused (with the id, if it is readable)."""
    if isinstance(line, str):
        line = line.encode("utf-8", "surrogatepass")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = (f"the request is not UTF-8 text (an invalid byte at offset {exc.start}); send "
                   "JSON encoded as UTF-8")
        raise BadRequest(_refusal(message, line.decode("utf-8", "surrogateescape"))) from None


def _refusal(message: str, text: str) -> dict:
    """The answer to an unreadable line, with the id and shape of what can be read of it."""
    try:
        doc = strictjson.parse(text)
    except SpecError:
        doc = None
    if not isinstance(doc, dict):
        return with_scanned_id(error_answer("spec", message), text)
    has_id, ident = readable_id(doc)
    request = Request(doc, "jasp" if is_jasp(doc) else "bare", None, ident, has_id)
    return request.failure("spec", message, kind="validationError")


def _object(text: str) -> dict:
    try:
        doc = strictjson.parse(text)
    except SpecError as exc:
        raise BadRequest(with_scanned_id(error_answer(exc.code, exc.message, exc.path), text)) from None
    if not isinstance(doc, dict):
        raise BadRequest(error_answer("spec", "the request must be a JSON object (a spec, "
                                      f"{{\"id\": ..., \"spec\": {{...}}}} or a JASP request), not {_json_kind(doc)}"))
    return doc


def _json_kind(value: object) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


def _kind(doc: dict) -> str:
    """``hello``, ``cancel``, ``jasp``, ``spec`` or ``bare``; a method call's and a spec
    request's keys and a spec request's spec are checked."""
    method = _method(doc)
    if method != "run":
        return method
    if is_jasp(doc):
        return "jasp"
    if "spec" not in doc:
        if "method" in doc:
            raise SpecError("/method: a 'run' request needs 'spec' (an analysis spec) or 'jasp' (a JASP "
                            "request) beside it", "/method")
        return "bare"
    extra = sorted(set(doc) - set(ENVELOPE))
    if extra:
        raise SpecError(f"unknown key(s) {', '.join(map(repr, extra))} beside 'spec'; a request is "
                        "{\"id\": ..., \"spec\": {...}, \"timeout\": SECONDS}",
                        "/" + extra[0].encode("utf-8", "backslashreplace").decode("utf-8"))
    if not isinstance(doc["spec"], dict):
        raise SpecError(f"/spec: the analysis spec must be a JSON object, not {_json_kind(doc['spec'])}", "/spec")
    return "spec"


def _method(doc: dict) -> str:
    """The method a line names (``run`` when it names none); a method call's keys are checked."""
    if "method" not in doc:
        return "run"
    method = doc["method"]
    if not isinstance(method, str) or method not in METHODS:
        raise SpecError(f"/method: the method is one of {', '.join(map(repr, METHODS))}, not {show(method)}",
                        "/method")
    extra = sorted(set(doc) - {"id", "method", "params"})
    if method != "run" and extra:
        raise SpecError(f"unknown key(s) {', '.join(map(repr, extra))} in a {method!r} request; it is "
                        f"{{\"id\": ..., \"method\": {json.dumps(method)}, \"params\": {{...}}}}",
                        "/" + extra[0].encode("utf-8", "backslashreplace").decode("utf-8"))
    if method == "run" and "params" in doc:
        raise SpecError("/params: a 'run' request has 'spec' or 'jasp' beside 'method', not 'params'", "/params")
    return method


def _params(doc: dict, kind: str) -> dict | None:
    """A method call's parameters, checked (None for a run request)."""
    if kind not in ("hello", "cancel"):
        return None
    params = doc.get("params", {})
    if not isinstance(params, dict):
        raise SpecError(f"/params: a method's parameters are a JSON object, not {_json_kind(params)}", "/params")
    allowed = {"hello": ("protocol",), "cancel": ("id",)}[kind]
    extra = sorted(set(params) - set(allowed))
    if extra:
        raise SpecError(f"unknown key(s) {', '.join(map(repr, extra))} in the parameters of {kind!r}; expected "
                        + " and ".join(map(repr, allowed)),
                        "/params/" + extra[0].encode("utf-8", "backslashreplace").decode("utf-8"))
    if kind == "cancel" and "id" not in params:
        raise SpecError("/params: 'cancel' needs the id of the request to cancel: {\"params\": {\"id\": ...}}",
                        "/params")
    if kind == "hello" and "protocol" in params and params["protocol"] != VERSION:
        raise SpecError(f"/params/protocol: this server speaks protocol version {VERSION}, not "
                        f"{show(params['protocol'])}", "/params/protocol")
    return params


def _progress_flag(doc: dict, kind: str) -> bool | None:
    """Whether a run request asks for progress messages (None: it does not say)."""
    if kind not in ("spec", "jasp") or "progress" not in doc:
        return None
    if not isinstance(doc["progress"], bool):
        raise SpecError(f"/progress: true or false (whether to send progress messages), not {show(doc['progress'])}",
                        "/progress")
    return doc["progress"]


def _time_limit(doc: dict, kind: str) -> float | None:
    """The time limit a request asks for, checked; None when it asks for none."""
    if kind in ("hello", "cancel"):
        return None
    if kind != "bare" and "timeout" in doc:
        return seconds(doc["timeout"], "/timeout")
    if kind == "jasp":
        return None
    options = (doc["spec"] if kind == "spec" else doc).get("options")
    if isinstance(options, dict) and "timeout" in options:
        return seconds(options["timeout"], "/spec/options/timeout" if kind == "spec" else "/options/timeout")
    return None


def seconds(value: object, path: str) -> float:
    """A time limit: a number of seconds above 0 and at most :data:`MAX_TIMEOUT`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT:
        raise SpecError(f"{path}: a time limit is a number of seconds above 0 and at most {MAX_TIMEOUT:g}, "
                        f"not {show(value)}", path)
    return float(value)


def show(value: object, width: int = 40) -> str:
    """A short JSON rendering of a value for a message."""
    if isinstance(value, strictjson.Constant):
        return value.name
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= width else text[:width - 3] + "..."


# -- hello and cancel ----------------------------------------------------------------------------

#: The stages that progress messages name (``docs/protocol.md``).
STAGES = ("fit", "bootstrap", "bootstrap-tests", "profile")
#: Least time between two progress messages of one request, in seconds (the first comes after it too).
PROGRESS_INTERVAL_S = 0.2
#: The message of a cancelled request's error.
CANCELLED = "the request was cancelled by the host"


def hello_answer(request: Request, *, workers: int, cancel: bool, timeout: float | None, max_request_bytes: int,
                 max_rss_mb: float | None) -> dict:
    """The answer to ``hello``: the protocol version and what this server can do, with its limits
    (``timeout`` None: no time limit, as in ``serve --unsupervised``)."""
    from . import __version__
    from .datapath import max_data_bytes
    from .engines import spec_engines
    from .jasp.analysis import TITLES
    from .spec import schema

    analyses = schema("spec")["properties"]["analysis"]["enum"]
    return request.tag({"hello": {
        "protocol": VERSION, "server": "mixedbridge", "version": __version__, "methods": list(METHODS),
        "analyses": list(analyses), "jasp_analyses": sorted(TITLES), "engines": spec_engines(),
        "progress": {"stages": list(STAGES), "interval_s": PROGRESS_INTERVAL_S},
        "cancel": cancel, "workers": workers,
        "limits": {"max_request_bytes": max_request_bytes, "max_nesting": strictjson.MAX_DEPTH,
                   "default_timeout_s": timeout, "max_timeout_s": MAX_TIMEOUT, "max_rss_mb": max_rss_mb,
                   "max_data_bytes": max_data_bytes()},
    }})


def cancel_answer(request: Request, found: bool) -> dict:
    """The answer to ``cancel``: whether the request it names was waiting or running (then its own
    answer is a ``cancelled`` error)."""
    return request.tag({"cancel": {"id": (request.params or {}).get("id"), "found": found}})


# -- reading lines -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Oversized:
    """A line longer than the limit: its length in bytes and its first bytes (for the id)."""

    size: int
    head: bytes

    def answer(self, limit: int) -> dict:
        message = (f"the request is longer than the limit of {limit} bytes ({limit / 2**20:g} MiB) and was "
                   "not read; send the data as a file ({\"path\": ...}) instead of inline records, or raise "
                   "the limit (serve --max-request-mb)")
        return with_scanned_id(error_answer("spec", message), self.head.decode("utf-8", "surrogateescape"))


#: Bytes of an oversized line kept to find its id in.
OVERSIZED_HEAD = 64 * 2**10


# -- the id of a line that is not JSON ---------------------------------------------------------

_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[][{}]')
_ID_VALUE = re.compile(r'\s*:\s*("[^"\\]*(?:\\.[^"\\]*)*"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*[,}]')


def scan_id(text: str) -> tuple[bool, Any]:
    """(found, id): the ``id`` of a top-level object in text that is not JSON as a whole (cut
    short, malformed further on, nested too deeply), when it is a string or number that is
    plain JSON; the first :data:`SCAN_CHARS` characters are searched."""
    text = text[:SCAN_CHARS]
    if not text.lstrip(" \t\r\n").startswith("{"):
        return False, None
    depth = 0
    for token in _TOKEN.finditer(text):
        mark = token[0]
        if mark in "{[":
            depth += 1
        elif mark in "}]":
            depth -= 1
        elif depth == 1 and mark == '"id"':
            value = _ID_VALUE.match(text, token.end())
            if value:
                return _plain_value(value[1])
        if depth <= 0:
            break
    return False, None


def _plain_value(literal: str) -> tuple[bool, Any]:
    try:
        value = json.loads(literal)
    except (ValueError, RecursionError):
        return False, None
    return (True, value) if strictjson.problem(value) is None else (False, None)


def with_scanned_id(answer: dict, text: str) -> dict:
    """An error answer with the id :func:`scan_id` finds in the line, if any."""
    found, ident = scan_id(text)
    if found:
        answer["id"] = ident
    return answer


def read_lines(stream: IO[bytes], limit: int = MAX_REQUEST_BYTES) -> Iterator[bytes | Oversized]:
    """The request lines of a byte stream, each at most ``limit`` bytes (longer ones as
    :class:`Oversized`, read to their end but not kept); blank lines are skipped."""
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            yield Oversized(len(line) + _skip_line(stream), line[:OVERSIZED_HEAD])
        elif line.strip(_BLANK):
            yield line


def _skip_line(stream: IO[bytes]) -> int:
    """Read to the end of the current line; the number of bytes read."""
    size = 0
    while True:
        chunk = stream.readline(_CHUNK)
        size += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return size


# -- writing answers ---------------------------------------------------------------------------


def dump(answer: dict, request: Request | None = None) -> bytes:
    """One answer line: strict JSON in UTF-8 and a newline. An answer that cannot be written so
    is replaced by an internal error in the request's shape."""
    try:
        return (json.dumps(answer, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    except (ValueError, TypeError, RecursionError) as exc:
        message = f"the answer could not be written as JSON ({type(exc).__name__}); please report the request"
        fallback = request.failure("internal", message) if request else error_answer("internal", message)
        return (json.dumps(fallback, ensure_ascii=True) + "\n").encode("ascii")


def without_records(answer: dict) -> dict:
    """A results document whose echoed spec shows the number of inline records, not the records."""
    spec = answer.get("spec")
    if not isinstance(spec, dict):
        return answer
    data = spec.get("data")
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        answer["spec"] = {**spec, "data": {"records_count": len(data["records"])}}
    return answer


# -- the process -------------------------------------------------------------------------------


def answer_stream() -> IO[bytes]:
    """The process's standard output, kept for answers only: file descriptor 1 (and so
    ``print``, C libraries and child processes) now writes to standard error."""
    sys.stdout.flush()
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    return answers


@contextlib.contextmanager
def stop_on_signals(cleanup: Callable[[], None] | None = None) -> Iterator[None]:
    """SIGTERM and SIGHUP end the block as :class:`SystemExit` (status 128 + signal), so that
    ``finally`` clauses stop the worker and R; ``cleanup`` runs first."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        if cleanup is not None:
            cleanup()
        raise SystemExit(128 + signum)

    wanted = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None]
    previous = {s: signal.signal(s, stop) for s in wanted}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
