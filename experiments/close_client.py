"""四次挥手 — the client closes first: FIN, ACK, FIN, ACK, and the data arrives intact."""
from __future__ import annotations

from netbed.expect import Expect, closing_segments, states_of
from netbed.experiment import Evidence, Lab

NAME = "close-client"
ORDER = 20
CLAIM = ("某个应用进程首先调用close,称该端执行“主动关闭”(active close)。该端的TCP于是发送一个FIN分节…"
         "接收到这个FIN的对端执行 “被动关闭”(passive close),这个FIN由TCP确认…一段时间后,接收到这个文件结束符的"
         "应用进程将调用close关闭它的套接字。这导致它的TCP也发送一个FIN…接收这个最终FIN的原发送端TCP(即执行主动关闭的"
         "那一端)确认这个FIN…无论是客户还是服务器,任何一端都可以执行主动关闭。通常情况是,客户执行主动关闭")
FORCING = ("the server sets TCP_QUICKACK and waits 0.2 s before its close(), so its ACK and its FIN leave as "
           "two segments: without the pause they often merge into one (see close-merged).")
GLOSS = ("The client closes first; four segments close the connection: FIN, ACK, FIN, ACK. Forced: the server "
         "acknowledges at once (TCP_QUICKACK) and closes 0.2 s later, so the close is four segments on every run.")
TOPOLOGIES = ("lan", "multi-lan", "wan")
DATA = 20000


def run(lab: Lab) -> None:
    # The server acknowledges the client's FIN at once (TCP_QUICKACK) and closes only 0.2 s later,
    # so its ACK and its FIN leave as two segments: a four-way close on every run.
    server = lab.server(["recv-eof", "quickack", "sleep:0.2", "close"])
    client = lab.client(server, [f"send:{DATA}", "close"])
    lab.wait(client, server)


def check(ev: Evidence, expect: Expect) -> None:
    client, server = ev.program("client"), ev.program("server")
    conn = ev.found(expect, "client")
    if conn is None:
        return
    expect.ladder("four segments close it: FIN, ACK, FIN, ACK", conn, closing_segments(conn), [
        "client > F. seq=f len=0",
        "server > .  ack=f+1 len=0",
        "server > F. seq=g",
        "client > .  seq=f+1 ack=g+1 len=0",
    ])
    expect.equal("close kind", "four-way", conn.close_kind)
    expect.equal("close initiator", "client", conn.close_initiator)
    expect.equal("bytes the client sent (trace)", DATA, conn.bytes_client)
    expect.equal("the client's data arrives intact (SHA-256)", client["sent_sha256"], server["received_sha256"])
    expect.equal("bytes the server received", DATA, server["received"])
    expect.equal("client states: active close ends in TIME_WAIT",
                 ["SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"],
                 states_of(ev, "client"))
    expect.equal("server states: passive close through CLOSE_WAIT and LAST_ACK",
                 ["SYN_RECEIVED", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED"],
                 states_of(ev, "server"))

