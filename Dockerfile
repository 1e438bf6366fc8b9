# netbed for CI in a privileged container: Debian 12, installed by the one install step, runs `make test`.
#
#   docker build -t netbed .                           # the lean CI image (the last stage, `ci`)
#   docker run --rm --privileged netbed                # make test
#   docker run --rm --privileged netbed make demo
#   docker build --target browser -t netbed:browser .  # + Chromium, for the HTML report's browser test
#
# --privileged is needed: nodes are network namespaces, links are veth pairs, the state timeline is
# bpftrace, and every node's sysctls are written to /proc/sys (read-only in a container without it).
# Without it netbed stops with one line (README, "CI in a privileged container"). podman: the same
# commands; scripts/container-check.sh builds and runs both images with whichever engine is there.

# System packages first, from the install script alone: this layer survives edits to the code.
# No Chromium here: only one test needs it (about 450 MB with what it pulls in), see `browser`.
FROM debian:bookworm AS system
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NETBED_WITH_BROWSER=0
WORKDIR /netbed
COPY scripts/install.sh scripts/install.sh
RUN bash scripts/install.sh --system-only && rm -rf /var/lib/apt/lists/*

# The lean image plus Chromium and a CJK font: runs tests/test_report_html.py too.
FROM system AS browser
ENV NETBED_WITH_BROWSER=1
RUN bash scripts/install.sh --system-only && rm -rf /var/lib/apt/lists/*
COPY . .
RUN bash scripts/install.sh
CMD ["make", "test"]

# The CI image (the default target): the project and its venv (.dockerignore keeps the host's .venv
# and runs out).
FROM system AS ci
COPY . .
RUN bash scripts/install.sh
CMD ["make", "test"]
