# Two commands do everything on a fresh Debian machine (as root):
#   make run    set up, then run the chapter's analyses on the bundled data
#   make test   set up, then run the whole test suite
# While editing: make test-fast (no R, nothing slow) and make lint (ruff, mypy).
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run test test-fast lint check bench bench-glmm gallery clean

setup: $(STAMP)

# R and its packages (Debian) come before rpy2, which builds against them. rpy2 in its ABI mode
# needs no compiler or Python headers (a machine with gcc but no python3-dev fails the API mode;
# docs/setup.md).
$(STAMP): pyproject.toml bridge/setup_r.sh module/lmm/_envelope.c
	bash bridge/setup_r.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	RPY2_CFFI_MODE=ABI $(PY) -m pip install --quiet -e '.[r,plots,test,dask]'
	touch $(STAMP)

run: setup
	$(VENV)/bin/mixedbridge run examples/*.json examples/glmm/*.json

test: setup
	$(PY) -m pytest -n auto

# The quick loop (markers in pyproject.toml): no test that needs R or takes more than ~5 s.
test-fast: setup
	$(PY) -m pytest -n auto -m "not slow and not r"

# ruff on the tree; mypy on the package, the tests and the benchmarks. mypy cannot map the
# package's folders (module/ is mixedbridge, bridge/ is mixedbridge.bridge), so they are linked
# into build/typecheck/mixedbridge first. Both tools run; either failing fails the target.
TYPECHECK := build/typecheck/mixedbridge
lint: setup
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)
	ln -s $(CURDIR)/module/* $(CURDIR)/bridge $(TYPECHECK)/
	status=0; $(VENV)/bin/ruff check . || status=1; $(VENV)/bin/mypy || status=1; exit $$status

check: setup
	for f in examples/*.json; do $(VENV)/bin/mixedbridge check $$f || exit 1; done

# Speed benchmarks (~20 min): rewrites docs/benchmarks.md and benchmarks/results/latest.json.
# Peers (statsmodels, mixedlm) are installed when missing, skipped if that fails.
bench: setup
	$(PY) -c "import statsmodels, mixedlm" 2>/dev/null || $(PY) -m pip install --quiet -e '.[bench]' || echo "bench: peers not installed; they will be skipped"
	$(PY) -m benchmarks.run $(BENCH_ARGS)

# GLMM speed (~2 min): native vs glmer (Rscript), mixedlm and statsmodels' Bayesian GLMMs on
# VerbAgg, grouseticks and cbpp (nAGQ = 25); rewrites docs/benchmarks-glmm.md.
bench-glmm: setup
	$(PY) -c "import statsmodels, mixedlm" 2>/dev/null || $(PY) -m pip install --quiet -e '.[bench]' || echo "bench-glmm: peers not installed; they will be skipped"
	$(PY) -m benchmarks.glmm $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
