"""A topology as plain, validated data — the first stage of the data flow.

Like IPMininet, the description of a network is separate from running it: addresses, MACs and
static routes are allocated and checked here, before a single namespace exists, so a bad parameter
is a one-line error and never a half-built network.
"""
from __future__ import annotations

import ipaddress
import re
from collections import deque
from dataclasses import dataclass, field

from netbed.errors import NetbedError

# Node names become interface names "NAME-ethN" (15 characters at most in Linux), and reach
# command lines inside hosts: letters and digits only.
NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")
MAX_HOSTS = 4096  # mininet.org's headline size; beyond 1,024 a LAN is a stack of bridges (network/plan.py)
MAX_LANS = 250
MAX_ROUTERS = 250
# Locally administered (bit 1 of the first octet), the rest reads "nb": the first 24 bits play
# the role of the vendor prefix (OUI) the lecture talks about.
MAC_PREFIX = (0x02, 0x6E, 0x62)


@dataclass(frozen=True)
class Interface:
    name: str
    address: ipaddress.IPv4Interface
    mac: str
    segment: str  # the LAN or point-to-point link it is attached to

    @property
    def ip(self) -> str:
        return str(self.address.ip)

    @property
    def address6(self) -> ipaddress.IPv6Interface:
        return v6(self.address)

    @property
    def ip6(self) -> str:
        return str(self.address6.ip)


def v6(address: ipaddress.IPv4Interface) -> ipaddress.IPv6Interface:
    """The IPv6 twin of an IPv4 interface address: fd00:NNNN:NNNN::H/64.

    The IPv4 network number fills the 32 bits after fd00::/16 and the host number stays the host
    number, so 10.0.1.254/24 is fd00:a00:100::fe/64 — derived, never stored, always consistent.
    """
    network = int(address.network.network_address)
    host = int(address.ip) - network
    value = (0xFD00 << 112) | (network << 80) | host
    return ipaddress.IPv6Interface((value, 64))


@dataclass(frozen=True)
class Route:
    destination: ipaddress.IPv4Network
    via: str

    def destination_interface(self) -> ipaddress.IPv4Interface:
        return ipaddress.IPv4Interface((self.destination.network_address, self.destination.prefixlen))


@dataclass(frozen=True)
class Node:
    name: str
    kind: str  # "host" or "router"
    interfaces: tuple[Interface, ...]
    routes: tuple[Route, ...] = ()
    gateway: str | None = None  # hosts only: the default route

    @property
    def ip(self) -> str:
        return self.interfaces[0].ip

    @property
    def lan(self) -> str:
        return self.interfaces[0].segment


@dataclass(frozen=True)
class Segment:
    """A broadcast domain: a LAN behind a switch, or a point-to-point link between two routers."""

    name: str
    subnet: ipaddress.IPv4Network
    switched: bool  # True: a switch (Linux bridge) joins its members


@dataclass(frozen=True)
class Topology:
    name: str
    segments: tuple[Segment, ...]
    nodes: tuple[Node, ...]
    params: dict = field(default_factory=dict, compare=False)

    @property
    def hosts(self) -> list[Node]:
        return [n for n in self.nodes if n.kind == "host"]

    @property
    def routers(self) -> list[Node]:
        return [n for n in self.nodes if n.kind == "router"]

    @property
    def switches(self) -> list[Segment]:
        return [s for s in self.segments if s.switched]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def members(self, segment: str) -> list[tuple[Node, Interface]]:
        return [(n, i) for n in self.nodes for i in n.interfaces if i.segment == segment]

    def path(self, src: str, dst: str) -> list[str]:
        """Node names from src to dst across routers (shortest path), both ends included."""
        graph = self._graph()
        prev: dict[str, str | None] = {src: None}
        queue = deque([src])
        while queue:
            here = queue.popleft()
            for nxt in graph[here]:
                if nxt not in prev and (nxt == dst or self.node(nxt).kind == "router"):
                    prev[nxt] = here
                    queue.append(nxt)
        if dst not in prev:
            raise NetbedError(f"no path from {src} to {dst} in topology {self.name}")
        hops: list[str] = []
        cur: str | None = dst
        while cur is not None:
            hops.append(cur)
            cur = prev[cur]
        return hops[::-1]

    def _graph(self) -> dict[str, set[str]]:
        graph: dict[str, set[str]] = {n.name: set() for n in self.nodes}
        for seg in self.segments:
            names = [n.name for n, _ in self.members(seg.name)]
            for a in names:
                graph[a].update(b for b in names if b != a)
        return graph

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "params": self.params,
            "segments": [
                {"name": s.name, "subnet": str(s.subnet), "switch": s.switched} for s in self.segments
            ],
            "nodes": [
                {
                    "name": n.name,
                    "kind": n.kind,
                    "interfaces": [
                        {"name": i.name, "address": str(i.address), "mac": i.mac, "segment": i.segment}
                        for i in n.interfaces
                    ],
                    "gateway": n.gateway,
                    "routes": [{"destination": str(r.destination), "via": r.via} for r in n.routes],
                }
                for n in self.nodes
            ],
        }


def check_count(what: str, value: object, low: int, high: int) -> int:
    """Validate a count parameter (hosts, lans, routers) given by a user."""
    try:
        number = int(str(value), 10)
    except ValueError:
        raise NetbedError(f"{what} must be a whole number, not {value!r}") from None
    if not low <= number <= high:
        raise NetbedError(f"{what} must be between {low} and {high}, not {number}")
    return number


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise NetbedError(f"malformed subnet {text!r}: {exc}") from None
    if net.version != 4:
        raise NetbedError(f"subnet {text} must be IPv4 (hosts get IPv6 addresses automatically)")
    if net.prefixlen > 30:
        raise NetbedError(f"subnet {text} is too small: use a prefix of /30 or shorter")
    return net


class TopologyBuilder:
    """Collects LANs, hosts, routers and router links, then allocates and validates everything.

    Reads like the network diagram::

        b = TopologyBuilder("multi-lan")
        b.lan("s1", "10.0.1.0/24"); b.lan("s2", "10.0.2.0/24")
        b.router("r1", "s1", "s2")
        b.host("h1", "s1"); b.host("h2", "s2")
        topo = b.build()
    """

    def __init__(self, name: str, **params: object) -> None:
        self.name = name
        self.params = params
        self._segments: list[tuple[str, str, bool]] = []
        self._nodes: list[tuple[str, str, list[str]]] = []

    def lan(self, name: str, subnet: str) -> str:
        self._segments.append((name, subnet, True))
        return name

    def link(self, a: str, b: str, subnet: str) -> str:
        """A point-to-point link between two routers (no switch)."""
        name = f"{a}{b}"
        self._segments.append((name, subnet, False))
        for node_name, _kind, segs in self._nodes:
            if node_name in (a, b):
                segs.append(name)
        return name

    def attach(self, node: str, lan: str) -> None:
        """Give an already declared router one more interface, on `lan`."""
        for node_name, _kind, segs in self._nodes:
            if node_name == node:
                segs.append(lan)
                return
        raise NetbedError(f"cannot attach unknown node {node!r} to {lan}")

    def host(self, name: str, lan: str) -> str:
        self._nodes.append((name, "host", [lan]))
        return name

    def router(self, name: str, *lans: str) -> str:
        self._nodes.append((name, "router", list(lans)))
        return name

    def build(self) -> Topology:
        segments = self._validate_segments()
        by_seg = {s.name: s for s in segments}
        self._validate_nodes(by_seg)
        for seg in segments:
            count = sum(segs.count(seg.name) for _, _, segs in self._nodes)
            if count > seg.subnet.num_addresses - 2:
                raise NetbedError(f"subnet {seg.subnet} of {seg.name} is too small for its {count} interfaces")
        mac_counter = 0
        host_next: dict[str, int] = {s.name: 1 for s in segments}  # hosts count up from .1
        router_next: dict[str, int] = {s.name: -2 for s in segments}  # routers down from the top
        nodes: list[Node] = []
        for name, kind, segs in self._nodes:
            intfs = []
            for index, seg_name in enumerate(segs):
                seg = by_seg[seg_name]
                if kind == "host" or not seg.switched:
                    # point-to-point links: both routers count up
                    offset = host_next[seg_name]
                    host_next[seg_name] += 1
                else:
                    offset = router_next[seg_name]
                    router_next[seg_name] -= 1
                addr = _address(seg, offset)
                mac_counter += 1
                intfs.append(Interface(f"{name}-eth{index}", addr, _mac(mac_counter), seg_name))
            nodes.append(Node(name, kind, tuple(intfs)))
        for seg in segments:
            used = [i.address.ip for n in nodes for i in n.interfaces if i.segment == seg.name]
            if len(set(used)) != len(used) or any(ip not in seg.subnet for ip in used):
                raise NetbedError(
                    f"subnet {seg.subnet} of {seg.name} is too small for its {len(used)} interfaces"
                )
        topo = Topology(self.name, tuple(segments), tuple(nodes), dict(self.params))
        return _with_routes(topo)

    def _validate_segments(self) -> list[Segment]:
        segments: list[Segment] = []
        for name, subnet, switched in self._segments:
            if switched:
                _check_name(name)
            net = parse_subnet(subnet)
            for other in segments:
                if net.overlaps(other.subnet):
                    raise NetbedError(
                        f"subnets overlap: {net} ({name}) and {other.subnet} ({other.name})"
                    )
            segments.append(Segment(name, net, switched))
        names = [s[0] for s in self._segments]
        if len(set(names)) != len(names):
            raise NetbedError(f"duplicate LAN names in topology {self.name}")
        return segments

    def _validate_nodes(self, by_seg: dict[str, Segment]) -> None:
        seen: set[str] = set(by_seg)
        hosts = sum(1 for _, kind, _ in self._nodes if kind == "host")
        if hosts > MAX_HOSTS:
            raise NetbedError(f"at most {MAX_HOSTS} hosts per topology, not {hosts}")
        for name, _kind, segs in self._nodes:
            _check_name(name)
            if name in seen:
                raise NetbedError(f"name {name!r} is used twice in topology {self.name}")
            seen.add(name)
            for seg in segs:
                if seg not in by_seg:
                    raise NetbedError(f"{name} is attached to unknown LAN {seg!r}")
            if len(segs) > 99:
                raise NetbedError(f"{name} has too many interfaces ({len(segs)})")


def _check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise NetbedError(
            f"bad name {name!r}: use 1-10 lowercase letters and digits, starting with a letter"
        )


def _address(seg: Segment, offset: int) -> ipaddress.IPv4Interface:
    base = seg.subnet.network_address if offset > 0 else seg.subnet.broadcast_address
    ip = base + offset if offset > 0 else base + (offset + 1)
    if ip not in seg.subnet or ip in (seg.subnet.network_address, seg.subnet.broadcast_address):
        raise NetbedError(f"subnet {seg.subnet} of {seg.name} has no room for another address")
    return ipaddress.IPv4Interface(f"{ip}/{seg.subnet.prefixlen}")


def _mac(counter: int) -> str:
    octets = (*MAC_PREFIX, (counter >> 16) & 0xFF, (counter >> 8) & 0xFF, counter & 0xFF)
    return ":".join(f"{o:02x}" for o in octets)


def _with_routes(topo: Topology) -> Topology:
    """Give hosts their gateway and routers static routes to every subnet they do not touch."""
    nodes: list[Node] = []
    for node in topo.nodes:
        if node.kind == "host":
            gateway = None
            for member, intf in topo.members(node.lan):
                if member.kind == "router":
                    gateway = intf.ip
                    break
            nodes.append(Node(node.name, node.kind, node.interfaces, (), gateway))
            continue
        routes = []
        attached = {i.segment for i in node.interfaces}
        for seg in topo.segments:
            if seg.name in attached:
                continue
            next_hop = _next_hop(topo, node, seg)
            if next_hop is not None:
                routes.append(Route(seg.subnet, next_hop))
        nodes.append(Node(node.name, node.kind, node.interfaces, tuple(routes)))
    return Topology(topo.name, topo.segments, tuple(nodes), topo.params)


def _next_hop(topo: Topology, router: Node, target: Segment) -> str | None:
    """Breadth-first search over routers; returns the neighbour's address on the shared segment."""
    start = router.name
    queue = deque([(start, None)])
    seen = {start}
    while queue:
        name, first_hop = queue.popleft()
        node = topo.node(name)
        for intf in node.interfaces:
            if intf.segment == target.name:
                return first_hop
            for member, m_intf in topo.members(intf.segment):
                if member.kind != "router" or member.name in seen:
                    continue
                seen.add(member.name)
                queue.append((member.name, first_hop or m_intf.ip))
    return None
