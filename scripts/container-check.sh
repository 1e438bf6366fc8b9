#!/usr/bin/env bash
# Build the CI image and run the suite in it, as CI would: `make container-check` (not part of `make test`).
#
#   scripts/container-check.sh              build, then `make test` and `make demo` in a privileged container
#   scripts/container-check.sh --build-only
#   scripts/container-check.sh --unprivileged   also show what a container without --privileged says
#
# With docker where its engine answers, else podman (installed here when missing). The Debian base
# (debian:bookworm) is pulled when a registry answers; where none does, it is made on this machine with
# debootstrap from the Debian archive apt already uses, imported under the same name, so the Dockerfile
# stays as it is. That local base trusts the CA certificates this machine trusts (a proxy in front of
# the package registries may sign with its own), and its pip uses them (PIP_CERT).
# Figures (build time, image size, results) are printed at the end; docs/container.md records them.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
image=${NETBED_IMAGE:-netbed:ci}
base=docker.io/library/debian:bookworm
build_only=0
unprivileged=0
for arg in "$@"; do
  case "$arg" in
    --build-only) build_only=1 ;;
    --unprivileged) unprivileged=1 ;;
    *) echo "container-check: unknown option '$arg' (usage: scripts/container-check.sh [--build-only] [--unprivileged])" >&2
       exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "container-check: run as root (sudo make container-check)" >&2; exit 2; }

log() { echo "container-check: $*" >&2; }
apt_install() {
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# -- the engine ------------------------------------------------------------------------------------
engine_flags=()
run_flags=()
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  engine=docker
else
  if ! command -v podman >/dev/null; then
    log "no docker engine answers and podman is missing: installing podman"
    apt_install podman runc uidmap ca-certificates
  fi
  engine=podman
  # runc: podman's default crun needs cgroup features some kernels lack; runc works everywhere here.
  command -v runc >/dev/null && engine_flags+=(--runtime runc)
  # podman passes its own (often unlimited) limits; state the ones the suite needs (2000-host LANs)
  run_flags+=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
fi
log "engine: $engine $("$engine" --version | head -1)"

# -- the base image -------------------------------------------------------------------------------
if ! "$engine" image exists "$base" 2>/dev/null && ! "$engine" image inspect "$base" >/dev/null 2>&1; then
  if timeout 60 "$engine" pull -q "$base" >/dev/null 2>&1; then
    log "pulled $base"
  else
    log "no registry answers for $base: making it with debootstrap"
    command -v debootstrap >/dev/null || apt_install debootstrap
    mirror=$(sed -n 's/^URIs: *\([^ ]*debian\)\/\?$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
    mirror=${mirror:-http://deb.debian.org/debian}
    work=$(mktemp -d /var/tmp/netbed-base.XXXXXX)
    trap 'rm -rf "$work"' EXIT
    start=$(date +%s)
    debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
      || { tail -5 "$work/debootstrap.log" >&2; log "debootstrap failed"; exit 1; }
    # the CA certificates this machine trusts: kept by update-ca-certificates when the image installs them
    mkdir -p "$work/rootfs/usr/local/share/ca-certificates" "$work/rootfs/etc/ssl/certs"
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
      cp /etc/ssl/certs/ca-certificates.crt "$work/rootfs/usr/local/share/ca-certificates/netbed-host-bundle.crt"
      cp /etc/ssl/certs/ca-certificates.crt "$work/rootfs/etc/ssl/certs/ca-certificates.crt"
    fi
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
    tar -C "$work/rootfs" -c . | "$engine" import --change "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt" \
      --change 'CMD ["bash"]' - "$base" >/dev/null
    log "made $base with debootstrap in $(( $(date +%s) - start )) s"
  fi
fi

# -- the image ------------------------------------------------------------------------------------
build() {  # build TAG [BUILD FLAGS...]: prints the time and the image's size
  local tag=$1 start seconds size
  shift
  start=$(date +%s)
  # the build installs packages: it needs the host's network (the runs below get none)
  "$engine" build "${engine_flags[@]}" --network host -t "$tag" "$@" "$here"
  seconds=$(( $(date +%s) - start ))
  size=$("$engine" image inspect --format '{{.Size}}' "$tag")
  figures+=("image $tag: built in ${seconds} s, $(( size / 1000000 )) MB")
  log "${figures[-1]}"
}
figures=()
build "$image"
build "$image-browser" --target browser
[ "$build_only" = 0 ] || { printf '%s\n' "${figures[@]}"; exit 0; }

# -- the runs -------------------------------------------------------------------------------------
unexpected=0
run() {  # run LABEL EXPECTED-EXIT FLAGS... -- COMMAND...: prints the closing lines, the exit code and the time
  local label=$1 expected=$2; shift 2
  local flags=() tag=$image
  while [ "$1" != -- ]; do
    if [ "$1" = --image ]; then tag=$2; shift 2; else flags+=("$1"); shift; fi
  done
  shift
  local out start rc
  out=$(mktemp /tmp/container-check.XXXXXX)
  start=$(date +%s)
  set +e
  "$engine" run "${engine_flags[@]}" --rm --network none "${run_flags[@]}" "${flags[@]}" "$tag" "$@" >"$out" 2>&1
  rc=$?
  set -e
  tail -n 3 "$out" | sed "s/^/[$label] /"
  [ "$rc" = "$expected" ] || { unexpected=1; label="$label (expected exit $expected)"; }
  figures+=("$label: exit $rc in $(( $(date +%s) - start )) s: $(grep -E ' (passed|failed)|^[0-9]+/[0-9]+ passed|^netbed: ' "$out" | tail -1)")
  log "${figures[-1]} (full output: $out)"
}

run "make test, privileged" 0 --privileged -- make test
run "make demo, privileged" 0 --privileged -- make demo
run "HTML report in Chromium, privileged" 0 --privileged --image "$image-browser" -- \
  .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_report_html.py
if [ "$unprivileged" = 1 ]; then
  # netbed's one line, exit 2; make passes pytest's 2 on as its own failure, exit 2
  run "netbed run, unprivileged" 2 -- .venv/bin/netbed run handshake
  run "make test, unprivileged" 2 -- make test
  partial=(--cap-add NET_ADMIN,SYS_ADMIN,NET_RAW)
  run "netbed run, --cap-add NET_ADMIN,SYS_ADMIN,NET_RAW" 2 "${partial[@]}" -- .venv/bin/netbed run handshake
  run "make test, --cap-add NET_ADMIN,SYS_ADMIN,NET_RAW" 2 "${partial[@]}" -- make test
fi
printf '%s\n' "${figures[@]}"
exit "$unexpected"
