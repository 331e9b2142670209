# One virtualenv in the repo, built from the pinned files; Airflow's home is .airflow/ (SQLite), git-ignored.
SHELL := /bin/bash
# The first Python on the PATH that Airflow 3.3 and the pinned numpy and pandas all support (3.11 to 3.14),
# 3.11 first: the one CI runs. `make PYTHON=/path/to/python3.12 install` picks another.
SUPPORTED_PYTHONS := 3.11 3.12 3.13 3.14
PYTHON_VERSION_CHECK := import sys; sys.exit(sys.version_info[:2] not in [(3, 11), (3, 12), (3, 13), (3, 14)])
PYTHON ?= $(shell for p in $(addprefix python,$(SUPPORTED_PYTHONS)) python3; do \
	$$p -c '$(PYTHON_VERSION_CHECK)' 2> /dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)

.PHONY: install lint format test unit bench airflow-db dags-report clean demo demo-full demo-backfill demo-portal local-aws-up local-aws-down local-aws-status seed

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-local-aws.txt requirements-dev.txt constraints.txt local-aws/pyproject.toml
	@test -x $(BIN)/python || "$(PYTHON)" -c '$(PYTHON_VERSION_CHECK)' 2> /dev/null || { \
		echo "No supported Python found (PYTHON='$(PYTHON)'): this project needs Python 3.11, 3.12, 3.13 or" \
			"3.14 (what Airflow 3.3 and the pinned numpy and pandas support) on the PATH as python3.1x," \
			"or named with make PYTHON=/path/to/python3.1x" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-local-aws.txt -r requirements-dev.txt \
		--editable './local-aws[object-detection]' -c constraints.txt
	touch $@

# The UI test's browser, driven by Playwright: Debian's chromium (Playwright downloads none). Only `make test`
# needs it; as root it is installed once, anyone else is told how.
.PHONY: chromium
chromium:
	@test -x /usr/bin/chromium || if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null; \
	else \
		echo "make test drives the Airflow UI in Debian's chromium, and /usr/bin/chromium is missing:" \
			"install it once with 'sudo apt-get install chromium', then run make test again" >&2; exit 1; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

airflow-db: install
	$(BIN)/airflow db migrate > /dev/null

test: lint airflow-db chromium
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

dags-report: airflow-db
	$(BIN)/airflow dags report

bench: airflow-db
	$(BIN)/python bench/bench_image_metrics.py
	$(BIN)/python bench/bench_analysis.py
	$(BIN)/python bench/bench_dag_parse.py
	$(BIN)/python bench/bench_seed.py
	$(BIN)/python bench/bench_label_quality.py
	$(BIN)/python bench/bench_detector.py
	$(BIN)/python bench/bench_serving.py
	$(BIN)/python bench/bench_auto_labeling.py
	$(BIN)/python bench/bench_portal.py

demo: airflow-db
	$(BIN)/python -m local_aws up
	$(BIN)/python -m local_aws seed
	$(BIN)/python scripts/demo.py

# The reference's full demo: 1,000 images with automated labeling.
demo-full: airflow-db
	$(BIN)/python -m local_aws up
	$(BIN)/python -m local_aws seed
	$(BIN)/python scripts/demo.py --images 1000 --auto-labeling

# A private workteam labels in the worker portal: prints the portal's URL and a worker's credentials, then
# runs the DAG for 10 images, which waits until a person has labeled them there.
demo-portal: airflow-db
	$(BIN)/python -m local_aws up
	$(BIN)/python -m local_aws seed
	$(BIN)/python scripts/demo_portal.py

# Dated partitions of arriving images, backfilled for two classes by a scheduler (airflow standalone).
demo-backfill: airflow-db
	$(BIN)/python -m local_aws up
	$(BIN)/python -m local_aws seed
	$(BIN)/python scripts/demo_backfill.py

local-aws-up: install
	$(BIN)/python -m local_aws up

local-aws-down: install
	$(BIN)/python -m local_aws down

local-aws-status: install
	$(BIN)/python -m local_aws status

seed: local-aws-up
	$(BIN)/python -m local_aws seed

clean:
	rm -rf $(VENV) .airflow .airflow-backfill .pytest_cache .ruff_cache
