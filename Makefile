# One target per gate. `make demo` and `make test` set themselves up on a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON     ?= $(shell scripts/find-python)
VENV       := .venv
PY         := $(VENV)/bin/python
SAM_VENV   := .tools/sam
SAM        := $(SAM_VENV)/bin/sam
STAMP      := $(VENV)/.installed

.PHONY: help setup demo test test-fast soak lint format typecheck validate build bench invoke deploy pr clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

setup: $(STAMP) ## Create .venv with the package and its development extras
	@scripts/fetch-victoriametrics

demo: setup ## Run the whole key lifecycle on the embedded local stack (no AWS account)
	$(VENV)/bin/tokenwarden demo

test: setup ## Unit, integration, end-to-end and infrastructure tests
	$(PY) -m pytest -q -n 2 --dist loadfile

SOAK_STEPS ?= 10000

soak: setup ## The lifecycle property machine, deep: SOAK_STEPS steps (default 10000) on the harsh embedded world
	set -o pipefail; TOKENWARDEN_SOAK_STEPS=$(SOAK_STEPS) POWERTOOLS_LOG_LEVEL=CRITICAL \
		$(PY) -m pytest -q -s tests/integration/test_lifecycle_machine.py 2>&1 | grep -v '^{"level"'

test-fast: setup ## Unit tests only
	$(PY) -m pytest -q tests/unit

lint: setup ## ruff and mypy
	$(PY) -m ruff check src tests functions benchmarks scripts/invoke
	$(PY) -m ruff format --check src tests functions benchmarks
	$(PY) -m mypy

format: setup
	$(PY) -m ruff format src tests functions
	$(PY) -m ruff check --fix src tests functions

CHECKOV_VENV := .tools/checkov
CHECKOV      := $(CHECKOV_VENV)/bin/checkov

$(CHECKOV):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov

$(SAM):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli

validate: setup $(SAM) $(CHECKOV) ## SAM validation, offline translation to CloudFormation, cfn-lint, checkov
	SAM_CLI_TELEMETRY=0 $(SAM) validate --region us-east-1 --template template.yaml
	$(PY) scripts/translate-template template.yaml build/template.cfn.json
	$(VENV)/bin/cfn-lint build/template.cfn.json
	$(CHECKOV) --file build/template.cfn.json --framework cloudformation --skip-download --compact --quiet

build: $(SAM) ## sam build without Docker (layer built by its own Makefile)
	PATH="$(dir $(PYTHON)):$$PATH" SAM_CLI_TELEMETRY=0 $(SAM) build --template template.yaml

bench: setup ## Benchmarks (speed targets live here, not in tests)
	$(PY) -m pytest -q benchmarks --benchmark-only

invoke: setup ## Run a handler in-process: make invoke FN=reconcile EVENT=events/reconcile.json
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=reconcile EVENT=events/reconcile.json"; exit 2; }
	$(PY) scripts/invoke $(FN) $(EVENT)

deploy: build ## sam deploy (needs AWS credentials; run `sam deploy --guided` once first)
	$(SAM) deploy

pr: lint validate test build ## Every offline gate

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam build .cache
