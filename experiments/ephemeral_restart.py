"""端口号是动态分配的 — the same client, started twice, gets two ports from the kernel's ephemeral range."""
from __future__ import annotations

from netbed.expect import Expect
from netbed.experiment import DEFAULT_PORT, Evidence, Lab

NAME = "ephemeral-restart"
ORDER = 95
CLAIM = "端口号是动态分配的; 第一次启动qq分配到的是8989; 将qq关闭再次启动端口号可能就变了"
NETBED = ("The same client program, with the same arguments, is started, ends, and is started again; it never "
          "binds a port, so the kernel chooses one on connect(). The two runs get two different ports, both from "
          "the kernel's ephemeral range (net.ipv4.ip_local_port_range, read in the client's host), as the SYNs in "
          "the capture show. The server's port stays the one it listens on.")
GLOSS = ("A client restarted gets another port: the kernel picks an ephemeral port from ip_local_port_range on "
         "each connect(), so two runs of the same program show two ports on the wire.")
TOPOLOGIES = ("lan", "multi-lan", "wan")
RUNS = ("first-start", "restart")


def run(lab: Lab) -> None:
    for name in RUNS:
        # the server closes first, so the client leaves no TIME_WAIT behind that could steer the choice
        server = lab.server(["recv:10", "send:10", "close"], name=f"server-{name}")
        lab.wait(lab.client(server, ["send:10", "recv-eof", "close"], name=name), server)
    lab.facts["ephemeral_range_in_client_host"] = lab.read_sysctl(lab.client_host, "net.ipv4.ip_local_port_range")


def check(ev: Evidence, expect: Expect) -> None:
    low, high = (int(v) for v in ev.facts["ephemeral_range_in_client_host"].split())
    syns = {}
    for name in RUNS:
        conn = ev.found(expect, "client", client=name)
        if conn is None:
            return
        expect.equal(f"{name}: handshake", "complete", conn.handshake)
        syns[name] = conn.segments[0]
    ports = [syns[name].src.port for name in RUNS]
    expect.equal("the programs report the ports their SYNs came from", ports, [ev.program(n)["local"][1] for n in RUNS])
    expect.that("the restarted client got another port", ports[0] != ports[1], f"first start {ports[0]}, restart {ports[1]}")
    expect.that(f"both ports come from the kernel's range ip_local_port_range = {low}-{high}",
                all(low <= p <= high for p in ports), f"{ports} within [{low}, {high}]")
    expect.equal("the server's port is the same both times: the one it listens on", [DEFAULT_PORT] * 2,
                 [syns[name].dst.port for name in RUNS])
