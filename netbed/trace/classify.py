"""Group TCP segments into connections and classify each one by docs/design.md's definitions.

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

from .model import ACK, CLOSE_KINDS, FIN, HANDSHAKES, RST, SYN, Connection, Endpoint, Segment
from .pcap import Frames

__all__ = ["classify_frames", "classify_segments", "gc_paused", "ip_texts", "mac_text"]

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


def _factorize(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a dense number per 128-bit address, one row holding each distinct address).

    A lexsort over the two halves: ``np.unique(axis=0)`` does the same but is ~10x slower.
    """
    order = np.lexsort((lo, hi))
    hs, ls = hi[order], lo[order]
    new = np.empty(len(order), bool)
    new[:1] = True
    np.not_equal(hs[1:], hs[:-1], out=new[1:])
    new[1:] |= ls[1:] != ls[:-1]
    ids = np.empty(len(order), np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids, order[new]


def ip_texts(hi: np.ndarray, lo: np.ndarray) -> list[str]:
    """Text form of each (hi, lo) address, formatting every distinct address only once."""
    if len(hi) == 0:
        return []
    ids, rows = _factorize(hi, lo)
    texts = [_ip_text(h, v) for h, v in zip(hi[rows].tolist(), lo[rows].tolist())]
    return [texts[i] for i in ids.tolist()]


def _ip_text(hi: int, lo: int) -> str:
    if hi == 0 and lo >> 32 == 0xFFFF:
        return socket.inet_ntoa((lo & _M32).to_bytes(4, "big"))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def mac_text(mac: int) -> str:
    return ":".join(f"{b:02x}" for b in mac.to_bytes(6, "big"))


class _FrameSegments:
    """Builds ``Segment`` objects for a connection's rows only when somebody asks for them."""

    def __init__(self, frames: Frames, tcp_rows: np.ndarray) -> None:
        self.frames = frames
        self.tcp_rows = tcp_rows

    def segments(self, rows: np.ndarray) -> list[Segment]:
        f = self.frames
        r = self.tcp_rows[rows]
        src_ip = ip_texts(f.src_ip6_hi[r], f.src_ip6_lo[r])
        dst_ip = ip_texts(f.dst_ip6_hi[r], f.dst_ip6_lo[r])
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
                mac_text(src_mac[i]) if ethernet[i] or src_mac[i] else None,
                mac_text(dst_mac[i]) if ethernet[i] or dst_mac[i] else None))
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
        ids, _ = _factorize(np.concatenate([t.src_hi, t.dst_hi]), np.concatenate([t.src_lo, t.dst_lo]))
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
def gc_paused() -> Iterator[None]:
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


@dataclass
class _Rows:
    """All TCP segments sorted by connection (capture order inside one), with their flag bits."""

    order: np.ndarray  # sorted row -> row of the unsorted columns
    cid: np.ndarray  # sorted row -> connection number
    start: np.ndarray  # connection number -> its first sorted row
    src: np.ndarray  # endpoint key of the sender
    dst: np.ndarray
    flags: np.ndarray  # int64 from here on: sequence arithmetic reduced modulo 2^32 where it matters
    seq: np.ndarray
    ack: np.ndarray
    plen: np.ndarray

    def __post_init__(self) -> None:
        self.syn = (self.flags & SYN) != 0
        self.fin = (self.flags & FIN) != 0
        self.rst = (self.flags & RST) != 0
        self.has_ack = (self.flags & ACK) != 0
        self.count = len(self.start)
        self.end = np.append(self.start[1:], len(self.cid))
        self.position = np.arange(len(self.cid))

    def first(self, mask: np.ndarray) -> np.ndarray:
        """Per connection, the sorted row of the first segment where mask holds (-1: none)."""
        pos = np.full(self.count, -1, np.int64)
        idx = np.flatnonzero(mask)
        if len(idx):
            c = self.cid[idx]
            keep = np.empty(len(idx), bool)
            keep[0] = True
            np.not_equal(c[1:], c[:-1], out=keep[1:])
            pos[c[keep]] = idx[keep]
        return pos


def _at(values: np.ndarray, pos: np.ndarray, missing: int = -1) -> np.ndarray:
    """values[pos] per connection, ``missing`` where pos is -1."""
    return np.where(pos >= 0, values[np.maximum(pos, 0)], missing)


def _sort_into_connections(t: _Tcp) -> _Rows:
    """Sort segments by 4-tuple, keeping capture order, and cut each 4-tuple at port reuse."""
    a, b = _endpoint_keys(t)
    low, high = np.minimum(a, b), np.maximum(a, b)
    order = np.lexsort((high, low))  # stable: capture order survives inside a 4-tuple
    low, high = low[order], high[order]
    n = len(order)
    starts = np.empty(n, bool)
    starts[0] = True
    np.not_equal(low[1:], low[:-1], out=starts[1:])
    starts[1:] |= high[1:] != high[:-1]
    a, b = a[order], b[order]
    flags = t.flags[order].astype(np.int64)
    seq = t.seq[order].astype(np.int64)

    # Only 4-tuples with a SYN after their first segment can hold several connections.
    late_syn = ((flags & (SYN | ACK)) == SYN) & ~starts
    if late_syn.any():
        tuple_id = np.cumsum(starts) - 1
        tuple_start = np.flatnonzero(starts)
        tuple_end = np.append(tuple_start[1:], n)
        for g in np.unique(tuple_id[late_syn]).tolist():
            lo, hi = int(tuple_start[g]), int(tuple_end[g])
            for k in _reuse_breaks(a[lo:hi].tolist(), flags[lo:hi].tolist(), seq[lo:hi].tolist()):
                starts[lo + k] = True
    return _Rows(order, np.cumsum(starts) - 1, np.flatnonzero(starts), a, b, flags, seq,
                 t.ack[order].astype(np.int64), t.plen[order].astype(np.int64))


def _from_server(r: _Rows, t: _Tcp) -> np.ndarray:
    """Which segments the server sent. The client sent the first SYN; without one, it received a
    SYN-ACK; without that either (capture began mid-connection), it has the higher (ephemeral)
    port, and on equal ports it is the first sender."""
    pos_syn = r.first(r.syn & ~r.has_ack)
    pos_synack = r.first(r.syn & r.has_ack)
    first_row = r.order[r.start]
    by_port = np.where(t.dport[first_row] > t.sport[first_row], r.dst[r.start], r.src[r.start])
    client = np.where(pos_syn >= 0, _at(r.src, pos_syn), np.where(pos_synack >= 0, _at(r.dst, pos_synack), by_port))
    return r.src != client[r.cid]


def _handshake(r: _Rows, from_server: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(handshake code, client ISN, server ISN) per connection; the code indexes model.HANDSHAKES.

    complete: SYN(x), SYN-ACK(y) with ack x+1, then ACK with ack y+1; refused: the server answered
    the SYN with RST and never sent a SYN; incomplete: any other SYN; none: no SYN seen.
    """
    cid = r.cid
    pos_syn = r.first(r.syn & ~r.has_ack & ~from_server)
    has_syn = pos_syn >= 0
    isn_c = _at(r.seq, pos_syn)
    synack_ok = r.syn & r.has_ack & from_server & has_syn[cid] & (r.ack == ((isn_c + 1) & _M32)[cid])
    pos_synack = r.first(synack_ok)
    pos_srv_syn = r.first(r.syn & from_server)
    isn_s = np.where(pos_synack >= 0, _at(r.seq, pos_synack), _at(r.seq, pos_srv_syn))
    y1 = (_at(r.seq, pos_synack) + 1) & _M32
    third = (~from_server & r.has_ack & ~r.syn & (pos_synack[cid] >= 0) & (r.ack == y1[cid])
             & (r.position > pos_synack[cid]))
    complete = r.first(third) >= 0
    refused = has_syn & (pos_srv_syn < 0) & (r.first(r.rst & from_server & (r.position > pos_syn[cid])) >= 0)
    return np.select([complete, refused, has_syn], [0, 1, 2], 3), isn_c, isn_s


@dataclass
class _Close:
    kind: np.ndarray  # index into CLOSE_KINDS (model.py)
    initiator: np.ndarray  # 0 client, 1 server, -1 none: who sent the first FIN or RST
    fin: tuple[np.ndarray, np.ndarray]  # first FIN row of the client, of the server (-1: none)


def _close(r: _Rows, from_server: np.ndarray) -> _Close:
    """How each connection ended.

    reset: an RST came before both FINs had been seen; simultaneous: the passive side's FIN does not
    acknowledge the initiator's FIN (it left before that FIN arrived, wherever the capture was
    taken); three-way: the first passive segment that acknowledges the initiator's FIN is the
    passive FIN itself; four-way: it is not; open: not both FINs (the initiator is still named).
    """
    cid = r.cid
    big = len(cid) + 1
    from_client = ~from_server
    fin_c, fin_s = r.first(r.fin & from_client), r.first(r.fin & from_server)
    rst_c, rst_s = r.first(r.rst & from_client), r.first(r.rst & from_server)

    def or_big(p: np.ndarray) -> np.ndarray:
        return np.where(p >= 0, p, big)

    event_c = np.minimum(or_big(fin_c), or_big(rst_c))
    event_s = np.minimum(or_big(fin_s), or_big(rst_s))
    initiator = np.where(event_c < event_s, 0, np.where(event_s < event_c, 1, -1))
    first_rst = np.minimum(or_big(rst_c), or_big(rst_s))
    both_fins = (fin_c >= 0) & (fin_s >= 0)
    reset = (first_rst < big) & ~(both_fins & (np.maximum(fin_c, fin_s) < first_rst))

    fin_closed = both_fins & ~reset
    client_first = fin_c < fin_s
    f1 = np.maximum(np.where(client_first, fin_c, fin_s), 0)  # the initiator's FIN
    f2 = np.maximum(np.where(client_first, fin_s, fin_c), 0)  # the passive side's FIN
    fin_end = (r.seq[f1] + r.plen[f1] + r.syn[f1] + 1) & _M32  # the ack that covers F1
    simultaneous = fin_closed & (~r.has_ack[f2] | (_signed(r.ack[f2] - fin_end) < 0))
    acks_fin = (r.has_ack & (from_server == client_first[cid]) & (fin_closed & ~simultaneous)[cid]
                & (_signed(r.ack - fin_end[cid]) >= 0))
    pos_acks_fin = r.first(acks_fin)
    three_way = (pos_acks_fin >= 0) & r.fin[np.maximum(pos_acks_fin, 0)]
    kind = np.select([reset, simultaneous, fin_closed & three_way, fin_closed], [3, 2, 1, 0], 4)
    return _Close(kind, initiator, (fin_c, fin_s))


@dataclass
class _Bytes:
    payload: np.ndarray  # distinct payload bytes per connection
    before_peer_fin: np.ndarray  # ... of them sent before the other side's first FIN (capture order)
    retransmissions: np.ndarray


def _sequence_space(r: _Rows, mine: np.ndarray, isn: np.ndarray, peer_fin: np.ndarray) -> _Bytes:
    """Bytes and retransmissions of one side (``mine``: its segments) per connection.

    Relative sequence numbers come from accumulating signed 32-bit steps between consecutive
    segments, so numbers that wrap past 2^32 keep counting up. The base is the side's ISN, or its
    first sequence number seen when the SYN was not captured.
    """
    count = r.count
    idx = np.flatnonzero(mine)
    if len(idx) == 0:
        zero = np.zeros(count, np.int64)
        return _Bytes(zero, zero, zero)
    c = r.cid[idx]
    s = r.seq[idx]
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
    rel = acc - (acc - step)[group_first][group]

    syn = r.syn[idx].astype(np.int64)
    fin = r.fin[idx]
    p = r.plen[idx]
    # Retransmission: occupies sequence space starting below the highest end this side reached
    # before (keep-alive probes, one byte below that end, excepted).
    key = c << _GROUP_SHIFT
    start_key = key + rel + _GROUP_OFFSET
    end_key = start_key + syn + p + fin
    reached = np.empty_like(end_key)
    reached[0] = start_key[0]
    np.maximum.accumulate(end_key[:-1], out=reached[1:])
    reached = np.where(group_first, start_key, reached)
    keepalive = (p <= 1) & (syn == 0) & ~fin & (start_key == reached - 1)
    again = (end_key > start_key) & (start_key < reached) & ~keepalive

    data = p > 0
    first_byte = rel + syn
    before = data & ((peer_fin[c] < 0) | (idx < peer_fin[c]))
    return _Bytes(_union_bytes(c[data], first_byte[data], (first_byte + p)[data], count),
                  _union_bytes(c[before], first_byte[before], (first_byte + p)[before], count),
                  np.bincount(c[again], minlength=count))


_WHO = {0: "client", 1: "server", 2: "both", -1: None}


def _classify(t: _Tcp, load: Callable[[np.ndarray], list[Segment]]) -> list[Connection]:
    if len(t.frame) == 0:
        return []
    r = _sort_into_connections(t)
    from_server = _from_server(r, t)
    handshake, isn_c, isn_s = _handshake(r, from_server)
    close = _close(r, from_server)
    fin_c, fin_s = close.fin
    client = _sequence_space(r, ~from_server, isn_c, fin_s)
    server = _sequence_space(r, from_server, isn_s, fin_c)
    # Half-close: what the passive side added after the initiator's first FIN.
    half = np.select([(close.initiator == 0) & (fin_c >= 0), (close.initiator == 1) & (fin_s >= 0)],
                     [server.payload - server.before_peer_fin, client.payload - client.before_peer_fin], 0)
    who = np.where(close.kind == 2, 2, close.initiator)

    # Endpoints from each connection's first segment; connections in order of that segment.
    r0 = r.order[r.start]
    client_is_src = ~from_server[r.start]
    c_ip = ip_texts(np.where(client_is_src, t.src_hi[r0], t.dst_hi[r0]),
                     np.where(client_is_src, t.src_lo[r0], t.dst_lo[r0]))
    s_ip = ip_texts(np.where(client_is_src, t.dst_hi[r0], t.src_hi[r0]),
                     np.where(client_is_src, t.dst_lo[r0], t.src_lo[r0]))
    time = t.time[r.order]
    by_time = np.argsort(t.frame[r0], kind="stable")
    columns = zip(
        [c_ip[i] for i in by_time.tolist()], [s_ip[i] for i in by_time.tolist()],
        *(np.asarray(x)[by_time].tolist() for x in (
            np.where(client_is_src, t.sport[r0], t.dport[r0]), np.where(client_is_src, t.dport[r0], t.sport[r0]),
            handshake, isn_c, isn_s, close.kind, who, client.payload, server.payload, half,
            client.retransmissions, server.retransmissions, np.minimum.reduceat(time, r.start),
            np.maximum.reduceat(time, r.start), r.start, r.end)))

    def source(lo: int, hi: int) -> list[Segment]:
        return load(r.order[lo:hi])

    conns = []
    append = conns.append
    with gc_paused():
        for cip, sip, cport, sport, hs, xc, xs, k, w, bc, bs, hb, rc, rs, t0, t1, lo, hi in columns:
            append(Connection(
                Endpoint(cip, cport), Endpoint(sip, sport), HANDSHAKES[hs],
                {"client": xc if xc >= 0 else None, "server": xs if xs >= 0 else None},
                CLOSE_KINDS[k], _WHO[w], bc, bs, hb, {"client": rc, "server": rs}, t0, t1, hi - lo, source, lo, hi))
    return conns
