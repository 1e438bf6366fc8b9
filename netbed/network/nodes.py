"""Mininet node classes netbed builds networks from: a namespaced Linux bridge and a Linux router."""
from __future__ import annotations

import itertools

from mininet.link import Link
from mininet.node import Node
from mininet.nodelib import LinuxBridge

BRIDGE_NF = ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables")


class NamespacedBridge(LinuxBridge):
    """A Linux bridge that lives in a network namespace of its own.

    Stock Mininet puts switches in the root namespace, where their ports are global names (two
    runs collide), outlive a crashed run, and — with br_netfilter loaded — send every bridged frame
    through the machine's own firewall. In its own namespace the bridge's ports vanish with the
    namespace, and bridge netfilter is switched off there only (the sysctl is per namespace), so
    the root namespace's settings are never touched.
    """

    def __init__(self, name: str, **params) -> None:
        params["inNamespace"] = True
        super().__init__(name, **params)

    @classmethod
    def setup(cls) -> None:
        # Mininet's check reads the root namespace's bridge-nf sysctls, which do not apply here.
        pass

    def start(self, controllers) -> None:
        for knob in BRIDGE_NF:
            self.cmd(f"[ -w /proc/sys/net/bridge/{knob} ] && echo 0 > /proc/sys/net/bridge/{knob}")
        super().start(controllers)


class Host(Node):
    """Mininet's host, with IPv6 duplicate address detection off when the network uses IPv6.

    DAD keeps a new address "tentative" for about a second; the first packets of an experiment
    would wait or be lost. Set before any link exists, so every interface inherits it.
    """

    def __init__(self, name: str, ipv6: bool = False, **params) -> None:
        self.ipv6 = ipv6
        super().__init__(name, **params)

    def startShell(self, *args, **kwargs):  # noqa: N802 (Mininet's name)
        result = super().startShell(*args, **kwargs)
        if self.ipv6:
            self.cmd("sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0")
        return result


class Router(Host):
    """A host with IP forwarding on, as in Mininet's examples/linuxrouter.py.

    ip_forward is a per-namespace sysctl, so nothing outside the router changes.
    """

    def config(self, **params):
        result = super().config(**params)
        self.cmd("sysctl -q -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1")
        return result


class VethLink(Link):
    """A veth pair created directly in its two namespaces, with distinct interface indexes.

    Every node has its own namespace, where interface indexes restart at 1, so both ends of a pair
    would often get the same index. The kernel then takes the pair for a non-virtual device and
    delays its carrier-up event by up to a second (linkwatch): the bridge port stays "disabled",
    the first ARP is lost. Explicit, different indexes make the carrier come up at once.
    """

    _index = itertools.count(1000)

    @classmethod
    def makeIntfPair(cls, intfname1, intfname2, addr1=None, addr2=None,  # noqa: N802 (Mininet's name)
                     node1=None, node2=None, deleteIntfs=True):
        index1, index2 = next(cls._index), next(cls._index)
        argv = ["ip", "link", "add", "name", intfname1, "index", str(index1)]
        argv += ["address", addr1] if addr1 else []
        argv += ["type", "veth", "peer", "name", intfname2, "index", str(index2)]
        argv += ["address", addr2] if addr2 else []
        argv += ["netns", str(node2.pid)]
        out = node1.cmd(*argv)
        if out.strip():
            raise RuntimeError(f"cannot create veth pair {intfname1}/{intfname2}: {out.strip()}")
