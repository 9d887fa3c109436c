# Every target that runs code depends on `setup`, so each is also a one-command set-up.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: setup demo test test-all test-readme test-ray bench lint clean

setup: $(STAMP)

# torch==2.13.0 first: it is the CPU build on this disk; an unpinned torch pulls CUDA (GBs).
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

# The main job: the notes' nine optimizers on MNIST-1D, 3 seeds each, then report.html
# (its path is the last line). A rerun skips the runs already in runs/trainlab.db.
demo: setup
	$(VENV)/bin/trainlab compare examples/optimizers.toml --jobs $(JOBS) -o report.html

test: setup
	$(PY) -m pytest -q -n $(JOBS) -m "not slow"

# Every code block of README.md, as written (tests/test_readme.py; part of it is marked slow).
test-readme: setup
	$(PY) -m pytest -q tests/test_readme.py

# Ray (the `ray` extra) and its tests, slow ones included: trials as Ray tasks on a local Ray
# instance, and a study on `ray start --head` + PostgreSQL killed mid-study and resumed.
RAY_STAMP := $(VENV)/.ray-installed
$(RAY_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[ray]"
	touch $(RAY_STAMP)

test-ray: $(RAY_STAMP)
	$(PY) -m pytest -q tests/tune/test_ray.py

# The slow tests too, and the property-based tests with many more (and fresh) examples.
test-all: setup
	HYPOTHESIS_PROFILE=thorough $(PY) -m pytest -q -n $(JOBS)

# ruff (lint + format check) and mypy, configured in pyproject.toml; part of .ci/run.
lint: setup
	$(VENV)/bin/ruff check src tests benchmarks docs
	$(VENV)/bin/ruff format --check src tests benchmarks docs
	$(VENV)/bin/mypy

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache runs report.html
