# Everything a fresh machine needs is installed into .venv by these targets; only python3
# (>= 3.11, with venv) and make are assumed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

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

## test: set up and run the whole test suite, on every core (pytest-xdist)
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist worksteal

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
