"""Cluster Edition's node and link classes, as netbed builds a network over several servers.

Each class is Cluster Edition's `RemoteMixin` over netbed's Mininet node (nodes.py), made through
their constructors; only two things are netbed's: every remote command carries the run's mark
(so teardown and `netbed clean` find exactly this run's processes on each server), and ssh uses
the run's shared connection and the cluster's key. The link is Cluster Edition's `RemoteLink` with
a VXLAN tunnel between servers (modelled on `RemoteGRELink`) and netbed's indexed veth within one.
"""
from __future__ import annotations

import itertools
import os
import shlex
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from mininet.examples import cluster as mc
from mininet.examples.cluster import MininetCluster, RemoteLink, RemoteMixin
from mininet.link import Intf, TCIntf
from mininet.node import Node
from mininet.topo import Topo

from netbed.network.custom import TC_PARAMS, StpBridge
from netbed.network.mnnet import Network
from netbed.network.nodes import Host, LinuxBridge, Router, VethLink
from netbed.network.plan import FIRST_INDEX, node_sysctls
from netbed.network.testbed import Testbed

# `mn --placement` names (block is its SwitchBinPlacer), and two more of Cluster Edition's placers
PLACERS = {"block": mc.SwitchBinPlacer, "switchbin": mc.SwitchBinPlacer, "random": mc.RandomPlacer,
           "hostswitchbin": mc.HostSwitchBinPlacer, "roundrobin": mc.RoundRobinPlacer}


class MarkedRemote(RemoteMixin):
    """RemoteMixin whose remote commands carry the run's mark and count themselves, and whose shells
    start side by side.

    `mark`, `counter` (new ssh sessions), `trips` (commands over open shells), `sshbase`, `pool` and
    `root_shells` (server -> its ServerShell) are set per run on a subclass made by `node_classes`.

    Starting a node's shell over ssh is a new session on the server (sshd, sudo, mnexec, bash) and
    Mininet's startShell waits for its prompt, then for `echo $$` (Cluster Edition's finishInit):
    one after the other, 500 hosts wait for 500 session set-ups. Here each node's startShell runs in
    the run's thread pool, so a server sets up many sessions at once; the node's first command from
    elsewhere (or ClusterNetwork, before the first link: a link needs the pids) waits for it. A
    node's sysctls, which netbed's nodes set through their shell as soon as it exists, go with it.
    """

    mark = ""
    counter: list[int] = [0]
    trips: list[int] = [0]
    root_shells: dict = {}
    pool: ThreadPoolExecutor | None = None
    _lock = threading.Lock()

    def __init__(self, name, *args, **params) -> None:
        self._later_sysctls = params.pop("sysctls", None)
        self._starting: Future | None = None
        self._starter: int | None = None
        super().__init__(name, *args, **params)

    def startShell(self, *args, **kwargs) -> None:  # noqa: N802 (Mininet's name)
        start = super().startShell
        if not self.isRemote or self.pool is None:
            start(*args, **kwargs)
            return

        def run() -> None:
            self._starter = threading.get_ident()  # its own commands (stty, echo $$) do not wait for it
            start(*args, **kwargs)
            if self._later_sysctls:
                self.cmd("sysctl -q -e -w " + " ".join(f"{k}={v}" for k, v in self._later_sysctls.items()))

        self._starting = self.pool.submit(run)

    def finish_init(self) -> None:
        """Wait until the shell started in the pool answers (raising what its start raised)."""
        starting = self._starting
        if starting is not None and threading.get_ident() != self._starter:
            starting.result()
            self._starting = None

    def cmd(self, *args, **kwargs):
        self.finish_init()  # before Node.cmd looks at the shell
        return super().cmd(*args, **kwargs)

    def sendCmd(self, *args, **kwargs):  # noqa: N802 (Mininet's name)
        self.finish_init()
        with self._lock:
            self.trips[0] += 1
        return super().sendCmd(*args, **kwargs)

    def rcmd(self, *cmd, **opts) -> str:
        """A command in the server's root namespaces: through the server's one root shell (a round
        trip over an open session) rather than a new ssh session per command, as Cluster Edition does."""
        shell = self.root_shells.get(self.server) if self.isRemote else None
        if shell is None or opts:
            return super().rcmd(*cmd, **opts)
        return shell.cmd(*cmd)

    def _popen(self, cmd, sudo=True, tt=True, **params):
        if isinstance(cmd, str):
            cmd = cmd.split()
        if self.sshcmd[:3] == ["sudo", "-E", "-u"] and self.user == "root" and os.geteuid() == 0:
            # root already: no local sudo between us and ssh (a SIGKILL to sudo would leave ssh,
            # and the pipes it holds, behind)
            self.sshcmd = self.sshcmd[4:]
        if self.isRemote:
            # ssh joins its arguments with spaces for the remote shell: quote each argument of a
            # program (popen: python3 -c SCRIPT, a curl header), so it arrives whole. The node's
            # shell and rcmd (tt) are Cluster Edition's own command lines, passed as they are.
            with self._lock:
                self.counter[0] += 1
            cmd = ["env", self.mark] + (list(cmd) if tt else [shlex.quote(str(a)) for a in cmd])
        return super()._popen(cmd, sudo=sudo, tt=tt, **params)


class ClusterNetwork(MininetCluster, Network):
    """MininetCluster (placement, remote nodes) with netbed's bounded iperf.

    Teardown stops every node's shell and nothing else: each node's namespace on its server (with its
    veths and tunnel ends) goes with its shell, and the testbed then kills whatever else the run
    marked on each server. Deleting every link first would cost two remote commands per link.
    """

    pool: ThreadPoolExecutor | None = None  # the run's: node shells start there, hosts configure there

    def configHosts(self) -> None:  # noqa: N802 (Mininet's name)
        """Mininet's configHosts, each host's share side by side in the run's pool: each host's commands go
        over its own shell, so a server answers many hosts at once instead of one after the other."""
        def one(host) -> None:
            if host.defaultIntf():
                host.configDefault()
            else:
                host.configDefault(ip=None, mac=None)  # Mininet's: no interface, nothing to address

        if self.pool is None:
            super().configHosts()
            return
        list(self.pool.map(one, self.hosts))

    def addLink(self, *args, **kwargs):  # noqa: N802 (Mininet's name)
        """Every shell started so far answers first: a link needs its nodes' pids."""
        self.finish_shells()
        return super().addLink(*args, **kwargs)

    def finish_shells(self) -> None:
        for node in self.hosts + self.switches:
            if isinstance(node, MarkedRemote):
                node.finish_init()

    def stop(self) -> None:
        if self.terms:
            self.stopXterms()
        for node in self.hosts + self.switches:
            if isinstance(node, MarkedRemote) and node._starting is not None:
                node._starting.exception()  # a shell still starting is waited for, then stopped
            node.terminate()


SHELL_LINE = 3000  # a pty's line discipline cuts an input line at 4,095 bytes: command lines stay below


class BridgeInOneTrip:
    """Mininet's LinuxBridge.start (down, delbr, addbr, one addif per port, up) in as few command lines of
    the bridge's shell as fit (a node's shell reads a pty, whose lines end at 4,095 bytes): a 500-port
    bridge on a server starts in a handful of round trips instead of 500."""

    def start(self, _controllers) -> None:
        ports = [intf for intf in self.intfList() if self.name in intf.name]
        steps = [f"ifconfig {self} down", f"brctl delbr {self}", f"brctl addbr {self}"]
        steps += [f"brctl addif {self} {intf}" for intf in ports] + [f"ifconfig {self} up"]
        line: list[str] = []
        for step in steps:
            if line and len("; ".join([*line, step])) > SHELL_LINE:
                self.cmd("; ".join(line))
                line = []
            line.append(step)
        self.cmd("; ".join(line))


class ClusterLink(VethLink, RemoteLink):
    """A veth pair within a server (netbed's indexes and MACs), a VXLAN tunnel between two servers.

    Per-run class attributes: `vnis` (the run's VniRange), `mtu` (what fits the tunnel), `tag`
    (part of the run id, in the temporary name a tunnel has in the server's root namespace).
    """

    vnis = None
    mtu = 1500
    tag = ""
    local_ip: dict[str, str] = {}

    def makeIntfPair(self, intfname1, intfname2, addr1=None, addr2=None,  # noqa: N802 (Mininet's name)
                     node1=None, node2=None, deleteIntfs=True):
        node1 = node1 or self.node1
        node2 = node2 or self.node2
        if node1.server == node2.server:
            VethLink.makeIntfPair(self, intfname1, intfname2, addr1, addr2, node1, node2)
        else:
            self.makeTunnel(node1, node2, intfname1, intfname2, addr1, addr2)
            self.tunnel = None  # Link.stop deletes the interfaces; there is no tunnel process
        if self.mtu < 1500:
            node1.cmd(f"ip link set dev {intfname1} mtu {self.mtu}")
            node2.cmd(f"ip link set dev {intfname2} mtu {self.mtu}")

    def makeTunnel(self, node1, node2, intfname1, intfname2,  # noqa: N802 (Mininet's name)
                   addr1=None, addr2=None):
        """Like RemoteGRELink.makeTunnel, with VXLAN: made in the server's root namespace under a
        name of this run's, moved into the node's namespace, renamed there."""
        vni = self.vnis.take()
        temp = f"x{self.tag}{vni:05x}"[:15]
        ends = ((node1, intfname1, addr1, node2), (node2, intfname2, addr2, node1))
        for node, intfname, addr, peer in ends:
            local, remote = self.local_ip[node.server], self.local_ip[peer.server]
            mac = f" address {addr}" if addr else ""
            # made and moved in one command of the server's root shell, renamed in one of the node's
            argv = (f"ip link add name {temp}{mac} mtu {min(self.mtu, 1500)} type vxlan id {vni} local {local} "
                    f"remote {remote} dstport 4789 && ip link set {temp} netns {node.pid}")  # VXLAN_PORT
            result = node.rcmd(argv)
            if result.strip():
                raise RuntimeError(f"cannot create VXLAN {temp} in {node} on {node.server}: {result.strip()}")
            result = node.cmd(f"ip link set {temp} name {intfname} up")
            if result.strip():
                raise RuntimeError(f"cannot rename {temp} in {node} on {node.server}: {result.strip()}")


def node_classes(tb: Testbed) -> dict[str, type]:
    """The run's node classes: its mark, its ssh options (key, known hosts, shared connection), and one
    root shell per server (a Mininet Node outside any namespace there, for the rcmds of the build)."""
    conns = tb.connections
    attrs = {"mark": f"NETBED_RUN={tb.run_id}", "counter": tb.ssh_counter, "trips": tb.ssh_trips,
             "sshbase": ["ssh", "-q", *conns.base[1:], "-tt"], "root_shells": tb.root_shells,
             "pool": tb.shell_pool}
    marked = type("MarkedRemote", (MarkedRemote,), attrs)
    shell = type("ServerShell", (marked, Node), {})
    for k, server in enumerate(tb.cluster.servers):
        tb.root_shells[server] = shell(f"root{k}", inNamespace=False, server=server, user=tb.cluster.user,
                                       controlPath=conns.path())
    return {"host": type("RemoteHost", (marked, Host), {}),
            "router": type("RemoteRouter", (marked, Router), {}),
            "switch": type("RemoteLinuxBridge", (marked, BridgeInOneTrip, LinuxBridge), {}),
            "marked": marked}


def _link_class(tb: Testbed, base: type = None) -> type:
    return type("ClusterLink", (base or ClusterLink,), {"vnis": tb.vnis, "mtu": tb.mtu, "tag": tb.run_id[:8],
                                                        "local_ip": _server_ips(tb)})


def build_cluster_network(tb: Testbed) -> ClusterNetwork:
    """The spec as a Mininet Topo, placed and built by MininetCluster; then the plan's addresses/routes."""
    spec, plan, topo = tb.cluster, tb.plan, tb.topology
    classes = node_classes(tb)
    link = _link_class(tb)
    mn_topo = Topo()
    common = {"user": spec.user, "controlPath": tb.connections.path()}
    for node in topo.nodes:
        mn_topo.addHost(node.name, cls=classes["router" if node.kind == "router" else "host"], ip=None,
                        sysctls=plan.nodes[node.name].sysctls, **common)
    for seg in topo.switches:
        mn_topo.addSwitch(seg.name, cls=classes["switch"], sysctls=plan.nodes[seg.name].sysctls, **common)
    v4 = {(n.name, i.name): str(i.address) for n in topo.nodes for i in n.interfaces}
    for lp in plan.links:
        if lp.trunk:
            continue
        a, b = lp.end1, lp.end2
        params2 = {} if lp.bridge2 else {"ip": v4[(b.node, b.name)]}
        mn_topo.addLink(a.node, b.node, port1=a.number, port2=b.number, intfName1=a.name, intfName2=b.name,
                        addr1=a.mac, addr2=b.mac, cls=link, index1=a.index, index2=b.index,
                        params1={"ip": v4[(a.node, a.name)]}, params2=params2)
    net = _build(tb, mn_topo, link, autoSetMacs=False, autoStaticArp=False)
    tb.add_planned_routes(plan)
    return net


def _build(tb: Testbed, mn_topo: Topo, link: type, **params) -> ClusterNetwork:
    """MininetCluster places `mn_topo` on the servers and builds it (tb.net is set first: a failed build
    is torn down by the testbed)."""
    spec = tb.cluster
    place(mn_topo, spec.servers, spec.placement, tb.apart)
    net = ClusterNetwork(topo=mn_topo, servers=list(spec.servers), user=spec.user,
                         placement=PLACERS[spec.placement], precheck=False, link=link,
                         controller=None, build=False, waitConnected=False, **params)
    net.pool = tb.shell_pool
    tb.net = net
    net.build()
    net.finish_shells()
    net.start()
    return net


def place(mn_topo: Topo, servers: list[str], placement: str, apart: tuple[str, str] | None) -> None:
    """Cluster Edition's placer, asked here rather than inside MininetCluster (which takes a server
    already in a node's info as given), so that an experiment's client and server hosts can be kept
    on different servers: if the placer put them together, the server host goes to the next server."""
    placer = PLACERS[placement](servers=list(servers), nodes=mn_topo.nodes(), hosts=mn_topo.hosts(),
                                switches=mn_topo.switches(), links=mn_topo.links())
    where = {node: placer.place(node) for node in mn_topo.nodes()}
    if apart and len(servers) > 1 and all(n in where for n in apart) and where[apart[0]] == where[apart[1]]:
        where[apart[1]] = servers[(servers.index(where[apart[1]]) + 1) % len(servers)]
    for node, server in where.items():
        mn_topo.nodeInfo(node)["server"] = server


class ClusterCustomLink(ClusterLink):
    """A user's link (CustomLink's habits: distinct indexes, TCIntf when it has bw/delay/loss) that
    becomes a VXLAN tunnel where its ends are on different servers."""

    _indexes = itertools.count(FIRST_INDEX)

    def __init__(self, node1, node2, **params) -> None:
        if any(params.get(k) is not None for k in TC_PARAMS) and params.get("intf") in (None, Intf):
            params["intf"] = TCIntf
        super().__init__(node1, node2, index1=next(self._indexes), index2=next(self._indexes), **params)


def build_custom_cluster_network(tb: Testbed, user_topo: Topo, stp: bool, ipv6: bool) -> ClusterNetwork:
    """A user's Mininet Topo (`--custom FILE --topo NAME`) placed and built by MininetCluster: each node
    of the user's own class (linuxrouter.py's LinuxRouter) becomes that class under Cluster Edition's
    RemoteMixin; switches are netbed's namespaced bridges (with STP where the switches form a loop).

    The user's Topo is copied, not changed (MininetCluster writes each node's server into it)."""
    classes = node_classes(tb)
    common = {"user": tb.cluster.user, "controlPath": tb.connections.path()}
    remote: dict[type, type] = {}
    copy = Topo()
    for name in user_topo.nodes():
        info = dict(user_topo.nodeInfo(name))
        cls = info.pop("cls", None)
        if user_topo.isSwitch(name) and not stp:
            copy.addNode(name, cls=classes["switch"], **info, **common,
                         sysctls=node_sysctls("switch", ipv6=ipv6))
            continue
        if user_topo.isSwitch(name):
            base = StpBridge
            info["sysctls"] = node_sysctls("switch", ipv6=ipv6)
        elif cls is None or cls is Host:
            base = Host
            info["sysctls"] = node_sysctls("host", ipv6=ipv6)
        else:
            base = cls
        if base not in remote:
            remote[base] = type(f"Remote{base.__name__}", (classes["marked"], base), {})
        copy.addNode(name, cls=remote[base], **info, **common)  # info keeps isSwitch
    link = _link_class(tb, ClusterCustomLink)
    for src, dst, info in user_topo.links(withInfo=True):
        info = dict(info)
        info.pop("cls", None)
        node1, node2 = info.pop("node1", src), info.pop("node2", dst)
        copy.addLink(node1, node2, info.pop("port1", None), info.pop("port2", None), cls=link, **info)
    return _build(tb, copy, link)


def _server_ips(tb: Testbed) -> dict[str, str]:
    """Each server's own address towards the others (the tunnel's local end), as the server says."""
    servers = tb.cluster.servers
    ips = {}
    for server in servers:
        others = [s for s in servers if s != server]
        if not others:
            ips[server] = server
            continue
        out = tb.connections.run(server, f"ip -o route get $(getent ahostsv4 {others[0]} | head -n1 | cut -d' ' -f1)")
        words = out.stdout.split()
        ips[server] = words[words.index("src") + 1] if "src" in words else server
    return ips
