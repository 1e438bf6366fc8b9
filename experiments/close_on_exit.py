"""进程终止…所有打开的描述符都被关闭 — a killed process still closes with a FIN."""
from __future__ import annotations

from netbed.expect import FOUR_WAY_CLOSE, Expect, closing_segments
from netbed.experiment import Evidence, Lab

NAME = "close-on-exit"
ORDER = 50
CLAIM = ("当一个Unix进程无论自愿地(调用exit或从main函数返回)还是非自愿地(收到一个终止本进程的信号)终止时,"
         "所有打开的描述符都被关闭,这也导致仍然打开的任何TCP连接上也发出一个FIN")
FORCING = ("the server sets TCP_QUICKACK and waits 0.2 s before its close(), so its ACK and its FIN leave as "
           "two segments: the four-segment close on every run.")
GLOSS = ("SIGKILL the client with nothing unread: the kernel closes its socket and sends a FIN, not a RST. "
         "Forced: the server acknowledges at once (TCP_QUICKACK) and pauses 0.2 s before it closes (four segments).")
TOPOLOGIES = ("lan", "multi-lan", "wan")


def run(lab: Lab) -> None:
    server = lab.server(["recv-eof", "quickack", "sleep:0.2", "close"])
    client = lab.client(server, ["send:1000", "sleep:0.1", "kill"])
    lab.wait(client, server)


def check(ev: Evidence, expect: Expect) -> None:
    client = ev.program("client")
    expect.equal("the client process died of SIGKILL", -9, client["exit"])
    expect.that("it never called close()", not any(e["event"] == "close" for e in client["events"]),
                ", ".join(e["event"] for e in client["events"]))
    conn = ev.found(expect, "client")
    if conn is None:
        return
    expect.ladder("the kernel sends FIN on exit, and the close completes", conn, closing_segments(conn), FOUR_WAY_CLOSE)
    expect.equal("no RST", 0, sum(1 for s in conn.segments if s.rst))
    expect.equal("close initiator", "client", conn.close_initiator)
