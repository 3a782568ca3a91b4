# Everything a fresh machine needs is installed into .venv by these targets; only python3
# (>= 3.11, with venv) and make are assumed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test workers: one per CPU this process may use, and at least two. Most of the suite's time
# is waiting on real processes, sockets and timers, so two share even a single core well.
WORKERS ?= $(shell $(PYTHON) -c 'import os; print(max(2, len(os.sched_getaffinity(0))))')

.PHONY: run demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: set up and run the service on its defaults (instance 'demo'; Ctrl-C stops it)
run: $(STAMP)
	$(BIN)/pywats serve --instance demo

## demo: the whole product in a temporary directory (receiver, service, reports, TUI; q quits)
demo: $(STAMP)
	$(BIN)/pywats demo

## test: set up and run the whole test suite, on every core (pytest-xdist; WORKERS=N to choose)
test: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) --dist worksteal

## lint: ruff (lint + format check) and mypy (strict)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## bench: run the benchmarks (they print figures; they are not tests)
bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
