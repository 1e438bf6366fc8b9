"""任何一端都可以执行主动关闭 — both ends close at once: the FINs cross, both sides pass CLOSING."""
from __future__ import annotations

from netbed.expect import Expect, states_of
from netbed.experiment import DEFAULT_PORT, Evidence, Lab

NAME = "simultaneous-close"
ORDER = 45
CLAIM = "无论是客户还是服务器,任何一端都可以执行主动关闭 (两端同时关闭: 每个 FIN 都在收到对方的 FIN 之前发出)"
GLOSS = ("Both ends close at once: each FIN leaves before the other arrives, and both sockets go "
         "FIN_WAIT_1 → CLOSING → TIME_WAIT.")
TOPOLOGIES = ("lan", "multi-lan", "wan")


def run(lab: Lab) -> None:
    go = lab.signal_path("close")
    server = lab.server(["recv:100", f"wait-file:{go}", "close"])
    client = lab.client(server, ["send:100", f"wait-file:{go}", "close"])
    lab.wait_socket_state(lab.server_host, "established", DEFAULT_PORT)
    # Hold each end's outgoing packets. One ping drains both token buckets (the request leaves
    # the client, the reply leaves the server), so the FINs that follow stay queued.
    for host in (lab.client_host, lab.server_host):
        lab.hold(host)
    lab.run(lab.client_host, ["ping", "-n", "-q", "-c", "1", "-W", "1", "-s", "100", lab.ip(lab.server_host)])
    lab.signal("close")
    for host in (lab.client_host, lab.server_host):
        lab.wait_socket_state(host, "fin-wait-1", DEFAULT_PORT)
    # Both FINs were built before either end heard from the other. Let the client's go: the
    # server, still in FIN_WAIT_1, receives it and moves to CLOSING; its ACK queues behind its FIN.
    lab.release(lab.client_host)
    lab.wait_socket_state(lab.server_host, "closing", DEFAULT_PORT)
    lab.release(lab.server_host)
    lab.wait(client, server)
    for host in (lab.client_host, lab.server_host):
        lab.wait_socket_state(host, "time-wait", DEFAULT_PORT)


def check(ev: Evidence, expect: Expect) -> None:
    conn = ev.found(expect, "client")
    if conn is None:
        return
    fins = [s for s in conn.segments if s.fin]
    first = {side: next((s for s in fins if conn.side(s) == side), None) for side in ("client", "server")}
    if not expect.that("both sides send a FIN", all(first.values()), f"{len(fins)} FIN segments"):
        return
    for side, other in (("client", "server"), ("server", "client")):
        mine, theirs = first[side], first[other]
        covers = 0 < (mine.ack - theirs.seq) % 2**32 < 2**31
        expect.that(f"the {side}'s FIN does not acknowledge the {other}'s (it left before that arrived)",
                    not covers, f"{side} FIN ack={mine.ack}, {other} FIN seq={theirs.seq}")
    expect.equal("close kind", "simultaneous", conn.close_kind)
    expect.equal("close initiator", "both", conn.close_initiator)
    for side in ("client", "server"):
        states = states_of(ev, side)
        expect.equal(f"{side} states: FIN_WAIT_1, CLOSING, TIME_WAIT", ["FIN_WAIT_1", "CLOSING", "TIME_WAIT"],
                     [s for s in states if s in ("FIN_WAIT_1", "FIN_WAIT_2", "CLOSING", "TIME_WAIT")])
