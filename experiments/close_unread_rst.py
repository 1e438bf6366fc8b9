"""RST instead of FIN — close() with unread data in the receive queue resets the connection."""
from __future__ import annotations

from netbed.expect import Expect, closing_segments
from netbed.experiment import Evidence, Lab

NAME = "close-unread-rst"
ORDER = 60
CLAIM = "TCP协议传输数据之所以可靠地原因在于反馈机制"
NETBED = ("close() with unread data in the receive queue sends RST, not FIN (RFC 2525, Linux): the feedback "
          "tells the peer that data it sent was never read.")
FORCING = "the client sleeps 0.3 s before close(), so the server's 1,000 bytes have surely arrived unread."
GLOSS = ("close() with unread data in the receive queue sends RST, not FIN: the peer learns its data was lost. "
         "Forced: the client waits 0.3 s so the data is in its queue when it closes.")
TOPOLOGIES = ("lan", "multi-lan", "wan")


def run(lab: Lab) -> None:
    server = lab.server(["send:1000", "recv-eof", "close"])
    # the client waits until the 1000 bytes have surely arrived, never reads them, and closes
    client = lab.client(server, ["sleep:0.3", "close"])
    lab.wait(client, server)


def check(ev: Evidence, expect: Expect) -> None:
    server = ev.program("server")
    conn = ev.found(expect, "client")
    if conn is None:
        return
    expect.ladder("the client's close is a single RST", conn, closing_segments(conn)[:1], ["client > R. len=0"])
    expect.equal("the client sends no FIN", 0, sum(1 for s in conn.segments if s.fin and conn.side(s) == "client"))
    expect.equal("close kind", "reset", conn.close_kind)
    expect.equal("close initiator", "client", conn.close_initiator)
    expect.equal("the server is told: connection reset by peer", "ECONNRESET", server["error"])
