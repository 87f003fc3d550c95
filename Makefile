# `make run` and `make test` are all a fresh machine needs (Debian, Python 3.11).
# Everything Python installs from uv.lock only: exact versions, every file hash-checked.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := redis-server redis-sentinel nginx wrk

# The installer itself, pinned and hash-checked by pip (Linux x86_64 and aarch64 wheels).
UV_VERSION := 0.13.9
UV_HASHES  := --hash=sha256:d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19 \
              --hash=sha256:2c45530751517d6c3bbc69a19473f6effe47cce047bede01ffd8af7ea7b36b25 \
              --hash=sha256:5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe \
              --hash=sha256:ecb6028d79dc96fbeafffe5c8af62a7099487ebc05a701e76714eebcffd06375
UV_DIR := .uv
UV     := $(UV_DIR)/bin/uv
# uv uses this machine's Python, never one it downloads; the project's venv is $(VENV).
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# --locked: refuse to install when pyproject.toml and uv.lock disagree (never re-resolve).
SYNC := $(UV) sync --locked --python $(PYTHON) --extra uvloop --extra otel --extra bedrock \
        --extra vertex

.PHONY: run test lint typecheck unit bench bench-peers bench-scaling bench-paired soak system-deps clean \
        lock lock-check \
        install install-test install-bench

$(UV):
	@printf 'uv==$(UV_VERSION) %s\n' "$(UV_HASHES)" > $(UV_DIR).req
	$(PYTHON) -m pip install -q --disable-pip-version-check --no-deps --require-hashes \
	  --target $(UV_DIR) -r $(UV_DIR).req
	@rm -f $(UV_DIR).req

# Names the requirement that changed, in the first second, before anything is installed.
lock-check:
	@$(PYTHON) tests/support/lockdiff.py

install: lock-check | $(UV)
	$(SYNC)

install-test: lock-check | $(UV)
	$(SYNC) --extra test

install-bench: lock-check | $(UV)
	$(SYNC) --extra test --extra bench

# Re-resolves deliberately: `make lock` keeps what is locked where pyproject allows it;
# `make lock UPGRADE=aiohttp` moves one package to its newest allowed release.
lock: | $(UV)
	$(UV) lock --python $(PYTHON) $(if $(UPGRADE),--upgrade-package $(UPGRADE))

# Servers the tests start themselves on free loopback ports (never as system services).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  command -v $$p >/dev/null 2>&1 || [ -x /usr/sbin/$$p ] || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null 2>&1 || \
	  ( $(SUDO) apt-get update -q >/dev/null && \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null ); \
	fi

run: install
	@echo "the admin command line is $(BIN)/edge (e.g. $(BIN)/edge admin --help)"
	$(BIN)/edge serve --demo

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports  # the layer contracts in pyproject.toml [tool.importlinter]

typecheck: install-test
	$(BIN)/mypy

unit: install-test system-deps
	$(BIN)/pytest -q

test: lint typecheck unit

bench: install-bench system-deps
	$(BIN)/python -m tests.bench.run

# LiteLLM and Portkey beside the bare relay and edge, each pinned (tests/bench/peers/) and
# installed under that folder on first use: a virtualenv of its own, node_modules by npm ci.
bench-peers: install-bench system-deps
	UV=$(UV) $(BIN)/python -m tests.bench.peers.run

# How the gateway's CPU and added latency grow with body size, stream length, open streams,
# a stored conversation's turns and the keys in the store (to 1,000,000 on Redis): tables in
# tests/bench/results/, and every curve drawn as one chart, tests/bench/results/scaling.png.
bench-scaling: install-bench system-deps
	$(BIN)/python -m tests.bench.scaling

# The gateway at BASE and the working tree serving at once, measured in alternating rounds:
# a change's cost without the drift between two runs minutes apart.
bench-paired: install-bench system-deps
	$(BIN)/python -m tests.bench.paired $(BASE)

soak: install-test system-deps
	$(BIN)/pytest -q -rP -m soak tests/soak  # -rP: each run prints its figures

clean:
	rm -rf $(VENV) $(UV_DIR) .mypy_cache .ruff_cache .pytest_cache tests/bench/peers/.venv \
	  tests/bench/peers/portkey/node_modules
