"""Build a Topology in bulk over netlink, and hand it to Mininet as ordinary nodes.

Stock Mininet starts one bash per node and waits for its prompt, then configures every interface
with its own `ip`/`ifconfig` process, and tears down link by link: 12.8 s + 14.0 s for a 500-host
LAN here. netbed creates all namespaces from its own process (one unshare each), every veth pair,
bridge, address and route with pipelined rtnetlink requests, and tears down by closing the
namespaces' descriptors and stopping the processes inside. Each node is still a Mininet node —
`cmd`, `popen`, `net.get`, the CLI all work; its shell starts the first time it is needed.
"""
from __future__ import annotations

import itertools
import os
import pty
import select
import signal
import subprocess
from dataclasses import dataclass, field

from mininet.link import Intf
from mininet.net import Mininet
from mininet.node import Node
from mininet.util import Python3

from netbed.network import rtnl
from netbed.spec import Topology, v6

PROMPT = chr(127)


class NamespaceNode(Node):
    """A Mininet node whose namespace already exists (held by a descriptor of netbed's process).

    Its shell is started on first use, with nsenter into that namespace, so a 500-host network does
    not pay for 500 idle shells; `popen` enters the namespace the same way.
    """

    def __init__(self, name: str, netns_fd: int, **params) -> None:
        # Node.__init__ without startShell(): the same attributes, no process yet
        self.netns_fd = netns_fd
        self.name = params.get("name", name)
        self.privateDirs = params.get("privateDirs", [])
        self.inNamespace = True
        self.waitExited = params.get("waitExited", Python3)
        self.params = params
        self.intfs, self.ports, self.nameToIntf = {}, {}, {}
        (self.shell, self.execed, self.pid, self.stdin, self.stdout, self.lastPid, self.lastCmd,
         self.pollOut) = (None, None, None, None, None, None, None, None)
        self.waiting = False
        self.readbuf = ""
        self.master, self.slave = None, None

    def _enter(self) -> list[str]:
        return ["nsenter", f"--net=/proc/{os.getpid()}/fd/{self.netns_fd}"]

    def startShell(self, mnopts=None) -> None:  # noqa: N802 (Mininet's name)
        if self.shell:
            return
        cmd = [*self._enter(), "env", "PS1=" + PROMPT, "bash", "--norc", "--noediting", "-is", "mininet:" + self.name]
        self.master, self.slave = pty.openpty()
        self.shell = self._popen(cmd, stdin=self.slave, stdout=self.slave, stderr=self.slave, close_fds=False,
                                 pass_fds=(self.netns_fd,), start_new_session=True)
        self.stdin = os.fdopen(self.master, "r")
        self.stdout = self.stdin
        self.pid = self.shell.pid
        self.pollOut = select.poll()
        self.pollOut.register(self.stdout)
        self.outToNode[self.stdout.fileno()] = self
        self.inToNode[self.stdin.fileno()] = self
        self.execed, self.lastCmd, self.lastPid, self.readbuf = False, None, None, ""
        while True:
            data = self.read(1024)
            if data and data[-1] == PROMPT:
                break
            self.pollOut.poll()
        self.waiting = False
        self.cmd("unset HISTFILE; stty -echo; set +m")

    def sendCmd(self, *args, **kwargs):  # noqa: N802
        self.startShell()
        return super().sendCmd(*args, **kwargs)

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        """Popen() in this node's namespace; argv as a list (never through a shell)."""
        argv = args[0] if len(args) == 1 and isinstance(args[0], list) else list(args)
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        kwargs.pop("mncmd", None)
        kwargs.setdefault("start_new_session", True)  # like mnexec -d: its own process group
        return subprocess.Popen([*self._enter(), *argv], pass_fds=(self.netns_fd,), **kwargs)

    def terminate(self) -> None:
        if self.shell and self.shell.poll() is None:
            os.killpg(self.shell.pid, signal.SIGKILL)
        self.cleanup()

    def mountPrivateDirs(self) -> None:  # noqa: N802
        pass

    def unmountPrivateDirs(self) -> None:  # noqa: N802
        pass


@dataclass
class FastNetwork:
    """What the fast build made: the namespaces, and a Mininet object over them for users and the CLI."""

    topology: Topology
    ipv6: bool = False
    fds: dict[str, int] = field(default_factory=dict)
    net: Mininet | None = None

    def build(self) -> Mininet:
        topo = self.topology
        names = [s.name for s in topo.switches] + [n.name for n in topo.nodes]
        self.fds = dict(zip(names, rtnl.new_namespaces(len(names))))
        index = itertools.count(1000)  # every interface index unique across the run (see add_veth)
        node_index: dict[tuple[str, str], int] = {}
        bridges = {}
        quiet_ipv6 = {} if self.ipv6 else {  # no router solicitations or MLD reports in the captures
            "net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}
        for seg in topo.switches:
            if quiet_ipv6:
                rtnl.write_sysctls(self.fds[seg.name], quiet_ipv6)
        for node in topo.nodes:
            sysctls = dict(quiet_ipv6)
            if node.kind == "router":
                sysctls["net.ipv4.ip_forward"] = "1"
                sysctls["net.ipv6.conf.all.forwarding"] = "1"
            if self.ipv6:
                sysctls["net.ipv6.conf.all.accept_dad"] = "0"
                sysctls["net.ipv6.conf.default.accept_dad"] = "0"
            if sysctls:
                rtnl.write_sysctls(self.fds[node.name], sysctls)
        for seg in topo.switches:
            rtnl.write_sysctls(self.fds[seg.name], {f"net.bridge.bridge-nf-call-{t}": "0"
                                                    for t in ("iptables", "ip6tables", "arptables")})
            sock = rtnl.Rtnl(self.fds[seg.name])
            bridges[seg.name] = bridge = next(index)
            sock.add_bridge(seg.name, bridge)
            for port, (node, intf) in enumerate(topo.members(seg.name), start=1):
                node_index[(node.name, intf.name)] = peer = next(index)
                sock.add_veth(f"{seg.name}-eth{port}", next(index), None, intf.name, peer, intf.mac,
                              self.fds[node.name], master=bridge)
            sock.commit()
            sock.close()
        for seg in topo.segments:
            if seg.switched:
                continue
            (a, ia), (b, ib) = topo.members(seg.name)
            node_index[(a.name, ia.name)], node_index[(b.name, ib.name)] = next(index), next(index)
            sock = rtnl.Rtnl(self.fds[a.name])
            sock.add_veth(ia.name, node_index[(a.name, ia.name)], ia.mac, ib.name, node_index[(b.name, ib.name)],
                          ib.mac, self.fds[b.name])  # both ends are brought up with their node below
            sock.commit()
            sock.close()
        by_v4 = {i.ip: i.ip6 for n in topo.nodes for i in n.interfaces}
        for node in topo.nodes:
            sock = rtnl.Rtnl(self.fds[node.name])
            sock.set_up(1)  # lo
            for intf in node.interfaces:
                sock.set_up(node_index[(node.name, intf.name)])
                sock.add_address(node_index[(node.name, intf.name)], intf.address)
                if self.ipv6:
                    sock.add_address(node_index[(node.name, intf.name)], intf.address6)
            if node.gateway:
                sock.add_route(None, node.gateway)
                if self.ipv6:
                    sock.add_route(None, by_v4[node.gateway])
            for route in node.routes:
                sock.add_route(route.destination, route.via)
                if self.ipv6:
                    sock.add_route(v6(route.destination_interface()).network, by_v4[route.via])
            sock.commit()
            sock.close()
        self.net = self._mininet(node_index)
        return self.net

    def _mininet(self, node_index: dict[tuple[str, str], int]) -> Mininet:
        """A Mininet object over the namespaces: net.get(), net.hosts, the CLI, host.cmd() all work."""
        topo = self.topology
        net = Mininet(topo=None, build=False, controller=None, autoSetMacs=False)
        for seg in topo.switches:
            switch = NamespaceNode(seg.name, self.fds[seg.name])
            net.switches.append(switch)
            net.nameToNode[seg.name] = switch
            for port, (_node, _intf) in enumerate(topo.members(seg.name), start=1):
                Intf(f"{seg.name}-eth{port}", node=switch, port=port, up=None, moveIntfFn=_no_move)
        for node in topo.nodes:
            host = NamespaceNode(node.name, self.fds[node.name])
            net.hosts.append(host)
            net.nameToNode[node.name] = host
            for port, intf in enumerate(node.interfaces):
                mn_intf = Intf(intf.name, node=host, port=port, mac=intf.mac, up=None, moveIntfFn=_no_move)
                mn_intf.ip, mn_intf.prefixLen = intf.ip, intf.address.network.prefixlen
        net.built = True
        return net

    def netns_inode(self, name: str) -> int:
        return os.fstat(self.fds[name]).st_ino

    def stop(self) -> None:
        """Stop every shell, then let go of the namespaces: the kernel removes all their links."""
        if self.net is not None:
            nodes = self.net.hosts + self.net.switches
            for node in nodes:
                if node.shell and node.shell.poll() is None:
                    try:
                        os.killpg(node.shell.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            for node in nodes:
                if node.shell:
                    node.shell.wait()
                    node.cleanup()
            self.net = None
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


def _no_move(*_args) -> None:
    """The interface was created in its namespace already; Mininet need not move it."""
