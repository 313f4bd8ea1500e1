# The two commands of the README:  make run  (start the app)  and  make test  (all tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-avx2 lint format data bench clean

$(STAMP): requirements.txt requirements-dev.txt requirements-ray.txt requirements-export.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# Find and verify the data; download it (with progress and checksums) if it is nowhere.
data: $(STAMP)
	$(PY) -m fmnist_core data --check || $(PY) -m fmnist_core data --download

run: data
	$(VENV)/bin/streamlit run app.py

# Two xdist workers: the modules that drive the app run in one (one scope, so they share its app
# servers), every other module goes to whichever worker is free (tests/conftest.py). On 2 cores the
# suite no longer leaves a core idle while a test waits on a page or on a subprocess's TensorFlow
# import (docs/PERFORMANCE.md). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m fmnist_core data --check
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadscope) $(PYTEST_ARGS)

# The same tests on the AVX2-only kind's code paths, from either kind: no bfloat16 (the CPU flags
# come from an AVX2 machine's cpuinfo) and oneDNN held to AVX2 kernels. Not its speed. The tests
# that force bfloat16 are left out: TensorFlow still sees this CPU's AVX-512 and hands bfloat16
# to oneDNN, which, held to AVX2, refuses (a real AVX2 CPU takes another path); make test runs them.
test-avx2: $(STAMP)
	FMNIST_CPUINFO=tests/fixtures/cpuinfo-avx2.txt ONEDNN_MAX_CPU_ISA=AVX2 $(MAKE) test PYTEST_ARGS='-m "not bf16" $(PYTEST_ARGS)'

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) -m fmnist_core bench train

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
