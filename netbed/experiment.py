"""Experiments: what a lecture claim needs to run (Lab) and what it checks afterwards (Evidence).

An experiment is a small module in `experiments/` with NAME, CLAIM (the lecture's words, verbatim),
GLOSS (a short English gloss), TOPOLOGIES, `run(lab)` and `check(evidence, expect)`, and where they
apply NETBED (what netbed shows beyond the lecture, in its own words: never inside the lecture's
quotation marks) and FORCING (what the run does to make the outcome certain on every run). `run` starts real
programs in the emulated hosts while every capture point records; `check` reads only what was
saved — pcaps and program reports — so `netbed check RUN_DIR` re-runs it offline, unchanged.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from netbed import programs
from netbed.capture import Capture
from netbed.errors import NetbedError
from netbed.network import Testbed
from netbed.pace import budget_text, patience
from netbed.programs import Program
from netbed.trace import Trace, kernel_states, kernel_tcp, read_trace
from netbed.trace.payload import tcp_payloads

DEFAULT_PORT = 9000  # the lecture: "建议:使用8000之后的端口"
EVIDENCE = "evidence.json"

# Lab.hold's token bucket and Lab.drain's ping, tied together: the bucket starts full with HOLD_BURST
# bytes of tokens and gets HOLD_RATE_BITS / 8 bytes back per second; one ping frame of DRAIN_FRAME bytes
# leaves exactly HOLD_SECONDS of refill short of the smallest FIN frame, so a FIN queued after the
# ping stays queued at least HOLD_SECONDS (plenty for `release` to come first).
HOLD_BURST = 200  # bytes of tokens in the full bucket (the first 200 bytes pass)
HOLD_RATE_BITS = 8  # bit/s: one byte of tokens back per second
HOLD_LIMIT = 100_000  # bytes the held queue may keep
FIN_FRAME = 14 + 20 + 20 + 12  # Ethernet + IPv4 + TCP + timestamps option (Linux's default)
HOLD_SECONDS = 8
PING_HEADERS = 14 + 20 + 8  # Ethernet + IPv4 + ICMP echo
DRAIN_FRAME = HOLD_BURST - (FIN_FRAME - HOLD_SECONDS * HOLD_RATE_BITS // 8)  # 142 bytes
DRAIN_PING_DATA = DRAIN_FRAME - PING_HEADERS  # `ping -s 100`


@dataclass(frozen=True)
class Experiment:
    name: str
    claim: str
    gloss: str
    topologies: tuple[str, ...]
    module: ModuleType
    netbed: str = ""  # netbed's own statement beyond the lecture ("" when the claim is all lecture)
    forcing: str = ""  # what the run forces so the verdict is the same on every run ("" when nothing)

    def run(self, lab: Lab) -> None:
        self.module.run(lab)

    def check(self, evidence: Evidence, expect) -> None:
        self.module.check(evidence, expect)

    def to_json(self) -> dict:
        return {"name": self.name, "claim": self.claim, "netbed": self.netbed, "forcing": self.forcing,
                "gloss": self.gloss, "topologies": list(self.topologies)}


def catalog() -> list[Experiment]:
    """Every experiment in `experiments/`, in the lecture's order (their ORDER number)."""
    import experiments

    found = []
    for info in pkgutil.iter_modules(experiments.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"experiments.{info.name}")
        found.append((getattr(mod, "ORDER", 999), Experiment(mod.NAME, mod.CLAIM, mod.GLOSS, tuple(mod.TOPOLOGIES),
                                                             mod, getattr(mod, "NETBED", ""),
                                                             getattr(mod, "FORCING", ""))))
    return [exp for _, exp in sorted(found, key=lambda item: (item[0], item[1].name))]


def get(name: str) -> Experiment:
    exps = catalog()
    for exp in exps:
        if exp.name == name:
            return exp
    raise NetbedError(f"unknown experiment {name!r}: choose one of {', '.join(e.name for e in exps)}")


class Lab:
    """What an experiment's `run` sees: the testbed, the chosen client and server hosts, helpers
    to start programs, and a notebook of facts that `check` will need."""

    def __init__(self, tb: Testbed, out: Path, client_host: str, server_host: str) -> None:
        self.tb = tb
        self.out = out
        self.client_host = client_host
        self.server_host = server_host
        self.programs: dict[str, Program] = {}
        self.facts: dict = {}

    def ip(self, host: str) -> str:
        return self.tb.spec(host).ip

    def ip6(self, host: str) -> str:
        return self.tb.spec(host).interfaces[0].ip6

    def server(self, actions: list[str], *, host: str | None = None, port: int = DEFAULT_PORT,
               name: str = "server", udp: bool = False, bind: str | None = None,
               reuseport: bool = False) -> Program:
        prog = programs.start_server(self.tb, host or self.server_host, port, actions, name=name, udp=udp,
                                     bind=bind, reuseport=reuseport)
        self.programs[name] = prog
        return prog

    def client(self, server: Program | None, actions: list[str], *, host: str | None = None,
               name: str = "client", udp: bool = False, to: tuple[str, int] | None = None,
               bind: str | None = None, reuseaddr: bool = False) -> Program:
        """peer.py as a client of `server` (or of the address `to`, where nothing may listen)."""
        ip, port = to if to is not None else (self.ip(server.node), server.port)
        prog = programs.start_client(self.tb, host or self.client_host, ip, port, actions, name=name, udp=udp,
                                     bind=bind, reuseaddr=reuseaddr)
        self.programs[name] = prog
        return prog

    def start(self, name: str, argv: list[str], *, host: str, port: int | None = None,
              daemon: bool = False) -> Program:
        """Any real program in a host (python3 -m http.server, curl, …)."""
        prog = programs.start(self.tb, host, argv, name=name, port=port, daemon=daemon)
        self.programs[name] = prog
        return prog

    def try_bind(self, name: str, host: str, ip: str, port: int, reuseaddr: bool = False,
                 reuseport: bool = False) -> dict:
        prog = programs.try_bind(self.tb, host, ip, port, name=name, reuseaddr=reuseaddr, reuseport=reuseport)
        self.programs[name] = prog
        return prog.report()

    def wait(self, *progs: Program, timeout: float = 30.0) -> None:
        for prog in progs:
            prog.report(timeout=timeout)

    def run(self, host: str, argv: list[str], check: bool = True):
        """Run a command to completion in a host (ip route, iptables, ss, sysctl …)."""
        return self.tb.run(host, argv, check=check)

    def signal_path(self, name: str) -> str:
        """A file programs wait for (action wait-file:PATH) until `signal(name)` creates it."""
        return str(self.out / f".signal-{name}")

    def signal(self, name: str) -> None:
        """Let programs waiting on `name` go on."""
        (self.out / f".signal-{name}").touch()

    def hold(self, host: str) -> None:
        """Hold the host's outgoing packets in its queue: a token bucket of HOLD_BURST bytes at HOLD_RATE_BITS.

        The kernel has no netem or plug qdisc here; a token bucket that is nearly empty keeps
        packets queued, in order, until `release` refills it. The bucket starts full: `drain`
        empties it with one ping, after which every TCP segment waits.
        """
        intf = self.tb.spec(host).interfaces[0].name
        self.run(host, ["tc", "qdisc", "add", "dev", intf, "root", "tbf", "rate", f"{HOLD_RATE_BITS}bit",
                        "burst", str(HOLD_BURST), "limit", str(HOLD_LIMIT)])

    def drain(self, host: str, peer: str) -> None:
        """Empty the held buckets of `host` and `peer` with one ping: the request leaves `host`, the reply `peer`.

        Each frame is DRAIN_FRAME bytes, so HOLD_BURST - DRAIN_FRAME tokens stay: too few for any
        TCP segment (a FIN with timestamps is FIN_FRAME bytes) for HOLD_SECONDS of refill.
        """
        self.run(host, ["ping", "-n", "-q", "-c", "1", "-W", "1", "-s", str(DRAIN_PING_DATA), self.ip(peer)])

    def release(self, host: str) -> None:
        """Send what `hold` kept, in order, now."""
        intf = self.tb.spec(host).interfaces[0].name
        self.run(host, ["tc", "qdisc", "change", "dev", intf, "root", "tbf", "rate", "10gbit", "burst", "200000",
                        "limit", str(HOLD_LIMIT)])
        # changing the rate does not wake the queue: one more frame makes it send what it holds
        self.tb.send_local_frame(host, intf, b"netbed: release the held queue")

    def sockets(self, host: str, state: str | None = None) -> list[str]:
        """`ss -tan` lines of a host, optionally only one state (ss's names: fin-wait-1, time-wait…)."""
        argv = ["ss", "-tanH"] + (["state", state] if state else [])
        return self.run(host, argv).stdout.splitlines()

    def wait_socket_state(self, host: str, state: str, port: int, timeout: float = 5.0) -> None:
        """Poll the kernel's socket table until a socket with `port` is in `state`."""
        deadline = time.monotonic() + patience(timeout)
        while time.monotonic() < deadline:
            if any(f":{port} " in line + " " for line in self.sockets(host, state)):
                return
            time.sleep(0.005)
        raise NetbedError(f"{host}: no socket on port {port} reached {state} in {budget_text(timeout)}")

    def read_sysctl(self, host: str, key: str) -> str:
        return self.tb.read_sysctl(host, key)


def capture_points(tb: Testbed, client: str, server: str, out: Path) -> list[Capture]:
    """Client side, server side, and each router on the path (its interface facing the client)."""
    topo = tb.topology
    path = topo.path(client, server)
    caps = []
    for name, point in ((client, "client"), (server, "server")):
        caps.append(Capture(point, name, topo.node(name).interfaces[0].name, out / f"{point}.pcap"))
    for prev, hop in zip(path, path[1:-1]):
        router = topo.node(hop)
        prev_segments = {i.segment for i in topo.node(prev).interfaces}
        intf = next(i for i in router.interfaces if i.segment in prev_segments)
        caps.append(Capture(hop, hop, intf.name, out / f"{hop}.pcap"))
    return caps


@dataclass
class Evidence:
    """Everything `check` may look at, loaded from a run folder."""

    directory: Path
    experiment: str
    topology: dict
    captures: list[dict]
    programs: dict[str, dict]
    facts: dict = field(default_factory=dict)
    _traces: dict = field(default_factory=dict, repr=False)  # parsed captures (and "events"), per run

    @classmethod
    def load(cls, directory: Path) -> Evidence:
        path = Path(directory) / EVIDENCE
        if not path.is_file():
            raise NetbedError(f"{directory} is not a netbed run folder (no {EVIDENCE})")
        data = json.loads(path.read_text())
        return cls(Path(directory), data["experiment"], data["topology"], data["captures"],
                   data["programs"], data.get("facts", {}))

    def save(self) -> None:
        data = {"experiment": self.experiment, "topology": self.topology, "captures": self.captures,
                "programs": self.programs, "facts": self.facts}
        (self.directory / EVIDENCE).write_text(json.dumps(data, indent=2) + "\n")

    def points(self) -> list[str]:
        return [c["point"] for c in self.captures]

    def routers(self) -> list[str]:
        return [p for p in self.points() if p not in ("client", "server")]

    def trace(self, point: str = "client") -> Trace:
        if point not in self._traces:
            cap = next((c for c in self.captures if c["point"] == point), None)
            if cap is None:
                raise NetbedError(f"no capture point {point!r} (have {', '.join(self.points())})")
            self._traces[point] = read_trace(self.directory / cap["file"])
        return self._traces[point]

    def payloads(self, point: str, segments: list) -> dict[int, bytes]:
        """The TCP payload bytes of these segments, as captured at `point`, by frame number."""
        self.trace(point)  # validates the point
        cap = next(c for c in self.captures if c["point"] == point)
        return tcp_payloads(self.directory / cap["file"], {s.frame for s in segments})

    def program(self, name: str) -> dict:
        try:
            return self.programs[name]
        except KeyError:
            raise NetbedError(f"no program {name!r} in this run") from None

    def state_changes(self) -> list:
        """Every TCP state change the run recorded (parsed once; [] without a state source)."""
        facts = self.facts.get("states") or {}
        if "events" not in self._traces and facts.get("file"):
            self._traces["events"] = kernel_states.parse_log((self.directory / facts["file"]).read_text(),
                                                             facts["clock_offset"])
        return self._traces.get("events", [])

    def states(self, side: str, client: str = "client") -> list[dict]:
        """Kernel TCP states of the main connection's socket on `side` ("client" or "server")."""
        facts = self.facts.get("states") or {}
        if facts.get("source") not in ("bpftrace", "ss") or "client" not in self.programs:
            return []
        conn = self.connection(side, client)
        if conn is None:
            return []
        host = self.facts[f"{side}_host"]
        netns = next((int(ino) for ino, node in self.facts["netns"].items() if node == host), None)
        local, remote = (conn.client, conn.server) if side == "client" else (conn.server, conn.client)
        history = kernel_states.socket_history(self.state_changes(), netns, local, remote)
        in_time_wait = kernel_states.listed_in_time_wait(self.facts.get("sockets_after", {}).get(host, []),
                                                         local, remote)
        peer_fins = [s.time for s in conn.segments if s.fin and conn.side(s) != side]
        return kernel_states.timeline(history, in_time_wait, peer_fins[-1] if peer_fins else None)

    def probes(self, side: str, client: str = "client", point: str | None = None) -> list:
        """The kernel's tcp_probe records (tcp_probe.csv) of the main connection's socket on `side`."""
        return self._kernel_records("probes", kernel_tcp.read_probes, side, client, point)

    def retransmits(self, side: str, client: str = "client", point: str | None = None) -> list:
        """The kernel's tcp_retransmit_skb records (tcp_retransmit.csv) of that socket."""
        return self._kernel_records("retransmits", kernel_tcp.read_retransmits, side, client, point)

    def _kernel_records(self, key: str, read, side: str, client: str, point: str | None) -> list:
        if key not in self._traces:
            self._traces[key] = read(self.directory)
        conn = self.connection(point or side, client)
        if conn is None:
            return []
        local, remote = (conn.client, conn.server) if side == "client" else (conn.server, conn.client)
        return kernel_tcp.of_socket(self._traces[key], self.facts[f"{side}_host"], local, remote)

    def found(self, expect, point: str = "client", client: str = "client"):
        """The client's connection at `point`, asserted to be there (None, after a failed assertion, if not)."""
        conn = self.connection(point, client)
        expect.that(f"the connection is in the {point}-side capture", conn is not None,
                    f"{len(self.trace(point).connections)} TCP connections captured there")
        return conn

    def connection(self, point: str = "client", client: str = "client"):
        """The connection the program `client` made, as seen at capture `point` (None if absent)."""
        report = self.program(client)
        if not report.get("local"):
            return None
        ip, port = report["local"]
        for conn in self.trace(point).connections:
            if conn.client.ip == ip and conn.client.port == port:
                return conn
        return None
