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
start=$(date +%s)
# the build installs packages: it needs the host's network (the runs below get none)
"$engine" build "${engine_flags[@]}" --network host -t "$image" "$here"
build_seconds=$(( $(date +%s) - start ))
size=$("$engine" image inspect --format '{{.Size}}' "$image")
log "built $image in ${build_seconds} s, $(( size / 1000000 )) MB"
[ "$build_only" = 0 ] || exit 0

# -- the runs -------------------------------------------------------------------------------------
run() {  # run LABEL FLAGS... -- COMMAND...: prints the closing lines and the time, returns the exit code
  local label=$1; shift
  local flags=()
  while [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  local out start rc
  out=$(mktemp)
  start=$(date +%s)
  set +e
  "$engine" run "${engine_flags[@]}" --rm --network none "${run_flags[@]}" "${flags[@]}" "$image" "$@" >"$out" 2>&1
  rc=$?
  set -e
  tail -n 4 "$out" | sed "s/^/[$label] /"
  log "$label: exit $rc in $(( $(date +%s) - start )) s (full output: $out)"
  return 0
}

run "make test, privileged" --privileged -- make test
run "make demo, privileged" --privileged -- make demo
if [ "$unprivileged" = 1 ]; then
  run "netbed run, unprivileged" -- .venv/bin/netbed run handshake
  run "make test, unprivileged" -- make test
  run "netbed run, NET_ADMIN+SYS_ADMIN+NET_RAW" --cap-add NET_ADMIN,SYS_ADMIN,NET_RAW -- .venv/bin/netbed run handshake
  run "make test, NET_ADMIN+SYS_ADMIN+NET_RAW" --cap-add NET_ADMIN,SYS_ADMIN,NET_RAW -- make test
fi
log "image $image: built in ${build_seconds} s, $(( size / 1000000 )) MB"
