"""``mixedbridge doctor``: which R, R packages and rpy2 are there, and what to install.

Works without R and without rpy2: it then says what is missing and how to install it. R is
asked through ``Rscript`` (constant code) and rpy2 through a short child process, so the
calling process never loads R.
"""
from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys

#: The R packages the R engine and later inference use, with their Debian packages.
R_PACKAGES = {"lme4": "r-cran-lme4", "lmerTest": "r-cran-lmertest", "pbkrtest": "r-cran-pbkrtest",
              "emmeans": "r-cran-emmeans"}

_R_QUERY = (
    'cat("R", paste(R.version$major, R.version$minor, sep = "."), "\\n", sep = "\\t");'
    'for (p in c("lme4", "lmerTest", "pbkrtest", "emmeans")) '
    'cat(p, tryCatch(as.character(utils::packageVersion(p)), error = function(e) "-"), "\\n", sep = "\\t")'
)

_RPY2_QUERY = ("import rpy2.robjects as ro; "
               "print(ro.r('paste(R.version$major, R.version$minor, sep = \".\")')[0])")


def _r_versions(rscript: str) -> tuple[dict[str, str | None], str | None]:
    try:
        out = subprocess.run([rscript, "--vanilla", "-e", _R_QUERY], capture_output=True, text=True,
                             timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {}, f"Rscript failed: {exc}"
    found: dict[str, str | None] = {}
    for line in out.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            found[parts[0].strip()] = None if parts[1].strip() == "-" else parts[1].strip()
    if "R" not in found:
        return {}, f"Rscript failed: {(out.stderr or out.stdout).strip()[-400:]}"
    return found, None


def _rpy2_check() -> tuple[str | None, str | None]:
    """(R version rpy2 embeds, error) from a child process."""
    try:
        out = subprocess.run([sys.executable, "-c", _RPY2_QUERY], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    if out.returncode != 0:
        lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
        return None, lines[-1] if lines else f"exit status {out.returncode}"
    return out.stdout.strip().splitlines()[-1], None


def doctor() -> dict:
    """R, lme4, lmerTest, pbkrtest, emmeans and rpy2 versions; ``missing`` and ``install`` say
    what to add; ``ok`` is true when the lme4 engine can run."""
    info: dict = {"python": sys.version.split()[0]}
    missing: list[str] = []
    apt: list[str] = []
    rscript = shutil.which("Rscript")
    if rscript is None:
        info["R"] = None
        info.update({p: None for p in R_PACKAGES})
        missing += ["R"] + list(R_PACKAGES)
        apt += ["r-base-core"] + list(R_PACKAGES.values())
    else:
        found, err = _r_versions(rscript)
        info["R"] = found.get("R")
        if err:
            info["R_error"] = err
            missing.append("R")
            apt.append("r-base-core")
        for pkg, deb in R_PACKAGES.items():
            info[pkg] = found.get(pkg)
            if info[pkg] is None:
                missing.append(pkg)
                apt.append(deb)
    try:
        info["rpy2"] = importlib.metadata.version("rpy2")
    except importlib.metadata.PackageNotFoundError:
        info["rpy2"] = None
        missing.append("rpy2")
    if info["rpy2"] is not None and info["R"] is not None:
        embedded, err = _rpy2_check()
        info["rpy2_embeds_R"] = embedded
        if err:
            info["rpy2_error"] = err
            missing.append("a working rpy2 (rpy2>=3.5,<3.6 for R < 4.4)")
    steps = []
    if apt:
        steps.append("apt-get update && DEBIAN_FRONTEND=noninteractive "
                     "apt-get install -y --no-install-recommends " + " ".join(apt))
    if info["rpy2"] is None or "rpy2_error" in info:
        steps.append("pip install 'mixedbridge[r]'")
    info["missing"] = missing
    info["install"] = " ; then ".join(steps) if steps else "nothing to install"
    info["ok"] = not any(m in missing for m in ("R", "lme4", "rpy2")) and "rpy2_error" not in info
    return info


if __name__ == "__main__":
    for key, value in doctor().items():
        print(f"{key}: {value}")
