# One entry point for contributors and CI. `make test` works on a fresh machine:
# it creates the virtualenv, installs the project, builds the test bed (cached
# under ~/.cache/scalingdemo) and runs every test, integration tests included.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: test install lint unit apt-deps bed-build bed-up bed-down demo demo-down clean

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

# What the bed's real node and image builds need from Debian. Installed only when one is
# missing, so a machine that has them needs neither root nor the network for this step.
APT_PACKAGES := containerd runc containernetworking-plugins buildah skopeo mmdebstrap iptables \
	iproute2 socat gcc libc6-dev util-linux

apt-deps:
	@missing="$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q '^install ok installed$$' || echo $$p; done)"; \
	if [ -n "$$missing" ]; then \
		echo "installing from Debian:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

bed-build: install apt-deps
	$(BIN)/python -m tests.testbed build

bed-up: install
	$(BIN)/python -m tests.testbed up

bed-down: install
	$(BIN)/python -m tests.testbed down

# The demo: on kind where kind and docker are installed (the quickstart, see README.md),
# otherwise on the project's own local cluster (the bed with a real node). DEMO=kind or
# DEMO=local chooses; DEMO_DIR is where the local one keeps its state.
DEMO ?= $(if $(and $(shell command -v kind),$(shell command -v docker)),kind,local)
DEMO_DIR ?= .testbed/demo

ifeq ($(DEMO),kind)
demo:
	examples/kind/up.sh

demo-down:
	examples/kind/down.sh
else
demo: bed-build
	$(BIN)/python -m tests.testbed demo --run-dir $(DEMO_DIR)

demo-down: install
	$(BIN)/python -m tests.testbed down --run-dir $(DEMO_DIR)
endif

clean:
	rm -rf $(VENV) .testbed .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
