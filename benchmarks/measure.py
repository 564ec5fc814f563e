"""Process-level measurements: peak resident memory (VmHWM, resettable on Linux) and load."""
from __future__ import annotations

import os
import resource


def _status(pid: int | str = "self") -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])  # kB
    except OSError:
        pass
    return out


class PeakRSS:
    """Peak resident memory of a process while a block runs, as the increase over its resident size
    at the start (MiB). Resets the kernel's high-water mark through ``/proc/PID/clear_refs``; where
    that is not possible (not Linux, no permission) the increase is measured against the lifetime
    peak and may read 0."""

    def __init__(self, pid: int | str = "self") -> None:
        self.pid = pid
        self.start_mib: float | None = None
        self.peak_mib: float | None = None
        self.delta_mib: float | None = None
        self.reset_ok = False

    def __enter__(self) -> PeakRSS:
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as fh:
                fh.write("5")
            self.reset_ok = True
        except OSError:
            self.reset_ok = False
        st = _status(self.pid)
        self.start_mib = st.get("VmRSS", 0) / 1024
        return self

    def __exit__(self, *exc) -> None:
        st = _status(self.pid)
        self.peak_mib = st.get("VmHWM", 0) / 1024
        self.delta_mib = max(0.0, self.peak_mib - (self.start_mib or 0.0)) if self.reset_ok else None


def maxrss_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []
