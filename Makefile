# shipyard — the two commands a new machine needs: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check setup system bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) system

system:
	bash scripts/setup-system.sh test
	bash scripts/setup-k8s.sh

demo: setup
	$(BIN)/python examples/demo.py

check: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy src/shipyard
	$(BIN)/lint-imports

test: setup check
	$(BIN)/pytest -q tests

bench: $(STAMP)
	bash scripts/setup-system.sh bench
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .shipyard .pytest_cache .mypy_cache .ruff_cache
