"""半关闭 (half-close) — after the client's FIN the server keeps sending, and every byte arrives."""
from __future__ import annotations

from netbed.expect import Expect, closing_segments
from netbed.experiment import Evidence, Lab

NAME = "half-close"
ORDER = 40
CLAIM = "在步骤2与步骤3之间,从执行被动关闭一端到执行主动关闭一端流动数据是可能的,这称为“半关闭”(half-close)"
GLOSS = "shutdown(SHUT_WR) sends a FIN but keeps receiving: the server sends 200 KB after it, all of it arrives."
TOPOLOGIES = ("lan", "multi-lan", "wan")
REQUEST = 1000
REPLY = 200_000


def run(lab: Lab) -> None:
    server = lab.server(["recv-eof", f"send:{REPLY}", "close"])
    client = lab.client(server, [f"send:{REQUEST}", "shutdown-wr", "recv-eof", "close"])
    lab.wait(client, server)


def check(ev: Evidence, expect: Expect) -> None:
    client, server = ev.program("client"), ev.program("server")
    conn = ev.found(expect, "client")
    if conn is None:
        return
    expect.equal("close initiator (the client's shutdown)", "client", conn.close_initiator)
    expect.equal("close kind: the ACK of the client's FIN is not the server's FIN", "four-way", conn.close_kind)
    expect.equal("half_close_bytes: what the server sent after the client's FIN", REPLY, conn.half_close_bytes)
    closing = closing_segments(conn)
    expect.ladder("the client's FIN comes first", conn, closing[:1], ["client > F. len=0"])
    data_after = sum(s.payload_len for s in closing if conn.side(s) == "server")
    expect.that("data flows from the passive side after the FIN", data_after >= REPLY,
                f"{data_after} payload bytes from the server after the client's FIN")
    expect.equal("every byte arrives (SHA-256 of what the server sent and the client read)",
                 server["sent_sha256"], client["received_sha256"])
    expect.equal("bytes the client read after its FIN", REPLY, client["received"])
