# netbed — the two commands of the quick start are `make demo` and `make test` (as root).
VENV   := .venv
NETBED := $(VENV)/bin/netbed
PYTEST := $(VENV)/bin/python -m pytest
# Two workers by default: every run is namespaced, so tests build networks side by side.
PYTEST_ARGS ?= -n 2

.PHONY: setup demo test test-pure lint bench clean-runs

# Idempotent: installs only what is missing (system packages, the venv, the project in it).
setup:
	@bash scripts/install.sh

# The main job: every experiment on every topology it supports, a verdict table, artifacts under runs/.
demo: setup
	$(NETBED) run --all

# The whole suite: pure tests and the real ones (root, kernel, Mininet). pytest's exit 5
# ("no tests collected") is a failure here, never a silent pass.
test: setup
	@$(PYTEST) $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests — the suite is broken" >&2; exit 1; fi; \
	  exit $$rc

test-pure: setup
	$(PYTEST) -m "not netbed" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check netbed topologies experiments tests bench

clean-runs:
	rm -rf runs
