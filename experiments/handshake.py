"""三次握手 — the three-way handshake, checked on real segments at both ends of the path."""
from __future__ import annotations

from netbed.expect import THREE_WAY_HANDSHAKE, Expect
from netbed.experiment import Evidence, Lab

NAME = "handshake"
ORDER = 10
CLAIM = ("客户端发送SYN(SEQ=x)报文给服务器端,进入SYN_SEND状态; 服务器端收到SYN报文,回应一个SYN(SEQ=y)"
         "ACK(ACK=x+1)报文,进入SYN_RECV状态; 客户端收到服务器端的SYN报文,客户端进入Established状态,回应一个"
         "ACK(ACK=y+1)报文,服务端也进入Established状态")
NETBED = ("the kernel names the lecture's SYN_SEND and SYN_RECV states SYN_SENT and SYN_RECV (SYN_RECEIVED here); "
          "Linux makes the server's connected socket only when the final ACK arrives, so its SYN_RECEIVED and "
          "ESTABLISHED both follow that ACK.")
GLOSS = ("Three segments open a connection: SYN seq=x; SYN-ACK seq=y ack=x+1; ACK ack=y+1. The client goes "
         "SYN_SENT → ESTABLISHED when the SYN-ACK arrives, the server SYN_RECEIVED → ESTABLISHED when the ACK does.")
TOPOLOGIES = ("lan", "multi-lan", "wan")
CAUSE = {"client": ("SYN-ACK", 1), "server": ("ACK", 2)}  # the handshake segment each side's ESTABLISHED follows
FIRST_STATES = {"client": ["SYN_SENT", "ESTABLISHED"], "server": ["SYN_RECEIVED", "ESTABLISHED"]}


def run(lab: Lab) -> None:
    server = lab.server(["recv-eof", "close"])
    client = lab.client(server, ["send:100", "close"])
    lab.wait(client, server)


def check(ev: Evidence, expect: Expect) -> None:
    conns = {}
    for point in ("client", "server"):
        conn = ev.found(expect, point)
        if conn is None:
            continue
        conns[point] = conn
        expect.ladder(f"three segments open it ({point} side)", conn, conn.segments[:3], THREE_WAY_HANDSHAKE)
        expect.equal(f"handshake ({point} side)", "complete", conn.handshake)
    if len(conns) < 2:
        return
    ports = {point: (c.client.port, c.server.port) for point, c in conns.items()}
    expect.equal("the same two ports in both captures (client port, server port)", ports["client"], ports["server"])
    low, high = ev.facts["ip_local_port_range"]
    expect.within("the client's port, as captured, is ephemeral (ip_local_port_range)", ports["client"][0], low, high)
    expect.equal("the server's port, as captured at both ends, is the one its socket is bound to",
                 (ev.program("server")["local"][1],) * 2, (ports["client"][1], ports["server"][1]))
    source = (ev.facts.get("states") or {}).get("source")
    if not expect.equal("kernel states traced as they happened (bpftrace)", "bpftrace", source):
        return
    for side, conn in conns.items():
        states = ev.states(side)
        expect.equal(f"{side} states: {' → '.join(FIRST_STATES[side])}", FIRST_STATES[side],
                     [s["state"] for s in states[:2]])
        established = next((s["time"] for s in states if s["state"] == "ESTABLISHED"), None)
        what, index = CAUSE[side]
        if established is None or len(conn.segments) <= index:
            continue
        cause = conn.segments[index].time
        expect.that(f"the {side} is ESTABLISHED after the {what} reaches it ({side}-side capture)",
                    established >= cause, f"{what} at {cause:.6f}, ESTABLISHED at {established:.6f} "
                                           f"({(established - cause) * 1e6:+.0f} µs)")
