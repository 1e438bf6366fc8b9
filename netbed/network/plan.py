"""One node plan from the spec: what every namespace, bridge, veth, address and route must be.

Both builds apply this plan — the fast one over netlink (`fast.py`), the classic one through Mininet's
own shells (`testbed.py`) — so router forwarding, duplicate address detection, bridge netfilter,
interface indexes and MACs are decided once, here, and can be checked before anything exists.

A LAN larger than one Linux bridge (1,023 ports: the kernel's BR_MAX_PORTS is 1,024, port 0
reserved) becomes a stack of bridges in the switch's namespace: the first bridge carries the trunks to
the others (a star, so no loop and no spanning tree). It is still one broadcast domain and one
subnet: an ARP request reaches every host. Mininet's view stays one switch `s1` with ports
s1-eth1..s1-ethN, like a stacked hardware switch.
"""
from __future__ import annotations

import ipaddress
import itertools
import resource
from dataclasses import dataclass, field

from netbed.errors import NetbedError
from netbed.spec import Topology, v6

BRIDGE_MAX_PORTS = 1023  # BR_MAX_PORTS (1,024) in net/bridge/br_private.h, less port number 0 (reserved)
HOSTS_PER_BRIDGE = 1000  # host ports per bridge of a stack: room left for the trunks
IFNAMSIZ = 15  # the longest interface name Linux accepts
FIRST_INDEX = 1000  # interface indexes are unique across a run (see VethLink / Rtnl.add_veth)
FDS_SPARE = 256  # descriptors left for captures, pipes and shells beside one per namespace
SWITCH_MAC_PREFIX = "02:6e:73"  # locally administered, "ns": the switch side of a host's veth
BRIDGE_NF = ("iptables", "ip6tables", "arptables")


@dataclass(frozen=True)
class Port:
    """One end of a veth pair (or a bridge) as the kernel will see it."""

    node: str
    name: str
    index: int
    mac: str | None
    number: int  # Mininet's port number on the node


@dataclass(frozen=True)
class LinkPlan:
    """A veth pair; bridge1/bridge2: the bridge each end joins ("" for none: a host or router end)."""

    end1: Port
    end2: Port
    bridge2: str = ""
    bridge1: str = ""  # set for trunks only: inside one switch, joining two bridges of a stack

    @property
    def trunk(self) -> bool:
        """Not in Mininet's view: the switch's own wiring between the bridges of its stack."""
        return bool(self.bridge1)


@dataclass(frozen=True)
class BridgePlan:
    switch: str  # the node (namespace) holding it
    name: str
    index: int


@dataclass
class NodePlan:
    name: str
    role: str  # "host", "router" or "switch"
    sysctls: dict[str, str] = field(default_factory=dict)
    addresses: list[tuple[str, ipaddress.IPv4Interface | ipaddress.IPv6Interface]] = field(default_factory=list)
    routes: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network | None, str]] = field(default_factory=list)


@dataclass
class NetworkPlan:
    nodes: dict[str, NodePlan]
    bridges: list[BridgePlan]
    links: list[LinkPlan]

    @property
    def switches(self) -> list[NodePlan]:
        return [n for n in self.nodes.values() if n.role == "switch"]

    def index_of(self, node: str, intf: str) -> int:
        for link in self.links:
            for end in (link.end1, link.end2):
                if (end.node, end.name) == (node, intf):
                    return end.index
        raise KeyError((node, intf))


def node_sysctls(role: str, ipv6: bool) -> dict[str, str]:
    """Per-namespace sysctls: why each is set is said once, here.

    - Without IPv6 asked for, IPv6 is off: no router solicitations or MLD reports in the captures.
    - Routers forward (Mininet's examples/linuxrouter.py does the same with sysctl).
    - With IPv6, duplicate address detection is off: DAD keeps a new address "tentative" for about a
      second, and the first packets of an experiment would wait or be lost.
    - Switch namespaces turn bridge netfilter off (with br_netfilter loaded every bridged frame would
      go through iptables); the sysctl is per namespace, so the machine's own setting is untouched.
    """
    values: dict[str, str] = {}
    if not ipv6:
        values.update({"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"})
    if role == "router":
        values.update({"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"})
    if ipv6 and role != "switch":
        values.update({"net.ipv6.conf.all.accept_dad": "0", "net.ipv6.conf.default.accept_dad": "0"})
    if role == "switch":
        values.update({f"net.bridge.bridge-nf-call-{t}": "0" for t in BRIDGE_NF})
    return values


def switch_mac(host_mac: str) -> str:
    """The switch side of a host's veth: the host's MAC with the switch prefix (stable, unique)."""
    return SWITCH_MAC_PREFIX + host_mac[8:]


def make_plan(topo: Topology, ipv6: bool = False) -> NetworkPlan:
    """Every namespace's settings, every bridge and veth with its index and MAC; raise on any limit."""
    index = itertools.count(FIRST_INDEX)
    nodes = {s.name: NodePlan(s.name, "switch", node_sysctls("switch", ipv6)) for s in topo.switches}
    bridges: list[BridgePlan] = []
    links: list[LinkPlan] = []
    for seg in topo.switches:
        members = topo.members(seg.name)
        stack = [seg.name] + [f"{seg.name}-br{k}" for k in range(2, -(-len(members) // HOSTS_PER_BRIDGE) + 1)]
        for name in stack:
            bridges.append(BridgePlan(seg.name, name, next(index)))
        for k, name in enumerate(stack[1:], start=2):
            links.append(LinkPlan(Port(seg.name, f"{seg.name}-up{k}", next(index), None, 0),
                                  Port(seg.name, f"{seg.name}-dn{k}", next(index), None, 0), name, seg.name))
        for port, (node, intf) in enumerate(members, start=1):
            bridge = stack[(port - 1) // HOSTS_PER_BRIDGE]
            links.append(LinkPlan(Port(node.name, intf.name, next(index), intf.mac, int(intf.name.rsplit("eth", 1)[1])),
                                  Port(seg.name, f"{seg.name}-eth{port}", next(index), switch_mac(intf.mac), port),
                                  bridge))
    for seg in topo.segments:
        if not seg.switched:
            (a, ia), (b, ib) = topo.members(seg.name)
            links.append(LinkPlan(Port(a.name, ia.name, next(index), ia.mac, int(ia.name.rsplit("eth", 1)[1])),
                                  Port(b.name, ib.name, next(index), ib.mac, int(ib.name.rsplit("eth", 1)[1]))))
    by_v4 = {i.ip: i.ip6 for n in topo.nodes for i in n.interfaces}
    for node in topo.nodes:
        plan = nodes[node.name] = NodePlan(node.name, node.kind, node_sysctls(node.kind, ipv6))
        for intf in node.interfaces:
            plan.addresses.append((intf.name, intf.address))
            if ipv6:
                plan.addresses.append((intf.name, intf.address6))
        if node.gateway:
            plan.routes.append((None, node.gateway))
            if ipv6:
                plan.routes.append((None, by_v4[node.gateway]))
        for route in node.routes:
            plan.routes.append((route.destination, route.via))
            if ipv6:
                plan.routes.append((v6(route.destination_interface()).network, by_v4[route.via]))
    result = NetworkPlan(nodes, bridges, links)
    check_limits(result)
    return result


def check_limits(plan: NetworkPlan) -> None:
    """Every size limit the kernel or this process would hit, checked before anything is built."""
    for link in plan.links:
        for end in (link.end1, link.end2):
            if len(end.name) > IFNAMSIZ:
                raise NetbedError(f"interface name {end.name!r} is longer than Linux's {IFNAMSIZ} characters: "
                                  "use a shorter switch or node name")
    ports: dict[str, int] = {}
    for link in plan.links:
        for bridge in (link.bridge1, link.bridge2):
            if bridge:
                ports[bridge] = ports.get(bridge, 0) + 1
    for name, count in ports.items():
        if count > BRIDGE_MAX_PORTS:  # cannot happen with HOSTS_PER_BRIDGE; a guard for future plans
            raise NetbedError(f"bridge {name} would have {count} ports; Linux allows {BRIDGE_MAX_PORTS}")
    needed = len(plan.nodes) + FDS_SPARE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise NetbedError(f"{len(plan.nodes)} nodes need {needed} open files, and this process may open "
                          f"{hard} (raise `ulimit -n`)")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        with open("/proc/sys/user/max_net_namespaces") as f:
            allowed = int(f.read())
    except OSError:
        return
    if allowed < len(plan.nodes):
        raise NetbedError(f"{len(plan.nodes)} nodes need as many network namespaces; this machine allows "
                          f"{allowed} (sysctl user.max_net_namespaces)")
