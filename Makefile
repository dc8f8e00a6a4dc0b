# The study, end to end:   make all            (embedded profile: CPU, no downloads)
#                          make all PROFILE=paper DATA_ROOT=/path/to/datasets   (real CLIP + the 11 datasets, GPU)
# The tests:               make test
# Both create or update the project virtual environment (.venv) from requirements.txt when needed.

SHELL := /bin/bash
.DELETE_ON_ERROR:
.DEFAULT_GOAL := all

PROFILE ?= embedded
JOBS ?= 2
DATA_ROOT ?=
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ADAPTLIB := $(VENV)/bin/adaptlib
STAMP := $(VENV)/.installed

PROFILE_FILE := profiles/$(PROFILE).yaml
RESULTS := results/$(PROFILE)
FIGURES := figures/$(PROFILE)
EXECUTED := notebooks/executed/$(PROFILE)
NOTEBOOKS := $(basename $(notdir $(wildcard notebooks/[0-9]*.ipynb)))
EXECUTED_NOTEBOOKS := $(addprefix $(EXECUTED)/,$(addsuffix .ipynb,$(NOTEBOOKS)))
BACKBONE := data/backbones/adaptlib-tiny-seed0/model.safetensors
export ADAPTLIB_DATA_ROOT := $(DATA_ROOT)
export TQDM_MININTERVAL ?= 5

.PHONY: all venv test test-fast test-slurm pretrain sweep results measures notebooks findings bench calibrate clean-results help

help:
	@echo "make all      run the study for PROFILE=$(PROFILE): sweep -> results table -> measures -> notebooks -> figures"
	@echo "make test     unit tests and the notebooks (nbval, smoke parameters)"
	@echo "make pretrain retrain the embedded backbone (the released one is committed; about 7 minutes)"
	@echo "make bench    speed and memory of every method on the embedded backbone"

all: findings

# ------------------------------------------------------------------------------------------------ environment
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(PY) -c "import torch, torchvision, open_clip; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'open_clip', open_clip.__version__)"
	@touch $@

venv: $(STAMP)

# ------------------------------------------------------------------------------------------------ tests
# The notebooks run under nbval with their own defaults: the smoke profile's results and measures, made first.
test: $(STAMP)
	$(PY) -m pytest tests --durations=15
	$(MAKE) --no-print-directory measures PROFILE=smoke
	$(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks/[0-9]*.ipynb

test-fast: $(STAMP)
	$(PY) -m pytest tests -x -q

# The cluster path on a real one-node SLURM (tests/slurm/cluster.sh: installs it when missing, as root; the tests
# skip with the reason where it cannot be brought up). The cluster is taken down whatever the tests did.
test-slurm: $(STAMP)
	rc=0; ADAPTLIB_SLURM=1 $(PY) -m pytest tests/slurm -v -rP --durations=0 -p no:cacheprovider || rc=$$?; \
		bash tests/slurm/cluster.sh down || true; exit $$rc

# ------------------------------------------------------------------------------------------------ the study
# The embedded backbone is the study's released checkpoint, committed with its model card and sha256: make all
# uses it as it is. 'make pretrain' retrains it (about 7 minutes) and says whether the bits came out the same; on
# another CPU they may not, and every number moves with them ('git checkout data/backbones' restores the release).
$(BACKBONE): | $(STAMP)
	$(ADAPTLIB) pretrain

pretrain: | $(STAMP)
	$(ADAPTLIB) pretrain --force

# Only the embedded profile needs the project's own backbone (smoke: random weights; paper: OpenAI's).
SWEEP_NEEDS := $(if $(filter paper smoke,$(PROFILE)),,$(BACKBONE))

$(RESULTS)/.sweep.done: $(PROFILE_FILE) $(SWEEP_NEEDS) | $(STAMP)
	$(ADAPTLIB) sweep $(PROFILE_FILE) --jobs $(JOBS) --results $(RESULTS) $(if $(DATA_ROOT),--data-root $(DATA_ROOT))
	@touch $@

sweep: $(RESULTS)/.sweep.done

# The table is rewritten only when a result file changed and only if its content changed, so the notebooks rerun
# only when the numbers they read did.
RESULT_FILES := $(shell find $(RESULTS) -name '*.json' -not -path '*/_*' 2>/dev/null)
$(RESULTS)/.collected: $(RESULTS)/.sweep.done $(RESULT_FILES) $(PROFILE_FILE)
	$(ADAPTLIB) results --results $(RESULTS) --profile $(PROFILE_FILE)
	@touch $@

$(RESULTS)/results.csv: $(RESULTS)/.collected ;

results: $(RESULTS)/results.csv

# The measures stage: what the notebooks need from data and models (class counts and structure, class distances,
# parameter drift, CKA), computed into $(RESULTS)/measures/. The folder is replaced, in one piece, only when a
# table changed, so the notebooks rerun only when what they read did. It is recomputed when it is missing.
MEASURES_CODE := $(wildcard adaptlib/measures/*.py adaptlib/analysis/*.py)
MEASURES := $(RESULTS)/measures/manifest.yaml
$(RESULTS)/.measured: $(RESULTS)/results.csv $(PROFILE_FILE) $(SWEEP_NEEDS) $(MEASURES_CODE) \
		$(if $(wildcard $(MEASURES)),,FORCE) | $(STAMP)
	$(ADAPTLIB) measures --profile $(PROFILE_FILE) --results $(RESULTS) $(if $(DATA_ROOT),--data-root $(DATA_ROOT))
	@touch $@

$(MEASURES): $(RESULTS)/.measured ;

measures: $(MEASURES)

FORCE:

# Each notebook runs under papermill with the profile's parameters; its figures and tables are written to a
# temporary folder and moved into place only when the notebook succeeds, so a failure leaves no stale figure.
# A notebook reads the results table and the measures tables (through the tables' reader, measures/layout.py) and
# plots: it loads no model and no dataset, and a change to it, to a plot or to the study code reruns no model.
ANALYSIS_CODE := $(wildcard adaptlib/study/*.py adaptlib/analysis/*.py) adaptlib/reporting.py \
	adaptlib/measures/layout.py
$(EXECUTED)/%.ipynb: notebooks/%.ipynb $(RESULTS)/results.csv $(MEASURES) $(ANALYSIS_CODE) | $(STAMP)
	@mkdir -p $(EXECUTED) $(FIGURES)
	@rm -rf $(FIGURES)/.tmp-$* $(EXECUTED)/$*.tmp.ipynb
	$(PY) -m papermill --no-progress-bar --cwd notebooks $< $(EXECUTED)/$*.tmp.ipynb \
		-p profile $(PROFILE) -p results_dir ../$(RESULTS) -p figures_dir ../$(FIGURES)/.tmp-$* \
		-p data_root "$(DATA_ROOT)" || { rm -rf $(FIGURES)/.tmp-$* $(FIGURES)/$*; exit 1; }
	@rm -rf $(FIGURES)/$* && mv $(FIGURES)/.tmp-$* $(FIGURES)/$* && mv $(EXECUTED)/$*.tmp.ipynb $@

notebooks: $(EXECUTED_NOTEBOOKS)

# The verdicts of the notebooks, as Markdown; the embedded profile's also go into the README's findings section.
$(FIGURES)/FINDINGS.md: $(EXECUTED_NOTEBOOKS) | $(STAMP)
	$(ADAPTLIB) findings --figures $(FIGURES) --out $@ $(if $(filter embedded,$(PROFILE)),--readme README.md)

findings: $(FIGURES)/FINDINGS.md

# ------------------------------------------------------------------------------------------------ tools
bench: $(BACKBONE) | $(STAMP)
	$(PY) -m adaptlib.bench --out results/bench

calibrate: $(BACKBONE) | $(STAMP)
	$(PY) -m adaptlib.runs.calibrate profiles/embedded-calibration-input.json profiles/embedded-calibration.json

clean-results:
	rm -rf $(RESULTS) $(EXECUTED) $(FIGURES)
