"""步骤1的FIN随数据一起发送 — the active closer's last data and its FIN leave in one segment."""
from __future__ import annotations

from netbed.expect import Expect, closing_segments
from netbed.experiment import Evidence, Lab

NAME = "fin-with-data"
ORDER = 28
CLAIM = "“通常”是指,某些情况下,步骤1的FIN随数据一起发送"
NETBED = ("The client's last 1,000 bytes and its FIN travel in one segment (flags FIN, PSH, ACK with a "
          "payload: tcpdump's `FP.`); the server reads all of it, then end-of-file, and the close completes.")
FORCING = ("The client corks its socket (TCP_CORK): what it writes waits in its kernel until close(), which "
           "sends the data and the FIN together. Without the cork the data usually leaves at once and the FIN "
           "follows in a segment of its own.")
GLOSS = ("The FIN can ride on data: the client's last write and its FIN leave as one segment, `FP.` with a payload. "
         "Forced: the client corks its socket (TCP_CORK) until close().")
TOPOLOGIES = ("lan", "multi-lan", "wan")
DATA = 1000


def run(lab: Lab) -> None:
    server = lab.server(["recv-eof", "quickack", "sleep:0.2", "close"])
    client = lab.client(server, ["cork", f"send:{DATA}", "close"])
    lab.wait(client, server)


def check(ev: Evidence, expect: Expect) -> None:
    client, server = ev.program("client"), ev.program("server")
    conn = ev.found(expect, "client")
    if conn is None:
        return
    closing = closing_segments(conn)
    expect.ladder("the client's FIN carries its data (FP. with a payload)", conn, closing[:1],
                  [f"client > FP. len={DATA}"])
    before = conn.segments[:len(conn.segments) - len(closing)]
    expect.equal("no client data travelled before the FIN", 0,
                 sum(s.payload_len for s in before if conn.side(s) == "client"))
    expect.ladder("one segment of data and FIN, then ACK, FIN, ACK", conn, closing, [
        f"client > FP. seq=f len={DATA}",
        f"server > .  ack=f+{DATA + 1} len=0",
        "server > F. seq=g",
        "client > .  ack=g+1 len=0",
    ])
    expect.equal("the server read every byte, then end-of-file (SHA-256)", (DATA, client["sent_sha256"]),
                 (server["received"], server["received_sha256"]))
    expect.equal("close initiator", "client", conn.close_initiator)
