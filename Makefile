# Every target that runs code depends on `setup`, so each is also a one-command set-up.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: setup demo test test-all bench clean

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

# The slow tests too, and the property-based tests with many more (and fresh) examples.
test-all: setup
	HYPOTHESIS_PROFILE=thorough $(PY) -m pytest -q -n $(JOBS)

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache runs report.html
