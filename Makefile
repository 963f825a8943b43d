# One entry point for contributors and CI. `make test` works on a fresh machine:
# it creates the virtualenv, installs the project, builds the test bed (cached
# under ~/.cache/scalingdemo) and runs every test, integration tests included.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: test install lint unit bed-build bed-up bed-down demo demo-down clean

test: install lint bed-build
	$(BIN)/pytest

install: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -m unit

bed-build: install
	$(BIN)/python -m tests.testbed build

bed-up: install
	$(BIN)/python -m tests.testbed up

bed-down: install
	$(BIN)/python -m tests.testbed down

# The kind quickstart (needs kind, kubectl, helm and docker; see README.md).
demo:
	examples/kind/up.sh

demo-down:
	examples/kind/down.sh

clean:
	rm -rf $(VENV) .testbed .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
