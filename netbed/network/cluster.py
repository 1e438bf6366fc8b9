"""A netbed network spread over several servers with Mininet Cluster Edition (`--cluster`).

Built on `mininet.examples.cluster`: `MininetCluster` places the nodes with its placers and starts
each node's shell on its server over ssh (`RemoteMixin`); a link between two servers is a
`RemoteLink`. netbed adds what Cluster Edition lacks or gets wrong here:

- a remote Linux-bridge switch (`RemoteMixin` + netbed's LinuxBridge, in a namespace of its own on
  its server, so two runs' `s1` cannot collide), as `cluster.py` only has Open vSwitch;
- a VXLAN link (this kernel has no gretap for `RemoteGRELink`), one VNI per link out of a VNI range
  reserved for this run, created under a name carrying the run's id and renamed inside the node's
  namespace, so concurrent runs never collide in a server's root namespace;
- an MTU that fits: the tunnel costs VXLAN_OVERHEAD bytes, so every emulated interface gets the
  underlay's MTU less that, at most 1,500;
- ssh connection sharing: one ControlMaster per server, started (and checked) before anything is
  built, so an unreachable server, a wrong key or a sudo that asks for a password is one line;
- every remote process carries the run's mark (NETBED_RUN), so teardown kills what this run started
  on each server — never `mn -c`, never `ClusterCleanup`.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from netbed.errors import NetbedError
from netbed.network.cluster_nodes import build_cluster_network, build_custom_cluster_network
from netbed.network.custom import CustomTopology, has_switch_loop, read_topology, wait_spanning_tree
from netbed.network.testbed import Testbed, _terminate
from netbed.spec import Topology

VXLAN_PORT = 4789  # IANA's VXLAN port: open it (UDP) between real servers
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
ETHERNET_MTU = 1500
VNI_BLOCK = 4096  # VNIs reserved per run: one per cross-server link
VNI_BLOCKS = (1 << 24) // VNI_BLOCK
CONNECT_TIMEOUT = 5  # seconds for ssh to reach a server
SHELL_STARTS = 32  # node shells (ssh sessions) being set up at once, over all servers
STATE_DIR = Path(os.environ.get("NETBED_STATE_DIR", "/run/netbed"))
MARK = "NETBED_RUN"
PLACEMENTS = ("block", "random", "switchbin", "hostswitchbin", "roundrobin")
_SERVER = re.compile(r"^[A-Za-z0-9_.:-]+$")


@dataclass
class ClusterSpec:
    """Where a run goes: the servers, how nodes are placed, and how ssh reaches them."""

    servers: list[str]
    placement: str = "block"
    user: str = "root"
    ssh_options: list[str] = field(default_factory=list)  # e.g. -i KEY, -o UserKnownHostsFile=…

    def __post_init__(self) -> None:
        if not self.servers:
            raise NetbedError("--cluster: name at least one server (host or address, comma-separated)")
        for s in self.servers:
            if not _SERVER.match(s):
                raise NetbedError(f"--cluster: {s!r} is not a host name or address")
        if len(set(self.servers)) != len(self.servers):
            raise NetbedError("--cluster: a server is named twice")
        if self.placement not in PLACEMENTS:
            raise NetbedError(f"--placement {self.placement!r}: choose one of {', '.join(PLACEMENTS)}")


class Connections:
    """One ssh ControlMaster per server for the run; every node's ssh rides on it."""

    def __init__(self, spec: ClusterSpec, run_id: str) -> None:
        self.spec = spec
        self.folder = STATE_DIR / f"cl-{run_id}"
        self.base = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
                     "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", *spec.ssh_options]

    def path(self) -> str:
        return str(self.folder / "%h")

    def dest(self, server: str) -> str:
        return f"{self.spec.user}@{server}"

    def start(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with ThreadPoolExecutor(len(self.spec.servers)) as pool:
            errors = list(pool.map(self._start_one, self.spec.servers))
        bad = [e for e in errors if e]
        if bad:
            raise NetbedError(bad[0] + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))

    def _start_one(self, server: str) -> str | None:
        argv = self.base + ["-o", "ControlMaster=yes", "-o", "ControlPersist=yes",
                            "-o", f"ControlPath={self.path()}", "-f", "-N", self.dest(server)]
        out = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                             timeout=CONNECT_TIMEOUT * 3)
        if out.returncode != 0:
            why = (out.stderr.strip().splitlines() or ["ssh failed"])[-1]
            return f"--cluster: cannot log in to {self.dest(server)} with ssh: {why}"
        check = self.run(server, "sudo -n true")
        if check.returncode != 0:
            return f"--cluster: {server}: sudo asks for a password or is missing (netbed needs sudo -n there)"
        return None

    def run(self, server: str, script: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
        argv = self.base + ["-o", f"ControlPath={self.path()}", "-n", self.dest(server), script]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def stop(self) -> None:
        for server in self.spec.servers:
            subprocess.run(self.base + ["-o", f"ControlPath={self.path()}", "-O", "exit", self.dest(server)],
                           capture_output=True, timeout=10)
        for sock in self.folder.glob("*"):
            sock.unlink(missing_ok=True)
        if self.folder.exists():
            self.folder.rmdir()


def remote_cleanup_script(run_id: str) -> str:
    """Kill every process this run marked on a server and delete tunnel devices it left in the root
    namespace; what lives in the run's namespaces goes with them."""
    mark = f"{MARK}={run_id}"
    return ("for p in /proc/[0-9]*; do "
            f"sudo -n grep -qzx {shlex.quote(mark)} $p/environ 2>/dev/null && sudo -n kill -9 ${{p#/proc/}}; "
            "done; "
            f"for d in $(ip -o link show type vxlan | grep -o 'x{run_id[:8]}[0-9a-f]*'); do "
            "sudo -n ip link del $d; done; true")


class VniRange:
    """A block of VNI_BLOCK VNIs held for this run by a file on this machine (O_EXCL)."""

    def __init__(self, run_id: str) -> None:
        folder = STATE_DIR / "vni"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        start = int(run_id[:6], 16) % (VNI_BLOCKS - 1) + 1  # block 0 left for hand-made tunnels
        for k in range(VNI_BLOCKS - 1):
            block = (start - 1 + k) % (VNI_BLOCKS - 1) + 1
            path = folder / str(block)
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                owner = path.read_text().strip()
                if (STATE_DIR / f"{owner}.json").exists():
                    continue
                path.unlink(missing_ok=True)  # its run is gone
                try:
                    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
                except FileExistsError:
                    continue
            os.write(fd, run_id.encode())
            os.close(fd)
            self.path, self.first, self.next = path, block * VNI_BLOCK, block * VNI_BLOCK
            return
        raise NetbedError("no free VNI block: too many cluster runs at once")

    def take(self) -> int:
        if self.next >= self.first + VNI_BLOCK:
            raise NetbedError(f"more than {VNI_BLOCK} links between servers in one run")
        self.next += 1
        return self.next - 1

    def release(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class ClusterTestbed(Testbed):
    """A Testbed whose nodes live on `cluster.servers`, built by Mininet Cluster Edition."""

    cluster: ClusterSpec | None = None
    custom: CustomTopology | None = None  # a user's Mininet topology (--custom/--topo) instead of `topology`
    apart: tuple[str, str] | None = None  # an experiment's client and server hosts: on different servers

    @classmethod
    def of_custom(cls, custom: CustomTopology, cluster: ClusterSpec, ipv6: bool = False,
                  apart: tuple[str, str] | None = None) -> ClusterTestbed:
        """A user's Mininet topology over the servers; its Topology is read back from the kernels once built."""
        label = custom.label
        return cls(Topology(label, (), (), {"mininet": label}), ipv6=ipv6, cluster=cluster, custom=custom,
                   apart=apart)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cluster is None:
            raise NetbedError("ClusterTestbed needs a cluster")
        if self.switch != "bridge":
            raise NetbedError("--cluster builds Linux-bridge switches (--switch bridge)")
        self.run_id = os.environ.get(MARK) or uuid.uuid4().hex[:10]
        self.connections: Connections | None = None
        self.vnis: VniRange | None = None
        self.mtu = ETHERNET_MTU
        self.placement: dict[str, str] = {}
        self.ssh_counter = [0]  # new ssh sessions the build and the run opened (bench/cluster_bench.py)
        self.ssh_trips = [0]  # commands sent over open shells (each a round trip)
        self.root_shells: dict = {}  # server -> a root shell there (the build's rcmds)
        self.shell_pool: ThreadPoolExecutor | None = None

    def start(self) -> ClusterTestbed:
        from mininet.log import setLogLevel

        from netbed.network.plan import make_plan

        setLogLevel(os.environ.get("NETBED_MININET_LOG", "warning"))
        if self.custom is None:
            self.plan = make_plan(self.topology, ipv6=self.ipv6)
        began = time.monotonic()
        self.connections = Connections(self.cluster, self.run_id)
        self._record()
        try:
            self.connections.start()  # one line per unreachable server, before anything is built
            self.mtu = self._tunnel_mtu()
            self.vnis = VniRange(self.run_id)
            self.shell_pool = ThreadPoolExecutor(SHELL_STARTS, thread_name_prefix="netbed-shell")
            self._build()
        except BaseException:
            self.stop()
            raise
        self.timings.build = time.monotonic() - began
        return self

    def _record(self) -> None:
        """What `netbed clean` needs to reclaim this run on every server if netbed is killed."""
        STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = {"servers": self.cluster.servers, "user": self.cluster.user, "ssh_options": self.cluster.ssh_options}
        (STATE_DIR / f"{self.run_id}.cluster").write_text(json.dumps(data))

    def _tunnel_mtu(self) -> int:
        """The underlay's smallest MTU between any two servers, less VXLAN's headers, at most 1,500."""
        servers = self.cluster.servers
        if len(servers) < 2:
            return ETHERNET_MTU
        lowest = None
        for server in servers:
            ips = " ".join(shlex.quote(s) for s in servers if s != server)
            script = (f"for ip in {ips}; do d=$(ip -o route get $(getent ahostsv4 $ip | head -n1 | cut -d' ' -f1)"
                      " | grep -o 'dev [^ ]*' | cut -d' ' -f2); cat /sys/class/net/$d/mtu; done")
            out = self.connections.run(server, script)
            values = [int(v) for v in out.stdout.split() if v.isdigit()]
            if not values:
                raise NetbedError(f"--cluster: {server}: cannot find the MTU towards the other servers")
            lowest = min(values + ([lowest] if lowest else []))
        return min(ETHERNET_MTU, lowest - VXLAN_OVERHEAD)

    def _build(self) -> None:
        try:
            if self.custom is None:
                self.net = build_cluster_network(self)
            else:
                self._build_custom()
        except (NetbedError, KeyboardInterrupt):
            raise
        except Exception as exc:  # a server refused a step (Mininet raises plain Exceptions)
            raise NetbedError(f"--cluster: the build failed: {exc}") from exc
        self.placement = {n.name: n.server for n in self.net.hosts + self.net.switches}

    def _build_custom(self) -> None:
        """As CustomTestbed.start, over the servers: IPv6 off through each node's shell (no local
        namespace descriptors here), then the running network read back."""
        topo, label = self.custom.topo, self.custom.label
        stp = has_switch_loop(topo)
        self.net = build_custom_cluster_network(self, topo, stp, self.ipv6)
        if stp:
            wait_spanning_tree(self.net, label)
        if not self.ipv6:
            for node in self.net.hosts + self.net.switches:
                node.cmd("sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")
        self.placement = {n.name: n.server for n in self.net.hosts + self.net.switches}
        self.topology = read_topology(self, topo, label, stp)

    def stop(self) -> None:
        began = time.monotonic()
        for proc in self._procs:
            _terminate(proc)
        self._procs.clear()
        if self.net is not None:
            try:
                self.net.stop()
            finally:
                self.net = None
        for shell in self.root_shells.values():
            shell.terminate()
        self.root_shells.clear()
        if self.shell_pool is not None:
            self.shell_pool.shutdown(wait=True)
            self.shell_pool = None
        if self.connections is not None:
            self.cleanup_servers()
            self.connections.stop()
            self.connections = None
        if self.vnis is not None:
            self.vnis.release()
            self.vnis = None
        (STATE_DIR / f"{self.run_id}.cluster").unlink(missing_ok=True)
        self.timings.stop = time.monotonic() - began

    def add_planned_routes(self, plan) -> None:
        """As Testbed's, with each node's addresses and routes in one command line of its open shell
        (one round trip per node, where `run` would open an ssh session per route)."""
        for name, node_plan in plan.nodes.items():
            steps = [f"ip -6 addr add {address} dev {intf} nodad" for intf, address in node_plan.addresses
                     if address.version == 6]
            steps += [f"ip {'-6 ' if ':' in gateway else ''}route add {destination or 'default'} via {gateway}"
                      for destination, gateway in node_plan.routes]
            if steps:
                out = self[name].cmd(" && ".join(steps) + " && echo planned-ok")
                if "planned-ok" not in out:
                    raise NetbedError(f"{name}: cannot add its planned addresses and routes: {out.strip()[-200:]}")

    def lost_servers(self) -> list[tuple[str, str]]:
        """The servers that no longer answer over ssh (their sshd, or the machine, died), with ssh's why."""
        lost = []
        for server in self.cluster.servers if self.connections is not None else []:
            try:
                out = self.connections.run(server, "true", timeout=CONNECT_TIMEOUT * 3)
            except subprocess.TimeoutExpired:
                lost.append((server, f"no answer in {CONNECT_TIMEOUT * 3} s"))
                continue
            if out.returncode == 255:
                lost.append((server, (out.stderr.strip().splitlines() or ["ssh failed"])[-1]))
        return lost

    def check_servers(self) -> None:
        """Raise, naming the server, if one died mid-run: what the run saw cannot be trusted, and teardown
        (on leaving the testbed) cleans the servers that are left."""
        lost = self.lost_servers()
        if lost:
            server, why = lost[0]
            more = f" (and {', '.join(s for s, _ in lost[1:])})" if len(lost) > 1 else ""
            raise NetbedError(f"--cluster: server {server}{more} stopped answering mid-run (ssh: {why})")

    def cleanup_servers(self) -> list[str]:
        """On every server: kill what this run marked, delete its stray tunnels; the unreachable ones."""
        failed = []
        for server in self.cluster.servers:
            try:
                out = self.connections.run(server, remote_cleanup_script(self.run_id))
                if out.returncode == 255:
                    failed.append(server)
            except subprocess.TimeoutExpired:
                failed.append(server)
        return failed

    # -- processes on servers ---------------------------------------------------------------------
    def popen(self, node: str, argv: list[str], **kwargs) -> subprocess.Popen:
        """Start argv in `node` on its server; its signals are sent there (ssh forwards none).

        The remote shell prints the process's pid (in the server's PID namespace) before exec'ing
        argv; `send_signal`, `terminate` and `kill` then run `kill` on that server.
        """
        kwargs.setdefault("stdout", subprocess.PIPE)
        if kwargs["stdout"] != subprocess.PIPE:
            return super().popen(node, argv, **kwargs)
        proc = super().popen(node, ["sh", "-c", 'echo "$$"; exec "$@"', "sh", *argv], **kwargs)
        first = _read_line(proc.stdout.fileno())  # byte by byte: nothing of argv's output is buffered here
        if not first.strip().isdigit():
            return proc  # the remote side failed to start: the caller sees the exit status
        return self._signalled_there(proc, self[node].server, int(first))

    def _signalled_there(self, proc: subprocess.Popen, server: str, pid: int) -> subprocess.Popen:
        """`send_signal`, `terminate` and `kill` of a local ssh that runs `pid` on `server`, sent there."""
        local_pid = proc.pid

        def send_signal(sig: int) -> None:
            if proc.poll() is None and self.connections is not None:
                # mnexec -d / setsid made it a process group leader: signal its whole group, as killpg does
                self.connections.run(server, f"sudo -n kill -{int(sig)} -- -{pid}")
            elif proc.poll() is None:
                os.kill(local_pid, sig)

        proc.send_signal = send_signal
        proc.netbed_remote = True  # a local killpg would only stop ssh: callers signal through send_signal
        proc.terminate = lambda: send_signal(signal.SIGTERM)
        proc.kill = lambda: send_signal(signal.SIGKILL)
        return proc

    def server_popen(self, server: str, argv: list[str], **kwargs) -> subprocess.Popen:
        """Start argv as root in `server`'s own (root) namespaces, marked with the run; its first line of
        output is read here (its pid there), the rest is the caller's. Used for the kernel state tracer."""
        script = (f"sudo -n env {MARK}={self.run_id} setsid -w sh -c 'echo $$; exec \"$@\"' sh "
                  + " ".join(shlex.quote(a) for a in argv))
        proc = subprocess.Popen(self.connections.base + ["-o", f"ControlPath={self.connections.path()}", "-n",
                                                         self.connections.dest(server), script],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, **kwargs)
        first = _read_line(proc.stdout.fileno())
        if not first.strip().isdigit():
            return proc
        return self._signalled_there(proc, server, int(first))

    def server_run(self, server: str, argv: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess:
        """argv as root on `server` (its own namespaces), to completion."""
        return self.connections.run(server, "sudo -n " + " ".join(shlex.quote(a) for a in argv), timeout=timeout)

    # -- what the single-machine Testbed does through namespace descriptors, here over ssh --------
    def netns_inode(self, name: str) -> int:
        return int(self.run(name, ["stat", "-L", "-c", "%i", "/proc/self/ns/net"]).stdout)

    def namespace_fds(self, names: list[str]) -> dict[str, int]:
        raise NetbedError("a cluster run has no local namespace descriptors (the ss sampler needs them)")

    def read_sysctl(self, node: str, key: str) -> str:
        return " ".join(self.run(node, ["sysctl", "-n", key]).stdout.split())

    def send_local_frame(self, node: str, interface: str, payload: bytes, ethertype: int = 0x88B5) -> None:
        script = ("import socket,sys\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind((sys.argv[1],0))\n"
                  "m=s.getsockname()[4]\ns.send(m+m+int(sys.argv[3]).to_bytes(2,'big')+bytes.fromhex(sys.argv[2]))")
        self.run(node, ["python3", "-c", script, interface, payload.hex(), str(ethertype)])

    def server_of(self, node: str) -> str:
        return self.placement[node]


def _read_line(fd: int) -> str:
    data = b""
    while not data.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            break
        data += byte
    return data.decode(errors="replace")


def reclaim_remote(run_id: str) -> list[str]:
    """After a dead run: kill its marked processes and stray tunnels on every server it used."""
    path = STATE_DIR / f"{run_id}.cluster"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    spec = ClusterSpec(data["servers"], user=data["user"], ssh_options=data["ssh_options"])
    conns = Connections(spec, run_id)
    base = conns.base
    for server in spec.servers:
        subprocess.run(base + ["-n", conns.dest(server), remote_cleanup_script(run_id)], capture_output=True,
                       timeout=30)
    for sock in conns.folder.glob("*"):
        sock.unlink(missing_ok=True)
    if conns.folder.exists():
        conns.folder.rmdir()
    vni = STATE_DIR / "vni"
    for block in vni.glob("*") if vni.exists() else []:
        if block.read_text().strip() == run_id:
            block.unlink(missing_ok=True)
    path.unlink()
    return spec.servers


def reclaim_dead_remote() -> list[tuple[str, list[str]]]:
    """`netbed clean`: for every cluster run whose owner is gone, reclaim what it left on its servers."""
    from netbed import runstate

    done = []
    for path in sorted(STATE_DIR.glob("*.cluster")) if STATE_DIR.is_dir() else []:
        run_id = path.stem
        record = STATE_DIR / f"{run_id}.json"
        try:
            if record.exists() and runstate.load(record).alive():
                continue
        except (OSError, ValueError, KeyError):
            pass
        done.append((run_id, reclaim_remote(run_id)))
    return done
