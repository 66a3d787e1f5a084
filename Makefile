# ght-socle — two commands set everything up on a fresh Debian 12 machine (root, python3, make):
#   make demo   the main job on the local lab: plan + policy check of the lab stack, lab VMs up,
#               hardening, conformance, HTML report
#   make test   the whole suite: lint, unit and policy tests, then the lab and local cloud integration tests
# Fast developer loop: make check-fast (lint + unit + policy tests, no VM).

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

# Debian packages the lab and the roles' tooling need (installed only when missing).
APT_PACKAGES := qemu-system-x86 qemu-utils debootstrap openssh-client iproute2 e2fsprogs \
                cpio zstd lynis genisoimage nftables

.PHONY: all deps venv apt engine lint test test-fast check-fast test-lab demo clean distclean lock

all: test

deps: apt venv

venv: $(STAMP)
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@echo "==> installing Python packages into $(VENV) within the lock constraints.txt (first time: about a minute)"
	@$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# Re-resolve the lock after changing a dependency in pyproject.toml (keeps every pin it can).
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --all-extras --strip-extras --no-header --no-emit-find-links \
	  --output-file constraints.txt pyproject.toml
	@sed -i '/^ght-socle @ /d' constraints.txt

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "==> installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "error: need root to install:$$missing (sudo make deps)"; exit 2; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The real Pulumi CLI at the pinned version, built from Go modules into ~/.cache/ght-socle/engine
# (first time 10-25 min on 2 cores; then seconds), then the project's OpenStack provider plugin
# (first time 15-30 min), installed into the engine's PULUMI_HOME. docs/engine.md.
engine: venv
	$(BIN)/socle engine build
	$(PY) -m ght_socle.engine.provider

lint: venv
	$(BIN)/ruff check src tests bench stacks policies plugins
	$(BIN)/mypy src/ght_socle
	$(BIN)/yamllint -s policies stacks inventories playbooks roles .github
	@if ls roles/*/tasks >/dev/null 2>&1; then cd roles/.. && $(BIN)/ansible-lint --profile production -q playbooks roles; fi

test-fast: venv
	$(BIN)/pytest -q tests/unit tests/policy

check-fast: lint test-fast

test-lab: deps
	$(BIN)/pytest -q -x tests/lab

# Each stage of `make test` prints its wall time, so CI's budget (90 min) can be watched stage by stage.
define stage
@start=$$(date +%s); echo "==> [$(1)] started at $$(date -u +%H:%M:%S)"; $(2); rc=$$?; \
echo "==> [$(1)] $$(( $$(date +%s) - start )) s (exit $$rc)"; exit $$rc
endef

test:
	$(call stage,dependencies,$(MAKE) --no-print-directory deps)
	$(call stage,engine,$(MAKE) --no-print-directory engine)
	$(call stage,lint,$(MAKE) --no-print-directory lint)
	$(call stage,unit and policy tests,$(BIN)/pytest -q --durations=5 tests/unit tests/policy)
	$(call stage,engine tests,$(BIN)/pytest -q --durations=5 tests/engine)
	$(call stage,local cloud tests,$(BIN)/pytest -q --durations=5 tests/cloud)
	$(call stage,lab tests,$(BIN)/pytest -q --durations=12 tests/lab)

demo: deps
	$(BIN)/socle demo

clean:
	-$(BIN)/socle lab down >/dev/null 2>&1 || true
	-$(BIN)/socle cloud down >/dev/null 2>&1 || true
	rm -rf .socle .pytest_cache .mypy_cache .ruff_cache

distclean: clean
	rm -rf $(VENV)
