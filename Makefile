# `make demo` and `make test` are the two commands of the README; both install first.
PY      := .venv/bin/python
PIP     := .venv/bin/pip
STAMP   := .venv/.installed
# Local-only Ray (docs/PLATFORM.md §2); offline hubs so nothing is fetched at run time.
export RAY_AUTH_MODE ?= disabled
export RAY_USAGE_STATS_ENABLED ?= 0
export RAY_TRAIN_HEALTH_CHECK_INTERVAL_S ?= 0.2
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: install browser postgres demo test test-fast bench clean

install: $(STAMP)

# torch==2.13.0 goes in the same pip command as the project: pip then takes the local CPU build and never a
# multi-GB CUDA one (docs/PLATFORM.md §1). The stamp makes the target idempotent; it is redone when pyproject changes.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install --quiet --disable-pip-version-check "torch==2.13.0" -e ".[test]"
	touch $(STAMP)

# The quickstart sweep on a local Ray, logged to ./mlflow.db, then its report (reports/quickstart/report.md).
# Rerunning skips every trial MLflow already holds FINISHED, so an interrupted demo picks up where it stopped.
demo: install
	.venv/bin/unisweep run sweeps/quickstart.yaml
	.venv/bin/unisweep report quickstart

# A real headless chromium opens report.html in the MLflow UI (tests/test_report_browser.py): Debian's chromium
# and chromium-driver from apt-get, only where they are missing (scripts/apt_install.sh).
browser:
	sh scripts/apt_install.sh chromium chromedriver -- chromium chromium-driver

# A real PostgreSQL server behind `mlflow server` in the cluster test (tests/test_cluster.py): Debian's package.
postgres:
	sh scripts/apt_install.sh '/usr/lib/postgresql/*/bin/initdb' -- postgresql

# Two workers, whole files each: the suite waits on Ray and MLflow about half the time (BENCHMARKS.md).
# The ten slowest tests close the output: the suite must stay under 20 minutes with the install.
test: install browser postgres
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=10

# The lane while editing: the suite without the tests marked `slow` (pyproject.toml), no apt-get;
# about 3 minutes on 2 quiet cores, an estimate (BENCHMARKS.md, the test suite).
test-fast: install
	$(PY) -m pytest -q -n 2 -m "not slow"

bench: install
	$(PY) bench/train_throughput.py
	$(PY) bench/sweep_overhead.py

clean:
	rm -rf .venv .pytest_cache mlflow.db mlartifacts reports ray_results
