"""服务端:24小时不间断提供服务 — the kernel completes handshakes before accept(), up to the backlog."""
from __future__ import annotations

import json
import re
import sys
import time

from netbed.errors import NetbedError
from netbed.expect import Expect
from netbed.experiment import DEFAULT_PORT, Evidence, Lab
from netbed.programs import ACCEPTOR

NAME = "backlog"
ORDER = 6
CLAIM = "服务端:24小时不间断提供服务; 客户端:什么时候想体验服务,就去找心仪的服务端寻求服务"
NETBED = ("A server listens with a backlog of 2 and does not call accept() yet; five clients connect. The kernel "
          "alone completes the three-way handshake for as many as its accept queue holds (Linux: backlog + 1 = 3, "
          "ss shows Recv-Q 3 and Send-Q 2 on the listening socket); the SYNs of the other two go unanswered and "
          "their kernels send them again (ss shows their retransmission counter). Once the server accepts, the "
          "retried SYNs are answered and every client is served.")
FORCING = ("The clients start one after the other, each once the kernel shows where the previous one went (in the "
           "accept queue or in SYN-SENT); the server starts accepting only after every waiting client's SYN has "
           "been retried at least once.")
GLOSS = ("The kernel accepts connections for a server before the server does: handshakes complete up to the "
         "backlog without accept(); further SYNs are dropped and retried until the server takes its clients. Forced: "
         "the server accepts only after every waiting SYN was retried.")
TOPOLOGIES = ("lan", "multi-lan", "wan")
BACKLOG = 2
CLIENTS = 5
POLL = 0.01
TIMEOUT = 15.0


def listen_queue(lab: Lab) -> tuple[int, int]:
    """(Recv-Q, Send-Q) of the listening socket: completed connections waiting for accept(), and the backlog."""
    words = lab.run(lab.server_host, ["ss", "-ltnH", f"sport = :{DEFAULT_PORT}"]).stdout.split()
    return (int(words[1]), int(words[2])) if len(words) >= 3 else (0, 0)


def syn_sent(lab: Lab) -> list[str]:
    return lab.run(lab.client_host, ["ss", "-tnoH", "state", "syn-sent", f"dport = :{DEFAULT_PORT}"]).stdout.splitlines()


def retries(line: str) -> int:
    """The retransmission counter of an ss timer field: timer:(on,1.2sec,RETRIES)."""
    match = re.search(r"timer:\(on,[^,]*,(\d+)\)", line)
    return int(match.group(1)) if match else 0


def until(what: str, ready) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not ready():
        if time.monotonic() > deadline:
            raise NetbedError(f"{what}: not seen in {TIMEOUT:g} s")
        time.sleep(POLL)


def run(lab: Lab) -> None:
    connect_clients(lab)


def connect_clients(lab: Lab, accept_at_once: bool = False) -> None:
    go = lab.signal_path("accept")
    argv = [sys.executable, ACCEPTOR, str(DEFAULT_PORT), "--backlog", str(BACKLOG), "--connections", str(CLIENTS)]
    server = lab.start("server", argv + ([] if accept_at_once else ["--accept-after", go]), host=lab.server_host,
                       port=DEFAULT_PORT)
    clients = []
    for i in range(1, CLIENTS + 1):
        clients.append(lab.client(server, ["send:10", "recv-eof", "close"], name=f"client-{i}"))
        if not accept_at_once:
            until(f"client {i} in the accept queue or in SYN-SENT", lambda i=i: listen_queue(lab)[0] + len(syn_sent(lab)) >= i)
    if not accept_at_once:
        until("every waiting SYN retried", lambda: all(retries(line) >= 1 for line in syn_sent(lab)))
    lab.facts["listen_before_accept"] = list(listen_queue(lab))
    lab.facts["syn_sent_before_accept"] = syn_sent(lab)
    lab.signal("accept")
    lab.wait(*clients, server, timeout=30)


def check(ev: Evidence, expect: Expect) -> None:
    queued, backlog = ev.facts["listen_before_accept"]
    waiting = ev.facts["syn_sent_before_accept"]
    server = next(json.loads(line) for line in ev.program("server")["stdout"].splitlines() if line.startswith("{"))
    first_accept = min(e["t"] for e in server["events"] if e["event"] == "accept")
    expect.equal("the listening socket's backlog, as the kernel has it (ss Send-Q)", BACKLOG, backlog)
    expect.equal("before any accept(), the accept queue holds backlog + 1 connections (ss Recv-Q)", backlog + 1, queued)
    expect.that("the other clients wait in SYN-SENT, their SYN retried (ss timer)",
                len(waiting) == CLIENTS - queued and all(retries(line) >= 1 for line in waiting),
                "; ".join(waiting) or "(none in SYN-SENT)")
    names = [f"client-{i}" for i in range(1, CLIENTS + 1)]
    conns = [ev.connection("server", n) for n in names]
    if not expect.that("every client's connection is in the server-side capture", all(conns),
                       f"{sum(map(bool, conns))} of {CLIENTS}"):
        return
    early, late = [], []
    for name, conn in zip(names, conns):
        syns = [s for s in conn.segments if s.syn and not s.has_ack]
        synacks = [s for s in conn.segments if s.syn and s.has_ack]
        answered = synacks[0].time if synacks else float("inf")
        asked = sum(1 for s in syns if s.time < answered)
        (early if answered < first_accept else late).append((name, asked, answered))
    expect.that("the kernel completed handshakes before the server called accept(): as many as the queue held",
                len(early) == queued and all(asked == 1 for _, asked, _ in early),
                f"{[n for n, _, _ in early]} answered before the first accept(); queue {queued}")
    expect.that("SYNs beyond the accept queue go unanswered and are retried",
                len(late) == CLIENTS - queued and all(asked >= 2 for _, asked, _ in late),
                ", ".join(f"{n}: {a} SYNs before its SYN-ACK" for n, a, _ in late) or "every SYN answered at once")
    expect.equal("once the server accepts, every client is served (10 bytes each)", [10] * CLIENTS,
                 [ev.program(n)["received"] for n in names])
