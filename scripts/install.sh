#!/usr/bin/env bash
# The one install step of netbed: system packages, then the project's virtual environment.
# Used by `make setup`, the Vagrantfile and the Dockerfile alike. Idempotent: it installs only
# what is missing, so a second run takes a second.
#
#   scripts/install.sh                 everything
#   scripts/install.sh --system-only   system packages only (the Dockerfile's first, cached layer)
#
# Extras where the kernel can use them (the Vagrantfile sets both; the VM's kernel has the modules):
#   NETBED_WITH_OVS=1     Open vSwitch, for `--switch ovs`
#   NETBED_WITH_NETEM=1   the kernel's netem qdisc (link delay and jitter); Ubuntu ships it in
#                         linux-modules-extra-$(uname -r)
# And one to leave out:
#   NETBED_WITH_BROWSER=0 no Chromium and CJK font (about 450 MB with what they pull in): only the HTML
#                         report's browser test needs them; the lean CI image is built this way
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/.venv"

die() { echo "netbed setup: $*" >&2; exit 2; }
warn() { echo "netbed setup: warning: $*" >&2; }

system_only=0
case "${1:-}" in
  "") ;;
  --system-only) system_only=1 ;;
  *) die "unknown option '$1' (usage: scripts/install.sh [--system-only])" ;;
esac

[ "$(id -u)" -eq 0 ] || die "run as root (sudo make setup): Mininet and tcpdump need it"
command -v apt-get >/dev/null || die "this installer needs a Debian or Ubuntu machine (apt-get not found)"

# command that proves the package is there -> Debian package that provides it
declare -A wanted=(
  [mnexec]=mininet [tcpdump]=tcpdump [ip]=iproute2 [iptables]=iptables [brctl]=bridge-utils
  [ping]=iputils-ping [bpftrace]=bpftrace [tshark]=tshark [curl]=curl [ss]=iproute2
  [ifconfig]=net-tools [ethtool]=ethtool [pgrep]=procps [make]=make
  [nsenter]=util-linux [tc]=iproute2 [ruby]=ruby [shellcheck]=shellcheck [zsh]=zsh
  # Mininet Cluster Edition (--cluster): ssh to every server, sudo there; sshd for `netbed cluster up`
  [ssh]=openssh-client [sshd]=openssh-server [sudo]=sudo
  # the dhcp experiment: a real DHCP server (dnsmasq-base: the binary, no system service that would
  # start on the machine) and a real DHCP client (busybox's udhcpc), both run only inside hosts
  [dnsmasq]=dnsmasq-base [busybox]=busybox [setpriv]=util-linux
  [gcc]=gcc [stdbuf]=coreutils  # claim files: students' C built by gcc; programs' output unbuffered
)
missing=()
if [ "${NETBED_WITH_BROWSER:-1}" != 0 ]; then
  wanted[chromium]=chromium
  # the HTML report quotes the lecture in Chinese: a CJK font, so the browser shows more than boxes
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
fi
for cmd in "${!wanted[@]}"; do
  PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}")
done
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ "${NETBED_WITH_OVS:-0}" = 1 ] && ! command -v ovs-vsctl >/dev/null; then
  missing+=(openvswitch-switch)
fi
if [ "${NETBED_WITH_NETEM:-0}" = 1 ] && ! command -v modprobe >/dev/null; then
  missing+=(kmod)
fi

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" = 0 ]; then
    apt-get update -q
    apt_updated=1
  fi
}
apt_install() {
  apt_update_once
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# Chromium only opens the HTML report in its test (tests/test_report_html.py, skipped without it).
# Debian ships it as a .deb; Ubuntu only as a snap, behind a package of another name: there, say so
# and go on rather than stop the whole install or pull in snapd.
if [[ " ${missing[*]} " == *" chromium "* ]]; then
  apt_update_once
  if ! apt-cache show chromium >/dev/null 2>&1; then
    warn "this archive has no chromium package: the HTML report's browser test will be skipped"
    kept=()
    for package in "${missing[@]}"; do
      [ "$package" = chromium ] || kept+=("$package")
    done
    missing=("${kept[@]}")
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "netbed setup: installing ${missing[*]}"
  apt_install "${missing[@]}"
fi

if [ "${NETBED_WITH_OVS:-0}" = 1 ] && ! ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
  warn "Open vSwitch is installed but its daemon does not answer:" \
       "--switch ovs will not work (systemctl start openvswitch-switch)"
fi

# `modprobe -n` finds a module that is loadable, loaded or built in, without loading anything.
have_netem() { modprobe -n -q sch_netem 2>/dev/null; }
if [ "${NETBED_WITH_NETEM:-0}" = 1 ] && ! have_netem; then
  kernel=$(uname -r)
  extra="linux-modules-extra-$kernel"
  apt_update_once
  if apt-cache show "$extra" >/dev/null 2>&1; then
    echo "netbed setup: installing $extra (netem, for link delay and jitter)"
    apt_install "$extra"
  fi
  if have_netem; then
    modprobe -q sch_netem || true
  else
    warn "kernel $kernel has no sch_netem and the archive has no $extra:" \
         "link delay and jitter will not work (boot a current distribution kernel;" \
         "in the Vagrant lab: vagrant box update, then vagrant destroy -f && vagrant up)"
  fi
fi

# Debian's mininet (with mnexec) lives in the system Python; the venv must see it.
[ -x /usr/bin/python3 ] || die "/usr/bin/python3 not found"
/usr/bin/python3 -c 'import mininet' 2>/dev/null || die "Debian's mininet package did not install into /usr/bin/python3"
if [ "$system_only" = 1 ]; then
  echo "netbed setup: system packages ready"
  exit 0
fi

# A venv made by another Python (a checkout shared with a host or upgraded system) cannot see its
# own site-packages: rebuild it for the system Python of this machine.
stamp="$venv/.netbed-installed"
python_version=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv_version=$(sed -n 's/^version *= *\([0-9]*\.[0-9]*\).*/\1/p' "$venv/pyvenv.cfg" 2>/dev/null || true)
if [ ! -x "$venv/bin/python" ] || [ "$venv_version" != "$python_version" ]; then
  [ ! -e "$venv" ] || echo "netbed setup: rebuilding $venv for Python $python_version"
  /usr/bin/python3 -m venv --clear --system-site-packages "$venv"
  rm -f "$stamp"
fi
if [ ! -f "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -e "${here}[test,bench]"
  touch "$stamp"
fi
"$venv/bin/python" -c 'import mininet, netbed' || die "the venv cannot import mininet and netbed"
echo "netbed setup: ready ($venv/bin/netbed)"
