# The two commands of the README:  make run  (start the app)  and  make test  (all tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format data bench clean

$(STAMP): requirements.txt requirements-dev.txt requirements-ray.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# Find and verify the data; download it (with progress and checksums) if it is nowhere.
data: $(STAMP)
	$(PY) -m fmnist_core data --check || $(PY) -m fmnist_core data --download

run: data
	$(VENV)/bin/streamlit run app.py

test: $(STAMP)
	$(PY) -m fmnist_core data --check
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) -m fmnist_core bench train

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
