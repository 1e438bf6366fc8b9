"""TCP协议传输数据之所以可靠地原因在于反馈机制 — lost segments are retransmitted; every byte arrives."""
from __future__ import annotations

import re

from netbed.expect import Expect
from netbed.experiment import Evidence, Lab
from netbed.trace.options import tcp_options

NAME = "loss-recovery"
ORDER = 140
CLAIM = "流式协议,可靠协议; TCP协议传输数据之所以可靠地原因在于反馈机制"
FORCING = ("the server's firewall drops every 10th packet of the transfer (iptables statistic --mode nth, the "
           "same packets on every run) and the first SYN to port 9001.")
GLOSS = ("With every 10th packet towards the server dropped, a 300 KB transfer still arrives intact: each "
         "gap the server's duplicate ACKs point at is sent again; a dropped SYN is sent again after the initial RTO (1 s). Forced: the drops "
         "are made by iptables in the server (deterministic nth statistic).")
TOPOLOGIES = ("lan", "multi-lan", "wan")
DATA = 300_000
DATA_PORT, SYN_PORT = 9000, 9001
SEQ_SPACE = 2**32
EVERY, PACKET = 10, 5  # iptables statistic --mode nth: every 10th packet the rule sees, from the 6th


def run(lab: Lab) -> None:
    host = lab.server_host
    # Drops happen in the server's own firewall (its namespace only): the captures, taken on the
    # wire before it, see each lost packet and its retransmission.
    lab.run(host, ["iptables", "-w", "-A", "INPUT", "-p", "tcp", "--dport", str(DATA_PORT), "-m", "statistic",
                   "--mode", "nth", "--every", str(EVERY), "--packet", str(PACKET), "-j", "DROP"])
    lab.run(host, ["iptables", "-w", "-A", "INPUT", "-p", "tcp", "--syn", "--dport", str(SYN_PORT), "-m", "statistic",
                   "--mode", "nth", "--every", "2", "--packet", "0", "-j", "DROP"])
    server = lab.server(["recv-eof", "close"], port=DATA_PORT)
    client = lab.client(server, [f"send:{DATA}", "close"])
    lab.wait(client, server)
    syn_server = lab.server(["recv-eof", "close"], port=SYN_PORT, name="syn-server")
    syn_client = lab.client(syn_server, ["send:10", "close"], name="syn-client")
    lab.wait(syn_client, syn_server)
    lab.facts["dropped"] = lab.run(host, ["iptables", "-w", "-L", "INPUT", "-v", "-n", "-x"]).stdout


def drop_counter(listing: str, port: int) -> int:
    """Packets the DROP rule for `port` dropped, from `iptables -L INPUT -v -n -x` (0 if there is no rule)."""
    for line in listing.splitlines():
        cols = line.split()
        if len(cols) > 2 and cols[2] == "DROP" and re.search(rf"\bdpt:{port}\b", line):
            return int(cols[0])
    return 0


def gaps(conn, sender: str = "client", sacks: dict[int, list[tuple[int, int]]] | None = None) -> list[tuple[int, float]]:
    """Where the receiver says bytes are missing: (relative ack, time it first said so).

    The receiver says so in one of two ways (`sacks`: frame number -> SACK blocks, from the capture's
    TCP options): an ACK at A with a SACK block above A (RFC 2018: it holds those bytes, not byte A),
    or, without SACK, a duplicate ACK as RFC 5681 §2 defines it (no data, the same acknowledgment
    number and window as its previous ACK) sent while the sender's data beyond A had already reached
    the capture point. Only a loss makes either; a tail-loss probe of data that did arrive does not,
    nor does an ACK that merely trails the data — a busy receiver (segments captured, still waiting in
    the socket's backlog) acknowledges a new number each time. Counting those as gaps "never sent
    again" failed runs on a loaded machine.
    """
    found: dict[int, float] = {}
    mine = [s for s in conn.segments if conn.side(s) == sender and s.seq_len]
    previous = None
    for ack in (s for s in conn.segments if conn.side(s) != sender and s.has_ack):
        above = any(0 < (left - ack.ack) % SEQ_SPACE < SEQ_SPACE // 2 for left, _ in (sacks or {}).get(ack.frame, []))
        duplicate = (previous is not None and not ack.seq_len and (ack.ack, ack.window) == (previous.ack, previous.window)
                     and any(s.time < ack.time and conn.relative_seq(s) > conn.relative_ack(ack) for s in mine))
        previous = ack
        at = conn.relative_ack(ack)
        if (above or duplicate) and at not in found:
            found[at] = ack.time
    return sorted(found.items())


def not_sent_again(conn, missing: list[tuple[int, float]], sender: str = "client") -> list[int]:
    """The gaps (relative sequence numbers) that no later segment of the sender starts to fill."""
    later = [(s.time, conn.relative_seq(s), conn.relative_seq(s) + s.seq_len) for s in conn.segments
             if conn.side(s) == sender and s.seq_len]
    return [at for at, when in missing if not any(t > when and lo <= at < hi for t, lo, hi in later)]


def server_sacks(ev: Evidence, conn) -> dict[int, list[tuple[int, int]]]:
    """The SACK blocks of the server's ACKs, read from the TCP options in the server-side capture."""
    cap = next(c for c in ev.captures if c["point"] == "server")
    frames = {s.frame for s in conn.segments if conn.side(s) == "server"}
    return {frame: opts.sack for frame, opts in tcp_options(ev.directory / cap["file"], frames).items()}


def check(ev: Evidence, expect: Expect) -> None:
    client, server = ev.program("client"), ev.program("server")
    expect.equal("every byte arrives (SHA-256 of what was sent and what was read)",
                 (DATA, client["sent_sha256"]), (server["received"], server["received_sha256"]))
    listing = ev.facts.get("dropped", "")
    dropped = drop_counter(listing, DATA_PORT)
    expect.that("the server's firewall dropped packets of the transfer (DROP counter > 0)", dropped > 0,
                f"{dropped} packets dropped")
    expect.that("it dropped the first SYN to port 9001 (DROP counter > 0)", drop_counter(listing, SYN_PORT) > 0,
                f"{drop_counter(listing, SYN_PORT)} SYNs dropped")
    conn = ev.connection("server")
    transfer = ["each gap the server's duplicate ACKs point at was sent again", "the trace counts each byte once"]
    if expect.that("the transfer is in the server-side capture", conn is not None, "looked up by port"):
        holes = gaps(conn, sacks=server_sacks(ev, conn))
        missing = not_sent_again(conn, holes)
        expect.that(transfer[0], bool(holes) and not missing,
                    f"gaps at (relative seq): {[at for at, _ in holes] or 'none'}; not sent again: {missing or 'none'}; "
                    f"the firewall counted {dropped} drops")
        expect.equal(transfer[1], DATA, conn.bytes_client)
    else:
        expect.unchecked(transfer, "the transfer is not in the server-side capture")
    syn_conn = ev.connection("client", "syn-client")
    retry = ["its SYN was sent twice, with the same ISN", "the SYN is retransmitted after the initial RTO (about 1 s)",
             "and then the handshake completes"]
    if not expect.that("the second connection is in the capture", syn_conn is not None, "looked up by port"):
        expect.unchecked(retry, "the second connection is not in the client-side capture")
        return
    syns = [s for s in syn_conn.segments if s.syn and not s.has_ack]
    expect.equal(retry[0], (2, 1), (len(syns), len({s.seq for s in syns})))
    if len(syns) >= 2:  # the first retransmission's delay is the initial RTO, whatever came after it
        # not refused when the fidelity was lost: half a second of slack holds any slip the fidelity record
        # tolerates (200 ms at worst), and refusing failed it on most runs of a loaded machine
        expect.within(retry[1], syns[1].time - syns[0].time, 0.9, 1.5)
    else:
        expect.unchecked(retry[1:2], f"{len(syns)} SYN in the capture: no retransmission to time")
    expect.equal(retry[2], "complete", syn_conn.handshake)
