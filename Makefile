# One target per gate. `make demo` and `make test` set themselves up on a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON     ?= $(shell scripts/find-python)
VENV       := .venv
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.installed

# Tools with an environment of their own under .tools/, pinned; a new pin reinstalls the tool.
SAM_CLI_VERSION := 1.170.0
CHECKOV_VERSION := 3.3.30
UV_VERSION      := 0.13.9
SAM             := .tools/sam/bin/sam
CHECKOV         := .tools/checkov/bin/checkov
UV              := .tools/uv/bin/uv
SAM_TOOL        := .tools/sam/.installed-aws-sam-cli-$(SAM_CLI_VERSION)
CHECKOV_TOOL    := .tools/checkov/.installed-checkov-$(CHECKOV_VERSION)
UV_TOOL         := .tools/uv/.installed-uv-$(UV_VERSION)

.PHONY: help setup venv victoriametrics demo test test-fast soak lint format typecheck validate build bytecode-list lock bench bench-scale invoke \
	deploy pr clean docs

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# The development environment installs from its hashed lock (every package, the transitive ones too,
# pinned with sha256), then the package itself without dependencies: what the tests import is what
# `make lock` resolved, and the layer's packages are at the versions that ship.
DEV_LOCK := requirements-dev.lock.txt

$(STAMP): pyproject.toml $(DEV_LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

venv: $(STAMP) ## Create .venv from requirements-dev.lock.txt (the package and its development extras)

# Where no method fits the platform, the fetch says how to add VictoriaMetrics and succeeds: the demo
# then runs without its health story, and the integration tests skip (in CI they fail).
victoriametrics: ## Find or fetch VictoriaMetrics (PATH, else Debian package, go install or Homebrew)
	@scripts/fetch-victoriametrics

setup: venv victoriametrics ## The venv and VictoriaMetrics: what demo and test need

demo: setup ## Run the whole key lifecycle on the embedded local stack (no AWS account)
	$(VENV)/bin/tokenwarden demo

# Four workers on two cores: the end-to-end tests spend much of their time waiting on local
# servers and subprocesses, and with two workers the cores sat idle 40 % of the run.
test: setup ## Unit, integration, end-to-end and infrastructure tests
	$(PY) -m pytest -q -n 4 --dist loadfile --durations=15

SOAK_STEPS ?= 10000

soak: venv ## The lifecycle property machine, deep: SOAK_STEPS steps (default 10000) on the harsh embedded world
	set -o pipefail; TOKENWARDEN_SOAK_STEPS=$(SOAK_STEPS) POWERTOOLS_LOG_LEVEL=CRITICAL \
		$(PY) -m pytest -q -s tests/integration/test_lifecycle_machine.py 2>&1 | grep -v '^{"level"'

test-fast: venv ## Unit tests only
	$(PY) -m pytest -q tests/unit

docs: venv ## Regenerate the references in docs/ from the code (CLI, notifications)
	$(PY) -m tokenwarden.cli.reference

lint: venv ## ruff and mypy
	$(PY) -m ruff check src tests functions benchmarks scripts/invoke
	$(PY) -m ruff format --check src tests functions benchmarks
	$(PY) -m mypy

format: venv
	$(PY) -m ruff format src tests functions
	$(PY) -m ruff check --fix src tests functions

# $(call tool-env,ENVIRONMENT,PACKAGE,VERSION): .tools/ENVIRONMENT holds PACKAGE==VERSION; the stamp
# carries the version, so a new pin installs again (pip moves the package to the pinned version).
define tool-env
.tools/$(1)/.installed-$(2)-$(3):
	test -x .tools/$(1)/bin/python || $$(PYTHON) -m venv .tools/$(1)
	.tools/$(1)/bin/python -m pip install --quiet --upgrade pip
	.tools/$(1)/bin/python -m pip install --quiet $(2)==$(3)
	@touch $$@
endef
$(eval $(call tool-env,sam,aws-sam-cli,$(SAM_CLI_VERSION)))
$(eval $(call tool-env,checkov,checkov,$(CHECKOV_VERSION)))
$(eval $(call tool-env,uv,uv,$(UV_VERSION)))

validate: venv $(SAM_TOOL) $(CHECKOV_TOOL) ## SAM validation, offline translation to CloudFormation, cfn-lint, checkov
	SAM_CLI_TELEMETRY=0 $(SAM) validate --region us-east-1 --template template.yaml
	$(PY) scripts/translate-template template.yaml build/template.cfn.json
	$(VENV)/bin/cfn-lint build/template.cfn.json
	$(CHECKOV) --file build/template.cfn.json --framework cloudformation --skip-download --compact --quiet

build: $(SAM_TOOL) ## sam build without Docker (layer built by its own Makefile, from its hashed lock)
	PATH="$(dir $(PYTHON)):$$PATH" SAM_CLI_TELEMETRY=0 $(SAM) build --template template.yaml

bytecode-list: venv ## After `make build`: list the modules a cold start loads, which the layer ships compiled
	$(PY) -m tests.infra.bytecode_list

# One resolution, two locks, each package with the sha256 of each of its files. First the layer's, for
# the Lambda runtime (python3.13 on arm64) from its direct pins; then the development one, for python
# 3.11 and later on any platform, from pyproject's dependencies, its `dev` extras and the layer's pins,
# constrained by the layer's lock: every package that ships is tested at the version that ships, and a
# development tool that needs another version makes `make lock` fail instead of drifting.
# uv uses pip's configured index when it has none of its own.
LAYER_REQUIREMENTS := layers/shared/requirements.txt
LAYER_LOCK         := layers/shared/requirements.lock.txt
UV_COMPILE          = $(UV) pip compile $${index:+--default-index "$$index"} \
	--generate-hashes --no-strip-extras --custom-compile-command 'make lock' --quiet

lock: $(UV_TOOL) ## Regenerate the layer's and the development hashed locks (needs the index)
	index="$${PIP_INDEX_URL:-$$($(PYTHON) -m pip config get global.index-url 2>/dev/null)}"; \
	[ -z "$${UV_DEFAULT_INDEX:-}$${UV_INDEX_URL:-}" ] || index=""; \
	$(UV_COMPILE) $(LAYER_REQUIREMENTS) --output-file $(LAYER_LOCK) \
		--python-version 3.13 --python-platform aarch64-manylinux2014 && \
	$(UV_COMPILE) pyproject.toml --extra dev $(LAYER_REQUIREMENTS) --constraint $(LAYER_LOCK) \
		--output-file $(DEV_LOCK) --universal --python-version 3.11

bench: venv ## Benchmarks (speed targets live here, not in tests)
	$(PY) -m pytest -q benchmarks --benchmark-only -m "not scale"

SCALE ?= 10,100,1000,5000

SCALE_FIGURES ?= .cache/bench-scale.json
SCALE_PLOT ?= docs/scale.svg

bench-scale: venv ## Wall time and AWS calls per phase for N principals, and their plot: make bench-scale SCALE=10,100,1000,5000
	set -o pipefail; TOKENWARDEN_SCALE=$(SCALE) TOKENWARDEN_SCALE_FIGURES=$(SCALE_FIGURES) POWERTOOLS_LOG_LEVEL=CRITICAL \
		$(PY) -m pytest -q -s -p no:randomly benchmarks/test_scale.py -m scale 2>&1 | grep --line-buffered -v '^{"level"'
	$(PY) benchmarks/plot_scale.py $(SCALE_FIGURES) $(SCALE_PLOT)

invoke: venv ## Run a handler in-process on the embedded stack: make invoke FN=reconcile EVENT=events/reconcile.json
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=reconcile EVENT=events/reconcile.json [REAL_ACCOUNT=yes]"; exit 2; }
	$(PY) scripts/invoke $(strip $(if $(filter yes,$(REAL_ACCOUNT)),--real-account) $(FN) $(EVENT))

deploy: build ## sam deploy (needs AWS credentials; run `sam deploy --guided` once first)
	$(SAM) deploy

pr: lint validate test build ## Every offline gate

# Everything the targets make: the venv and the package's egg-info (venv), the tool environments
# (validate, build, lock), VictoriaMetrics (victoriametrics: .cache), `sam build`'s .aws-sam, the
# translated template (build/), and the caches of pytest, hypothesis, benchmarks, mypy, ruff and Python.
# The locks are sources, not products: `make lock` rewrites them and they stay. A VictoriaMetrics that
# Homebrew installed is the system's: `brew uninstall victoriametrics` removes it.
clean: ## Remove everything the targets create
	rm -rf $(VENV) .tools .aws-sam build .cache src/*.egg-info \
		.pytest_cache .hypothesis .benchmarks .mypy_cache .ruff_cache
	find src tests functions benchmarks scripts layers -name __pycache__ -type d -prune -exec rm -rf {} +
