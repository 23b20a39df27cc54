# Two commands on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Keep the demo's state (store, models, logs) inside the checkout, away from your real folders.
DEMO_HOME := $(CURDIR)/.demo/home

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/install-system-deps.sh
	./scripts/install-system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch first: an unpinned torch would pull several GB of CUDA.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,report]'
	touch $(STAMP)

demo: setup
	BOUNCETAG_HOME=$(DEMO_HOME) $(BIN)/python -m bouncetag.demo .demo

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check bouncetag tests benchmarks

bench: setup
	$(BIN)/python benchmarks/tempo.py
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/latency.py
	$(BIN)/python benchmarks/genre.py

clean:
	rm -rf .demo .pytest_cache benchmarks/results
