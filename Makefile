# Two commands set up and run everything: `make repro` and `make test`.
# Both create .venv from the pinned requirements when it is missing or older
# than pyproject.toml / requirements.lock, then reuse it.

PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed

# Stage commands in dvc.yaml call `python -m papermill`; they must find the
# venv's python first on PATH.
export PATH := $(BIN):$(PATH)

.PHONY: venv repro test lab clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --compile -r requirements.lock
	$(BIN)/python -m pip install --quiet --compile --no-deps --no-build-isolation -e .
	@touch $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/jupyter lab

clean-venv:
	rm -rf $(VENV)
