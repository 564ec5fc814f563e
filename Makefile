# Two commands do everything on a fresh Debian machine (as root):
#   make run    set up, then run the chapter's analyses on the bundled data
#   make test   set up, then run the whole test suite
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run test check bench gallery clean

setup: $(STAMP)

# R and its packages (Debian) come before rpy2, which builds against them.
$(STAMP): pyproject.toml bridge/setup_r.sh
	bash bridge/setup_r.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[r,plots,test]'
	touch $(STAMP)

run: setup
	$(VENV)/bin/mixedbridge run examples/*.json

test: setup
	$(PY) -m pytest

check: setup
	for f in examples/*.json; do $(VENV)/bin/mixedbridge check $$f || exit 1; done

# Speed benchmarks (~20 min): rewrites docs/benchmarks.md and benchmarks/results/latest.json.
# Peers (statsmodels, mixedlm) are installed when missing, skipped if that fails.
bench: setup
	$(PY) -c "import statsmodels, mixedlm" 2>/dev/null || $(PY) -m pip install --quiet -e '.[bench]' || echo "bench: peers not installed; they will be skipped"
	$(PY) -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
