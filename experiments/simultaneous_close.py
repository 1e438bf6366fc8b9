"""Simultaneous close (netbed's extension of 主动关闭) — both ends close at once: FINs cross, both pass CLOSING."""
from __future__ import annotations

import time

from netbed.errors import NetbedError
from netbed.expect import Expect, states_of
from netbed.experiment import DEFAULT_PORT, Evidence, Lab
from netbed.pace import budget_text, patience

NAME = "simultaneous-close"
ORDER = 45
CLAIM = "某个应用进程首先调用close,称该端执行“主动关闭”(active close)。该端的TCP于是发送一个FIN分节,表示数据发送完毕"
NETBED = ("netbed's extension, not the lecture's: both ends call close() at the same time, so both perform an "
          "active close. Each FIN is sent before its sender has seen the other's, and both sockets go "
          "FIN_WAIT_1 → CLOSING → TIME_WAIT (RFC 793's simultaneous close).")
FORCING = ("each host's outgoing queue is held (a token bucket emptied by one ping) until both sockets are in "
           "FIN_WAIT_1, then released, the client's first: without the hold one FIN would usually arrive before "
           "the other end closed.")
GLOSS = ("Both ends close at once: both FINs were sent before either side saw the other's (neither FIN "
         "acknowledges the other), and both sockets go FIN_WAIT_1 → CLOSING → TIME_WAIT. Forced: both egress "
         "queues are held until both FINs are built, so the FINs cross on every run; on the wire the server's "
         "FIN may leave after the client's arrived, carrying the ACK it was built with.")
TOPOLOGIES = ("lan", "multi-lan", "wan")


def run(lab: Lab) -> None:
    go = lab.signal_path("close")
    server = lab.server(["recv:100", f"wait-file:{go}", "close"])
    client = lab.client(server, ["send:100", f"wait-file:{go}", "close"])
    lab.wait_socket_state(lab.server_host, "established", DEFAULT_PORT)
    # The 100 bytes and their ACK must be through before the hold, or they would eat the tokens the
    # ping needs: wait until the client's send queue is empty (everything acknowledged).
    wait_all_acknowledged(lab, lab.client_host, DEFAULT_PORT)
    # Hold each end's outgoing packets; one ping empties both token buckets (the request leaves the
    # client, the reply the server), so the FINs that follow stay queued.
    for host in (lab.client_host, lab.server_host):
        lab.hold(host)
    lab.drain(lab.client_host, lab.server_host)
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


def wait_all_acknowledged(lab: Lab, host: str, port: int, timeout: float = 5.0) -> None:
    """Poll `ss` until the host's connection on `port` has no unacknowledged byte (Send-Q 0)."""
    deadline = time.monotonic() + patience(timeout)
    while time.monotonic() < deadline:
        for cols in (line.split() for line in lab.sockets(host, "established")):
            ports = {address.rpartition(":")[2] for address in cols[2:4]}
            if len(cols) >= 4 and str(port) in ports and cols[1] == "0":
                return
        time.sleep(0.005)
    raise NetbedError(f"{host}: the connection on port {port} still has unacknowledged data after {budget_text(timeout)}")


def acknowledges(ack_segment, fin) -> bool:
    """Does `ack_segment`'s ACK cover `fin` (its payload and the FIN itself: seq + payload + 1)?"""
    end = (fin.seq + fin.payload_len + 1) % 2**32
    return ack_segment.has_ack and (ack_segment.ack - end) % 2**32 < 2**31


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
        expect.that(f"the {side}'s FIN does not acknowledge the {other}'s (built before the {other}'s FIN reached it)",
                    not acknowledges(mine, theirs),
                    f"{side} FIN ack={mine.ack}; {other} FIN seq={theirs.seq} len={theirs.payload_len}, "
                    f"covered from ack={(theirs.seq + theirs.payload_len + 1) % 2**32}")
    expect.equal("close kind", "simultaneous", conn.close_kind)
    expect.equal("close initiator", "both", conn.close_initiator)
    for side in ("client", "server"):
        states = states_of(ev, side)
        expect.equal(f"{side} states: FIN_WAIT_1, CLOSING, TIME_WAIT", ["FIN_WAIT_1", "CLOSING", "TIME_WAIT"],
                     [s for s in states if s in ("FIN_WAIT_1", "FIN_WAIT_2", "CLOSING", "TIME_WAIT")])
