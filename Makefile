# shipyard — the two commands a new machine needs: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check setup system bench clean router-native

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	-$(BIN)/python -m shipyard.router.buildnative
	touch $(STAMP)

# The router's hot path compiled with mypyc (src/shipyard/router/native.py); after editing router code,
# run it again or the router runs as plain Python (correct, ~1.3x the CPU per request).
router-native: $(STAMP)
	$(BIN)/python -m shipyard.router.buildnative

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

test: setup check router-native
	$(BIN)/pytest -q --durations=25 tests

bench: $(STAMP) router-native
	bash scripts/setup-system.sh bench
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .shipyard .pytest_cache .mypy_cache .ruff_cache
