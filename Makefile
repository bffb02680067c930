# tokensrv: `make run` serves on http://127.0.0.1:8080, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SERVER_STAMP := $(VENV)/.server
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck lock clean cluster cluster-down cluster-smoke bench soak docs docs-build docs-reference

# Two installs, each with its stamp: the server alone (make run: what an operator runs, with the
# fast extra) and the server with the test tools (make test, lint, typecheck and the rest). The
# verifier (verify/, tokensrv-verify) is installed first, from the checkout: the server depends on it.
INSTALL = $(BIN)/python -m pip install --quiet -c constraints.txt -e ./verify

$(SERVER_STAMP): setup.cfg pyproject.toml verify/pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "tokensrv needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(INSTALL) -e '.[fast]'
	@touch $(SERVER_STAMP)

$(STAMP): $(SERVER_STAMP)
	$(INSTALL) -e '.[fast,test]'
	@touch $(STAMP)

# Re-pin constraints.txt from a new venv with the newest versions setup.cfg allows.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e ./verify -e '.[fast,test,docs]'
	{ sed -n '1,3p' constraints.txt; .venv-lock/bin/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf .venv-lock

# The embedded Valkey (AOF on, data under .tokensrv/) unless TOKENSRV_REDIS_URL names a store.
# Logs in the text format, with the banner, for a person at a terminal (the server's default is JSON).
# make run APPLY=examples/tokensrv.yaml: that declared configuration applied first (serve --apply; a
# server prints no generated secret: `tokensrv client rotate-secret ID` gives one)
run: $(SERVER_STAMP)
	@export TOKENSRV_LOG_FORMAT=$${TOKENSRV_LOG_FORMAT:-text}; if [ -n "$$TOKENSRV_REDIS_URL" ]; then \
		exec $(BIN)/tokensrv serve $(if $(APPLY),--apply $(APPLY)); \
	else \
		exec $(BIN)/tokensrv serve --embedded-store .tokensrv $(if $(APPLY),--apply $(APPLY)); \
	fi

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# 30 minutes of mixed load with a key rotation and a Valkey restart; prints a summary, fails on
# any invariant violation (`make test` runs the same for 60 s: tests/e2e/test_soak.py).
soak: $(STAMP)
	$(BIN)/python scripts/soak.py --duration $${SOAK_DURATION:-1800}

lint: $(STAMP)
	$(BIN)/ruff check tokensrv verify tests examples bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy tokensrv verify/src/tokensrv

# The documentation site (mkdocs.yml, docs/): `make docs` serves it on http://127.0.0.1:8000 and
# rebuilds on each change; `make docs-build` builds it into site/ with --strict, as CI does.
DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[docs]'
	@touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

docs-build: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The reference pages' generated parts (docs/reference/: configuration, CLI, endpoints, keyspace),
# written from the code and openapi.yaml; tests/unit/test_config_docs.py and test_reference_docs.py
# fail while a page differs from what it is written from.
docs-reference: $(STAMP)
	$(BIN)/python scripts/docs_reference.py

clean:
	rm -rf $(VENV) .tokensrv bench/peer/node_modules site build dist *.egg-info verify/build verify/src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# The local cluster (examples/cluster.py): tokensrv on 8081-8083 sharing the store and a keys folder
# of their own (.tokensrv/cluster/keys, not make run's keys/: two stores' schedules would both rotate
# one folder), issuer http://127.0.0.1:8081, the example orders service on 8090, and the store
# STORE: single (default: one Valkey on 6390), cluster (3 primaries + 3 replicas on 6390-6395) or
# sentinel (primary 6390, replica 6391, sentinels 6392-6394). Logs, the keys, the store's data and
# the store and pids of everything started are under .tokensrv/cluster/; cluster-down stops exactly
# those, whatever the STORE. cluster-smoke checks the cluster that is up (STORE, if given, must
# match it), or starts one on STORE and stops it after.
STORE ?=
STORE_ARG = $(if $(STORE),--store $(STORE))

cluster: $(STAMP)
	$(BIN)/python -m examples.cluster up $(STORE_ARG)

cluster-down: $(STAMP)
	$(BIN)/python -m examples.cluster down

cluster-smoke: $(STAMP)
	$(BIN)/python -m examples.cluster smoke $(STORE_ARG)

# The benchmark suite (bench/run.py): about 7 minutes on loopback, or BENCH_ARGS=--long for longer
# runs (BENCH_ARGS="--only cluster" for one section). Prints every figure with its reference and target; writes bench-results/latest.json. The
# HTTP load generator is wrk from Debian, installed here when missing (as .ci/run does for chromium).
# The peer section (BENCH_ARGS="--only peer") needs node 20+ and npm: it installs node-oidc-provider,
# at the version bench/peer/package-lock.json pins, with npm ci into bench/peer/node_modules.
bench: $(STAMP)
	@if ! command -v wrk >/dev/null 2>&1; then \
		if command -v apt-get >/dev/null 2>&1; then \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 || \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }; \
		else \
			echo "make bench needs wrk (https://github.com/wg/wrk)" >&2; exit 1; \
		fi; \
	fi
	$(BIN)/python -m bench.run $(BENCH_ARGS)
