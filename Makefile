# capmon: `make run` runs every role on the embedded default (no Kafka, SQLite ./capmon.db);
# `make test` runs the whole suite against real Kafka and PostgreSQL (started for it).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= capmon:$(VERSION)

.PHONY: install install-demo install-dev run demo test chaos lint screenshots services services-down bench dist image clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip

# What running capmon needs (about 260 MB): `make run`.
$(BIN)/.installed: pyproject.toml | $(BIN)/python
	@echo "installing capmon and its runtime dependencies into $(VENV) (a minute or two)"
	$(BIN)/python -m pip install --progress-bar on -e .
	touch $@

# The `demo` extra on top (aiosmtpd, rich), which only `capmon demo` imports: `make demo`.
$(BIN)/.installed-demo: pyproject.toml | $(BIN)/python
	@echo "installing capmon with the demo's sinks into $(VENV) (a minute or two)"
	$(BIN)/python -m pip install --progress-bar on -e '.[demo]'
	touch $(BIN)/.installed $@

# The development tools on top of both (pytest, Playwright, schemathesis, ruff, mypy...): test
# and lint.
$(BIN)/.installed-dev: pyproject.toml | $(BIN)/python
	@echo "installing capmon with its development tools into $(VENV) (a few minutes)"
	$(BIN)/python -m pip install --progress-bar on -e '.[demo,dev]'
	touch $(BIN)/.installed $(BIN)/.installed-demo $@

install: $(BIN)/.installed

install-demo: $(BIN)/.installed-demo

install-dev: $(BIN)/.installed-dev

run: install
	$(BIN)/capmon db upgrade
	$(BIN)/capmon run

# The 2022 heat wave replayed through every role into local sinks (docs/demo.md).
demo: install-demo
	$(BIN)/capmon demo $(DEMO_ARGS)

services: install-dev
	deploy/services up

services-down:
	deploy/services down

test: install-dev services
	. .cache/services.env && $(BIN)/python -m pytest $(PYTEST_ARGS)

# Faults on a broker and a database of the suite's own (ports 19092, 55532), roles as
# processes: each scenario once (bench/chaos.py runs them 20 times).
chaos: install-dev services
	$(BIN)/python -m pytest -m chaos tests/chaos $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/mypy capmon monitor consumers producers

# The README's pictures of the status page, docs/status-page-demo.png and
# docs/status-page-phone.png: the demo's store at 17:35 on 9/6/2022 in headless Chromium.
screenshots: install-dev
	CAPMON_TEST_SCREENSHOT_DIR=docs $(BIN)/python -m pytest -q tests/status/test_status_demo.py

bench: install-dev services
	. .cache/services.env && for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

# The wheel to install in production (docs/ops.md): dist/capmon-$(VERSION)-py3-none-any.whl,
# with the demo's scenario inside.
dist: | $(BIN)/python
	rm -rf dist
	$(BIN)/python -m pip wheel --no-deps --wheel-dir dist .

# The container image the compose file and the Kubernetes manifests name (capmon:$(VERSION));
# push it to your registry as deploy/k8s/kustomization.yaml says.
image:
	docker build -t $(IMAGE) .

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache capmon.db* dist demo-out
