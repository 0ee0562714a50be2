# Every target does its own set-up: a fresh machine needs only Python 3.11+, Java 17 and Maven.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

TRIALS ?= 10

BROWSER := /usr/bin/chromium /usr/bin/chromedriver

.PHONY: browser-deps screenshots demo test faults cluster-faults unit integration conformance bench schemas-check broker-start broker-stop clean venv

# venv also resolves the official EN 16931 and eForms rules and UBL/CII/eForms XSDs from Maven Central (docker/rules-pom.xml)
venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench,console,browser]'
	$(BIN)/bus rules
	touch $(STAMP)

## make demo: start the embedded broker and play the demo on it
## BUS_SECURE=1 make demo: the same on the secure broker (site CA made once, a certificate per party)
SECURE := $(if $(filter 1 true yes,$(BUS_SECURE)),--secure,)
demo: venv
	$(if $(SECURE),$(BIN)/bus pki init --exist-ok,)
	$(BIN)/bus broker start $(SECURE)
	$(BIN)/bus demo $(SECURE)

## make browser-deps: Debian's Chromium and chromium-driver for tests/browser (skipped when present)
browser-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; fi

## make screenshots: the README's console screenshots (docs/console-*.png), taken by the browser tests on a demo run
screenshots: venv browser-deps
	BUS_README_SCREENSHOTS=$(CURDIR)/docs BUS_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -p no:cacheprovider -q tests/browser/test_console_browser.py

## make test: every test; the session starts (and stops) its own broker; the browser tests must run
test: venv browser-deps
	$(BIN)/bus schemas check
	$(BIN)/bus asyncapi --check contract
	BUS_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -p no:cacheprovider -q

## make faults TRIALS=N: N fault trials on an embedded broker of their own (tests/faults)
faults: venv
	$(BIN)/python -m tests.faults --trials $(TRIALS)

## make cluster-faults: the fault tests on a three-node cluster of their own (tests/cluster, ~4 min)
cluster-faults: venv
	BUS_FAULT_REPORT=$${BUS_FAULT_REPORT:-cluster-faults.json} $(BIN)/python -m pytest -p no:cacheprovider -q -s tests/cluster

unit: venv
	$(BIN)/python -m pytest -q tests/unit

conformance: venv
	$(BIN)/python -m pytest -q tests/conformance

integration: venv
	$(BIN)/python -m pytest -q tests/integration

schemas-check: venv
	$(BIN)/bus schemas check

bench: venv
	$(BIN)/bus bench --json

broker-start: venv
	$(BIN)/bus broker start

broker-stop: venv
	$(BIN)/bus broker stop

clean:
	-$(BIN)/bus broker stop
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
