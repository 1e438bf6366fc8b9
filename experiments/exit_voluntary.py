"""自愿地(调用exit或从main函数返回) — a process that ends on its own, socket still open, still sends FIN."""
from __future__ import annotations

from netbed.expect import FOUR_WAY_CLOSE, Expect, closing_segments
from netbed.experiment import DEFAULT_PORT, Evidence, Lab

NAME = "exit-voluntary"
ORDER = 48
CLAIM = ("当一个Unix进程无论自愿地(调用exit或从main函数返回)还是非自愿地(收到一个终止本进程的信号)终止时,"
         "所有打开的描述符都被关闭,这也导致仍然打开的任何TCP连接上也发出一个FIN")
NETBED = ("Two clients end voluntarily with their connection still open and without ever calling close(): one "
          "calls exit(), the other returns from main. Each exits with status 0, and on the wire each connection "
          "still closes with the client's FIN, ACK, FIN, ACK, with no RST.")
FORCING = ("Each client hands its descriptor back from Python's socket object (socket.detach) before it ends, so "
           "neither Python nor the program closes it: only the kernel's cleanup of the ending process does. The "
           "servers acknowledge the FIN at once and close 0.2 s later, so the close has four segments.")
GLOSS = ("exit() and returning from main, with the socket left open: the kernel closes the descriptor as the "
         "process ends, and the connection closes with a FIN, like close() would (SIGKILL is close-on-exit). Forced: "
         "the descriptor is detached from Python's socket object, so only the kernel closes it.")
TOPOLOGIES = ("lan", "multi-lan", "wan")
ENDINGS = {"client-exit": ("exit", DEFAULT_PORT), "client-return": ("return", DEFAULT_PORT + 1)}


def run(lab: Lab) -> None:
    for name, (ending, port) in ENDINGS.items():
        server = lab.server(["recv-eof", "quickack", "sleep:0.2", "close"], port=port, name=f"server-{ending}")
        client = lab.client(server, ["send:1000", "sleep:0.1", ending], name=name)
        lab.wait(client, server)


def check(ev: Evidence, expect: Expect) -> None:
    for name, (ending, _port) in ENDINGS.items():
        client, server = ev.program(name), ev.program(f"server-{ending}")
        how = "exit()" if ending == "exit" else "return from main"
        events = [e["event"] for e in client["events"]]
        expect.equal(f"{how}: the process ended by itself, status 0", 0, client["exit"])
        expect.that(f"{how}: it never called close()", ending in events and "close" not in events, ", ".join(events))
        conn = ev.found(expect, "client", client=name)
        if conn is None:
            continue
        expect.ladder(f"{how}: the kernel sends the FIN, the close completes", conn, closing_segments(conn),
                      FOUR_WAY_CLOSE)
        expect.equal(f"{how}: no RST", 0, sum(1 for s in conn.segments if s.rst))
        expect.equal(f"{how}: close initiator", "client", conn.close_initiator)
        expect.equal(f"{how}: the server read the data, then end-of-file", client["sent_sha256"],
                     server["received_sha256"])
