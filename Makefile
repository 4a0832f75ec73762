# finsec-assets: `make demo` runs the whole graph on the bundled sample; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

export FINSEC_HOME  ?= $(CURDIR)/.finsec
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export HF_HUB_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1
export TOKENIZERS_PARALLELISM = false

.PHONY: install system-deps demo test dev bench clean-data sql serve

install: $(STAMP)

# Test-only system tools: docker-compose (validates docker/docker-compose.yml; no engine needed) and
# Debian's Chromium + ChromeDriver (the UI test). Installed when missing and we are root; else those tests skip.
SYSTEM_PACKAGES := docker-compose chromium chromium-driver
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || \
	    echo "warning: could not install$$missing; the tests that need them will skip"; \
	  else echo "note:$$missing not installed (needs root); the tests that need them will skip"; fi; \
	fi

# torch is pinned in the same command as everything that depends on it (CPU wheel on this disk).
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/python -m pip install -q --disable-pip-version-check -c requirements.lock 'torch==2.13.0' -e '.[dev,bench]'
	touch $(STAMP)

demo: install
	mkdir -p "$(DAGSTER_HOME)" "$(FINSEC_HOME)"
	test -f "$(DAGSTER_HOME)/dagster.yaml" || printf 'telemetry:\n  enabled: false\n' > "$(DAGSTER_HOME)/dagster.yaml"
	$(BIN)/python -m finsec_assets.demo

test: install system-deps
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q finsec_assets_tests

dev: install
	mkdir -p "$(DAGSTER_HOME)"
	test -f "$(DAGSTER_HOME)/dagster.yaml" || printf 'telemetry:\n  enabled: false\n' > "$(DAGSTER_HOME)/dagster.yaml"
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# The HTTP service over the models the graph published (same FINSEC_HOME as `make demo`); OpenAPI on /docs.
SERVE_HOST ?= 127.0.0.1
SERVE_PORT ?= 8000
serve: install
	$(BIN)/python -m finsec_assets.serve --host $(SERVE_HOST) --port $(SERVE_PORT)

bench: install
	$(BIN)/python benchmarks/ingest.py

# The DuckDB shell attached to the lake (tables named after assets); `make sql Q="select ..."` runs one query.
sql: install
	$(BIN)/python -m finsec_assets.storage sql $${Q:+"$$Q"}

clean-data:
	rm -rf "$(FINSEC_HOME)"
