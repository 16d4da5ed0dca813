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
# Notebooks run on the kernel named python3. Jupyter looks in JUPYTER_PATH first, so the
# venv's kernel wins over a python3 kernel in the user's own Jupyter folders.
export JUPYTER_PATH := $(CURDIR)/$(VENV)/share/jupyter

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

# Two pytest-xdist workers: the tiny-profile pipeline test (tests/test_pipeline.py, a few
# minutes of serial DVC stages) runs on one while the other tests run on the other.
# --dist loadfile keeps each file's tests, and so the pipeline's shared run, on one worker.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile tests/test_pipeline.py tests

# The kernel python3 is installed into the venv with the absolute path of its Python.
lab: $(STAMP)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (SIAM study, .venv)" >/dev/null
	$(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR)

clean-venv:
	rm -rf $(VENV)
