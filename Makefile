# cvbench: `make bench` then `make test` on a fresh clone is all it takes.
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.cvbench-installed
RESULTS ?= results
HOST    ?= 127.0.0.1
PORT    ?= 5000
SUITE   ?= quick
DB      := sqlite:///$(abspath $(RESULTS))/mlflow.db

.PHONY: setup bench test report ui lint clean distclean

setup: $(STAMP)  ## create .venv and install cvbench (editable) with its test extra

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

bench: setup  ## run the quick suite on the embedded mnist5k and print the comparison table
	$(PY) -m bench run --suite $(SUITE)

test: setup  ## run the test suite
	$(PY) -m pytest -q

report: setup  ## comparison report from the tracked runs (results/report/)
	$(PY) -m bench report --out $(RESULTS)/report

ui: setup  ## browse the runs in the MLflow UI on http://$(HOST):$(PORT)
	$(VENV)/bin/mlflow ui --backend-store-uri $(DB) --host $(HOST) --port $(PORT)

lint: setup
	$(VENV)/bin/ruff check bench pipelines tests

clean:  ## remove results, caches and build leftovers (keeps .venv)
	rm -rf $(RESULTS) .pytest_cache .ruff_cache build dist *.egg-info

distclean: clean
	rm -rf $(VENV)
