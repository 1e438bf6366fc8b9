"""TCP/UDP都是基于端口工作的协议 — UDP sends datagrams with no handshake, no close, no connection state."""
from __future__ import annotations

from netbed.expect import Expect
from netbed.experiment import Evidence, Lab

NAME = "udp-no-handshake"
ORDER = 130
CLAIM = "TCP/UDP都是基于端口工作的协议; 基于TCP协议通信,必须建立双向通道 (UDP 不需要)"
GLOSS = "UDP datagrams are exchanged on ports with no SYN, no FIN and no connection state in the kernel."
TOPOLOGIES = ("lan", "multi-lan", "wan")
SIZE = 512


def run(lab: Lab) -> None:
    server = lab.server([f"recv:{SIZE}", f"send:{SIZE}"], udp=True)
    client = lab.client(server, [f"send:{SIZE}", f"recv:{SIZE}", "close"], udp=True)
    lab.wait(client, server)


def check(ev: Evidence, expect: Expect) -> None:
    client, server = ev.program("client"), ev.program("server")
    expect.equal("the datagram arrives intact", client["sent_sha256"], server["received_sha256"])
    expect.equal("the answer arrives intact", server["sent_sha256"], client["received_sha256"])
    trace = ev.trace("client")
    port = server["local"][1]
    datagrams = [d for d in trace.udp_datagrams() if port in (d.src.port, d.dst.port)]
    expect.equal("two datagrams on the wire, one each way, each carrying the payload",
                 [("client", SIZE), ("server", SIZE)],
                 [("client" if d.dst.port == port else "server", d.length) for d in datagrams])
    expect.equal("no TCP segment at all: no SYN, no FIN", 0, len(trace.connections))
    facts = ev.facts.get("states") or {}
    if facts.get("source") == "bpftrace":
        events = ev.state_changes()
        ours = {int(ino) for ino, node in ev.facts["netns"].items()
                if node in (ev.facts["client_host"], ev.facts["server_host"])}
        expect.equal("no TCP state change in either host", [], [f"{e.old}->{e.new}" for e in events if e.netns in ours])
    else:
        expect.that("kernel state tracing was available", False, facts.get("error") or "no state source")
