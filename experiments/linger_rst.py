"""SO_LINGER with timeout 0 — close() aborts with RST and skips TIME_WAIT."""
from __future__ import annotations

from netbed.expect import Expect, closing_segments, states_of
from netbed.experiment import Evidence, Lab

NAME = "linger-rst"
ORDER = 70
CLAIM = "某个应用进程首先调用close,称该端执行“主动关闭”(active close)"
NETBED = ("with SO_LINGER on and a zero timeout, the active close is an abort: close() sends RST, not FIN, and "
          "the socket skips TIME_WAIT.")
GLOSS = "With SO_LINGER on and a zero timeout, close() sends RST instead of FIN and the socket skips TIME_WAIT."
TOPOLOGIES = ("lan", "multi-lan", "wan")


def run(lab: Lab) -> None:
    server = lab.server(["recv-eof", "close"])
    client = lab.client(server, ["send:1000", "sleep:0.2", "linger0", "close"])
    lab.wait(client, server)


def check(ev: Evidence, expect: Expect) -> None:
    client, server = ev.program("client"), ev.program("server")
    conn = ev.found(expect, "client")
    if conn is None:
        return
    expect.ladder("close() sends one RST", conn, closing_segments(conn), ["client > R. len=0"])
    expect.equal("close kind", "reset", conn.close_kind)
    expect.equal("the data sent before still arrived", client["sent_sha256"], server["received_sha256"])
    states = states_of(ev, "client")
    expect.equal("client states: ESTABLISHED straight to CLOSED, no TIME_WAIT",
                 ["SYN_SENT", "ESTABLISHED", "CLOSED"], states)
    host = ev.facts["client_host"]
    expect.equal("ss lists no TIME-WAIT socket on the client", [],
                 [line for line in ev.facts["sockets_after"][host] if line.startswith("TIME-WAIT")])
