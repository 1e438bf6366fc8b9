"""端口…唯一标识一台计算机上的某个应用程序 — no application on the port: the SYN is refused."""
from __future__ import annotations

from netbed.expect import Expect
from netbed.experiment import Evidence, Lab

NAME = "refused"
ORDER = 80
CLAIM = "端口:用来唯一标识一台计算机上的某个应用程序; ip+port:唯一标识接入互联网一台计算机上的某个应用程序"
NETBED = "a SYN to a port where no application listens is answered by RST/ACK: connect() fails with ECONNREFUSED."
GLOSS = "A port names an application: a SYN to a port where nothing listens is answered by RST/ACK."
TOPOLOGIES = ("lan", "multi-lan", "wan")
PORT = 9999


def run(lab: Lab) -> None:
    client = lab.client(None, ["send:10"], to=(lab.ip(lab.server_host), PORT))
    lab.wait(client)


def check(ev: Evidence, expect: Expect) -> None:
    client = ev.program("client")
    expect.equal("connect() fails with connection refused", "ECONNREFUSED", client["error"])
    trace = ev.trace("client")
    conns = [c for c in trace.connections if c.server.port == PORT]
    if not expect.equal("one attempt in the capture", 1, len(conns)):
        return
    conn = conns[0]
    expect.ladder("SYN answered by RST/ACK", conn, conn.segments, [
        "client > S  seq=x len=0",
        "server > R. seq=0 ack=x+1 len=0",
    ])
    expect.equal("handshake", "refused", conn.handshake)
    expect.equal("close kind", "reset", conn.close_kind)
