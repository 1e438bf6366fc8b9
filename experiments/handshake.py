"""三次握手 — the three-way handshake, checked on real segments at both ends of the path."""
from __future__ import annotations

from netbed.expect import THREE_WAY_HANDSHAKE, Expect
from netbed.experiment import DEFAULT_PORT, Evidence, Lab

NAME = "handshake"
ORDER = 10
CLAIM = ("客户端发送SYN(SEQ=x)报文给服务器端,进入SYN_SEND状态; 服务器端收到SYN报文,回应一个SYN(SEQ=y)"
         "ACK(ACK=x+1)报文,进入SYN_RECV状态; 客户端收到服务器端的SYN报文,回应一个ACK(ACK=y+1)报文")
GLOSS = "Three segments open a connection: SYN seq=x; SYN-ACK seq=y ack=x+1; ACK ack=y+1."
TOPOLOGIES = ("lan", "multi-lan", "wan")


def run(lab: Lab) -> None:
    server = lab.server(["recv-eof", "close"])
    client = lab.client(server, ["send:100", "close"])
    lab.wait(client, server)


def check(ev: Evidence, expect: Expect) -> None:
    client = ev.program("client")
    for point in ("client", "server"):
        conn = ev.found(expect, point)
        if conn is None:
            continue
        expect.ladder(f"three segments open it ({point} side)", conn, conn.segments[:3], THREE_WAY_HANDSHAKE)
        expect.equal(f"handshake ({point} side)", "complete", conn.handshake)
    low, high = ev.facts["ip_local_port_range"]
    port = client["local"][1]
    expect.within("the client's port is ephemeral (ip_local_port_range)", port, low, high)
    expect.equal("the server's port is the one it listens on", DEFAULT_PORT, client["peer"][1])
