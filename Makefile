# Two set-up commands (see README): `make run` and `make test`. Everything they need is installed from here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-from-pyproject
CC := $(BIN)/callcenter

.PHONY: run test lint lint-js vendor bench system-packages venv asterisk prompts clean help

help:
	@echo "make run    - install everything (as root on Debian/Ubuntu), start Asterisk, Mosquitto (when installed) and"
	@echo "             the platform with demo data"
	@echo "make test   - install what tests need, then run ruff, eslint and the whole test suite"

system-packages:
	@scripts/install-system-packages.sh

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: system-packages $(STAMP)

asterisk: venv
	$(CC) asterisk install

run: asterisk
	$(CC) keys init
	$(CC) db upgrade
	$(CC) demo seed
	$(CC) prompts build
	$(CC) asterisk render
	@if $(CC) asterisk status >/dev/null; then $(CC) asterisk reload; else $(CC) asterisk start; fi
	$(CC) mqtt start
	@. ./scripts/panel-banner.sh
	exec $(CC) serve

lint: venv lint-js
	$(BIN)/ruff check callcenter tests migrations benchmarks

# The panel's browser scripts: the exact ESLint of package-lock.json, from the registry npm is configured with.
NODE_STAMP := node_modules/.installed-from-lock

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NODE_STAMP)

lint-js:
	@scripts/install-system-packages.sh --lint
	@$(MAKE) --no-print-directory $(NODE_STAMP)
	npx --no-install eslint

# The panel's browser libraries (Leaflet for maps, uPlot for trend charts): the exact packages of package-lock.json,
# copied into callcenter/web/static/vendor/ and committed, so the panel works offline and `make run` needs no npm.
# After changing a version in package.json: `npm install`, then `make vendor`, then commit both.
# tests/unit/web/test_vendored.py checks the committed copies are those packages' files byte for byte.
VENDORED := leaflet/dist/leaflet.js leaflet/dist/leaflet.css uplot/dist/uPlot.iife.min.js uplot/dist/uPlot.min.css

vendor:
	@$(MAKE) --no-print-directory $(NODE_STAMP)
	mkdir -p callcenter/web/static/vendor
	for file in $(VENDORED); do cp node_modules/$$file callcenter/web/static/vendor/; done

# The tests' SMPP server (tests/smpp_server.js) runs on node with the npm package smpp of package-lock.json.
test: asterisk lint $(NODE_STAMP)
	@scripts/install-system-packages.sh --tests
	$(BIN)/pytest

# Benchmarks against a real stack; figures and method: docs/performance.md. They report, they never fail the build.
# SOS under load (issue 3), SOS under a log-in flood (issue 12), then screen-pops with 500 panels and conference
# assembly (issue 4), readings (issue 15), and a 1,000-call care campaign in its one-hour window with SOS steps
# meanwhile (issue 16). `make bench BENCH_ARGS=--quick` runs each in its short form.
bench: asterisk
	$(BIN)/python -m benchmarks.sos_load $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.sos_flood $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.desk_load $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.conference_load $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.readings_load $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.readings_history $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.care_campaign $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache node_modules
