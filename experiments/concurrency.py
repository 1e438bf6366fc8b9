"""并发 — an iterative server makes the second client wait; a concurrent one serves both at once."""
from __future__ import annotations

import json
import sys
import time

from netbed.errors import NetbedError
from netbed.expect import Expect
from netbed.experiment import DEFAULT_PORT, Evidence, Lab
from netbed.pace import budget_text, patience
from netbed.programs import ACCEPTOR

NAME = "concurrency"
ORDER = 7
CLAIM = "服务端:24小时不间断提供服务; 并发 数据库 前端 Django 就可以一个b/s架构的软件"
NETBED = ("Two clients send a request at the same moment to a server that needs 1 s per request. An iterative "
          "server (one accept()ed client at a time) answers the second one about 1 s after the first (≥ 0.9 s), "
          "although the kernel completed both handshakes at once; a concurrent server (a thread per client) "
          "answers both together (< 0.5 s apart). Measured on the wire, in the server-side capture.")
FORCING = ("Both clients connect first and send their requests together, when a signal file appears, so that the "
           "server has both requests at the same time.")
GLOSS = ("Iterative vs concurrent: one server makes the second client wait for the first to be served, the other "
         "serves both at once; the gap between the answers shows it on the wire. Forced: both clients send their "
         "requests together.")
TOPOLOGIES = ("lan", "multi-lan", "wan")
WORK = 1.0  # seconds of "work" per request
# Thresholds on the gap between the two answers, each with room for a busy machine: an iterative server
# cannot answer the second client before it slept WORK for it (the capture's timestamps may jitter by
# milliseconds); a concurrent one sleeps for both at the same time.
ITERATIVE_GAP = 0.9 * WORK
CONCURRENT_GAP = 0.5 * WORK
MODES = {"iterative": DEFAULT_PORT, "concurrent": DEFAULT_PORT + 1}


def run(lab: Lab) -> None:
    serve_two_by_two(lab)


def serve_two_by_two(lab: Lab, modes: dict[str, str] | None = None) -> None:
    """For each mode, a server and two clients that ask at once (`modes` may swap a server's mode)."""
    for label, port in MODES.items():
        mode = (modes or {}).get(label, label)
        server = lab.start(f"server-{label}", [sys.executable, ACCEPTOR, str(port), "--mode", mode, "--work", str(WORK),
                                               "--connections", "2"], host=lab.server_host, port=port)
        go = lab.signal_path(f"request-{label}")
        clients = [lab.client(None, [f"wait-file:{go}", "send:10", "recv-eof", "close"], name=f"{label}-{i}",
                              to=(lab.ip(lab.server_host), port)) for i in (1, 2)]
        until_connected(lab, port, len(clients))  # the kernel completed both handshakes before they ask
        lab.signal(f"request-{label}")
        lab.wait(*clients, server)


def until_connected(lab: Lab, port: int, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + patience(timeout)
    argv = ["ss", "-tnH", "state", "established", f"dport = :{port}"]
    while len(lab.run(lab.client_host, argv).stdout.splitlines()) < count:
        if time.monotonic() > deadline:
            raise NetbedError(f"{count} clients not connected to port {port} after {budget_text(timeout)}")
        time.sleep(0.005)


def handshake_done(conn) -> float:
    """When the client's ACK of the SYN-ACK passed: the handshake is complete, accept() or not."""
    synack = next(s for s in conn.segments if s.syn and s.has_ack)
    return next(s.time for s in conn.segments if conn.side(s) == "client" and s.has_ack and not s.syn
                and s.time >= synack.time)


def answers(ev: Evidence, label: str) -> list[tuple[float, float]]:
    """(request seen, answer seen) on the wire at the server, per client, in the order of the answers."""
    out = []
    for i in (1, 2):
        conn = ev.connection("server", f"{label}-{i}")
        if conn is None:
            continue
        request = next((s.time for s in conn.segments if conn.side(s) == "client" and s.payload_len), None)
        answer = next((s.time for s in conn.segments if conn.side(s) == "server" and s.payload_len), None)
        if request is not None and answer is not None:
            out.append((request, answer))
    return sorted(out, key=lambda pair: pair[1])


def check(ev: Evidence, expect: Expect) -> None:
    for label in MODES:
        server = next(json.loads(line) for line in ev.program(f"server-{label}")["stdout"].splitlines()
                      if line.startswith("{"))
        expect.equal(f"{label}: the server says how it serves", label, server["mode"])
        expect.equal(f"{label}: both clients got their answer", [10, 10],
                     [ev.program(f"{label}-{i}")["received"] for i in (1, 2)])
        pairs = answers(ev, label)
        if not expect.equal(f"{label}: both requests and answers are in the server-side capture", 2, len(pairs)):
            continue
        (req1, ans1), (req2, ans2) = pairs
        handshakes = [handshake_done(ev.connection("server", f"{label}-{i}")) for i in (1, 2)]
        expect.that(f"{label}: the kernel completed both handshakes before the first answer", max(handshakes) < ans1,
                    f"last handshake ACK {max(handshakes) - ans1:+.3f} s from the first answer")
        gap = ans2 - ans1
        waits = f"requests {abs(req2 - req1) * 1000:.0f} ms apart; answered after {(ans1 - req1):.3f} s and {(ans2 - req2):.3f} s"
        if label == "iterative":
            expect.that(f"iterative: the second answer comes about one service time ({WORK:g} s) after the first "
                        f"(≥ {ITERATIVE_GAP:g} s)", gap >= ITERATIVE_GAP, f"answers {gap:.3f} s apart; {waits}")
        else:
            expect.that(f"concurrent: both answers come together, well within one service time "
                        f"(< {CONCURRENT_GAP:g} s apart)", gap < CONCURRENT_GAP, f"answers {gap:.3f} s apart; {waits}")
