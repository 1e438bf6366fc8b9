"""步骤2和步骤3…有可能被合并成一个分节 — the passive side's ACK and FIN merge: three segments."""
from __future__ import annotations

from netbed.expect import Expect, closing_segments
from netbed.experiment import Evidence, Lab

NAME = "close-merged"
ORDER = 30
CLAIM = "步骤2和步骤3发送的分节都出自执行被动关闭那一端,有可能被合并成一个分节"
FORCING = ("the server runs with real-time priority (SCHED_FIFO) and closes the moment it reads EOF, inside "
           "the delayed-ACK window, so its ACK rides on its FIN even on a busy machine.")
GLOSS = ("When the passive side closes at once on EOF, its FIN carries the ACK: the close takes three segments. "
         "Forced: the server runs SCHED_FIFO so that its close() comes before its delayed ACK on every run.")
TOPOLOGIES = ("lan", "multi-lan", "wan")


def run(lab: Lab) -> None:
    # The server closes the moment it reads EOF, well inside the 40-200 ms delayed-ACK window,
    # so the ACK of the client's FIN rides on the server's own FIN. Real-time priority keeps that
    # moment prompt on a machine busy with other runs.
    server = lab.server(["prompt", "recv-eof", "close"])
    client = lab.client(server, ["send:1000", "close"])
    lab.wait(client, server)


def check(ev: Evidence, expect: Expect) -> None:
    conn = ev.found(expect, "client")
    if conn is None:
        return
    expect.ladder("three segments close it: FIN, FIN+ACK, ACK", conn, closing_segments(conn), [
        "client > F. seq=f len=0",
        "server > F. seq=g ack=f+1 len=0",
        "client > .  seq=f+1 ack=g+1 len=0",
    ])
    expect.equal("close kind", "three-way", conn.close_kind)
    expect.equal("close initiator", "client", conn.close_initiator)
