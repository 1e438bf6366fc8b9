#!/usr/bin/env bash
# The Vagrant lab, proven in a real VM: `make vm-check` (not part of `make test`; docs/vm.md).
#
#   scripts/vm-check.sh                 build the box if none is cached, `vagrant up` the project's own
#                                       Vagrantfile (libvirt), `sudo make test` and `sudo make demo` inside
#                                       with Open vSwitch and netem, the switch comparison where the
#                                       checkout has one, results copied out, the VM destroyed
#   scripts/vm-check.sh --build-only    only the image and the box (cached for the next run)
#   scripts/vm-check.sh --no-demo       skip `make demo`
#
# Everything comes from Debian packages: qemu, libvirt, vagrant and vagrant-libvirt are installed when
# missing, the guest is Debian bookworm made with debootstrap into a raw disk formatted with
# `mkfs.ext4 -d` (no loop device, no mount), GRUB installed by a first boot under QEMU, converted to
# qcow2 and wrapped as a local vagrant-libvirt box. Image and box are cached in $NETBED_VM_CACHE
# (/var/cache/netbed-vm), so a second run goes straight to `vagrant up`.
#
# Where PID 1 is not systemd (a container, a sandbox), libvirtd and virtlogd are started by this script
# inside a network namespace of their own whose only way out is slirp4netns (user-mode networking, no
# link, route, address or firewall rule in the host's namespace): the VM's NAT network, its bridge, its
# iptables rules and its ip_forward stay there, so netbed's own leftover checks run by anyone else on the
# machine at the same time see nothing. Everything the run made — domain, networks, storage pool and
# volumes, daemons, the namespace — is removed at the end, whatever happens; only what it made.
#
# The guest's virtual CPU: QEMU's software emulation (libvirt domain type "qemu", TCG) with a CPU model
# that has SSE4.2 (numpy's wheels need it; qemu64 dies with "Illegal instruction"). KVM is used only when
# NETBED_VM_KVM=1: a paravirtual /dev/kvm whose guests need a special kernel is common in sandboxes.
#
# Knobs: NETBED_VM_CACHE, NETBED_VM_RESULTS (folder for the results; default runs/vm-check-<time>),
# NETBED_VM_MEMORY (MB, passed to the Vagrantfile), NETBED_VM_CPU_MODE (libvirt cpu mode, host-model),
# NETBED_VM_KVM=1, NETBED_VM_SIZE (disk, 16G), NETBED_VM_PYTEST (more pytest arguments for `make test` in
# the VM, e.g. a few test files on a slow host: "tests/test_ovs_netem_live.py").
set -Eeuo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${NETBED_VM_CACHE:-/var/cache/netbed-vm}
box_name=netbed/bookworm
disk_size=${NETBED_VM_SIZE:-16G}
build_only=0
with_demo=1
for arg in "$@"; do
  case "$arg" in
    --build-only) build_only=1 ;;
    --no-demo) with_demo=0 ;;
    *) echo "vm-check: unknown option '$arg' (usage: scripts/vm-check.sh [--build-only] [--no-demo])" >&2
       exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "vm-check: run as root (sudo make vm-check): libvirt, debootstrap and mkfs need it" >&2; exit 2; }
command -v apt-get >/dev/null || { echo "vm-check: this script needs a Debian or Ubuntu host (apt-get not found)" >&2; exit 2; }

log() { echo "vm-check: $(date -u +%H:%M:%S) $*" >&2; }
trap 'log "failed: line $LINENO: $BASH_COMMAND"' ERR
die() { log "$*"; exit 1; }

# -- figures: one line per phase, printed at the end whatever happens -------------------------------
declare -a figures=()
phase_name=""
phase_t0=0
phase() {  # phase NAME: ends the running phase, starts the next
  phase_end
  phase_name=$1
  phase_t0=$(date +%s)
  log "── $phase_name"
}
phase_end() {
  if [ -n "$phase_name" ]; then
    figures+=("$(printf '%-22s %6d s' "$phase_name" $(( $(date +%s) - phase_t0 )))")
    phase_name=""
  fi
}
print_figures() {
  phase_end
  [ ${#figures[@]} -gt 0 ] || return 0
  echo "vm-check: figures (host: $(nproc) cores, accel ${accel:-?}, cpu ${cpu_mode:-?})"
  printf '  %s\n' "${figures[@]}"
  [ ${#results_lines[@]} -eq 0 ] || printf '  %s\n' "${results_lines[@]}"
}
declare -a results_lines=()

# -- host tools -------------------------------------------------------------------------------------
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then apt-get update -q >/dev/null; apt_updated=1; fi
  # no service starts from a package's postinst here: the script starts the daemons it needs itself
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}
declare -A host_tools=(
  [qemu-system-x86_64]=qemu-system-x86 [qemu-img]=qemu-utils [debootstrap]=debootstrap
  [mkfs.ext4]=e2fsprogs [sfdisk]=fdisk [libvirtd]=libvirt-daemon-system [virtlogd]=libvirt-daemon-system
  [virsh]=libvirt-clients [vagrant]=vagrant [rsync]=rsync [ssh]=openssh-client [dnsmasq]=dnsmasq-base
  [iptables]=iptables [slirp4netns]=slirp4netns [nsenter]=util-linux [git]=git [ip]=iproute2
)
missing=()
for cmd in "${!host_tools[@]}"; do
  PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${host_tools[$cmd]}")
done
[ -d /usr/lib/x86_64-linux-gnu/libvirt/connection-driver ] && \
  ls /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so >/dev/null 2>&1 || \
  missing+=(libvirt-daemon-driver-qemu)
# (grep reads a variable, not a pipe: `grep -q` closing a pipe early fails the pipe under pipefail)
plugins=$(vagrant plugin list 2>/dev/null || true)
grep -q '^vagrant-libvirt' <<<"$plugins" || missing+=(vagrant-libvirt)
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  phase "host tools"
  log "installing ${missing[*]}"
  apt_install "${missing[@]}"
fi

# KVM only on request (see above): TCG with a CPU model that has SSE4.2 otherwise.
if [ "${NETBED_VM_KVM:-0}" = 1 ] && [ -w /dev/kvm ]; then
  accel=kvm; qemu_accel=(-accel kvm -cpu host); libvirt_driver=kvm
else
  accel=tcg; qemu_accel=(-accel "tcg,thread=multi" -cpu max); libvirt_driver=qemu
fi
cpu_mode=${NETBED_VM_CPU_MODE:-host-model}

# -- the image: debootstrap → mkfs.ext4 -d → first boot installs GRUB → qcow2 ---------------------
mkdir -p "$cache"
build_image() {
  local work=$cache/build
  rm -rf "$work"
  mkdir -p "$work"
  local root=$work/rootfs
  local mirror
  mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/\?$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  mirror=${mirror:-http://deb.debian.org/debian}

  phase "image: debootstrap"
  local packages=linux-image-amd64,systemd-sysv,udev,openssh-server,grub-pc,sudo,ifupdown,isc-dhcp-client
  packages+=,netbase,iproute2,iputils-ping,procps,kmod,rsync,ca-certificates,less,locales,busybox,zstd
  debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed (log: $work/debootstrap.log)"; }

  phase "image: configure"
  cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF
  echo netbed-box >"$root/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 netbed-box\n::1 localhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
  echo 'LABEL=netbed-root / ext4 errors=remount-ro 0 1' >"$root/etc/fstab"
  # eth0 whatever the virtual NIC's slot: one ifupdown stanza, DHCP from libvirt's network
  printf 'auto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\n' >"$root/etc/network/interfaces"
  cat >"$root/etc/default/grub" <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200 net.ifnames=0"
GRUB_TERMINAL="console serial"
EOF
  # Later initramfs rebuilds in the guest (a package's trigger while provisioning) take the modules its
  # virtual hardware needs, not all of them: under software emulation that is minutes less. The initrd
  # made now, in the chroot, keeps MODULES=most (the chroot cannot see the guest's devices).
  sed -i 's/^MODULES=.*/MODULES=dep/' "$root/etc/initramfs-tools/initramfs.conf"
  echo 'en_US.UTF-8 UTF-8' >"$root/etc/locale.gen"
  chroot "$root" locale-gen >/dev/null
  echo 'LANG=C.UTF-8' >"$root/etc/default/locale"
  # Vagrant's conventions for a base box: user vagrant (password vagrant), sudo without a password,
  # Vagrant's well-known public key (replaced by a key of the VM's own on the first `vagrant up`)
  chroot "$root" useradd -m -s /bin/bash vagrant
  echo 'vagrant:vagrant' | chroot "$root" chpasswd
  echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$root/etc/sudoers.d/vagrant"
  chmod 440 "$root/etc/sudoers.d/vagrant"
  local pubkey
  pubkey=$(find /usr/share/rubygems-integration /usr/share/vagrant /opt/vagrant -path '*/keys/vagrant.pub' \
    2>/dev/null | head -1 || true)
  [ -n "$pubkey" ] || die "Vagrant's insecure public key (keys/vagrant.pub) not found"
  install -d -m 700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
  install -m 600 -o 1000 -g 1000 "$pubkey" "$root/home/vagrant/.ssh/authorized_keys"
  echo 'UseDNS no' >"$root/etc/ssh/sshd_config.d/netbed-box.conf"
  # The host's extra CA certificates: a proxy in front of the package registries may sign with its own,
  # and pip in the guest fails its certificate checks without them.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1
    # pip checks certificates against its own bundle (certifi) unless told to use the system's
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"
    log "the guest trusts the host's extra CA certificates: $(cd /usr/local/share/ca-certificates && echo ./*.crt)"
  fi
  # the first boot installs GRUB on the disk it finds, then powers off
  cat >"$root/usr/local/sbin/netbed-firstboot" <<'EOF'
#!/bin/sh
set -e
grub-install --target=i386-pc /dev/vda
update-grub
systemctl disable netbed-firstboot.service
rm -f /etc/netbed-firstboot
echo NETBED-FIRSTBOOT-OK >/dev/ttyS0
sync
systemctl poweroff
EOF
  chmod 755 "$root/usr/local/sbin/netbed-firstboot"
  cat >"$root/etc/systemd/system/netbed-firstboot.service" <<'EOF'
[Unit]
Description=netbed box: install GRUB on the first boot
ConditionPathExists=/etc/netbed-firstboot
After=local-fs.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/netbed-firstboot
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
EOF
  touch "$root/etc/netbed-firstboot"
  chroot "$root" systemctl enable netbed-firstboot.service >/dev/null 2>&1
  chroot "$root" apt-get clean
  rm -rf "$root/var/lib/apt/lists/"*
  cp -L "$root/vmlinuz" "$work/vmlinuz"
  cp -L "$root/initrd.img" "$work/initrd.img"

  phase "image: mkfs.ext4 -d"
  # One partition from 1 MiB on; the file system is written straight into it (mke2fs's offset):
  # no loop device, no mount.
  local raw=$work/disk.raw offset=$((1024 * 1024))
  rm -f "$raw"
  truncate -s "$disk_size" "$raw"
  echo 'start=2048, type=83, bootable' | sfdisk -q "$raw"
  local bytes
  bytes=$(stat -c %s "$raw")
  mkfs.ext4 -q -F -L netbed-root -E offset=$offset -d "$root" "$raw" $(( (bytes - offset) / 1024 ))k

  phase "image: first boot"
  timeout 1800 qemu-system-x86_64 "${qemu_accel[@]}" -smp 2 -m 1024 -nographic -no-reboot -nic none \
    -drive file="$raw",format=raw,if=virtio -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
    -append "root=LABEL=netbed-root rw console=ttyS0,115200 net.ifnames=0" \
    -serial file:"$work/firstboot.log" -monitor none -display none >/dev/null 2>&1 </dev/null \
    || { tail -30 "$work/firstboot.log" >&2; die "the first boot failed (log: $work/firstboot.log)"; }
  grep -q NETBED-FIRSTBOOT-OK "$work/firstboot.log" \
    || { tail -30 "$work/firstboot.log" >&2; die "the first boot did not install GRUB (log: $work/firstboot.log)"; }

  phase "image: qcow2"
  qemu-img convert -O qcow2 "$raw" "$image.tmp"
  mv "$image.tmp" "$image"
  rm -rf "$work"
  log "image: $image ($(du -h "$image" | cut -f1))"
}

build_box() {
  phase "box"
  local work=$cache/box
  rm -rf "$work"
  mkdir -p "$work"
  ln "$image" "$work/box.img" 2>/dev/null || cp "$image" "$work/box.img"
  local gib
  gib=$(( $(qemu-img info --output=json "$image" | sed -n 's/.*"virtual-size": *\([0-9]*\).*/\1/p' | head -1) / 1024 / 1024 / 1024 ))
  printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %d}\n' "$gib" >"$work/metadata.json"
  # The box's own Vagrantfile: what any Vagrantfile using this box gets unless it says otherwise.
  cat >"$work/Vagrantfile" <<'EOF'
# netbed's local Debian bookworm box (scripts/vm-check.sh). QEMU's software emulation unless
# NETBED_VM_DRIVER=kvm; a CPU model with SSE4.2 (numpy's wheels need it; qemu64 has none).
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.driver = ENV.fetch("NETBED_VM_DRIVER", "qemu")
    lv.cpu_mode = ENV.fetch("NETBED_VM_CPU_MODE", "host-model")
    lv.graphics_type = "none"
    lv.storage_pool_name = ENV["NETBED_VM_POOL"] if ENV["NETBED_VM_POOL"]
  end
end
EOF
  tar -C "$work" -cf "$box.tmp" metadata.json Vagrantfile box.img
  mv "$box.tmp" "$box"
  rm -rf "$work"
  log "box: $box"
}

# The cache is keyed by the recipe: an edit to build_image or build_box builds anew (older ones go).
recipe=$(declare -f build_image build_box | sha256sum | cut -c1-12)
image=$cache/bookworm-$recipe.qcow2
box=$cache/netbed-bookworm-$recipe.box
for old in "$cache"/bookworm*.qcow2 "$cache"/netbed-bookworm*.box; do
  [ ! -e "$old" ] || [ "$old" = "$image" ] || [ "$old" = "$box" ] || rm -f "$old"
done
export VAGRANT_HOME=$cache/vagrant.d
box_stamp=$cache/box-$recipe.stamp
find "$cache" -maxdepth 1 -name "box*.stamp" ! -name "box-$recipe.stamp" -delete
if [ ! -s "$image" ]; then
  build_image
  rm -f "$box" "$box_stamp"
else
  log "image cached: $image"
fi
if [ ! -s "$box" ] || [ "$image" -nt "$box" ]; then
  build_box
  rm -f "$box_stamp"
fi
boxes=$(vagrant box list 2>/dev/null || true)
if [ ! -f "$box_stamp" ] || ! grep -q "^$box_name " <<<"$boxes"; then
  phase "box add"
  vagrant box remove -f --all "$box_name" >/dev/null 2>&1 || true
  vagrant box add -f --name "$box_name" "$box" >/dev/null
  touch "$box_stamp"
fi
if [ "$build_only" = 1 ]; then
  print_figures
  exit 0
fi

# -- libvirt: the system's where systemd runs it, else daemons of this run in a namespace of their own --
virsh=(virsh -q -c qemu:///system)
work=$(mktemp -d /var/tmp/netbed-vm-check.XXXXXX)
pool=netbed-vm
pool_dir=$cache/pool
holder_pid="" slirp_pid="" libvirtd_pid="" virtlogd_pid=""
run_dir_was_there=0; [ -e /run/libvirt ] && run_dir_was_there=1
storage_dir_was_there=0; [ -e /etc/libvirt/storage ] && storage_dir_was_there=1  # libvirtd makes it for a pool
own_files() { find /var/lib/libvirt/dnsmasq /var/log/libvirt/qemu -maxdepth 1 -type f 2>/dev/null | sort; }
libvirt_state() {
  { "${virsh[@]}" list --all --name | sed 's/^/domain /'
    "${virsh[@]}" net-list --all --name | sed 's/^/network /'
    "${virsh[@]}" pool-list --all --name | sed 's/^/pool /'; } 2>/dev/null |
    sed 's/[[:space:]]*$//' | grep -v -e '^domain$' -e '^network$' -e '^pool$' | sort  # virsh pads names
}
in_ns() {  # a command in the namespace libvirt's networks live in
  if [ -n "$holder_pid" ]; then nsenter --net="/proc/$holder_pid/ns/net" "$@"; else "$@"; fi
}
vagrant_env=(env VAGRANT_HOME="$VAGRANT_HOME" VAGRANT_DOTFILE_PATH="$work/dot-vagrant" VAGRANT_CHECKPOINT_DISABLE=1
             VAGRANT_DEFAULT_PROVIDER=libvirt NETBED_BOX="$box_name" NETBED_VM_POOL="$pool"
             NETBED_VM_DRIVER="$libvirt_driver" NETBED_VM_CPU_MODE="$cpu_mode")
[ -z "${NETBED_VM_MEMORY:-}" ] || vagrant_env+=(NETBED_VM_MEMORY="$NETBED_VM_MEMORY")
vagrant_in() { (cd "$work/netbed" && in_ns "${vagrant_env[@]}" vagrant "$@"); }

vm_started=0
pool_defined=0
state_before=""
files_before=""
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM ERR
  if [ "$vm_started" = 1 ]; then
    phase "destroy"
    vagrant_in destroy -f >"$results/vagrant-destroy.log" 2>&1 || log "vagrant destroy failed (see vagrant-destroy.log)"
  fi
  if [ -n "$state_before" ] || [ -n "$libvirtd_pid" ]; then
    # whatever this run defined and vagrant left: only names that were not there before
    local new kind name
    new=$(comm -13 <(printf '%s\n' "$state_before") <(libvirt_state))
    while read -r kind name; do
      [ -n "$name" ] || continue
      log "removing the $kind $name this run made"
      case "$kind" in
        domain) "${virsh[@]}" destroy "$name" >/dev/null 2>&1; "${virsh[@]}" undefine "$name" --remove-all-storage >/dev/null 2>&1 ;;
        network) "${virsh[@]}" net-destroy "$name" >/dev/null 2>&1; "${virsh[@]}" net-undefine "$name" >/dev/null 2>&1 ;;
        pool) for vol in $("${virsh[@]}" vol-list "$name" 2>/dev/null | awk '{print $1}'); do
                "${virsh[@]}" vol-delete --pool "$name" "$vol" >/dev/null 2>&1
              done
              "${virsh[@]}" pool-destroy "$name" >/dev/null 2>&1; "${virsh[@]}" pool-undefine "$name" >/dev/null 2>&1 ;;
      esac
    done <<<"$new"
    if [ "$pool_defined" = 1 ] && grep -qx "pool $pool" <<<"$(libvirt_state)"; then
      log "removing the pool $pool this run made"
      for vol in $("${virsh[@]}" vol-list "$pool" 2>/dev/null | awk '{print $1}'); do
        "${virsh[@]}" vol-delete --pool "$pool" "$vol" >/dev/null 2>&1
      done
      "${virsh[@]}" pool-destroy "$pool" >/dev/null 2>&1; "${virsh[@]}" pool-undefine "$pool" >/dev/null 2>&1
    fi
    rm -rf "$pool_dir"
  fi
  # the daemons and the namespace this run started, by their process ids
  local pid
  for pid in $libvirtd_pid $virtlogd_pid $slirp_pid $holder_pid; do
    kill "$pid" 2>/dev/null && for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  done
  if [ -n "$libvirtd_pid" ]; then
    [ "$run_dir_was_there" = 1 ] || rm -rf /run/libvirt
    [ "$storage_dir_was_there" = 1 ] || rmdir /etc/libvirt/storage/autostart /etc/libvirt/storage 2>/dev/null
    # libvirt's per-network dnsmasq files and per-domain logs this run wrote (the logs are in results)
    local file
    while read -r file; do
      [ -z "$file" ] || rm -f "$file"
    done < <(comm -13 <(printf '%s\n' "$files_before") <(own_files))
  fi
  rm -rf "$work"
  if [ -n "${results:-}" ]; then
    print_figures | tee -a "$results/figures.txt"
    log "results: $results"
  else
    print_figures
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

phase "libvirt"
if [ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ]; then
  systemctl start libvirtd virtlogd >/dev/null 2>&1 || systemctl start libvirtd.socket virtlogd.socket
  log "libvirt: the system's (systemd)"
else
  if pgrep -x libvirtd >/dev/null || [ -S /run/libvirt/libvirt-sock ]; then
    die "a libvirtd this run did not start is running: stop it or run where systemd manages libvirt"
  fi
  # a network namespace held by one sleeping process; slirp4netns is its only way out
  # Each in a session of its own (setsid execs, so $! stays the process's own pid): a Ctrl-C in the
  # terminal reaches the script and vagrant, not the daemons the teardown still needs.
  setsid unshare --net sleep infinity &
  holder_pid=$!
  sleep 0.5
  setsid slirp4netns --configure --mtu=65520 --disable-host-loopback "$holder_pid" tap0 >"$work/slirp4netns.log" 2>&1 &
  slirp_pid=$!
  tap_up() { [[ $(in_ns ip -o -4 addr show tap0 2>/dev/null) == *inet* ]]; }
  for _ in $(seq 50); do tap_up && break; sleep 0.2; done
  tap_up || die "slirp4netns did not configure its namespace ($(cat "$work/slirp4netns.log"))"
  in_ns ip link set lo up
  files_before=$(own_files)
  # nsenter execs the daemon: $! is the daemon's own pid (a shell function behind `&` would be a subshell)
  setsid nsenter --net="/proc/$holder_pid/ns/net" virtlogd >"$work/virtlogd.log" 2>&1 &
  virtlogd_pid=$!
  setsid nsenter --net="/proc/$holder_pid/ns/net" libvirtd >"$work/libvirtd.log" 2>&1 &
  libvirtd_pid=$!
  for _ in $(seq 100); do "${virsh[@]}" version >/dev/null 2>&1 && break; sleep 0.2; done
  "${virsh[@]}" version >/dev/null 2>&1 || die "libvirtd did not answer ($(tail -3 "$work/libvirtd.log"))"
  log "libvirt: libvirtd $libvirtd_pid and virtlogd $virtlogd_pid in a namespace of their own (slirp4netns $slirp_pid)"
fi
state_before=$(libvirt_state)
# a storage pool of this run's own: the box's volume and the VM's disk, removed at the end
grep -qx "pool $pool" <<<"$(libvirt_state)" && die "a libvirt storage pool '$pool' exists already: remove it (virsh pool-undefine $pool)"
mkdir -p "$pool_dir"
"${virsh[@]}" pool-define-as "$pool" dir --target "$pool_dir" >/dev/null
pool_defined=1
"${virsh[@]}" pool-start "$pool" >/dev/null

# -- the VM: a clone of this checkout's commit, the project's own Vagrantfile ---------------------------
stamp=$(date -u +%Y%m%d-%H%M%S)
results=${NETBED_VM_RESULTS:-$here/runs/vm-check-$stamp}
mkdir -p "$results"
commit=$(git -C "$here" rev-parse HEAD)
git clone -q "$here" "$work/netbed"
git -C "$work/netbed" checkout -q --detach "$commit"
[ -z "$(git -C "$here" status --porcelain --untracked-files=no)" ] || log "note: uncommitted changes in $here are not in the VM (it runs commit ${commit:0:12})"
log "checkout: commit ${commit:0:12}; results: $results"

phase "up + provision"
vm_started=1
if ! vagrant_in up --provider=libvirt >"$results/vagrant-up.log" 2>&1; then
  tail -30 "$results/vagrant-up.log" >&2
  cp /var/log/libvirt/qemu/*.log "$results/" 2>/dev/null || true
  die "vagrant up failed (log: $results/vagrant-up.log)"
fi
phase_end
# the guest as the suite will see it: CPU flags, kernel, the modules --switch ovs and --delay need
vagrant_in ssh -c 'uname -r; grep -m1 -o "sse4_2" /proc/cpuinfo || echo "no sse4_2"; nproc;
  sudo modprobe sch_netem && echo "sch_netem: loaded"; sudo modprobe openvswitch && echo "openvswitch: loaded";
  sudo ovs-vsctl --timeout=10 show | head -3; python3 --version' >"$results/guest.txt" 2>&1 || true
sed 's/^/  guest: /' "$results/guest.txt" >&2

summary() {  # pytest's closing line, or the last line
  grep -E '^=+ .*(passed|failed|error).* =+$' "$1" | tail -1 | sed 's/=//g; s/^ *//; s/ *$//' || tail -1 "$1"
}
test_rc=0 demo_rc=0 compare_rc=0
phase "make test"
# NETBED_REQUIRE_NETEM_OVS=1: a test that would skip for want of netem or Open vSwitch fails instead
vagrant_in ssh -c "cd /vagrant && sudo NETBED_REQUIRE_NETEM_OVS=1 PYTEST_ADDOPTS='-ra --junitxml=runs/vm-junit.xml ${NETBED_VM_PYTEST:-}' make test" \
  >"$results/make-test.log" 2>&1 || test_rc=$?
phase_end
results_lines+=("make test: exit $test_rc, $(summary "$results/make-test.log")")
log "${results_lines[-1]}"

if [ "$with_demo" = 1 ]; then
  phase "make demo"
  vagrant_in ssh -c 'cd /vagrant && sudo make demo' >"$results/make-demo.log" 2>&1 || demo_rc=$?
  phase_end
  results_lines+=("make demo: exit $demo_rc, $(tail -1 "$results/make-demo.log")")
  log "${results_lines[-1]}"
fi

# The whole catalog on LinuxBridge and on Open vSwitch, verdict by verdict, where the checkout has it.
if [ -f "$work/netbed/bench/compare_switches.py" ]; then
  phase "compare switches"
  vagrant_in ssh -c 'cd /vagrant && sudo .venv/bin/python bench/compare_switches.py --out runs/compare-switches' \
    >"$results/compare-switches.log" 2>&1 || compare_rc=$?
  phase_end
  results_lines+=("compare switches: exit $compare_rc, $(tail -1 "$results/compare-switches.log")")
  log "${results_lines[-1]}"
else
  log "this checkout has no bench/compare_switches.py: no LinuxBridge vs Open vSwitch comparison"
fi

phase "copy results"
vagrant_in ssh -c 'sudo tar -C /vagrant -czf - runs' >"$results/runs.tar.gz" 2>/dev/null || log "could not copy runs/ out"
tar -xzf "$results/runs.tar.gz" -C "$results" runs/report.html runs/vm-junit.xml 2>/dev/null || true
cp /var/log/libvirt/qemu/*.log "$results/" 2>/dev/null || true
phase_end

[ "$test_rc" = 0 ] && [ "$demo_rc" = 0 ] && [ "$compare_rc" = 0 ] || exit 1
