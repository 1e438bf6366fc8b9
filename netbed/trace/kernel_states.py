"""Per-socket TCP state timelines from the kernel's own state changes (see capture/states.py).

Linux turns a socket that reaches TIME_WAIT into a small "timewait" socket and reports the full
socket as CLOSED; the tracepoint cannot see the TIME_WAIT itself. So a socket whose traced life ends
FIN_WAIT_2 → CLOSED or CLOSING → CLOSED, and which `ss` still lists in TIME-WAIT after the run, is
shown ending in TIME_WAIT, stamped when its peer's FIN or last ACK reached it.
"""
from __future__ import annotations

from dataclasses import dataclass

from netbed.trace.model import Endpoint

# Linux's numbering (include/net/tcp_states.h) -> RFC 793 names
LINUX_STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECEIVED", 4: "FIN_WAIT_1", 5: "FIN_WAIT_2",
    6: "TIME_WAIT", 7: "CLOSED", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
    12: "SYN_RECEIVED",
}
TIME_WAIT_FROM = ("FIN_WAIT_2", "CLOSING", "FIN_WAIT_1")


@dataclass(frozen=True)
class StateChange:
    time: float
    netns: int
    sock: str
    local: Endpoint
    remote: Endpoint
    old: str
    new: str


def parse_log(text: str, clock_offset: float) -> list[StateChange]:
    """Parse bpftrace's lines, in time order; anything malformed (a cut last line) is skipped.

    bpftrace drains one ring buffer per CPU, so its lines are not in time order across CPUs: a
    close() on one CPU may be printed after the state change it preceded on the other.
    """
    events = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 11 or parts[0] != "S":
            continue
        try:
            _, ns, netns, sock, _fam, saddr, sport, daddr, dport, old, new = parts
            events.append(StateChange(int(ns) / 1e9 + clock_offset, int(netns), sock,
                                      Endpoint(saddr, int(sport)), Endpoint(daddr, int(dport)),
                                      LINUX_STATES.get(int(old), old), LINUX_STATES.get(int(new), new)))
        except ValueError:
            continue
    events.sort(key=lambda ev: ev.time)
    return events


def socket_history(events: list[StateChange], netns: int, local: Endpoint, remote: Endpoint) -> list[StateChange]:
    """The state changes of the one socket with this 4-tuple in this namespace (its last incarnation)."""
    lives: list[list[StateChange]] = []
    current: dict[str, list[StateChange]] = {}
    for ev in events:
        if ev.netns != netns:
            continue
        life = current.get(ev.sock)
        if life is None or life[-1].new == "CLOSED":
            life = current[ev.sock] = []
            lives.append(life)
        life.append(ev)
    mine = [life for life in lives if any(e.local == local and e.remote == remote for e in life)]
    return mine[-1] if mine else []


def timeline(history: list[StateChange], in_time_wait: bool = False, time_wait_at: float | None = None) -> list[dict]:
    """States the socket passed through, in order: its first state, then each new one."""
    if not history:
        return []
    states = []
    if history[0].old not in ("CLOSED", "LISTEN"):
        states.append({"time": history[0].time, "state": history[0].old})
    for ev in history:
        # close() on a socket already in FIN_WAIT_1 (after shutdown) sets the same state again
        if not states or states[-1]["state"] != ev.new:
            states.append({"time": ev.time, "state": ev.new})
    last = history[-1]
    if in_time_wait and last.new == "CLOSED" and last.old in TIME_WAIT_FROM:
        states.pop()
        states.append({"time": max(time_wait_at or last.time, last.time), "state": "TIME_WAIT", "via": "ss"})
    return states


def listed_in_time_wait(ss_lines: list[str], local: Endpoint, remote: Endpoint) -> bool:
    """Does `ss -tanH` output list this 4-tuple in TIME-WAIT?"""
    for line in ss_lines:
        cols = line.split()
        if len(cols) >= 5 and cols[0] == "TIME-WAIT" and cols[3] == str(local) and cols[4] == str(remote):
            return True
    return False
