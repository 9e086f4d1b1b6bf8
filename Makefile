# The user's interface. Every target sets up what it needs (the venv) first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MNIST_PATH ?= $(wildcard ../shared/data/mnist.npz)
export MNIST_PATH
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup serve test test-docker train evaluate recalibrate bench bench-quality constraints clean

setup: $(STAMP)
$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

serve: setup
	$(BIN)/vae-serve --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/python -m pytest -m "not docker" $(PYTEST_ARGS)

test-docker: setup
	$(BIN)/python -m pytest -m docker -s $(PYTEST_ARGS)

train: setup
	$(BIN)/python -m training train --normal 1 $(TRAIN_ARGS)

evaluate: setup
	$(BIN)/python -m training evaluate $(EVALUATE_ARGS)

recalibrate: setup
	@test -n "$(IMAGES)" || { echo "usage: make recalibrate IMAGES=folder/of/normal/images [RECALIBRATE_ARGS=...]"; exit 2; }
	$(BIN)/python -m training recalibrate --images "$(IMAGES)" $(RECALIBRATE_ARGS)

bench: setup
	$(BIN)/python bench/serve.py $(BENCH_ARGS)

bench-quality: setup
	$(BIN)/python bench/quality.py $(BENCH_ARGS)

# Re-pin constraints.txt to the latest releases that pyproject.toml allows (then run the tests).
constraints:
	rm -rf .venv-constraints && $(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/pip install --quiet --upgrade pip
	.venv-constraints/bin/pip install --quiet '.[dev]'
	{ sed -n '/^#/p' constraints.txt; .venv-constraints/bin/pip freeze --exclude-editable | grep -v '^vae-anomaly'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf .venv-constraints

clean:
	rm -rf $(VENV) .pytest_cache reports
