"""Mininet's own topologies on netbed: `mn --custom FILE --topo NAME,ARGS`, built by Mininet itself.

People arrive with a `Topo` they already wrote (or one of Mininet's examples): a file that defines
`topos = {"name": ClassOrFunction}`, chosen with `--topo name,arg,key=value` exactly as `mn` parses it
(Mininet's own `splitArgs`/`buildTopo`). Such a network is built by Mininet's constructors —
`Mininet(topo, switch=…, controller=None)` — with the user's node classes (a `LinuxRouter(Node)`
with its `config()`), their `ip=`, `defaultRoute=`, `intfName1/2`, `params1/2` and `bw`. What
netbed adds:

- every switch is a Linux bridge in a namespace of its own (netbed's `LinuxBridge`): nothing appears in
  the root namespace, two labs never collide on interface names, and no node gets a route out;
- what cannot work here is refused before anything is built, in one line: Open vSwitch classes,
  nodes in the root namespace (NAT, controllers, `inNamespace=False`), delay/jitter/loss without `sch_netem`,
  more ports on a bridge than Linux allows, interface names longer than the kernel's 15 characters;
- a topology whose switches form a loop (`torus`) gets the spanning tree protocol on every bridge,
  with the shortest timers Linux accepts, and the build waits until every port has left the
  listening/learning states — without it one broadcast would circle the loop forever;
- once built, the running network is read back from the kernel (addresses, MACs, routes, which
  nodes forward) into netbed's `Topology`, so captures, experiments, states and reports work on it
  exactly as on netbed's own topologies.
"""
from __future__ import annotations

import inspect
import ipaddress
import itertools
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mininet.link import Intf, TCIntf
from mininet.node import Controller
from mininet.node import Host as MininetHost
from mininet.nodelib import NAT
from mininet.nodelib import LinuxBridge as MininetLinuxBridge
from mininet.topo import LinearTopo, MinimalTopo, SingleSwitchReversedTopo, SingleSwitchTopo, Topo
from mininet.topolib import TorusTopo, TreeTopo
from mininet.util import buildTopo, specialClass, splitArgs

from netbed.errors import NetbedError
from netbed.network.mnnet import Network
from netbed.network.nodes import Host, LinuxBridge, VethLink
from netbed.network.plan import FIRST_INDEX, node_sysctls
from netbed.network.shaping import netem_available
from netbed.network.testbed import Testbed
from netbed.spec import Interface, Node, Route, Segment, Topology

# What `mn --topo` knows without --custom (the TOPOS table of Mininet's `mn` script).
BUILTIN_TOPOS: dict[str, Callable[..., Topo]] = {
    "minimal": MinimalTopo, "linear": LinearTopo, "reversed": SingleSwitchReversedTopo,
    "single": SingleSwitchTopo, "tree": TreeTopo, "torus": TorusTopo}
IFNAMSIZ = 15  # the longest interface name Linux takes (IFNAMSIZ - 1)
BRIDGE_PORTS = 1024  # BR_MAX_PORTS: a Linux bridge refuses the 1,025th port (EXFULL)
NETEM_PARAMS = ("delay", "jitter", "loss", "max_queue_size")  # what TCIntf hands to sch_netem
TC_PARAMS = ("bw", *NETEM_PARAMS)
# Spanning tree timers: the least Linux accepts (forward delay >= 2 s), so a loop settles in ~4 s.
STP_FORWARD_DELAY = 2
STP_HELLO = 1
STP_MAX_AGE = 6
STP_SETTLE_LIMIT = 60.0


def load_topos(files: list[Path]) -> dict[str, Callable[..., Topo]]:
    """Mininet's built-in topologies plus the `topos` of each --custom file, read the way `mn` reads them.

    `mn` executes the file with a fresh dict for its globals and takes `topos` from it; a file that
    fails to load is the user's to fix, so its error is one line naming the file and the line.
    """
    topos: dict[str, Callable[..., Topo]] = dict(BUILTIN_TOPOS)
    for path in files:
        if not path.is_file():
            raise NetbedError(f"--custom {path}: no such file")
        scope: dict[str, Any] = {"__file__": str(path), "__name__": "netbed_custom"}
        try:
            source = path.read_text()
            exec(compile(source, str(path), "exec"), scope, scope)  # noqa: S102 — mn --custom does exactly this
        except SyntaxError as exc:
            raise NetbedError(f"--custom {path}: {exc.msg} (line {exc.lineno})") from None
        except Exception as exc:  # the user's module raised while loading: say what, where
            raise NetbedError(f"--custom {path}: {type(exc).__name__}: {exc}{_where(exc, path)}") from None
        found = scope.get("topos")
        if found is None:
            classes = sorted(n for n, v in scope.items() if isinstance(v, type) and issubclass(v, Topo)
                             and v.__module__ == "netbed_custom")
            hint = f"; it defines {', '.join(classes)}: add topos = {{'name': {classes[0]}}}" if classes else ""
            raise NetbedError(f"--custom {path} defines no `topos` dict (mn --custom reads topologies from "
                              f"it){hint}")
        if not isinstance(found, dict) or not all(callable(v) for v in found.values()):
            raise NetbedError(f"--custom {path}: `topos` must map names to Topo classes or functions")
        topos.update(found)
    return topos


def _where(exc: BaseException, path: Path) -> str:
    """' (FILE line N)' for the innermost frame of the user's file in a traceback, if any."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" (line {line})" if line else ""


def is_mininet_name(topo_arg: str) -> bool:
    """Is this a Mininet built-in topology (`single,3`, `tree,depth=2`), as `mn --topo` takes it?"""
    return topo_arg.split(",", 1)[0] in BUILTIN_TOPOS


def make_topo(topo_arg: str, files: list[Path] | None = None) -> Topo:
    """The Topo that `mn [--custom FILES] --topo TOPO_ARG` would build, checked for what netbed cannot build."""
    topos = load_topos(files or [])
    name = splitArgs(topo_arg)[0]
    if name not in topos:
        raise NetbedError(f"unknown topology {name!r} for --topo: choose one of {', '.join(topos)}")
    check_arguments(topos[name], topo_arg)
    try:
        topo = buildTopo(topos, topo_arg)
    except Exception as exc:  # a wrong argument count or value, raised by the user's constructor
        raise NetbedError(f"--topo {topo_arg}: {type(exc).__name__}: {exc}") from None
    if not isinstance(topo, Topo):
        raise NetbedError(f"--topo {topo_arg}: {name} made a {type(topo).__name__}, not a Mininet Topo")
    check_topo(topo, topo_arg)
    return topo


def _parameters(factory: Callable[..., Topo]) -> list[inspect.Parameter] | None:
    """The parameters `--topo NAME,ARGS` fills: a Topo class's `build` (its `__init__` only passes them on)."""
    target = factory.build if isinstance(factory, type) and issubclass(factory, Topo) else factory
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):  # a builtin or C callable: nothing to check it against
        return None
    if target is not factory or isinstance(factory, type):
        params = params[1:]  # self
    return params


def check_arguments(factory: Callable[..., Topo], topo_arg: str) -> None:
    """Refuse, in one line naming the parameter, arguments the topology's constructor cannot take.

    Mininet's `splitArgs` turns what looks like a number into one and leaves the rest as text, so
    `tree,depth=abc` reaches TreeTopo as the string 'abc' and fails deep inside with a TypeError about
    '>' between str and int. A parameter whose default is a number wants a number; one the
    constructor does not have is named with those it does have.
    """
    params = _parameters(factory)
    if params is None:
        return
    open_keywords = any(p.kind is p.VAR_KEYWORD for p in params)
    name, args, kwargs = splitArgs(topo_arg)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    known = ", ".join(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                      and not p.name.startswith("_")) or "no arguments"
    if len(args) > len(positional) and not any(p.kind is p.VAR_POSITIONAL for p in params):
        raise NetbedError(f"--topo {topo_arg}: {name} takes at most {len(positional)} positional "
                          f"argument(s) ({known}), got {len(args)}")
    given = dict(zip((p.name for p in positional), args))
    by_name = {p.name: p for p in params}
    for key, value in kwargs.items():
        if key not in by_name:
            if open_keywords:
                continue
            raise NetbedError(f"--topo {topo_arg}: {name} has no parameter {key!r} (it takes {known})")
        if key in given:
            raise NetbedError(f"--topo {topo_arg}: {key} is given twice")
        given[key] = value
    for key, value in given.items():
        default = by_name[key].default
        wants_number = isinstance(default, (int, float)) and not isinstance(default, bool)
        if wants_number and isinstance(value, str):
            raise NetbedError(f"--topo {topo_arg}: {key} must be a number, not {value!r}")


def end_hosts(topo: Topo) -> list[str]:
    """The hosts experiments may run between: Mininet's hosts that are not routers, in Mininet's order.

    Before the build a router is known by its class (a Node subclass that is not a Host, like
    linuxrouter.py's `LinuxRouter(Node)`); netbed's own Router class counts too.
    """
    hosts = []
    for name in topo.hosts():
        cls = topo.nodeInfo(name).get("cls")
        if cls is not None and isinstance(cls, type) and not issubclass(cls, MininetHost):
            continue
        hosts.append(name)
    return hosts


def check_topo(topo: Topo, label: str) -> None:
    """Refuse, before anything exists, what would fail half-way or break netbed's promises."""
    if not topo.hosts():
        raise NetbedError(f"topology {label} has no hosts")
    for name in topo.nodes():
        info = topo.nodeInfo(name)
        cls = info.get("cls")
        if topo.isSwitch(name):
            if cls is not None and not (isinstance(cls, type) and issubclass(cls, MininetLinuxBridge)):
                raise NetbedError(f"switch {name} asks for {getattr(cls, '__name__', cls)}: netbed builds custom "
                                  "topologies with Linux bridges (no Open vSwitch kernel module here) — drop its cls=")
        elif (isinstance(cls, type) and issubclass(cls, (NAT, Controller))) or info.get("inNamespace") is False:
            why = "inNamespace=False" if info.get("inNamespace") is False else cls.__name__
            raise NetbedError(f"node {name} would live in the root namespace ({why}): netbed keeps every node in "
                              "its own namespace, with no route out of the emulation")
    ports: dict[str, int] = {}
    for src, dst, info in topo.links(withInfo=True):
        for end, node in ((1, src), (2, dst)):
            ports[node] = ports.get(node, 0) + 1
            intf = info.get(f"intfName{end}") or f"{node}-eth{ports[node]}"
            if len(intf) > IFNAMSIZ:
                raise NetbedError(f"interface name {intf!r} is longer than Linux's {IFNAMSIZ} characters: "
                                  f"use a shorter node name or intfName{end}=")
        _check_shaping(src, dst, info)
    for name, count in ports.items():
        if topo.isSwitch(name) and count > BRIDGE_PORTS:
            raise NetbedError(f"switch {name} would have {count} ports: a Linux bridge takes at most "
                              f"{BRIDGE_PORTS} — spread the hosts over several switches (e.g. --topo tree)")


def _check_shaping(src: str, dst: str, info: dict) -> None:
    """Delay, jitter and loss are netem's (Mininet's TCIntf hands them to sch_netem): refused where it is missing."""
    asked = {}
    for params in (info, info.get("params1") or {}, info.get("params2") or {}):
        asked.update({k: params[k] for k in NETEM_PARAMS if params.get(k) not in (None, 0, "0", "0ms")})
    if asked and not netem_available():
        wanted = ", ".join(f"{k}={v}" for k, v in asked.items())
        raise NetbedError(f"link {src}-{dst} asks for {wanted}, which needs the kernel's sch_netem (netem) — this "
                          "kernel does not have it; bw= works without it")


def has_switch_loop(topo: Topo) -> bool:
    """Do the switches form a cycle (two parallel links count)? Then flooding circles for ever without STP."""
    parent: dict[str, str] = {s: s for s in topo.switches()}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for src, dst in topo.links():
        if topo.isSwitch(src) and topo.isSwitch(dst):
            a, b = root(src), root(dst)
            if a == b:
                return True
            parent[a] = b
    return False


class StpBridge(LinuxBridge):
    """netbed's namespaced Linux bridge running the spanning tree protocol with the shortest timers Linux accepts.

    The timers are set before STP is switched on and before any port joins: a port that starts
    listening under the default 15 s forward delay keeps that timer, and the loop takes 30 s to settle.
    """

    def start(self, _controllers) -> None:
        self.cmd("brctl", "addbr", self)
        self.cmd("brctl", "setfd", self, STP_FORWARD_DELAY)
        self.cmd("brctl", "sethello", self, STP_HELLO)
        self.cmd("brctl", "setmaxage", self, STP_MAX_AGE)
        self.cmd("brctl", "stp", self, "on")
        for intf in self.intfList():
            if self.name in intf.name:
                self.cmd("brctl", "addif", self, intf)
        self.cmd("ip", "link", "set", self, "up")

    def settled(self) -> bool:
        """Every port forwarding or blocking: no port is still listening or learning."""
        states = re.findall(r"\bstate\s+(\w+)", self.cmd("brctl", "showstp", self))
        return bool(states) and not any(s in ("listening", "learning") for s in states)


class CustomLink(VethLink):
    """netbed's veth pair, its two ends given distinct interface indexes (see VethLink); with `bw` (or
    other tc parameters) on the link its interfaces are Mininet's TCIntf, as TCLink makes them — `mn`
    without `--link tc` would silently ignore them."""

    _indexes = itertools.count(FIRST_INDEX)

    def __init__(self, node1, node2, **params) -> None:
        if any(params.get(k) is not None for k in TC_PARAMS) and params.get("intf") in (None, Intf):
            params["intf"] = TCIntf  # Mininet.addLink passes its default Intf along
        super().__init__(node1, node2, index1=next(self._indexes), index2=next(self._indexes), **params)


class CustomTestbed(Testbed):
    """A Testbed whose network Mininet builds from a user's Topo; its Topology is read back from the kernel."""

    __test__ = False

    def __init__(self, topo: Topo, label: str, ipv6: bool = False) -> None:
        super().__init__(Topology(label, (), (), {"mininet": label}), switch="bridge", ipv6=False)
        self.mn_topo = topo
        self.label = label
        self.keep_ipv6 = ipv6
        self.stp = has_switch_loop(topo)

    def start(self) -> CustomTestbed:
        from mininet.log import setLogLevel

        began = time.monotonic()
        setLogLevel(os.environ.get("NETBED_MININET_LOG", "warning"))
        quiet = {"sysctls": node_sysctls("switch", ipv6=self.keep_ipv6)}
        switch = specialClass(StpBridge if self.stp else LinuxBridge, defaults=quiet)
        host = specialClass(Host, defaults={"sysctls": node_sysctls("host", ipv6=self.keep_ipv6)})
        net = Network(topo=self.mn_topo, switch=switch, host=host, link=CustomLink, controller=None,
                      autoSetMacs=False, waitConnected=False, build=False)
        self.net = net
        try:
            net.build()
            net.start()
            if self.stp:
                wait_spanning_tree(net, self.label)
            if not self.keep_ipv6:
                self._quiet_ipv6()
            self.topology = read_topology(self, self.mn_topo, self.label, self.stp)
        except NetbedError:
            self.stop()
            raise
        except Exception as exc:  # Mininet or a user's node class failed while building
            self.stop()
            raise NetbedError(f"Mininet could not build {self.label}: {type(exc).__name__}: {exc}") from None
        except BaseException:
            self.stop()
            raise
        self.timings.build = time.monotonic() - began
        return self

    def _quiet_ipv6(self) -> None:
        """No router solicitations or MLD reports in the captures: IPv6 off in every node, also in nodes of
        the user's own classes (netbed's Host and switches had it off from their first moment)."""
        from netbed.network import rtnl

        knobs = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}
        for node in self.net.hosts + self.net.switches:
            rtnl.write_sysctls(self.namespace_fds([node.name])[node.name], knobs)


def wait_spanning_tree(net: Network, label: str) -> None:
    """Until every bridge port of a looped topology forwards or blocks (see StpBridge)."""
    deadline = time.monotonic() + STP_SETTLE_LIMIT
    while not all(s.settled() for s in net.switches):
        if time.monotonic() > deadline:
            raise NetbedError(f"the spanning tree of {label} did not settle in {STP_SETTLE_LIMIT:g} s")
        time.sleep(0.2)


def read_topology(tb: Testbed, mn_topo: Topo, label: str, stp: bool) -> Topology:
    """The running network as netbed's Topology: what the kernel has, not what the file asked for."""
    net = tb.net
    switch_names = {s.name for s in net.switches}
    segment_of = _switch_segments(net)
    nodes: list[Node] = []
    subnets: dict[str, ipaddress.IPv4Network] = {}
    switched: dict[str, bool] = {s: True for s in set(segment_of.values())}
    for mn_node in net.hosts:
        addrs = _addresses(tb.run(mn_node.name, ["ip", "-j", "addr", "show"]).stdout)
        intfs = []
        for intf in mn_node.intfList():
            if intf.name == "lo" or intf.name not in addrs:
                continue
            peer = _peer(intf)
            if peer is None:
                continue
            if peer.node.name in switch_names:
                segment = segment_of[peer.node.name]
            else:
                segment = "-".join(sorted((intf.name, peer.name)))
                switched[segment] = False
            address, mac = addrs[intf.name]
            subnets.setdefault(segment, address.network)
            intfs.append(Interface(intf.name, address, mac, segment))
        routes, gateway = _routes(tb.run(mn_node.name, ["ip", "-j", "-4", "route", "show"]).stdout)
        forwards = tb.read_sysctl(mn_node.name, "net.ipv4.ip_forward") == "1"
        kind = "router" if forwards else "host"
        nodes.append(Node(mn_node.name, kind, tuple(intfs), tuple(routes) if forwards else (),
                          None if forwards else gateway))
    segments = tuple(Segment(name, subnets.get(name, ipaddress.IPv4Network("0.0.0.0/32")), sw)
                     for name, sw in sorted(switched.items()))
    order = {name: i for i, name in enumerate(mn_topo.hosts())}
    nodes.sort(key=lambda n: order.get(n.name, len(order)))
    return Topology(label, segments, tuple(nodes), {"mininet": label, "stp": stp})


def _peer(intf):
    link = getattr(intf, "link", None)
    if link is None:
        return None
    return link.intf2 if link.intf1 is intf else link.intf1


def _switch_segments(net: Network) -> dict[str, str]:
    """Switch name -> the broadcast domain it belongs to (switches joined by links), named by its first switch."""
    names = sorted((s.name for s in net.switches), key=_natural)
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            n = parent[n]
        return n

    for link in net.links:
        a, b = link.intf1.node.name, link.intf2.node.name
        if a in parent and b in parent:
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb, key=_natural)] = min(ra, rb, key=_natural)
    return {n: root(n) for n in names}


def _natural(name: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _addresses(ip_json: str) -> dict[str, tuple[ipaddress.IPv4Interface, str]]:
    """Interface -> (its first IPv4 address, its MAC), from `ip -j addr show`."""
    found: dict[str, tuple[ipaddress.IPv4Interface, str]] = {}
    for link in json.loads(ip_json or "[]"):
        for addr in link.get("addr_info", []):
            if addr.get("family") == "inet" and link["ifname"] not in found:
                address = ipaddress.IPv4Interface(f"{addr['local']}/{addr['prefixlen']}")
                found[link["ifname"]] = (address, link.get("address", ""))
    return found


def _routes(route_json: str) -> tuple[list[Route], str | None]:
    """Static routes (with a next hop) and the default gateway, from `ip -j -4 route show`."""
    routes, gateway = [], None
    for r in json.loads(route_json or "[]"):
        via = r.get("gateway")
        if not via:
            continue
        if r.get("dst") == "default":
            gateway = gateway or via
        else:
            dst = r["dst"] if "/" in r["dst"] else r["dst"] + "/32"
            routes.append(Route(ipaddress.IPv4Network(dst, strict=False), via))
    return routes, gateway


def ends(topology: Topology, client: str | None, server: str | None) -> tuple[str, str]:
    """The client and server hosts of a run: the named ones, or the first and the last host."""
    hosts = [n.name for n in topology.hosts if n.interfaces]
    if len(hosts) < 2 and (client is None or server is None):
        raise NetbedError(f"topology {topology.name} has {len(hosts)} addressed host(s): an experiment needs two")
    return client or hosts[0], server or hosts[-1]


def check_ends(topo: Topo, label: str, client: str | None, server: str | None) -> None:
    """--client/--server must name hosts of the topology (checked before the build)."""
    names = set(topo.hosts())
    for flag, name in (("--client", client), ("--server", server)):
        if name is not None and name not in names:
            raise NetbedError(f"{flag} {name}: topology {label} has no such host (hosts: "
                              f"{', '.join(sorted(names, key=_natural))})")
    if client is not None and client == server:
        raise NetbedError(f"--client and --server are both {client}: name two different hosts")
    if (client is None or server is None) and len(end_hosts(topo)) < 2:
        raise NetbedError(f"topology {label} has fewer than two hosts: an experiment needs a client and a server")


def folder_label(topo_arg: str) -> str:
    """A topology argument as a piece of a folder name (`tree,depth=2` -> `tree-depth-2`)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", topo_arg).strip("-") or "custom"


@dataclass(frozen=True)
class CustomTopology:
    """A user's Mininet Topo chosen on the command line, with the hosts a run goes between.

    It stands where netbed's own `Topology` stands in a run: `testbed()` builds it, `ends()` names
    the client and server once the network (and so which nodes forward) is known.
    """

    topo: Topo
    label: str  # the --topo argument as given: "linuxrouter", "tree,depth=2,fanout=2"
    client: str | None = None
    server: str | None = None

    @property
    def name(self) -> str:
        return folder_label(self.label)

    def testbed(self, ipv6: bool = False) -> CustomTestbed:
        return CustomTestbed(self.topo, self.label, ipv6=ipv6)

    def ends(self, topology: Topology) -> tuple[str, str]:
        return ends(topology, self.client, self.server)


def custom_topology(topo_arg: str, files: list[Path] | None = None, client: str | None = None,
                    server: str | None = None, need_ends: bool = False) -> CustomTopology:
    """Load and check a `--custom/--topo` choice; with `need_ends`, also its client and server hosts."""
    topo = make_topo(topo_arg, files)
    if need_ends or client or server:
        check_ends(topo, topo_arg, client, server)
    return CustomTopology(topo, topo_arg, client, server)
