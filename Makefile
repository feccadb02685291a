# Two commands on a fresh machine: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
VMAC := $(VENV)/bin/vmac
PYTEST_ARGS ?= -ra --durations=15

# Keep Prefect and Great Expectations offline and quiet (STACK.md, "Prefect 3.8 offline").
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export GX_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90

.PHONY: run test test-fast test-slow install install-dev minkowski bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Stamps re-run pip only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(VMAC) run

test: test-fast test-slow

test-fast: install-dev
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: install-dev
	$(PY) -m pytest -m slow $(PYTEST_ARGS) || [ $$? -eq 5 ]

minkowski: install-dev
	bash scripts/build_minkowski.sh $(abspath $(VENV))

# Every script in benchmarks/, one after the other (each writes its JSON to benchmarks/results/).
BENCHMARK_SCRIPTS := $(sort $(wildcard benchmarks/*.py))

bench: install
	@set -e; for script in $(BENCHMARK_SCRIPTS); do echo "== $$script"; $(PY) $$script; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
