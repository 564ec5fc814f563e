#!/bin/sh
# Idempotent set-up of R for the lme4 engine (Debian/Ubuntu, run as root or with sudo).
# Quick no-op when Rscript and the R packages of R_PKGS are present; otherwise: apt-get update,
# then install r-base-core and the r-cran-* packages (car is the tests' reference for an lm's
# type II/III tables, afex for JASP's own fits and plots, performance for R² and the ICC),
# without Debian's recommended packages.
# With PYTHON=/path/to/python set, also installs rpy2 (>=3.5,<3.6) there when it is missing.
set -eu

R_PKGS="lme4 lmerTest pbkrtest emmeans car afex performance"
DEBS="r-base-core r-cran-lme4 r-cran-lmertest r-cran-pbkrtest r-cran-emmeans r-cran-car r-cran-afex r-cran-performance"

have_r() {
    command -v Rscript >/dev/null 2>&1 || return 1
    Rscript --vanilla -e 'p <- c("lme4", "lmerTest", "pbkrtest", "emmeans", "car", "afex",
             "performance");
        ok <- nzchar(vapply(p, function(x) system.file(package = x), ""));
        q(status = if (all(ok)) 0L else 1L)' >/dev/null 2>&1
}

if have_r; then
    echo "setup_r: R and the packages ($R_PKGS) are present"
else
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "setup_r: R or an R package is missing; run as root: apt-get install -y $DEBS" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup_r: no apt-get here; install R and the R packages $R_PKGS by hand" >&2
        exit 1
    fi
    echo "setup_r: installing $DEBS"
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $DEBS
    have_r || { echo "setup_r: R packages still missing after apt-get" >&2; exit 1; }
fi

if [ -n "${PYTHON:-}" ]; then
    if "$PYTHON" -c "import rpy2" >/dev/null 2>&1; then
        echo "setup_r: rpy2 is present"
    else
        "$PYTHON" -m pip install 'rpy2>=3.5,<3.6'
    fi
fi
