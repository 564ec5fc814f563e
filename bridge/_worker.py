"""The R worker: the one child process that embeds R through rpy2 and answers every R request
(fits; inference and emmeans on the fitted models).

Run as a script (``python _worker.py``), never imported by the package: it needs only numpy
and rpy2, so the host process never loads R (R's console output, signal handlers and C stack
checks stay out of it, and a crash inside R cannot take the host down).

Protocol: length-prefixed pickles (8-byte big-endian length, then the pickle) on the worker's
original stdin (requests) and stdout (replies). The worker first sends ``{"ok": True,
"versions": ...}`` or ``{"ok": False, "error": ...}``, then one reply per request until its
input ends. File descriptors 0 and 1 are re-pointed at /dev/null and stderr, so nothing R
reads or prints can touch the protocol. Each request names its operation (``op``); the
operations are a registry: ``fit``, ``forget``, ``pin``, ``versions``, ``ping`` here, and those
of the sibling modules :data:`OP_MODULES` (``_ops_infer.py``: ``infer``, ``compare``,
``lm_anova``; ``_ops_emmeans.py``: ``emmeans``), plain modules imported from this directory
that never import mixedbridge. They load their R packages on first use.

R code: all of it lives in ``bridge/R/*.R`` (:data:`R_DIR`: ``helpers.R``, ``store.R``,
``fitting.R``, ``inference.R``, ``emmeans.R``), sourced once when the worker starts into an
environment of its own. Python calls only its ``op_*`` functions, each with one named list (a
dict converted by :func:`to_r`) or a few named arguments. Every ``lmer`` fit and refit uses the
one ``lmer_control()`` of ``fitting.R``, and a fit reports the optimizer control R used (read
from the fitted model's ``optinfo``).

Fitted models: a fit request with ``keep`` stores the model under a new integer handle (unique
to this worker process) together with what re-evaluating its call needs: the model's call reads
``lme4::lmer(formula = f, data = d, REML = reml, control = ctrl, contrasts = contr, ...)`` and
``d``, ``f``, ``reml``, ``ctrl`` and ``contr`` live in the formula's environment, which is the
stored entry. So ``update()``, ``profile()``, lmerTest and emmeans work on the stored fit
without refitting. The store keeps the last :data:`MAX_KEPT` models (pinned ones are never
dropped); a request naming a handle the worker does not hold is answered with
``stage: "handle"``.

Requests carry only generated safe names (``v0_``, ``v1_``), level codes and numbers, never a
user's column name, level label or formula text; they reach R as data (the arguments of the
``op_*`` functions). The only R code evaluated is that of ``bridge/R``, plus one formula made of
safe names and operators, checked against a strict pattern on both sides before R parses it.
"""
from __future__ import annotations

import os
import pickle
import re
import struct
import sys
import time

#: What a formula sent to R may contain: safe names, 0/1, and the formula operators (``-`` only
#: to fix the variables' order, see ``engine._variable_order``).
SAFE_FORMULA = re.compile(r"^[v0-9_ ~+:()|-]+$")

#: What a column name sent to R may be: a generated safe name.
SAFE_NAME = re.compile(r"v\d+_")

#: How many fitted models the worker keeps (``compare`` needs up to 4 at once).
MAX_KEPT = 8

#: The sibling modules whose operations the worker serves (each has ``register(r) -> {op: handler}``).
OP_MODULES = ("_ops_infer", "_ops_emmeans")

#: The folder of the worker's R code: every ``*.R`` file in it is sourced once, at worker start,
#: into one environment of its own (:attr:`_R.env`). The files define functions (and the
#: store's state); those named ``op_*`` are what the worker calls.
R_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "R")


def r_files() -> list[str]:
    """The worker's R source files, in the order they are sourced."""
    return sorted(os.path.join(R_DIR, f) for f in os.listdir(R_DIR) if f.endswith(".R"))


# ------------------------------------------------------------------------------------------
# framing
# ------------------------------------------------------------------------------------------

def send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">Q", len(data)) + data)
    stream.flush()


def _read_exact(stream, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv(stream):
    head = _read_exact(stream, 8)
    if head is None:
        return None
    (n,) = struct.unpack(">Q", head)
    body = _read_exact(stream, n)
    if body is None:
        return None
    return pickle.loads(body)


# ------------------------------------------------------------------------------------------
# R side
# ------------------------------------------------------------------------------------------

class _R:
    """The embedded R session and the worker's R functions (``bridge/R/*.R``) in it."""

    def __init__(self) -> None:
        import numpy as np  # noqa: F401 - fail early with a clear message
        import rpy2
        from rpy2.rinterface_lib import callbacks

        self.console: list[str] = []
        self._loaded: set[str] = set()
        callbacks.consolewrite_print = self._keep
        callbacks.consolewrite_warnerror = self._keep
        callbacks.showmessage = self._keep
        callbacks.consoleread = lambda prompt: ""
        import rpy2.rinterface as ri
        import rpy2.robjects as ro

        self.ri, self.ro = ri, ro
        self.rpy2_version = rpy2.__version__
        if not self._base("requireNamespace")("lme4", quietly=True)[0]:
            raise RuntimeError("the R package lme4 is not installed")
        self._base("loadNamespace")("lme4")
        #: the environment holding the worker's R functions, sourced once from R_DIR
        self.env = self._base("new.env")(parent=ri.globalenv)
        for path in r_files():
            self._base("sys.source")(path, envir=self.env, **{"keep.source": False})
        self.call("op_setup", {"max_kept": MAX_KEPT})
        self._next = 0

    def _base(self, name: str):
        """A function of R's base package, called with Python values (see :func:`to_r`)."""
        f = self.ri.baseenv[name]
        return lambda *args, **kwargs: f(*(to_r(a) for a in args), **{k: to_r(v) for k, v in kwargs.items()})

    def call(self, name: str, *args, **kwargs):
        """Call the worker's R function ``name`` with Python values (see :func:`to_r`); the R value."""
        return self.env[name](*(to_r(a) for a in args), **{k: to_r(v) for k, v in kwargs.items()})

    # -- the store of fitted models ---------------------------------------------------------

    def new_handle(self) -> int:
        """A handle no other worker process of this host hands out (pid and a counter)."""
        self._next += 1
        return os.getpid() * 1_000_000 + self._next

    def has(self, handle) -> bool:
        return bool(self.call("op_has", key=str(int(handle)))[0])

    def key(self, handle) -> str:
        """The R key of a stored model; :class:`MissingModel` when the worker does not hold it."""
        if not self.has(handle):
            raise MissingModel(int(handle))
        return str(int(handle))

    def require(self, packages: tuple[str, ...], why: str) -> None:
        """Load R packages (once), or fail saying which are missing."""
        load = self._base("requireNamespace")
        missing = [p for p in packages if p not in self._loaded and not load(p, quietly=True)[0]]
        if missing:
            raise RuntimeError(f"the R package{'s' if len(missing) > 1 else ''} {' and '.join(missing)} "
                               f"{'are' if len(missing) > 1 else 'is'} needed for {why}")
        self._loaded.update(packages)

    def _keep(self, text: str) -> None:
        self.console.append(str(text))
        del self.console[:-50]

    def versions(self) -> dict:
        v = to_py(self.call("op_versions"))
        out = {"R": v["R"][0], "rpy2": self.rpy2_version}
        out.update({p: ver for p, ver in zip(v["packages"], v["package_versions"])})
        return out

    def fit(self, req: dict) -> dict:
        import numpy as np

        ftext = req["formula"]
        if not SAFE_FORMULA.match(ftext):
            raise ValueError("refusing a formula that is not made of safe names")
        matrices = req.get("matrices", {})
        for name in list(req["numeric"]) + list(req["factors"]) + list(matrices) + [req["weights"], req["offset"]]:
            if name and not SAFE_NAME.fullmatch(name):
                raise ValueError(f"refusing unsafe column name {name!r}")
        family, link, nagq = _glmm_words(req)
        handle = self.new_handle() if req.get("keep", False) else 0
        args = {
            "analysis": str(req["analysis"]), "formula": ftext, "reml": bool(req["reml"]),
            "family": family, "link": link, "nagq": nagq,
            "num": {k: np.asarray(v, dtype=np.float64) for k, v in req["numeric"].items()},
            "fac": {k: np.asarray(codes, dtype=np.int32) + np.int32(1) for k, (codes, _) in req["factors"].items()},
            "nlev": {k: int(n) for k, (_, n) in req["factors"].items()},
            "mat": {k: np.asarray(v, dtype=np.float64) for k, v in matrices.items()},
            "contrasts": str(req["contrasts"]), "weights": req["weights"] or "", "offset": req["offset"] or "",
            "key": str(handle) if handle else "",
        }
        rargs = to_r(args)
        t0 = time.perf_counter()
        res = self.call("op_fit", rargs)
        t1 = time.perf_counter()
        out = to_py(res)
        out["seconds_r"] = t1 - t0
        if handle and out.get("ok") is not None and bool(np.ravel(out["ok"])[0]):
            out["handle"] = handle
        return out

    def forget(self, req: dict) -> dict:
        self.call("op_forget", key=str(int(req["handle"])))
        return {"ok": True}

    def pin(self, req: dict) -> dict:
        on = bool(req.get("pin", True))
        key = self.key(req["handle"]) if on else str(int(req["handle"]))
        self.call("op_pin", key=key, on=on)
        return {"ok": True}

    @staticmethod
    def to_py(obj):
        return to_py(obj)


def _glmm_words(req: dict) -> tuple[str, str, int]:
    """A fit request's family, link and quadrature points, each checked against the words the
    spec schema declares (read from ``schemas/spec.schema.json``; "" for a linear model)."""
    import json

    if req["analysis"] not in ("lm", "lmm", "glmm"):
        raise ValueError(f"refusing analysis {req['analysis']!r}")
    if req["analysis"] != "glmm":
        return "", "", 1
    schema = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schemas",
                          "spec.schema.json")
    with open(schema, encoding="utf-8") as fh:
        options = json.load(fh)["$defs"]["options"]["properties"]
    family, link, nagq = req.get("family"), req.get("link"), req.get("nagq", 1)
    if family not in options["family"]["enum"] or link not in options["link"]["enum"]:
        raise ValueError(f"refusing family {family!r} or link {link!r}")
    if not isinstance(nagq, int) or isinstance(nagq, bool) or not 0 <= nagq <= options["nAGQ"]["maximum"]:
        raise ValueError(f"refusing nAGQ {nagq!r}")
    return str(family), str(link), int(nagq)


class MissingModel(LookupError):
    """A request names a fitted model this worker does not hold (dropped, or another worker's)."""

    def __init__(self, handle: int) -> None:
        super().__init__(f"the R worker no longer holds the fitted model {handle} (it keeps the last "
                         f"{MAX_KEPT} models it fitted, and a restarted worker holds none); fit the model again")


def to_r(value):
    """A Python value as an R value: ``str`` -> character, ``bool`` -> logical, ``int`` ->
    integer, ``float`` -> double (all of length 1); a list or tuple of ``str`` (empty included)
    -> character vector; a numpy array -> vector of its kind (matrix when 2-d); a dict -> named
    list. R values pass unchanged."""
    import numpy as np
    import rpy2.rinterface as ri

    if isinstance(value, ri.Sexp):
        return value
    if isinstance(value, dict):
        lst = ri.ListSexpVector([to_r(v) for v in value.values()])
        if value:
            lst.names = ri.StrSexpVector([str(k) for k in value])
        return lst
    if isinstance(value, str):
        return ri.StrSexpVector([value])
    if isinstance(value, (bool, np.bool_)):
        return ri.BoolSexpVector([bool(value)])
    if isinstance(value, (int, np.integer)):
        return ri.IntSexpVector([int(value)])
    if isinstance(value, (float, np.floating)):
        return ri.FloatSexpVector([float(value)])
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return ri.StrSexpVector(list(value))
    if isinstance(value, np.ndarray):
        return _r_array(value)
    raise TypeError(f"no R value for a {type(value).__name__}")


def _r_array(arr):
    """A numpy array (bool, integer or float; 1-d or 2-d) as an R vector or matrix."""
    import numpy as np
    import rpy2.rinterface as ri

    flat = np.ravel(arr, order="F")
    if arr.dtype == np.bool_:
        vec = ri.BoolSexpVector([bool(x) for x in flat])
    elif np.issubdtype(arr.dtype, np.integer):
        vec = ri.IntSexpVector.from_memoryview(memoryview(np.ascontiguousarray(flat, dtype=np.int32)))
    else:
        vec = ri.FloatSexpVector.from_memoryview(memoryview(np.ascontiguousarray(flat, dtype=np.float64)))
    if arr.ndim == 2:
        vec.do_slot_assign("dim", ri.IntSexpVector([int(n) for n in arr.shape]))
    elif arr.ndim != 1:
        raise TypeError("no R value for an array of more than 2 dimensions")
    return vec


def to_py(obj):
    """An R value as plain Python: named lists -> dict, vectors -> numpy arrays or lists of
    str, matrices -> 2-d arrays, NULL -> None."""
    import numpy as np
    import rpy2.rinterface as ri

    if obj is ri.NULL or isinstance(obj, type(ri.NULL)):
        return None
    if isinstance(obj, ri.ListSexpVector):
        items = [to_py(x) for x in obj]
        names = obj.names
        if names is not ri.NULL and not isinstance(names, type(ri.NULL)):
            return dict(zip([str(n) for n in names], items))
        return items
    if isinstance(obj, ri.StrSexpVector):
        return [None if x is ri.NA_Character else str(x) for x in obj]
    try:
        dim = tuple(int(d) for d in obj.do_slot("dim"))
    except LookupError:
        dim = None
    if isinstance(obj, ri.BoolSexpVector):
        arr = np.array([bool(x) if x is not ri.NA_Logical else False for x in obj], dtype=bool)
    elif isinstance(obj, (ri.IntSexpVector, ri.FloatSexpVector)):
        arr = _numbers(obj, np.int64 if isinstance(obj, ri.IntSexpVector) else np.float64, dim is not None)
    else:
        return str(obj)
    return arr if dim is None else arr.reshape(dim, order="F")


def _numbers(obj, dtype, has_dim: bool):
    """An R integer or double vector as a flat numpy array. A matrix is read element by element:
    rpy2's buffer view of an R array rearranges its strides in C, which was seen to crash the
    worker; plain vectors (fitted values, residuals) keep the fast buffer view."""
    import numpy as np

    if not len(obj):
        return np.zeros(0, dtype=dtype)
    if has_dim:
        return np.fromiter(obj, dtype=dtype, count=len(obj))
    return np.array(obj.memoryview(), dtype=dtype)


# ------------------------------------------------------------------------------------------
# main loop
# ------------------------------------------------------------------------------------------

def operations(r: _R) -> dict:
    """The registry: op name -> handler(request) -> reply."""
    import importlib

    ops = {"fit": r.fit, "forget": r.forget, "pin": r.pin,
           "versions": lambda m: {"ok": True, "versions": r.versions()},
           "ping": lambda m: {"ok": True, "pid": os.getpid()}}
    for name in OP_MODULES:
        for op, handler in importlib.import_module(name).register(r).items():
            if op in ops:
                raise RuntimeError(f"operation {op!r} registered twice")
            ops[op] = handler
    return ops


def main() -> int:
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull)
    sys.stdout = sys.stderr
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        r = _R()
        ops = operations(r)
        send(proto_out, {"ok": True, "versions": r.versions(), "pid": os.getpid()})
    except BaseException as exc:  # noqa: BLE001 - report why R could not start, then stop
        import traceback
        traceback.print_exc()
        send(proto_out, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    while True:
        msg = recv(proto_in)
        if msg is None:
            return 0
        op = msg.get("op") if isinstance(msg, dict) else None
        try:
            if op not in ops:
                reply = {"ok": False, "stage": "protocol", "error": f"unknown request {op!r}"}
            else:
                t0 = time.perf_counter()
                reply = ops[op](msg)
                reply["seconds_worker"] = time.perf_counter() - t0
        except MissingModel as exc:
            reply = {"ok": False, "stage": "handle", "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - every request gets an answer
            reply = {"ok": False, "stage": "worker", "error": f"{type(exc).__name__}: {exc}",
                     "console": "".join(r.console[-10:])}
        send(proto_out, reply)


if __name__ == "__main__":
    sys.exit(main())
