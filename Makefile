# recsys: the two commands of the Quick start are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make run` installs only what the training loop uses (its own stamp); `make install` (and every
# test target) installs every extra: the service, Spark, tuning, and the test tools
RUN_STAMP := $(VENV)/.installed-run
EXTRAS := service,spark,tune,dev,bench,trees
comma := ,

# BLAS threads pinned before numpy loads (implicit and numba do their own threading)
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
# no telemetry from the stack's libraries (offline machines retry forever otherwise)
export GX_ANALYTICS_ENABLED ?= false
export MLFLOW_DISABLE_TELEMETRY ?= true
export DO_NOT_TRACK ?= 1
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

# every dependency pinned (extras included, for any platform and Python >= 3.11): `make install`
# and the worker image install these versions; `make lock` regenerates the file
LOCK := constraints.txt
# extra flags for `make lock`, e.g. UV_LOCK_FLAGS=--offline (from uv's cache only) or --upgrade;
# the index is uv's default or UV_DEFAULT_INDEX / UV_INDEX_URL
UV_LOCK_FLAGS ?=

.PHONY: install java-check lock run test test-unit test-stack lint stack-up stack-down bench clean mutation

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -c $(LOCK) -e '.[$(EXTRAS)]'
	$(MAKE) --no-print-directory torch-cpu
	touch $(STAMP) $(RUN_STAMP)

# the neural extra's PyTorch, CPU build, installed by pip (uv would resolve PyPI's CUDA build):
# from a local wheel folder (PIP_FIND_LINKS) when it holds this version, else from PyTorch's CPU
# index; kept out of constraints.txt for the same reason
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
.PHONY: torch-cpu
torch-cpu:
	@if $(BIN)/python -c 'import torch' 2>/dev/null; then exit 0; fi; \
	if [ -n "$$PIP_FIND_LINKS" ] && ls "$$PIP_FIND_LINKS"/torch-$(TORCH_VERSION)+cpu-* >/dev/null 2>&1; then \
		echo "installing torch $(TORCH_VERSION) (CPU) from $$PIP_FIND_LINKS"; \
		$(BIN)/python -m pip install --quiet -c $(LOCK) "torch==$(TORCH_VERSION)"; \
	else \
		echo "installing torch $(TORCH_VERSION) (CPU) from $(TORCH_INDEX)"; \
		$(BIN)/python -m pip install --quiet -c $(LOCK) --index-url $(TORCH_INDEX) \
			--extra-index-url https://pypi.org/simple "torch==$(TORCH_VERSION)"; \
	fi

$(RUN_STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -c $(LOCK) -e .
	touch $(RUN_STAMP)

install: $(STAMP) java-check  ## create .venv and install recsys with its test tools, at the locked versions

lock: $(STAMP)  ## pin every dependency of pyproject.toml (extras included) in constraints.txt
	$(BIN)/uv pip compile pyproject.toml $(foreach e,$(subst $(comma), ,$(EXTRAS)),--extra $(e)) --universal \
		--python-version 3.11 --custom-compile-command 'make lock' --quiet $(UV_LOCK_FLAGS) \
		-o $(LOCK)
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -c $(LOCK) -e '.[$(EXTRAS)]'
	touch $(STAMP) $(RUN_STAMP)

# the spark-als model and its tests need a Java 17+ runtime (pyspark 4 starts a JVM)
java-check:
	@java_bin="$${JAVA_HOME:+$$JAVA_HOME/bin/}java"; \
	if ! command -v "$$java_bin" >/dev/null 2>&1; then \
		echo "error: no Java runtime found (java on PATH or JAVA_HOME/bin/java); Spark needs Java 17+:" >&2; \
		echo "       install the OS package openjdk-17-jre-headless (apt-get install openjdk-17-jre-headless)" >&2; \
		echo "       or set JAVA_HOME to a Java 17+ installation" >&2; \
		exit 1; \
	fi; \
	version=$$("$$java_bin" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1); \
	if [ -n "$$version" ] && [ "$$version" -lt 17 ]; then \
		echo "error: Java $$version found; Spark 4 needs Java 17+: install openjdk-17-jre-headless" >&2; \
		exit 1; \
	fi

run: $(RUN_STAMP)  ## train on the embedded default (synthetic data, local MLflow, ephemeral Prefect): sgd-mf, then ease for the lists
	$(BIN)/recsys train
	$(BIN)/recsys train --model ease

# extra pytest flags for the test targets, e.g. PYTEST_FLAGS="-x"
PYTEST_FLAGS ?=
# pytest-xdist workers of `make test`: the stack tests run on one worker, first, while the other
# takes the rest (tests/conftest.py); 0 runs everything in one process
PYTEST_WORKERS ?= 2
# the kinds of test that start servers, JVMs or Prefect's harness (marked in tests/conftest.py)
SLOW_KINDS := stack or flow or spark or slow
# the Python trees that ruff checks and formats
PY_DIRS := recsys_core recsys_service tasks flows recsys_cli tests benchmarks infra

.PHONY: test-fast
test: install  ## lint and type-check, then the whole test suite, the loopback stack included
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_FLAGS)

test-fast: install  ## the tests that start no server, JVM or Prefect harness (under 3 minutes)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) -m "not ($(SLOW_KINDS))" $(PYTEST_FLAGS)

test-unit: install  ## type-check, then the tests that need no server
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -m "not stack" $(PYTEST_FLAGS)

test-stack: install  ## the end-to-end tests against a loopback stack of their own
	$(BIN)/python -m pytest -q -m stack $(PYTEST_FLAGS)

lint: install  ## ruff (rules and format), the import contracts (lint-imports) and mypy (settings in pyproject.toml)
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: install  ## our models against Surprise and implicit on the same splits
	$(BIN)/python benchmarks/run.py --data synthetic:100k

clean:
	rm -rf .recsys .pytest_cache mutants

# mutants run in parallel children; the machine's other work keeps its cores
MUTATION_CHILDREN ?= 2
# all mutants by default; a subset by name pattern, e.g. MUTANTS='recsys_core.evaluation.*'
MUTANTS ?=
# mutmut forks each mutant's test run from a process that has run numba's parallel kernels:
# OpenMP aborts a forked child, the workqueue threading layer does not

mutation: install  ## mutation score of the modules in [tool.mutmut] (~15 min + ~45 min for registry.py)
	rm -rf mutants && mkdir mutants
	NUMBA_THREADING_LAYER=workqueue nice $(BIN)/mutmut run --max-children $(MUTATION_CHILDREN) \
	  $(MUTANTS) > mutants/run.log 2>&1 || { tail -c 4000 mutants/run.log; exit 1; }
	@$(BIN)/mutmut results
	@$(BIN)/mutmut results --all true | awk '\
	  { name = $$1; sub(/:$$/, "", name); sub(/\.[^.]*$$/, "", name); st = $$2; \
	    if (st == "not") next; \
	    total[name]++; if (st == "killed" || st == "timeout" || st == "segfault") caught[name]++; } \
	  END { for (m in total) printf "%-36s %4d mutants %4d caught  score %5.1f%%\n", \
	        m, total[m], caught[m], 100 * caught[m] / total[m] }' | sort

stack-up: install  ## loopback stack on 127.0.0.1 (S3, MLflow, Prefect server and worker, recsys serve); writes .env
	$(BIN)/python infra/loopback/stack.py up --env-file .env

stack-down:  ## stop what stack-up started (by pid) and remove its block from .env
	$(BIN)/python infra/loopback/stack.py down --env-file .env
