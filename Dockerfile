# netbed for CI in a privileged container: Debian 12, installed by the one install step, runs `make test`.
#
#   docker build -t netbed .
#   docker run --rm --privileged -v /lib/modules:/lib/modules:ro netbed            # make test
#   docker run --rm --privileged -v /lib/modules:/lib/modules:ro netbed make demo
#
# --privileged is needed: nodes are network namespaces, links are veth pairs, the state timeline is
# bpftrace. Without it netbed stops with one line (README, "CI in a privileged container").
FROM debian:bookworm

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /netbed

# System packages first, from the install script alone: this layer survives edits to the code.
COPY scripts/install.sh scripts/install.sh
RUN bash scripts/install.sh --system-only && rm -rf /var/lib/apt/lists/*

# Then the project and its venv (.dockerignore keeps the host's .venv and runs out).
COPY . .
RUN bash scripts/install.sh

CMD ["make", "test"]
