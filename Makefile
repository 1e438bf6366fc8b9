# netbed — the two commands of the quick start are `make demo` and `make test` (as root).
VENV   := .venv
NETBED := $(VENV)/bin/netbed
PYTEST := $(VENV)/bin/python -m pytest
# Two workers by default: every run is namespaced, so tests build networks side by side. The cluster
# tests are the exception: an emulated cluster's bridge and servers live in the root namespace, which the
# other tests check is left as they found it, so they run alone, in `make test-cluster`.
PYTEST_ARGS ?= -n 2 -m "not cluster"

.PHONY: setup demo test test-pure test-cluster lint bench clean-runs container-check vm-check

# Idempotent: installs only what is missing (system packages, the venv, the project in it).
setup:
	@bash scripts/install.sh

# The main job: every experiment on every topology it supports, a verdict table, artifacts under runs/,
# and the report page runs/report.html (docs/report.png is a screenshot of it).
demo: setup
	$(NETBED) run --all --html runs/report.html

# The whole suite: pure tests and the real ones (root, kernel, Mininet). pytest's exit 5
# ("no tests collected") is a failure here, never a silent pass.
test: setup
	@$(PYTEST) $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests — the suite is broken" >&2; exit 1; fi; \
	  exit $$rc

# netbed on Mininet Cluster Edition over emulated servers (netbed cluster up): one worker, nothing beside it.
test-cluster: setup
	$(PYTEST) -m cluster -n 0

test-pure: setup
	$(PYTEST) -m "not netbed" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check netbed topologies experiments tests bench

clean-runs:
	rm -rf runs

# The CI image built and run as CI runs it (docker or podman; not part of `make test`): `make test`
# and `make demo` in a privileged container, figures at the end. CONTAINER_CHECK_ARGS=--unprivileged
# also shows the one line a container without --privileged gets. docs/container.md has the figures.
container-check:
	@bash scripts/container-check.sh $(CONTAINER_CHECK_ARGS)

# The Vagrant lab proven in a real VM (not part of `make test`): a Debian box built with debootstrap when
# none is cached, the Vagrantfile brought up with libvirt, `make test` and `make demo` inside with Open
# vSwitch and netem, results copied out, the VM destroyed. VM_CHECK_ARGS=--no-demo; docs/vm.md.
vm-check:
	@bash scripts/vm-check.sh $(VM_CHECK_ARGS)
