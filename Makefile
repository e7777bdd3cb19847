# One entry point for people and CI: every target creates .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EVENTS ?= 5000
# Test processes (pytest-xdist) of `make test`, sharing one broker; 0 runs the suite in one.
TEST_WORKERS ?= 2


.PHONY: install up demo test check lint typecheck unit integration bench soak kafka-up kafka-down ops-tools clean

# pip's own output (and setuptools' editable-install notice) goes to .venv/install.log;
# the terminal gets one summary line, or the whole log when the install fails.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@started=$$(date +%s); \
	if ! { $(BIN)/python -m pip install --quiet --upgrade pip \
	       && $(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'; \
	     } > $(VENV)/install.log 2>&1; then \
		cat $(VENV)/install.log; echo "install failed (log: $(VENV)/install.log)"; exit 1; \
	fi; \
	echo "installed intouch-connector $$($(BIN)/connector --version | sed 's/.* //') and its" \
	     "dependencies into $(VENV) in $$(( $$(date +%s) - started )) s (log: $(VENV)/install.log)"
	@touch $(STAMP)

install: $(STAMP)

## Bring up the local broker and create every design topic (idempotent).
up: $(STAMP)
	$(BIN)/connector kafka up
	$(BIN)/connector topics ensure

## The main job on the embedded default: local Kafka, topics, and the pipeline demo.
demo: $(STAMP)
	@$(BIN)/connector demo --events $(EVENTS)

## Everything CI runs: lint, format, types, then the whole suite on a real broker.
## A module's tests run in one process, in order: they may share a module-scoped pipeline.
test: check
	$(BIN)/python -m pytest -q --durations=25 -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict streams adapters demo

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration

bench: $(STAMP)
	$(BIN)/python -m bench

## The chaos soak, long form (docs/reliability.md); `make soak SOAK="--quick"` for the bounded one.
soak: $(STAMP)
	$(BIN)/python -m bench.soak $(SOAK)

kafka-up: $(STAMP)
	$(BIN)/connector kafka up

kafka-down: $(STAMP)
	$(BIN)/connector kafka down

## Operations tools from Debian's packages (as root): Prometheus and promtool, Burrow,
## ZooKeeper (for Burrow) and kcat. The tests install what they need on first use too.
ops-tools:
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus burrow zookeeper kcat

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
