# Two commands a user needs: `make demo` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.geoproc-installed
SAMPLE_SIZE ?= small
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_HOME ?= $(CURDIR)/.prefect

.PHONY: install demo test test-slow test-e2e test-all lint bench clean stack-up stack-down

install: $(STAMP)

# constraints.txt pins the whole dependency tree (torch to the CPU build on disk).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

demo: install
	$(BIN)/geoproc demo --archive data/sample-$(SAMPLE_SIZE) --size $(SAMPLE_SIZE) --out output

test: install
	$(BIN)/python -m pytest -q

# Slower end-to-end tests (local stack, fault injection, kills); CI runs them after `make test`.
test-slow: install
	$(BIN)/python -m pytest -q -m slow

test-all: install
	$(BIN)/python -m pytest -q -m "slow or not slow"

# A local Prefect + Dask + S3 + STAC stack as separate processes (configure with GEOPROC_STACK_*).
stack-up: install
	./infra/local/up.sh

stack-down:
	./infra/local/down.sh

test-e2e: install
	$(BIN)/python -m pytest -q -m slow tests/infra/test_infra_stack_e2e.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf output data/sample-* .prefect
