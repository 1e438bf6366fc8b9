"""A running emulated network: Mininet built from a validated Topology.

The Testbed is also the one place that starts processes inside hosts and the one place that waits
for them to be ready, so everything a run starts is known and stopped by the run itself.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field

from netbed.errors import NetbedError
from netbed.pace import budget_text, patience
from netbed.preflight import require_open_vswitch
from netbed.spec import Node as NodeSpec
from netbed.spec import Topology

SWITCHES = ("bridge", "ovs")


@dataclass
class Timings:
    build: float = 0.0
    stop: float = 0.0


@dataclass
class Testbed:
    """Builds `topology` with Mininet on enter, tears it down on exit.

    Mininet's node API stays available: `tb.net` is the Mininet object, `tb["h1"]` a Mininet host
    with `.cmd()` and `.popen()`, and `tb.cli()` opens Mininet's CLI.
    """

    __test__ = False  # not a pytest test class, whatever its name suggests

    topology: Topology
    switch: str = "bridge"
    ipv6: bool = False  # also give every interface its IPv6 twin address, gateways and routes
    classic: bool = False  # Linux bridges built by Mininet itself, node by node (as with --switch ovs)
    timings: Timings = field(default_factory=Timings)

    def __post_init__(self) -> None:
        if self.switch not in SWITCHES:
            raise NetbedError(f"unknown switch {self.switch!r}: choose one of {', '.join(SWITCHES)}")
        if self.switch == "ovs":
            require_open_vswitch()
        self.net = None
        self.plan = None
        self._fast = None
        self._ns_fds: dict[str, int] = {}  # classic build only: namespaces opened by namespace_fds
        self._procs: list[subprocess.Popen] = []

    # -- life cycle ---------------------------------------------------------------------------
    def __enter__(self) -> Testbed:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> Testbed:
        """Plan first (every limit checked before anything exists), then apply it.

        Linux bridges: built in bulk over netlink (fast.py), unless `classic`; Open vSwitch and the
        classic build: Mininet's own build, node by node through its shells.
        """
        from mininet.log import setLogLevel

        from netbed.network.plan import make_plan

        setLogLevel(os.environ.get("NETBED_MININET_LOG", "warning"))
        self.plan = make_plan(self.topology, ipv6=self.ipv6)
        began = time.monotonic()
        try:
            if self.switch == "bridge" and not self.classic:
                from netbed.network.fast import FastNetwork

                self._fast = FastNetwork(self.topology, self.plan)
                self.net = self._fast.build()
            else:
                self._start_mininet()
        except BaseException:
            self.stop()
            raise
        self.timings.build = time.monotonic() - began
        return self

    def _start_mininet(self) -> None:
        from netbed.network.fast import add_links
        from netbed.network.mnnet import Network
        from netbed.network.nodes import Host, LinuxBridge, Router, VethLink

        switch_cls, switch_params = LinuxBridge, True
        if self.switch == "ovs":
            from mininet.node import OVSBridge

            switch_cls, switch_params = OVSBridge, False
        plan = self.plan
        net = Network(topo=None, switch=switch_cls, controller=None, build=False, link=VethLink,
                      autoSetMacs=False, autoStaticArp=False, waitConnected=False)
        self.net = net
        for node in self.topology.nodes:
            net.addHost(node.name, cls=Router if node.kind == "router" else Host, ip=None,
                        sysctls=plan.nodes[node.name].sysctls)
        for seg in self.topology.switches:
            extra = {"sysctls": plan.nodes[seg.name].sysctls} if switch_params else {}
            net.addSwitch(seg.name, cls=switch_cls, **extra)
        v4 = {(n.name, i.name): str(i.address) for n in self.topology.nodes for i in n.interfaces}

        def link_params(link) -> dict:
            return {"cls": VethLink, "index1": link.end1.index, "index2": link.end2.index,
                    "params1": {"ip": v4[(link.end1.node, link.end1.name)]},
                    "params2": {"ip": v4[(link.end2.node, link.end2.name)]} if not link.bridge2 else {}}

        add_links(net, self.topology, plan, link_params)
        net.build()
        net.start()
        self.add_planned_routes(plan)

    def add_planned_routes(self, plan) -> None:
        """What Mininet's own build does not set from the plan: IPv6 addresses (no DAD) and static routes,
        through each node's shell (the classic build and the cluster build, whose nodes may be remote)."""
        for name, node_plan in plan.nodes.items():
            for intf, address in node_plan.addresses:
                if address.version == 6:
                    self.run(name, ["ip", "-6", "addr", "add", str(address), "dev", intf, "nodad"])
            for destination, gateway in node_plan.routes:
                family = ["-6"] if ":" in gateway else []
                self.run(name, ["ip", *family, "route", "add", str(destination or "default"), "via", gateway])

    def stop(self) -> None:
        began = time.monotonic()
        for proc in self._procs:
            _terminate(proc)
        self._procs.clear()
        for fd in self._ns_fds.values():
            os.close(fd)
        self._ns_fds.clear()
        if self._fast is not None:
            self._fast.stop()
            self._fast = None
            self.net = None
        elif self.net is not None:
            self.net.stop()
            self.net = None
        self.timings.stop = time.monotonic() - began

    # -- nodes ----------------------------------------------------------------------------------
    def __getitem__(self, name: str):
        if self.net is None:
            raise RuntimeError("testbed is not running")
        return self.net.get(name)

    def netns_inode(self, name: str) -> int:
        """The inode of a node's network namespace (what bpftrace reports for its sockets)."""
        if self._fast is not None:
            return self._fast.netns_inode(name)
        return os.stat(f"/proc/{self[name].pid}/ns/net").st_ino

    def namespace_fds(self, names: list[str]) -> dict[str, int]:
        """Descriptors of the nodes' network namespaces (open /proc/PID/ns/net on the classic build)."""
        if self._fast is not None:
            return {n: self._fast.fds[n] for n in names}
        for n in names:
            if n not in self._ns_fds:
                self._ns_fds[n] = os.open(f"/proc/{self[n].pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        return {n: self._ns_fds[n] for n in names}

    def read_sysctl(self, node: str, key: str) -> str:
        """A sysctl as `node` sees it (net.* ones are per namespace), read without starting a process."""
        from netbed.network import rtnl

        with rtnl.inside(self.namespace_fds([node])[node]):
            with open("/proc/sys/" + key.replace(".", "/")) as f:
                return " ".join(f.read().split())

    def send_local_frame(self, node: str, interface: str, payload: bytes, ethertype: int = 0x88B5) -> None:
        """Send one frame out of `interface`, addressed to the interface's own MAC.

        A bridge never sends a frame back out of the port it came in on, so nobody receives it; but
        a capture on the interface records it, and it makes the interface's queue run.
        """
        from netbed.network import rtnl

        fd = self.namespace_fds([node])[node]
        with rtnl.inside(fd):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        with sock:
            sock.bind((interface, 0))
            mac = sock.getsockname()[4]
            sock.send(mac + mac + ethertype.to_bytes(2, "big") + payload)

    def spec(self, name: str) -> NodeSpec:
        return self.topology.node(name)

    def cli(self, script: str | None = None) -> None:
        """Mininet's CLI over this network, at Mininet's default `info` log level (as `mn` runs it)."""
        from mininet.cli import CLI
        from mininet.log import lg, setLogLevel

        level = lg.getEffectiveLevel()
        setLogLevel("info")
        try:
            CLI(self.net, script=script)
        finally:
            lg.setLevel(level)

    # -- processes in hosts -----------------------------------------------------------------------
    def popen(self, node: str, argv: list[str], **kwargs) -> subprocess.Popen:
        """Start argv inside `node`'s namespace; the testbed stops it if the caller does not."""
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc = self[node].popen(list(argv), **kwargs)
        self._procs.append(proc)
        return proc

    def run(self, node: str, argv: list[str], timeout: float = 30.0,
            check: bool = True) -> subprocess.CompletedProcess:
        """Run argv to completion inside `node` and return its output."""
        proc = self.popen(node, argv, text=True)
        try:
            out, err = proc.communicate(timeout=patience(timeout))
        except subprocess.TimeoutExpired:
            _terminate(proc)
            raise NetbedError(f"{node}: {' '.join(argv)} did not finish in {budget_text(timeout)}") from None
        finally:
            self.forget(proc)
        result = subprocess.CompletedProcess(argv, proc.returncode, out, err)
        if check and proc.returncode != 0:
            raise NetbedError(f"{node}: {' '.join(argv)} failed: {(err or out).strip()}")
        return result

    def wait_listening(self, node: str, port: int, proto: str = "tcp", timeout: float = 10.0,
                       proc: subprocess.Popen | None = None) -> None:
        """Wait until something listens on `port` in `node`, without connecting to it.

        A probe connection would show up in the capture; `ss -l` only reads the kernel's tables.
        """
        flag = "-ltnH" if proto == "tcp" else "-lunH"
        deadline = time.monotonic() + patience(timeout)
        while True:
            out = self.run(node, ["ss", flag, f"sport = :{port}"], check=False).stdout
            if out.strip():
                return
            if proc is not None and proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else ""
                raise NetbedError(f"{node}: the server exited before listening on {port}: {err.strip()}")
            if time.monotonic() > deadline:
                raise NetbedError(f"{node}: nothing listens on {proto} port {port} after {budget_text(timeout)}")
            time.sleep(0.01)

    def forget(self, proc: subprocess.Popen) -> None:
        """The caller has stopped and reaped `proc` itself: the testbed need not stop it at the end."""
        try:
            self._procs.remove(proc)
        except ValueError:
            pass

    # -- reachability -----------------------------------------------------------------------------
    def ping(self, src: str, dst_ip: str, count: int = 1, wait: float = 1.0) -> bool:
        out = self.run(src, ["ping", "-n", "-q", "-c", str(count), "-W", f"{wait:g}", dst_ip],
                       check=False, timeout=count * wait + 10)
        return out.returncode == 0

    def ping_pairs(self, pairs: list[tuple[str, str]], parallel: int = 32) -> list[tuple[str, str]]:
        """Ping every (source host, destination IP) pair once, `parallel` at a time; return the failures.

        One echo per pair and no second try, as Mininet's pingAll: a lost echo is a reported loss.
        """
        failures = []
        for start in range(0, len(pairs), parallel):
            batch = pairs[start:start + parallel]
            procs = [(pair, self.popen(pair[0], ["ping", "-n", "-q", "-c", "1", "-W", "1", pair[1]]))
                     for pair in batch]
            for pair, proc in procs:
                proc.communicate()
                self.forget(proc)
                if proc.returncode != 0:
                    failures.append(pair)
        return failures


def _terminate(proc: subprocess.Popen, grace: float = 2.0) -> None:
    """Stop a process we started (its own process group: mnexec -d makes it a session leader)."""
    if proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
