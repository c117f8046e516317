# The README's two commands: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench clean

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
	DLP_THREADS=1 $(BIN)/python -m pytest --durations=25

# the edit loop: unit and parity tests; `make test` adds the end-to-end ones (marked slow)
test-fast: setup
	$(BIN)/ruff check src tests benchmarks
	DLP_THREADS=1 $(BIN)/python -m pytest -m "not slow"

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: setup
	$(BIN)/python benchmarks/run_quality.py l1 l2

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
