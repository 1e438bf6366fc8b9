"""Mininet's node, switch and link classes, as netbed builds networks from them.

Every node is a real Mininet node, made through Mininet's constructors: `cmd`, `sendCmd`, `monitor`,
`popen`, `IP`, `setIP`, `connectionsTo` and the CLI are Mininet's own code. Two things differ:

- On the fast build the namespace already exists (netbed made it, and holds a descriptor to it), so a
  node's shell enters it with nsenter instead of `mnexec -n`, and starts the first time anything
  needs it (its pid, its pty, a command): a 4,096-host network does not pay for 4,096 idle shells.
- Switches live in a namespace of their own. Stock Mininet puts them in the root namespace, where
  their ports are global names (two runs collide), outlive a crashed run and — with br_netfilter
  loaded — send every bridged frame through the machine's firewall.

The class names are Mininet's (`Host`, `LinuxBridge`), so `dump` prints what stock `mn` prints.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess

from mininet.link import Intf, Link
from mininet.node import Host as MininetHost
from mininet.nodelib import LinuxBridge as MininetLinuxBridge


def nsenter(netns_fd: int) -> list[str]:
    """argv prefix entering the namespace netbed's process holds open as `netns_fd`."""
    return ["nsenter", f"--net=/proc/{os.getpid()}/fd/{netns_fd}"]


def _deferred(attr: str) -> property:
    """An attribute of the node's shell; reading it starts a deferred shell first."""
    private = "_shell_" + attr

    def get(self):
        value = self.__dict__.get(private)
        if value is None and self.__dict__.get("_deferred"):
            self._start_deferred_shell()
            value = self.__dict__.get(private)
        return value

    def set(self, value) -> None:
        self.__dict__[private] = value

    return property(get, set, doc=f"Node.{attr}; reading it starts a deferred shell")


class NetnsShell:
    """Mixin for Mininet nodes: with `netns_fd`, the node lives in that existing namespace.

    Node.__init__ calls startShell(); here that call only marks the shell as deferred. Every Node
    method reaches the shell through shell/pid/stdin/stdout/pollOut, and reading any of them starts
    it — so all of Mininet's methods work unchanged, and `terminate` of a node nobody used is free.
    """

    shell = _deferred("shell")
    pid = _deferred("pid")
    stdin = _deferred("stdin")
    stdout = _deferred("stdout")
    pollOut = _deferred("pollOut")  # noqa: N815 (Mininet's name)

    def __init__(self, name: str, netns_fd: int | None = None, sysctls: dict[str, str] | None = None,
                 **params) -> None:
        self.netns_fd = netns_fd
        self.sysctls = dict(sysctls or {})
        self._deferred = False
        super().__init__(name, **params)
        if netns_fd is None and self.sysctls:
            # classic build: the shell made the namespace just now, before any link exists
            # (-e: bridge-nf keys are absent when br_netfilter is not loaded: nothing to switch off)
            self.cmd("sysctl -q -e -w " + " ".join(f"{k}={v}" for k, v in self.sysctls.items()))

    def startShell(self, mnopts=None) -> None:  # noqa: N802 (Mininet's name)
        if self.netns_fd is not None and self.__dict__.get("_shell_shell") is None and not self._deferred:
            self._deferred = True
            return
        super().startShell(mnopts)

    def _start_deferred_shell(self) -> None:
        self._deferred = False
        super().startShell()

    def _popen(self, cmd, **params) -> subprocess.Popen:
        """Node.startShell's `mnexec -cdn bash ...` becomes `nsenter --net=... bash ...` (-c, -d kept)."""
        if self.netns_fd is not None and cmd and cmd[0] == "mnexec":
            cmd = nsenter(self.netns_fd) + list(cmd[2:])
            params.update(close_fds=True, start_new_session=True)
        return super()._popen(cmd, **params)

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        """Node.popen, entering the namespace with nsenter instead of `mnexec -da PID` (no shell needed)."""
        if self.netns_fd is not None:
            kwargs.setdefault("mncmd", nsenter(self.netns_fd))
            kwargs.setdefault("start_new_session", True)  # mnexec -d: its own session and process group
        return super().popen(*args, **kwargs)

    def terminate(self) -> None:
        """Stop the shell and everything it started (one process group); nothing to do if never started."""
        self._deferred = False
        shell = self.__dict__.get("_shell_shell")
        if self.netns_fd is not None and shell is not None and shell.poll() is None:
            try:
                os.killpg(shell.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        super().terminate()

    def mountPrivateDirs(self) -> None:  # noqa: N802
        if self.netns_fd is None or self.privateDirs:
            super().mountPrivateDirs()

    def shell_started(self) -> bool:
        return self.__dict__.get("_shell_shell") is not None


class Host(NetnsShell, MininetHost):
    """Mininet's Host, in a namespace netbed made (fast build) or its shell made (classic build)."""


class Router(Host):
    """A host with IP forwarding on (its plan's sysctls), as in Mininet's examples/linuxrouter.py."""


class LinuxBridge(NetnsShell, MininetLinuxBridge):
    """Mininet's LinuxBridge in a namespace of its own, with that namespace's `lo` as port 0.

    Stock Mininet's root-namespace switches list `lo` (their control interface); a namespaced switch
    has its own loopback, listed the same way so `net`, `dump` and `intfs` read as under `mn`.
    """

    def __init__(self, name: str, netns_fd: int | None = None, **params) -> None:
        params["inNamespace"] = True
        super().__init__(name, netns_fd=netns_fd, **params)
        # up=None: the fast build brought it up already (Intf would run `ifconfig lo up` in a shell)
        Intf("lo", node=self, port=0, moveIntfFn=_in_place, up=None if netns_fd is not None else True)

    def dpctl(self, *args: str) -> str:
        """`brctl ARGS` as this switch sees its namespace (the CLI's `dpctl show`).

        brctl lists bridges from /sys/class/net, and a sysfs shows the network namespace that mounted
        it — the root one: in the switch's namespace plain `brctl show` listed the machine's bridges
        and not s1. A fresh sysfs in a private mount namespace shows this switch, as stock's
        root-namespace `brctl show` shows its s1.
        """
        quoted = " ".join(shlex.quote(arg) for arg in args)
        return self.cmd("unshare --mount --propagation private sh -c "
                        "'mount -t sysfs sysfs /sys && exec brctl \"$@\"' brctl " + quoted)

    @classmethod
    def setup(cls) -> None:
        # Mininet's check warns about the root namespace's bridge-nf sysctls; the plan switches them
        # off in this switch's own namespace instead.
        pass


class PlannedLink(Link):
    """A Mininet Link over a veth pair that already exists (the fast build made it over netlink).

    Link.__init__ calls makeIntfPair, then wraps both ends in Intf objects; only the first step
    differs, so only it is overridden.
    """

    @classmethod
    def makeIntfPair(cls, *args, **kwargs) -> None:  # noqa: N802 (Mininet's name)
        pass


class VethLink(Link):
    """Classic build: a veth pair created in its two namespaces with the plan's indexes and MACs.

    Every node has its own namespace, where interface indexes restart at 1, so both ends of a pair
    would often get the same index. The kernel then takes the pair for a non-virtual device and
    delays its carrier-up event by up to a second (linkwatch): the bridge port stays "disabled",
    the first ARP is lost. The plan gives the two ends different indexes, and the carrier is at once.
    """

    def __init__(self, node1, node2, index1: int = 0, index2: int = 0, **params) -> None:
        self.indexes = (index1, index2)
        super().__init__(node1, node2, **params)

    def makeIntfPair(self, intfname1, intfname2, addr1=None, addr2=None,  # noqa: N802 (Mininet's name)
                     node1=None, node2=None, deleteIntfs=True):
        index1, index2 = self.indexes
        argv = ["ip", "link", "add", "name", intfname1, "index", str(index1)]
        argv += ["address", addr1] if addr1 else []
        argv += ["type", "veth", "peer", "name", intfname2, "index", str(index2)]
        argv += ["address", addr2] if addr2 else []
        argv += ["netns", str(node2.pid)]
        out = node1.cmd(*argv)
        if out.strip():
            raise RuntimeError(f"cannot create veth pair {intfname1}/{intfname2}: {out.strip()}")


def _in_place(*_args) -> None:
    """The interface is in the node's namespace already; Mininet need not move it."""
