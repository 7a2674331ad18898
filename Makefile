# The README's commands: `make run` starts everything, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.lock pyproject.toml | cksum | cut -d' ' -f1)
PIP_COMPILE := $(BIN)/pip-compile --quiet --generate-hashes --strip-extras \
	--no-emit-index-url --no-emit-find-links --constraint requirements.txt

.PHONY: run test setup install check-python lock lint format bench images clean

# Python 3.11 or newer, with the venv module and its ensurepip (Debian ships them apart).
check-python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "make: $(PYTHON) is missing or older than 3.11: install Python 3.11 or newer," \
			"or name one: make PYTHON=python3.12 ..." >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
		echo "make: $(PYTHON) has no venv module with ensurepip: install it" \
			"(Debian/Ubuntu: apt-get install python3-venv, or python3.X-venv)" >&2; exit 1; }

# Every package at the version and hashes of the lock, then the package itself (editable) for
# the paas commands in $(BIN).
$(STAMP): requirements-dev.lock pyproject.toml | check-python
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		-r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# After a change of requirements.txt (the direct dependencies' pins) or pyproject.toml: resolve
# everything again into the locks, with hashes (pip-tools). Commit the three files together.
lock: install
	$(PIP_COMPILE) --output-file requirements.lock pyproject.toml
	$(PIP_COMPILE) --extra dev --output-file requirements-dev.lock pyproject.toml

setup: install
	$(BIN)/flask --app wsgi paas setup

# SCALE: copies per Procfile process, as honcho's -c takes them (SCALE=worker=3,orquestrator=2).
SCALE ?=
run: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start $(if $(SCALE),-c $(SCALE))

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The paas-node image (podman, busybox-static), built locally: quick when it is current.
images: install
	$(BIN)/python -m bigdata_paas.nodes.image

bench: install
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/placement.py
	$(BIN)/python bench/render.py

# var holds the process driver's records of running nodes: forgetting them would orphan them.
clean:
	@if ls var/agents/*/state/records/*.json >/dev/null 2>&1; then \
		echo "nodes still run (var/agents/*/state/records): with make run running, destroy them first:"; \
		echo "  $(BIN)/flask --app wsgi paas destroy-all --wait"; exit 1; fi
	rm -rf var .pytest_cache
