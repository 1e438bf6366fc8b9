"""Checks made before anything is created: root, and the tools a job needs."""
from __future__ import annotations

import os
import shutil

from netbed.errors import NetbedError

# tool -> what to tell the user when it is missing
_TOOLS = {
    "mnexec": "Mininet is missing: run `sudo make setup` (Debian package mininet)",
    "tcpdump": "tcpdump is missing: run `sudo make setup` (Debian package tcpdump)",
    "ip": "iproute2 is missing: run `sudo make setup`",
    "ss": "ss (iproute2) is missing: run `sudo make setup`",
    "brctl": "brctl is missing: run `sudo make setup` (Debian package bridge-utils)",
    "ifconfig": "ifconfig is missing: run `sudo make setup` (Debian package net-tools, used by Mininet)",
    "ping": "ping is missing: run `sudo make setup` (Debian package iputils-ping)",
    "iptables": "iptables is missing: run `sudo make setup`",
    "curl": "curl is missing: run `sudo make setup`",
    "bpftrace": "bpftrace is missing: run `sudo make setup` (Debian package bpftrace)",
}

EMULATION_TOOLS = ("mnexec", "ip", "ss", "brctl", "ifconfig", "ping")


def require_root(what: str = "building emulated networks") -> None:
    if os.geteuid() != 0:
        raise NetbedError(f"{what} needs root: run it with sudo")


def require_tools(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            raise NetbedError(_TOOLS.get(tool, f"{tool} is missing: run `sudo make setup`"))


def require_mininet() -> None:
    try:
        import mininet.net  # noqa: F401
    except ImportError as exc:
        raise NetbedError(
            "this Python cannot import Mininet: use .venv/bin/netbed (made by `sudo make setup` "
            "from /usr/bin/python3 with Debian's mininet)"
        ) from exc


_EMULATION_CHECKED: set[tuple[str, ...]] = set()  # what passed once stays true for this process


def require_emulation(*extra_tools: str) -> None:
    """Everything a live run needs; checked before anything is created (once per process: the
    namespace probe starts a process, and `netbed run` checks before the disk and again per run)."""
    if extra_tools in _EMULATION_CHECKED:
        return
    require_root()
    from netbed.privileges import require_privileges

    require_privileges()
    require_mininet()
    require_tools(*EMULATION_TOOLS, *extra_tools)
    _EMULATION_CHECKED.add(extra_tools)


def kernel_has_module(name: str, release: str | None = None, sys_module: str = "/sys/module",
                      modules: str = "/lib/modules") -> bool:
    """Can this kernel provide module `name` (sch_netem, openvswitch): loaded, built in, or installed?

    What the kernel can do, not what userland has: tests of netem and Open vSwitch skip on this alone
    (a missing `ovs-vsctl` on a kernel that has the module is a failure to see, not a reason to skip).
    """
    release = release or os.uname().release
    if os.path.isdir(os.path.join(sys_module, name)):
        return True
    wanted = {name, name.replace("_", "-")}
    for listing in ("modules.builtin", "modules.dep"):
        try:
            with open(os.path.join(modules, release, listing)) as f:
                for line in f:
                    base = os.path.basename(line.split(":", 1)[0].strip())
                    if base.split(".ko", 1)[0] in wanted:
                        return True
        except OSError:
            continue
    return False


def require_open_vswitch() -> None:
    """`--switch ovs` needs the kernel's openvswitch module and Open vSwitch's userland: say which is missing."""
    if not kernel_has_module("openvswitch"):
        raise NetbedError(f"--switch ovs: this kernel ({os.uname().release}) has no openvswitch module — "
                          "use --switch bridge (the Vagrant lab's kernel has it)")
    if shutil.which("ovs-vsctl") is None:
        raise NetbedError("--switch ovs: Open vSwitch is not installed (no ovs-vsctl): "
                          "run `sudo NETBED_WITH_OVS=1 make setup`, or use --switch bridge")
