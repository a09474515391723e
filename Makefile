# pidock.stack — development entry points. Every target does its own set-up (as root on a fresh
# Debian machine: packages, Docker engine, venv, base and sample images).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
STAGE := $(CURDIR)/scripts/stage.sh
SCENARIOS ?=
# make test warns past this many seconds (the suite's budget on a fresh machine).
TEST_BUDGET_S ?= 2700

.PHONY: help setup venv engine images lint unit molecule test build docs clean-cache demo demo-clean

help:
	@echo "make setup     venv + Docker engine + base and sample images (cached)"
	@echo "make lint      yamllint, ansible-lint, ruff, ansible-doc, changelog fragments, antsibull-docs,"
	@echo "              ansible-test sanity and galaxy-importer on the built tarball"
	@echo "make unit      pytest tests/unit"
	@echo "make molecule  every Molecule scenario (SCENARIOS='a b' for some)"
	@echo "make test      all of the above, with per-stage timings"
	@echo "make build     ansible-galaxy collection build"
	@echo "make docs      regenerate the roles' README reference from argument_specs"
	@echo "make demo      deploy the Inventory stack to a local Pi-like host 'pi' (https://127.0.0.1:8443/)"
	@echo "make demo-clean  remove the demo host and its volumes"

venv:
	@scripts/setup-venv.sh

engine:
	@scripts/ensure-docker.sh

images: engine
	@scripts/build-base-images.sh
	@scripts/build-sample-images.sh
	@scripts/build-arm64-image.sh

setup: venv images

lint: venv
	@scripts/lint.sh

unit: venv
	@# pytest exits 5 when it collects nothing; an empty tests/unit is not a failure.
	@# pytest-xdist: one worker per core.
	rc=0; pytest tests/unit -q -n auto || rc=$$?; [ $$rc = 0 ] || [ $$rc = 5 ]

molecule: setup
	scripts/molecule-all.sh $(SCENARIOS)

docs: venv
	python scripts/role_docs.py

build: venv
	ansible-galaxy collection build --force --output-path .cache/dist .

# Every stage runs even when an earlier one failed, so one CI run shows everything that is wrong;
# the target fails if any stage failed.
test:
	@rm -f .cache/timings.txt .cache/failures.txt; mkdir -p .cache
	@rc=0; t0=$$(date +%s); \
	for stage in setup lint unit build molecule; do \
	  $(STAGE) $$stage $(MAKE) --no-print-directory $$stage || rc=1; \
	done; \
	total=$$(( $$(date +%s) - t0 )); \
	echo; echo "== stage timings (seconds) =="; cat .cache/timings.txt; \
	printf '%-28s %6ss  (%dm%02ds)\n' total "$$total" $$((total / 60)) $$((total % 60)); \
	if [ "$$total" -gt $(TEST_BUDGET_S) ]; then \
	  echo "WARNING: make test took $$((total / 60)) min, over the $$(( $(TEST_BUDGET_S) / 60 ))-minute budget (CI's hard limit is 90)"; \
	fi; \
	ok=$$(grep -c ' ok$$' .cache/timings.txt || true); bad=$$(grep -c FAILED .cache/timings.txt || true); \
	echo "stages: $$ok passed, $$bad failed"; \
	if [ "$$rc" != 0 ] && [ -s .cache/failures.txt ]; then echo; echo "== what failed =="; cat .cache/failures.txt; fi; \
	exit $$rc

# The one-command demo: set-up (no arm64 image), host container `pi`, playbooks/deploy.yml.
demo:
	@scripts/demo.sh

demo-clean:
	@scripts/demo.sh clean

clean-cache:
	rm -rf .cache
