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

# The kind quickstart (needs kind, kubectl, helm and docker; see README.md).
demo:
	examples/kind/up.sh

demo-down:
	examples/kind/down.sh

clean:
	rm -rf $(VENV) .testbed .pytest_cache .ruff_cache
