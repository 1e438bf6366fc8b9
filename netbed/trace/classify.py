"""Group TCP segments into connections and classify each one by DESIGN.md's definitions.

Why vectorised: a load test captures 100,000 connections; a Python loop per segment would dominate
the run. So the classifier works on columns: one direction-independent key per segment, one stable
sort that puts every connection's segments together in capture order, and then each fact
("first FIN from the client", "first server segment that acknowledges the FIN") is a masked
first-occurrence per connection. Python runs per *connection* only to build the result objects, and
per segment only for the rare 4-tuples that carry several connections (port reuse).

Sequence numbers are compared modulo 2^32 throughout: ``(a - b)`` is cast to a signed 32-bit
integer, so a connection whose numbers wrap past 2^32 is classified like any other.
"""

from __future__ import annotations

import gc
import ipaddress
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .model import ACK, FIN, RST, SYN, Connection, Endpoint, Segment
from .pcap import Frames

__all__ = ["classify_frames", "classify_segments"]

_M32 = 0xFFFF_FFFF
_GROUP_SHIFT = 42  # connection id << 42 keeps per-connection sequence ranges apart in one int64 axis
_GROUP_OFFSET = 1 << 41


@dataclass
class _Tcp:
    """The TCP columns the classifier needs, one row per segment, in capture order."""

    frame: np.ndarray
    time: np.ndarray
    src_hi: np.ndarray
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    seq: np.ndarray
    ack: np.ndarray
    flags: np.ndarray
    plen: np.ndarray


def classify_frames(frames: Frames) -> list[Connection]:
    """Every TCP connection in a frame table, in order of their first segment."""
    rows = np.flatnonzero(frames.has_tcp)
    # Usually every frame is TCP: then the columns are used as they are, without copies.
    pick: np.ndarray | slice = slice(None) if len(rows) == len(frames) else rows
    tcp = _Tcp(*(getattr(frames, name)[pick] for name in (
        "frame", "time", "src_ip6_hi", "src_ip6_lo", "dst_ip6_hi", "dst_ip6_lo", "sport", "dport", "seq", "ack",
        "tcp_flags", "payload_len")))
    source = _FrameSegments(frames, rows)
    return _classify(tcp, source.segments)


def classify_segments(segments: Sequence[Segment]) -> list[Connection]:
    """Classify hand-made segments (tests, experiments' expectations) with the very same code."""
    n = len(segments)
    src = [_ip_int(s.src.ip) for s in segments]
    dst = [_ip_int(s.dst.ip) for s in segments]
    tcp = _Tcp(
        np.array([s.frame for s in segments], np.int64),
        np.array([s.time for s in segments], np.float64),
        np.array([a >> 64 for a in src], np.uint64).reshape(n),
        np.array([a & (2**64 - 1) for a in src], np.uint64).reshape(n),
        np.array([a >> 64 for a in dst], np.uint64).reshape(n),
        np.array([a & (2**64 - 1) for a in dst], np.uint64).reshape(n),
        np.array([s.src.port for s in segments], np.int64).reshape(n),
        np.array([s.dst.port for s in segments], np.int64).reshape(n),
        np.array([s.seq % 2**32 for s in segments], np.uint32).reshape(n),
        np.array([s.ack % 2**32 for s in segments], np.uint32).reshape(n),
        np.array([s.flags for s in segments], np.uint8).reshape(n),
        np.array([s.payload_len for s in segments], np.uint32).reshape(n),
    )
    return _classify(tcp, lambda rows: [segments[i] for i in rows.tolist()])


# --------------------------------------------------------------------------------------------------
# Text forms of addresses, made once per distinct address


def _ip_int(text: str) -> int:
    """An address as a 128-bit integer; IPv4 as IPv4-mapped IPv6, as the pcap reader stores it."""
    addr = ipaddress.ip_address(text)
    return (0xFFFF << 32) | int(addr) if addr.version == 4 else int(addr)


def _ip_texts(hi: np.ndarray, lo: np.ndarray) -> list[str]:
    """Text form of each (hi, lo) address, formatting every distinct address only once."""
    if len(hi) == 0:
        return []
    if not hi.any():
        uniq, inverse = np.unique(lo, return_inverse=True)
        texts = [_ip_text(0, int(v)) for v in uniq.tolist()]
    else:
        both = np.stack([hi, lo], axis=1)
        uniq2, inverse = np.unique(both, axis=0, return_inverse=True)
        texts = [_ip_text(int(h), int(v)) for h, v in uniq2.tolist()]
    return [texts[i] for i in inverse.reshape(-1).tolist()]


def _ip_text(hi: int, lo: int) -> str:
    if hi == 0 and lo >> 32 == 0xFFFF:
        return socket.inet_ntoa((lo & _M32).to_bytes(4, "big"))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def _mac_text(mac: int) -> str:
    return ":".join(f"{b:02x}" for b in mac.to_bytes(6, "big"))


class _FrameSegments:
    """Builds ``Segment`` objects for a connection's rows only when somebody asks for them."""

    def __init__(self, frames: Frames, tcp_rows: np.ndarray) -> None:
        self.frames = frames
        self.tcp_rows = tcp_rows

    def segments(self, rows: np.ndarray) -> list[Segment]:
        f = self.frames
        r = self.tcp_rows[rows]
        src_ip = _ip_texts(f.src_ip6_hi[r], f.src_ip6_lo[r])
        dst_ip = _ip_texts(f.dst_ip6_hi[r], f.dst_ip6_lo[r])
        ethernet = (f.linktype[r] == 1).tolist()
        src_mac = f.src_mac[r].tolist()
        dst_mac = f.dst_mac[r].tolist()
        out = []
        for i, (frame, time, sport, dport, seq, ack, flags, plen, ttl, win) in enumerate(zip(
                f.frame[r].tolist(), f.time[r].tolist(), f.sport[r].tolist(), f.dport[r].tolist(),
                f.seq[r].tolist(), f.ack[r].tolist(), f.tcp_flags[r].tolist(), f.payload_len[r].tolist(),
                f.ttl[r].tolist(), f.window[r].tolist())):
            out.append(Segment(
                frame, time, Endpoint(src_ip[i], sport), Endpoint(dst_ip[i], dport), seq, ack, flags, plen,
                ttl, win,
                _mac_text(src_mac[i]) if ethernet[i] or src_mac[i] else None,
                _mac_text(dst_mac[i]) if ethernet[i] or dst_mac[i] else None))
        return out


# --------------------------------------------------------------------------------------------------
# The classifier


def _endpoint_keys(t: _Tcp) -> tuple[np.ndarray, np.ndarray]:
    """One int64 per (address, port): 48 bits for IPv4 captures, a dense address number otherwise."""
    v4 = not (t.src_hi.any() or t.dst_hi.any()) and bool(
        np.all((t.src_lo >> np.uint64(32)) == 0xFFFF) and np.all((t.dst_lo >> np.uint64(32)) == 0xFFFF))
    if v4:
        src = (t.src_lo & np.uint64(_M32)).astype(np.int64)
        dst = (t.dst_lo & np.uint64(_M32)).astype(np.int64)
    else:
        n = len(t.src_hi)
        addrs = np.concatenate([np.stack([t.src_hi, t.src_lo], 1), np.stack([t.dst_hi, t.dst_lo], 1)])
        _, ids = np.unique(addrs, axis=0, return_inverse=True)
        ids = ids.reshape(-1).astype(np.int64)
        src, dst = ids[:n], ids[n:]
    return (src << 16) | t.sport.astype(np.int64), (dst << 16) | t.dport.astype(np.int64)


def _reuse_breaks(src: list[int], flags: list[int], seq: list[int]) -> list[int]:
    """Positions within one 4-tuple's segments where a new connection starts (port reuse).

    A SYN without ACK starts a new connection when the current one has ended (FIN both ways or RST),
    when it comes from a side whose SYN had another ISN, or when the current one never had a SYN
    (its earlier segments belonged to an incarnation whose start the capture missed). A retransmitted
    SYN (same ISN) and the peer's SYN of a simultaneous open stay in the current connection.
    """
    breaks = []
    isn: dict[int, int] = {}
    fins: set[int] = set()
    reset = False
    for i, (s, f, q) in enumerate(zip(src, flags, seq)):
        if f & (SYN | ACK) == SYN:
            if i > 0 and (reset or len(fins) == 2 or not isn or isn.get(s, q) != q):
                breaks.append(i)
                isn, fins, reset = {}, set(), False
            isn.setdefault(s, q)
        if f & FIN:
            fins.add(s)
        if f & RST:
            reset = True
    return breaks


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects.

    The objects made here hold no cycles, yet every few hundred allocations the collector would
    walk all of them again; for 100,000 connections that tripled the classification time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _signed(x: np.ndarray) -> np.ndarray:
    """A difference of sequence numbers read modulo 2^32 as a signed 32-bit number."""
    return x.astype(np.int32).astype(np.int64)


def _union_bytes(conn: np.ndarray, start: np.ndarray, end: np.ndarray, count: int) -> np.ndarray:
    """Per connection, the size of the union of the [start, end) intervals (rows grouped by conn).

    Distinct bytes in sequence space: a retransmitted range is counted once. Intervals are sorted by
    start within their connection; a running maximum of the ends then gives how much of each
    interval is new. Connection ids in the high bits keep connections apart in one sorted axis.
    """
    if len(conn) == 0:
        return np.zeros(count, np.int64)
    key = conn.astype(np.int64) << _GROUP_SHIFT
    s = key + start + _GROUP_OFFSET
    e = key + end + _GROUP_OFFSET
    if np.any(s[1:] < s[:-1]):
        order = np.argsort(s, kind="stable")
        s, e, conn = s[order], e[order], conn[order]
    covered = np.empty_like(e)
    covered[0] = s[0]
    np.maximum.accumulate(e[:-1], out=covered[1:])
    new = np.maximum(e - np.maximum(s, covered), 0)
    return np.bincount(conn, weights=new, minlength=count).astype(np.int64)


def _classify(t: _Tcp, load: Callable[[np.ndarray], list[Segment]]) -> list[Connection]:
    n = len(t.frame)
    if n == 0:
        return []
    a, b = _endpoint_keys(t)

    # Direction-independent 4-tuple; a stable sort on it keeps capture order inside each 4-tuple.
    low, high = np.minimum(a, b), np.maximum(a, b)
    order = np.lexsort((high, low))
    low, high = low[order], high[order]
    a, b = a[order], b[order]
    # Sequence arithmetic is done in int64 and reduced modulo 2^32 where it matters.
    flags, seq, ack, plen = (t.flags[order].astype(np.int64), t.seq[order].astype(np.int64),
                             t.ack[order].astype(np.int64), t.plen[order].astype(np.int64))

    syn = (flags & SYN) != 0
    fin = (flags & FIN) != 0
    rst = (flags & RST) != 0
    has_ack = (flags & ACK) != 0
    pure_syn = syn & ~has_ack
    starts = np.empty(n, bool)
    starts[0] = True
    np.not_equal(low[1:], low[:-1], out=starts[1:])
    starts[1:] |= high[1:] != high[:-1]
    del low, high

    # Port reuse: only 4-tuples with a SYN after their first segment need a closer look.
    late_syn = pure_syn & ~starts
    if late_syn.any():
        tuple_id = np.cumsum(starts) - 1
        tuple_start = np.flatnonzero(starts)
        tuple_end = np.append(tuple_start[1:], n)
        for g in np.unique(tuple_id[late_syn]).tolist():
            lo, hi = int(tuple_start[g]), int(tuple_end[g])
            for k in _reuse_breaks(a[lo:hi].tolist(), flags[lo:hi].tolist(), seq[lo:hi].tolist()):
                starts[lo + k] = True

    cid = np.cumsum(starts) - 1
    cstart = np.flatnonzero(starts)
    count = len(cstart)
    cend = np.append(cstart[1:], n)
    position = np.arange(n)
    none = np.full(count, -1, np.int64)

    def first(mask: np.ndarray) -> np.ndarray:
        """Per connection, the position of the first row where mask holds (-1: nowhere)."""
        pos = none.copy()
        idx = np.flatnonzero(mask)
        if len(idx):
            c = cid[idx]
            keep = np.empty(len(idx), bool)
            keep[0] = True
            np.not_equal(c[1:], c[:-1], out=keep[1:])
            pos[c[keep]] = idx[keep]
        return pos

    def at(values: np.ndarray, pos: np.ndarray, missing: int = -1) -> np.ndarray:
        return np.where(pos >= 0, values[pos], missing)

    # Client: sender of the first SYN; else receiver of a SYN-ACK; else the higher (ephemeral) port,
    # and on a tie the first sender.
    pos_syn = first(pure_syn)
    pos_synack = first(syn & has_ack)
    f0 = cstart
    first_row = order[cstart]  # each connection's first segment, as a row of the unsorted columns
    by_port = np.where(t.dport[first_row] > t.sport[first_row], b[f0], a[f0])
    client_key = np.where(pos_syn >= 0, a[np.maximum(pos_syn, 0)],
                          np.where(pos_synack >= 0, b[np.maximum(pos_synack, 0)], by_port))
    from_server = a != client_key[cid]
    from_client = ~from_server

    # Handshake: SYN(x), SYN-ACK(y, ack x+1), ACK(ack y+1).
    has_syn = pos_syn >= 0
    isn_c = at(seq, pos_syn)
    synack_ok = syn & has_ack & from_server & has_syn[cid] & (ack == ((isn_c + 1) & _M32)[cid])
    pos_sa_ok = first(synack_ok)
    pos_srv_syn = first(syn & from_server)
    isn_s = np.where(pos_sa_ok >= 0, at(seq, pos_sa_ok), at(seq, pos_srv_syn))
    y1 = (at(seq, pos_sa_ok) + 1) & _M32
    third = (from_client & has_ack & ~syn & (pos_sa_ok[cid] >= 0) & (ack == y1[cid])
             & (position > pos_sa_ok[cid]))
    complete = first(third) >= 0
    refused = has_syn & (pos_srv_syn < 0) & (first(rst & from_server & (position > pos_syn[cid])) >= 0)

    # Close: first FIN and RST per side.
    big = n + 1
    fin_c, fin_s = first(fin & from_client), first(fin & from_server)
    rst_c, rst_s = first(rst & from_client), first(rst & from_server)

    def pos_or_big(p: np.ndarray) -> np.ndarray:
        return np.where(p >= 0, p, big)

    event_c = np.minimum(pos_or_big(fin_c), pos_or_big(rst_c))
    event_s = np.minimum(pos_or_big(fin_s), pos_or_big(rst_s))
    initiator = np.where(event_c < event_s, 0, np.where(event_s < event_c, 1, -1))
    first_rst = np.minimum(pos_or_big(rst_c), pos_or_big(rst_s))
    both_fins = (fin_c >= 0) & (fin_s >= 0)
    reset = (first_rst < big) & ~(both_fins & (np.maximum(fin_c, fin_s) < first_rst))
    # The initiator's FIN (F1) and the passive side's FIN (F2), for connections closed by FINs.
    fin_closed = both_fins & ~reset
    client_first = fin_c < fin_s
    f1 = np.where(client_first, fin_c, fin_s)
    f2 = np.where(client_first, fin_s, fin_c)
    f1c, f2c = np.maximum(f1, 0), np.maximum(f2, 0)
    fin_end = (seq[f1c] + plen[f1c] + np.where(syn[f1c], 1, 0) + 1) & _M32
    simultaneous = fin_closed & (~has_ack[f2c] | (_signed(ack[f2c] - fin_end) < 0))
    passive_is_server = client_first[cid]
    acks_fin = (has_ack & (from_server == passive_is_server) & (fin_closed & ~simultaneous)[cid]
                & (_signed(ack - fin_end[cid]) >= 0))
    pos_acks_fin = first(acks_fin)
    three_way = (pos_acks_fin >= 0) & fin[np.maximum(pos_acks_fin, 0)]

    # Sequence space per side: relative numbers by accumulating signed steps (wraparound-proof).
    rel = np.zeros(n, np.int64)
    retrans = [np.zeros(count, np.int64), np.zeros(count, np.int64)]
    bytes_all = [np.zeros(count, np.int64), np.zeros(count, np.int64)]
    bytes_before_peer_fin = [np.zeros(count, np.int64), np.zeros(count, np.int64)]
    syn_len = syn.astype(np.int64)
    for side, mask, isn, peer_fin in ((0, from_client, isn_c, fin_s), (1, from_server, isn_s, fin_c)):
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            continue
        c = cid[idx]
        s = seq[idx]
        group_first = np.empty(len(idx), bool)
        group_first[0] = True
        np.not_equal(c[1:], c[:-1], out=group_first[1:])
        group = np.cumsum(group_first) - 1
        base = np.where(isn[c] >= 0, isn[c], s[group_first][group])
        prev = np.empty_like(s)
        prev[0] = 0
        prev[1:] = s[:-1]
        step = _signed(np.where(group_first, s - base, s - prev))
        acc = np.cumsum(step)
        r = acc - (acc - step)[group_first][group]
        rel[idx] = r
        p = plen[idx]
        occupied_end = r + syn_len[idx] + p + fin[idx]
        # Retransmission: occupies sequence space that starts below the highest end seen before.
        key = c.astype(np.int64) << _GROUP_SHIFT
        e = key + occupied_end + _GROUP_OFFSET
        s_key = key + r + _GROUP_OFFSET
        seen = np.empty_like(e)
        seen[0] = s_key[0]
        np.maximum.accumulate(e[:-1], out=seen[1:])
        seen = np.where(group_first, s_key, seen)
        keepalive = (p <= 1) & ~syn[idx] & ~fin[idx] & (s_key == seen - 1)
        again = (occupied_end > r) & (s_key < seen) & ~keepalive
        retrans[side] = np.bincount(c[again], minlength=count)
        data = p > 0
        ps = r + syn_len[idx]
        bytes_all[side] = _union_bytes(c[data], ps[data], (ps + p)[data], count)
        before = data & ((peer_fin[c] < 0) | (idx < peer_fin[c]))
        bytes_before_peer_fin[side] = _union_bytes(c[before], ps[before], (ps + p)[before], count)

    # Half-close: what the passive side added after the initiator's first FIN.
    init_fin = np.where(initiator == 0, fin_c, np.where(initiator == 1, fin_s, -1))
    half = np.where(initiator == 0, bytes_all[1] - bytes_before_peer_fin[1],
                    bytes_all[0] - bytes_before_peer_fin[0])
    half = np.where(init_fin >= 0, half, 0)

    handshake = np.select([complete, refused, has_syn], [0, 1, 2], 3)
    kind = np.select([reset, simultaneous, fin_closed & three_way, fin_closed], [3, 2, 1, 0], 4)
    who = np.where(simultaneous, 2, initiator)

    # Endpoints from each connection's first segment.
    client_is_src = from_client[cstart]
    r0 = first_row
    c_hi = np.where(client_is_src, t.src_hi[r0], t.dst_hi[r0])
    c_lo = np.where(client_is_src, t.src_lo[r0], t.dst_lo[r0])
    s_hi = np.where(client_is_src, t.dst_hi[r0], t.src_hi[r0])
    s_lo = np.where(client_is_src, t.dst_lo[r0], t.src_lo[r0])
    c_port = np.where(client_is_src, t.sport[r0], t.dport[r0])
    s_port = np.where(client_is_src, t.dport[r0], t.sport[r0])
    c_ip = _ip_texts(c_hi, c_lo)
    s_ip = _ip_texts(s_hi, s_lo)
    time = t.time[order]
    t_start = np.minimum.reduceat(time, cstart)
    t_end = np.maximum.reduceat(time, cstart)

    # Report connections in the order their first segment was captured.
    by_time = np.argsort(t.frame[r0], kind="stable")
    handshakes = ("complete", "refused", "incomplete", "none")
    kinds = ("four-way", "three-way", "simultaneous", "reset", "open")
    whos = {0: "client", 1: "server", 2: "both", -1: None}
    c_ip = [c_ip[i] for i in by_time.tolist()]
    s_ip = [s_ip[i] for i in by_time.tolist()]
    columns = zip(*(np.asarray(x)[by_time].tolist() for x in (
        c_port, s_port, handshake, isn_c, isn_s, kind, who, bytes_all[0], bytes_all[1], half, retrans[0],
        retrans[1], t_start, t_end, cstart, cend)))

    def source(lo: int, hi: int) -> list[Segment]:
        return load(order[lo:hi])

    conns = []
    append = conns.append
    with _gc_paused():
        for cip, sip, (cport, sport, hs, xc, xs, k, w, bc, bs, hb, rc, rs, t0, t1, lo, hi) in zip(c_ip, s_ip, columns):
            append(Connection(
                Endpoint(cip, cport), Endpoint(sip, sport), handshakes[hs],
                {"client": xc if xc >= 0 else None, "server": xs if xs >= 0 else None},
                kinds[k], whos[w], bc, bs, hb, {"client": rc, "server": rs}, t0, t1, hi - lo, source, lo, hi))
    return conns
