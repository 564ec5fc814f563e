"""The machine and software a benchmark ran on."""
from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from typing import Any


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass
    return None


def _blas() -> dict:
    """numpy's and scipy's BLAS/LAPACK, and the thread pools actually loaded (threadpoolctl when
    installed)."""
    out: dict[str, Any] = {}
    try:
        import numpy as np
        cfg: Any = np.show_config(mode="dicts")
        deps = cfg.get("Build Dependencies", {})
        out["numpy"] = {k: f"{v.get('name')} {v.get('version', '')}".strip() for k, v in deps.items()
                        if k in ("blas", "lapack")}
    except Exception:  # noqa: BLE001 - older numpy
        pass
    try:
        import scipy
        cfg = scipy.show_config(mode="dicts")
        deps = cfg.get("Build Dependencies", {})
        out["scipy"] = {k: f"{v.get('name')} {v.get('version', '')}".strip() for k, v in deps.items()
                        if k in ("blas", "lapack")}
    except Exception:  # noqa: BLE001
        pass
    try:
        from threadpoolctl import threadpool_info
        out["threadpools"] = [{k: d.get(k) for k in ("internal_api", "version", "num_threads", "filepath")}
                              for d in threadpool_info()]
    except Exception:  # noqa: BLE001 - not installed
        out["threadpools"] = "threadpoolctl not installed"
    threads = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
               if k in os.environ}
    out["thread_env"] = threads or "unset (libraries use all cores)"
    return out


def _git() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                                  cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    dirty = git("status", "--porcelain", "--", "module", "bridge")
    return {"commit": git("rev-parse", "--short", "HEAD"), "subject": git("log", "-1", "--format=%s"),
            "lmm_commit": git("log", "-1", "--format=%h %s", "--", "module/lmm"),
            "uncommitted_engine_changes": bool(dirty)}


def describe() -> dict:
    import numpy
    import pandas
    import scipy
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "pandas": pandas.__version__,
        "blas": _blas(),
        "git": _git(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
