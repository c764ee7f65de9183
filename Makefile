# One venv, two commands: `make dev` runs the whole stack, `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install dev demo test lint format bench faults clean

$(BIN)/notiflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/notiflow

dev: install
	$(BIN)/notiflow dev

demo: install
	$(BIN)/notiflow demo

test: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench.pipeline

# Real faults into real processes (issue 8 §3); prints a table, writes faults/results.json. ~20 min.
faults: install
	$(BIN)/python -m faults

clean:
	rm -rf $(VENV) .notiflow .pytest_cache
