# The README's two set-up commands: `make demo` and `make test`.
# Both create .venv when missing and install torch==2.13.0 first (a CPU wheel on
# these machines; an unpinned torch would pull a multi-GB CUDA build).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.nasfcn-installed
TORCH  := torch==2.13.0

.PHONY: demo test lint install clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	@echo ">> installing $(TORCH) first, then nasfcn[dev] (one minute on a fresh machine)"
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m nasfcn.demo

# --durations=25: every run (and CI log) ends with the 25 slowest tests, to keep the suite's time in view.
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest --durations=25 $(PYTEST_ARGS)

# Style, types (mypy, config in pyproject.toml) and the import contracts of docs/architecture.md.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .import_linter_cache *.egg-info
