# `make demo` and `make test` create .venv when missing (or when the dependencies
# changed), install the package with its dev extras under constraints.txt, then run.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# two workers (the machines have two cores), each test module on one worker so that its
# module-scoped fixtures (trained models) are built once; one thread per worker, so that the
# workers do not oversubscribe the cores and float reductions (hence trained models and the
# numbers the end-to-end tests assert) do not depend on the machine's core count
PYTEST_ARGS ?= -n 2 --dist loadscope
TEST_THREADS := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

.PHONY: env demo test pytest docs benchmarks clean

env: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

demo: env
	$(BIN)/skshortcut benchmark --out demo-output

pytest: env
	$(TEST_THREADS) $(BIN)/python -m pytest $(PYTEST_ARGS)

docs: env
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

test: pytest docs

benchmarks: env
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) docs/_build demo-output .pytest_cache
