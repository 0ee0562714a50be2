# Every target does its own set-up: a fresh machine needs only Python 3.11+, Java 17 and Maven.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

TRIALS ?= 10

.PHONY: demo test faults cluster-faults unit integration conformance bench schemas-check broker-start broker-stop clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

## make demo: start the embedded broker and play the demo on it
demo: venv
	$(BIN)/bus broker start
	$(BIN)/bus demo

## make test: every test; the session starts (and stops) its own broker
test: venv
	$(BIN)/bus schemas check
	$(BIN)/python -m pytest -p no:cacheprovider -q

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
