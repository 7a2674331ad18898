# The README's commands: `make run` starts everything, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test setup install lint format bench images clean

# The pinned requirements, then the package itself (editable) for the paas command in $(BIN).
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

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
