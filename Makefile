# Quick start (see README.md):  make demo   |   make test
# Each target creates .venv with a Python >= 3.12 and installs the package with its test extras.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench docs clean

$(STAMP): pyproject.toml
	@PYTHON_BIN=$$(scripts/find-python) && echo "Creating $(VENV) with $$PYTHON_BIN" && \
	  $$PYTHON_BIN -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,nutpie]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/formulahier demo

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)   # ruff (style, complexity) and mypy (types; config in pyproject.toml)
	$(VENV)/bin/ruff check formulahier tests benchmarks scripts
	$(VENV)/bin/mypy

bench: $(STAMP)   # python -m benchmarks --help: --models, --quick, --report (docs/performance.md)
	$(PY) -m benchmarks

docs: $(STAMP)   # builds the site into site/ (strict: any warning fails); serve: mkdocs serve
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

clean:
	rm -rf $(VENV) build *.egg-info
