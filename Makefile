# cvbench: `make bench` then `make test` on a fresh clone is all it takes.
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.cvbench-installed
RESULTS ?= $(or $(CVBENCH_RESULTS),results)
HOST    ?= 127.0.0.1
PORT    ?= 5000
SUITE   ?= quick
RUNFLAGS ?=
DB      := sqlite:///$(abspath $(RESULTS))/mlflow.db

.PHONY: setup bench test report ui server lint clean distclean study-data-efficiency study-robustness \
	study-stats study-gallery studies screenshots reproduce

setup: $(STAMP)  ## create .venv and install cvbench (editable) with its test extra

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

bench: setup  ## run the quick suite on the embedded mnist5k, then write the report and print where it is
	@$(PY) -m bench run --suite $(SUITE) --no-table $(RUNFLAGS); rc=$$?; \
	  $(PY) -m bench report; exit $$rc

test: setup  ## run the test suite
	$(PY) -m pytest -q

report: setup  ## report.html/report.md + CSV/LaTeX tables from the tracked runs (<results>/report/)
	$(PY) -m bench report

UI_STORE   ?= $(or $(MLFLOW_TRACKING_URI),$(DB))
UI_WORKERS ?= 1
ui: setup  ## browse the runs in the MLflow UI on http://$(HOST):$(PORT) (CVBENCH_RESULTS / MLFLOW_TRACKING_URI honoured)
	@case "$(UI_STORE)" in http*) echo "$(UI_STORE) is a tracking server: open it in a browser, it serves the UI itself";; \
	  *) echo "MLflow UI on http://$(HOST):$(PORT) for $(UI_STORE)"; \
	     MLFLOW_SERVER_ENABLE_JOB_EXECUTION=$${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false} $(VENV)/bin/mlflow ui --backend-store-uri $(UI_STORE) --host $(HOST) --port $(PORT) --workers $(UI_WORKERS);; esac

# Shared tracking server for parallel / remote workers (MLFLOW_TRACKING_URI=http://$(HOST):$(PORT)).
# Its own store, so every experiment's artifacts go through the server (--serve-artifacts), never a local path.
SERVER_DB        ?= sqlite:///$(abspath $(RESULTS))/server/mlflow.db
SERVER_ARTIFACTS ?= $(abspath $(RESULTS))/server/artifacts
SERVER_WORKERS   ?= 2
server: setup  ## shared MLflow tracking server on http://$(HOST):$(PORT) (SERVER_DB=postgresql://... to override)
	@mkdir -p $(RESULTS)/server $(SERVER_ARTIFACTS)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=$${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false} $(VENV)/bin/mlflow server --backend-store-uri $(SERVER_DB) --serve-artifacts \
	  --artifacts-destination $(SERVER_ARTIFACTS) --host $(HOST) --port $(PORT) --workers $(SERVER_WORKERS)

# Studies (python -m bench study ...): override DATASET, STUDY_CLASSICAL, STUDY_DEEP, PER_CLASS, MIN_STEPS.
DATASET         ?= mnist5k
STUDY_CLASSICAL ?= pixels-knn pixels-logreg
STUDY_DEEP      ?= cnn-small lenet5
PER_CLASS       ?= 5,10,20,50,100,200,all
MIN_STEPS       ?= 100
STUDY_PIPES     := $(foreach p,$(STUDY_CLASSICAL) $(STUDY_DEEP),-p $(p))

study-data-efficiency: setup  ## accuracy vs images per class + deep/classical crossover (results/studies/)
	$(PY) -m bench study data-efficiency -d $(DATASET) $(STUDY_PIPES) --per-class $(PER_CLASS) --min-steps $(MIN_STEPS) --max-epochs 40

study-robustness: setup  ## trained pipelines on 14 corruptions x 5 severities: heatmap, mCA, relative drop
	$(PY) -m bench study robustness -d $(DATASET) $(STUDY_PIPES)

study-stats: setup  ## McNemar + bootstrap CIs, best classical vs best deep
	$(PY) -m bench study stats -d $(DATASET)

study-gallery: setup  ## HOG, SIFT, BoVW words, colour histograms, CNN filters/maps, Grad-CAM, confident mistakes
	$(PY) -m bench study gallery -d $(DATASET) $(STUDY_PIPES)

studies: study-data-efficiency study-robustness study-stats study-gallery  ## every study, then the report
	$(PY) -m bench report

screenshots: setup  ## the README's images from the runs in the store, in headless Chromium (apt-get install chromium chromium-driver)
	$(PY) -m bench.screenshots

# Published references (bench/references/*.yaml) measured on the same protocol. BUDGET=gpu adds the rows that need
# an accelerator or hours; REFS="mnist=folder:PATH cifar10=folder:PATH" measures a family on another copy.
BUDGET ?= cpu
REFS   ?=
reproduce: setup  ## published vs measured, a verdict per row (datasets absent offline are listed as not run)
	$(PY) -m bench reproduce --budget $(BUDGET) $(foreach r,$(REFS),--dataset $(r))

lint: setup
	$(VENV)/bin/ruff check bench pipelines cvbench_util tests tools
	$(PY) tools/import_graph.py

clean:  ## remove results, caches and build leftovers (keeps .venv)
	rm -rf $(RESULTS) .pytest_cache .ruff_cache build dist *.egg-info

distclean: clean
	rm -rf $(VENV)
