# The README's two commands: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

demo: setup
	$(BIN)/dlp run l2 --preset quick --data embedded

test: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	DLP_THREADS=1 $(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: setup
	$(BIN)/python benchmarks/run_quality.py l1 l2

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
