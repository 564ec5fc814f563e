"""One adapter per engine: set a case up (untimed), fit it once (timed), report what it reached.

Every ``once`` returns ``time_s`` (wall seconds of the timed part), ``cpu_s`` (CPU seconds of the
processes doing the work), ``objective`` (REML criterion, lme4's scale), ``feval`` (objective
evaluations by the optimizer as the engine counts them), ``converged`` and ``mem_mib`` (peak
resident memory increase during the fit).

Engines:

* ``native``: ``mixedbridge`` prepares the problem (``prepare_s``, reported separately) and
  ``NativeEngine.fit`` fits it (``time_s``).
* ``lme4``: ``lme4::lmer`` timed inside R by ``system.time`` (the fit alone: lme4's own model
  frame, optimization and convergence checks), in R embedded in the benchmark process through
  rpy2, with the bridge's data and control settings. The data frame is built before timing.
* ``lme4-bridge``: the end-to-end path a host uses: ``Lme4Engine.fit`` on a prepared problem
  (data to the long-lived R worker, ``lmer``, extraction of every result, back to Python).
* ``statsmodels``: ``statsmodels.formula.api.mixedlm(...).fit(reml=True)`` where the model can be
  expressed; formula processing included.
* ``mixedlm``: ``mixedlm.lmer(formula, data)`` with its defaults; formula processing included.
"""
from __future__ import annotations

import importlib
import os
import time
import warnings
from typing import Any

from .cases import Case
from .measure import PeakRSS

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return float("nan")


def _version(module: str) -> str | None:
    try:
        return importlib.import_module(module).__version__
    except Exception:  # noqa: BLE001 - absent or odd
        return None


def prepare_problem(case: Case, df, hint: set[str]):
    """What :func:`mixedbridge.analysis.prepare` does for a spec ``{"dataset": ...}``, on rows
    already loaded (so the timing excludes reading the CSV file)."""
    from mixedbridge import spec as specmod
    from mixedbridge.formula import parse_formula
    from mixedbridge.frame import model_frame
    from mixedbridge.problem import Problem

    spec = specmod.validate({"analysis": "lmm", "data": {"records": [{}]}, "formula": case.formula})
    desc = parse_formula(spec["formula"])
    frame = model_frame(df, desc, spec, hint)
    return Problem.build("lmm", desc, frame, spec["options"])


def text_factors(df, hint: set[str]):
    """A copy with the factor columns as text, so every peer treats them as categorical."""
    out = df.copy()
    for col in hint:
        if col in out.columns:
            out[col] = out[col].astype(str)
    return out


class Adapter:
    name = "?"
    label = "?"

    def unavailable(self) -> str | None:
        return None

    def versions(self) -> dict:
        return {}

    def cannot(self, case: Case) -> str | None:
        return None

    def setup(self, case: Case, df, hint):
        raise NotImplementedError

    def once(self, state) -> dict:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Native(Adapter):
    name, label = "native", "native"

    def versions(self) -> dict:
        import mixedbridge
        return {"mixedbridge": getattr(mixedbridge, "__version__", None)}

    def setup(self, case, df, hint):
        return case, df, hint

    def once(self, state) -> dict:
        from mixedbridge.engines import NativeEngine

        case, df, hint = state
        with PeakRSS() as mem:
            c0, t0 = time.process_time(), time.perf_counter()
            problem = prepare_problem(case, df, hint)
            t1 = time.perf_counter()
            fit = NativeEngine().fit(problem)
            t2, c2 = time.perf_counter(), time.process_time()
        oi = fit.optinfo or {}
        return {"time_s": t2 - t1, "prepare_s": t1 - t0, "cpu_s": c2 - c0, "objective": fit.reml_crit,
                "feval": oi.get("feval"), "deriv_feval": oi.get("deriv_feval"),
                "converged": oi.get("converged"), "singular": oi.get("singular"), "mem_mib": mem.delta_mib}


# -- lme4 inside R ----------------------------------------------------------------------------

_R_TIMED = r"""
local({
  make_data <- function(num, fac, nlev) {
    cols <- num
    for (nm in names(fac)) {
      cols[[nm]] <- structure(fac[[nm]], levels = paste0("L", seq_len(nlev[[nm]]) - 1L), class = "factor")
    }
    list2DF(cols)
  }
  timed_lmer <- function(d, ftext, reml) {
    f <- stats::as.formula(ftext, env = new.env(parent = baseenv()))
    ctrl <- lme4::lmerControl(optimizer = "nloptwrap",
                              optCtrl = list(xtol_abs = 1e-8, ftol_abs = 1e-8, maxeval = 1e5))
    old <- options(contrasts = c("contr.treatment", "contr.poly"), warn = -1)
    on.exit(options(old))
    st <- system.time(fm <- lme4::lmer(f, data = d, REML = reml, control = ctrl), gcFirst = FALSE)
    code <- fm@optinfo$conv$lme4$code
    list(elapsed = st[["elapsed"]], cpu = st[["user.self"]] + st[["sys.self"]],
         crit = if (reml) lme4::REMLcrit(fm) else stats::deviance(fm),
         feval = as.integer(fm@optinfo$feval),
         converged = fm@optinfo$conv$opt == 0 && (is.null(code) || all(code == 0)),
         singular = lme4::isSingular(fm))
  }
  versions <- function() {
    bl <- tryCatch(extSoftVersion()[["BLAS"]], error = function(e) "")
    la <- tryCatch(La_library(), error = function(e) "")
    list(R = paste(R.version$major, R.version$minor, sep = "."),
         lme4 = as.character(utils::packageVersion("lme4")),
         Matrix = as.character(utils::packageVersion("Matrix")),
         lmerTest = tryCatch(as.character(utils::packageVersion("lmerTest")), error = function(e) ""),
         pbkrtest = tryCatch(as.character(utils::packageVersion("pbkrtest")), error = function(e) ""),
         blas = bl, lapack = la)
  }
  list(make_data = make_data, timed_lmer = timed_lmer, versions = versions)
})
"""


class EmbeddedR:
    """R through rpy2 in this process, quiet, with lme4 loaded (benchmark use only)."""

    _inst = None

    @classmethod
    def get(cls) -> EmbeddedR:
        if cls._inst is None:
            cls._inst = cls()
        return cls._inst

    def __init__(self) -> None:
        from rpy2.rinterface_lib import callbacks

        callbacks.consolewrite_print = lambda s: None
        callbacks.consolewrite_warnerror = lambda s: None
        callbacks.showmessage = lambda s: None
        import rpy2.rinterface as ri
        import rpy2.robjects as ro

        self.ri, self.ro = ri, ro
        ro.r('invisible(loadNamespace("lme4"))')
        self.funcs = ro.r(_R_TIMED)

    def fn(self, name: str):
        return self.funcs.rx2(name)

    def to_py(self, obj) -> dict:
        out = {}
        for key, value in zip(obj.names, obj):
            vals = list(value)
            out[str(key)] = vals[0] if len(vals) == 1 else vals
        return out

    def data_frame(self, request: dict):
        import numpy as np

        ri = self.ri

        def named(items: dict):
            lst = ri.ListSexpVector(list(items.values()))
            if items:
                lst.names = ri.StrSexpVector(list(items.keys()))
            return lst

        num = {k: ri.FloatSexpVector.from_memoryview(np.ascontiguousarray(v, dtype=np.float64).data)
               for k, v in request["numeric"].items()}
        fac = {k: ri.IntSexpVector.from_memoryview(memoryview(np.ascontiguousarray(c, dtype=np.int32) + np.int32(1)))
               for k, (c, _) in request["factors"].items()}
        nlev = {k: ri.IntSexpVector([int(n)]) for k, (_, n) in request["factors"].items()}
        return self.fn("make_data")(named(num), named(fac), named(nlev))


class Lme4(Adapter):
    name, label = "lme4", "lme4 (lmer in R)"

    def unavailable(self) -> str | None:
        try:
            import rpy2  # noqa: F401
        except ImportError:
            return "rpy2 not installed"
        try:
            EmbeddedR.get()
        except Exception as exc:  # noqa: BLE001
            return f"R/lme4 not usable: {exc}"
        return None

    def versions(self) -> dict:
        r = EmbeddedR.get()
        import rpy2
        out = {k: str(v) for k, v in r.to_py(r.fn("versions")()).items()}
        out["rpy2"] = rpy2.__version__
        return out

    def setup(self, case, df, hint):
        from mixedbridge.bridge.engine import SafeNames, request_for

        problem = prepare_problem(case, df, hint)
        names = SafeNames(problem.frame.data)
        req = request_for(problem, names)
        r = EmbeddedR.get()
        return r, r.data_frame(req), req["formula"]

    def once(self, state) -> dict:
        r, frame, ftext = state
        ri = r.ri
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            res = r.to_py(r.fn("timed_lmer")(frame, ri.StrSexpVector([ftext]), ri.BoolSexpVector([True])))
            wall = time.perf_counter() - t0
        return {"time_s": float(res["elapsed"]), "cpu_s": float(res["cpu"]), "call_s": wall,
                "objective": float(res["crit"]), "feval": int(res["feval"]),
                "converged": bool(res["converged"]), "singular": bool(res["singular"]),
                "mem_mib": mem.delta_mib}


class Lme4Bridge(Adapter):
    name, label = "lme4-bridge", "lme4 via bridge (end to end)"

    def __init__(self) -> None:
        self.engine: Any = None  # an Lme4Engine once R is found

    def unavailable(self) -> str | None:
        try:
            from mixedbridge.bridge.engine import Lme4Engine
            from mixedbridge.bridge.session import RSession
        except ImportError as exc:
            return f"bridge not importable: {exc}"
        try:
            self.engine = Lme4Engine(r_session=RSession())
            self.engine.warm()
        except Exception as exc:  # noqa: BLE001
            return f"R worker does not start: {exc}"
        return None

    def versions(self) -> dict:
        return dict(self.engine.session.versions) if self.engine else {}

    def setup(self, case, df, hint):
        return prepare_problem(case, df, hint)

    def once(self, problem) -> dict:
        pid = self.engine.session.proc.pid
        w0 = _proc_cpu(pid)
        with PeakRSS(pid) as mem:
            c0, t0 = time.process_time(), time.perf_counter()
            fit = self.engine.fit(problem)
            t1, c1 = time.perf_counter(), time.process_time()
        oi = fit.optinfo or {}
        return {"time_s": t1 - t0, "cpu_s": (c1 - c0) + (_proc_cpu(pid) - w0), "objective": fit.reml_crit,
                "feval": oi.get("feval"), "converged": oi.get("converged"), "singular": oi.get("singular"),
                "mem_mib": mem.delta_mib}

    def close(self) -> None:
        if self.engine is not None:
            self.engine.session.close()


class MixedLM(Adapter):
    name, label = "mixedlm", "mixedlm (PyPI)"

    def unavailable(self) -> str | None:
        try:
            import mixedlm  # noqa: F401
        except ImportError:
            return "mixedlm not installed (pip install 'mixedbridge[bench]')"
        return None

    def versions(self) -> dict:
        return {"mixedlm": _version("mixedlm")}

    def setup(self, case, df, hint):
        return case.formula, text_factors(df, hint)

    def once(self, state) -> dict:
        import mixedlm

        formula, df = state
        with PeakRSS() as mem, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c0, t0 = time.process_time(), time.perf_counter()
            res = mixedlm.lmer(formula, df)
            t1, c1 = time.perf_counter(), time.process_time()
        crit = res.REMLcrit()
        return {"time_s": t1 - t0, "cpu_s": c1 - c0, "objective": float(crit),
                "feval": getattr(res, "function_evals", None), "converged": bool(getattr(res, "converged", False)),
                "optimizer": str(getattr(res, "optimizer", "")), "mem_mib": mem.delta_mib}


class Statsmodels(Adapter):
    name, label = "statsmodels", "statsmodels MixedLM"
    #: Address-space cap for its process: the one-group device builds dense designs.
    mem_cap_gb = 8

    def unavailable(self) -> str | None:
        try:
            import statsmodels  # noqa: F401
        except ImportError:
            return "statsmodels not installed (pip install 'mixedbridge[bench]')"
        return None

    def versions(self) -> dict:
        return {"statsmodels": _version("statsmodels")}

    def cannot(self, case: Case) -> str | None:
        return None if case.statsmodels else (case.sm_note or "not expressible")

    def setup(self, case, df, hint):
        df = text_factors(df, hint)
        kw = dict(case.statsmodels)
        for name, cols in kw.pop("derive", {}).items():   # interaction factors as one column
            df[name] = df[cols].astype(str).agg(":".join, axis=1)
        if kw.get("groups") == "__one__":
            df["__one__"] = 1
        return kw, df

    def once(self, state) -> dict:
        import statsmodels.formula.api as smf

        kw, df = state
        kw = dict(kw)
        formula = kw.pop("formula")
        with PeakRSS() as mem, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c0, t0 = time.process_time(), time.perf_counter()
            model = smf.mixedlm(formula, df, **kw)
            calls = {"f": 0, "g": 0}
            loglike, score = model.loglike, model.score

            def counted_loglike(*a, **k):
                calls["f"] += 1
                return loglike(*a, **k)

            def counted_score(*a, **k):
                calls["g"] += 1
                return score(*a, **k)

            model.loglike, model.score = counted_loglike, counted_score
            res = model.fit(reml=True)
            t1, c1 = time.perf_counter(), time.process_time()
        return {"time_s": t1 - t0, "cpu_s": c1 - c0, "objective": float(-2.0 * res.llf), "feval": calls["f"],
                "grad_evals": calls["g"], "converged": bool(res.converged), "mem_mib": mem.delta_mib}


ADAPTERS = {"native": Native, "lme4": Lme4, "lme4-bridge": Lme4Bridge, "statsmodels": Statsmodels,
            "mixedlm": MixedLM}
