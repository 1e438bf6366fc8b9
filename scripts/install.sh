#!/usr/bin/env bash
# The one install step of netbed: system packages, then the project's virtual environment.
# Used by `make setup`, the Vagrantfile and the Dockerfile alike. Idempotent: it installs only
# what is missing, so a second run takes a second.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/.venv"

die() { echo "netbed setup: $*" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo make setup): Mininet and tcpdump need it"
command -v apt-get >/dev/null || die "this installer needs a Debian or Ubuntu machine (apt-get not found)"

# command that proves the package is there -> Debian package that provides it
declare -A wanted=(
  [mnexec]=mininet [tcpdump]=tcpdump [ip]=iproute2 [iptables]=iptables [brctl]=bridge-utils
  [ping]=iputils-ping [bpftrace]=bpftrace [tshark]=tshark [curl]=curl [ss]=iproute2
  [ifconfig]=net-tools [ethtool]=ethtool [pgrep]=procps
)
missing=()
for cmd in "${!wanted[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}")
done
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
# Optional extras where the kernel can use them (the Vagrant VM): Open vSwitch and netem.
if [ "${NETBED_WITH_OVS:-0}" = 1 ] && ! command -v ovs-vsctl >/dev/null; then
  missing+=(openvswitch-switch)
fi

if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "netbed setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's mininet (with mnexec) lives in the system Python; the venv must see it.
[ -x /usr/bin/python3 ] || die "/usr/bin/python3 not found"
/usr/bin/python3 -c 'import mininet' 2>/dev/null || die "Debian's mininet package did not install into /usr/bin/python3"
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
stamp="$venv/.netbed-installed"
if [ ! -f "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -e "$here[test]"
  touch "$stamp"
fi
"$venv/bin/python" -c 'import mininet, netbed' || die "the venv cannot import mininet and netbed"
echo "netbed setup: ready ($venv/bin/netbed)"
