"""Group TCP segments into connections and classify each one by the definitions of docs/trace.md.

Why vectorised: a load test captures 100,000 connections; a Python loop per segment would dominate
the run. So the classifier works on columns: one direction-independent key per segment, one stable
sort that puts every connection's segments together in capture order, and then each fact
("first FIN from the client", "first server segment after it that acknowledges the FIN") is a
masked first-occurrence per connection. Python runs per *connection* only to build result objects,
and per segment only for the rare 4-tuples that carry several connections (port reuse, a 4-tuple
silent for long).

Sequence numbers are compared modulo 2^32 throughout: ``(a - b)`` is cast to a signed 32-bit
integer, so a connection whose numbers wrap past 2^32 is classified like any other -- and only
segments sent after the FIN are asked whether they acknowledge it, because a difference is only
meaningful within 2^31 bytes.

The result is a :class:`ConnectionTable` (one row of NumPy columns per connection): the whole-file
reader turns it into :class:`Connection` objects, the chunked reader (``stream.py``) keeps the rows
of connections still open and prints the others straight from the columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .addresses import factorize, gc_paused, ip_int, ip_texts, mac_text
from .columns import ConnectionTable, TcpColumns, clock_of, tuple_keys
from .constants import (
    ACK,
    CLOSE_KIND_OF_CODE,
    CLOSED_QUIET_SECONDS,
    CLOSER_OF_CODE,
    FIN,
    HANDSHAKE_OF_CODE,
    OPEN_QUIET_SECONDS,
    RST,
    SEQ_MODULO,
    SYN,
    CloseCode,
    CloserCode,
    HandshakeCode,
    LinkType,
)
from .frames import Frames
from .model import Connection, Endpoint, Segment
from .sequence import first_in_group, last_in_group, sequence_space, signed

__all__ = ["analyse", "by_four_tuple", "classify_frames", "classify_segments", "connections_of"]

_M32 = SEQ_MODULO - 1
_U64 = 1 << 64


def classify_frames(frames: Frames) -> list[Connection]:
    """Every TCP connection in a frame table, in order of their first segment."""
    rows = np.flatnonzero(frames.has_tcp)
    tcp = TcpColumns.from_frames(frames)
    table, order = analyse(tcp)
    source = _FrameSegments(frames, rows)
    return connections_of(table, lambda lo, hi: source.segments(order[lo:hi]))


def classify_segments(segments: Sequence[Segment]) -> list[Connection]:
    """Classify hand-made segments (tests, experiments' expectations) with the very same code."""
    n = len(segments)
    src = [ip_int(s.src.ip) for s in segments]
    dst = [ip_int(s.dst.ip) for s in segments]
    time = np.array([s.time for s in segments], np.float64).reshape(n)
    tcp = TcpColumns(
        np.array([s.frame for s in segments], np.int64).reshape(n), time, clock_of(time, -np.inf),
        np.array([a >> 64 for a in src], np.uint64).reshape(n),
        np.array([a % _U64 for a in src], np.uint64).reshape(n),
        np.array([a >> 64 for a in dst], np.uint64).reshape(n),
        np.array([a % _U64 for a in dst], np.uint64).reshape(n),
        np.array([s.src.port for s in segments], np.int64).reshape(n),
        np.array([s.dst.port for s in segments], np.int64).reshape(n),
        np.array([s.seq % SEQ_MODULO for s in segments], np.uint32).reshape(n),
        np.array([s.ack % SEQ_MODULO for s in segments], np.uint32).reshape(n),
        np.array([s.flags for s in segments], np.uint8).reshape(n),
        np.array([s.payload_len for s in segments], np.uint32).reshape(n),
    )
    table, order = analyse(tcp)
    return connections_of(table, lambda lo, hi: [segments[i] for i in order[lo:hi].tolist()])


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
        ethernet = (f.linktype[r] == LinkType.ETHERNET).tolist()
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


def connections_of(table: ConnectionTable, load: Callable[[int, int], list[Segment]] | None) -> list[Connection]:
    """Connection objects for the table's rows; ``load(lo, hi)`` gives a connection's segments."""
    client_ip = ip_texts(table.client_hi, table.client_lo)
    server_ip = ip_texts(table.server_hi, table.server_lo)
    columns = zip(client_ip, server_ip, *(getattr(table, name).tolist() for name in (
        "client_port", "server_port", "handshake", "isn_client", "isn_server", "close_kind", "closer", "bytes_client",
        "bytes_server", "half_close", "retrans_client", "retrans_server", "start", "end", "segments", "row_lo",
        "row_hi")))
    conns = []
    append = conns.append
    with gc_paused():
        for cip, sip, cport, sport, hs, xc, xs, k, w, bc, bs, hb, rc, rs, t0, t1, count, lo, hi in columns:
            append(Connection(
                Endpoint(cip, cport), Endpoint(sip, sport), HANDSHAKE_OF_CODE[hs],
                {"client": xc if xc >= 0 else None, "server": xs if xs >= 0 else None},
                CLOSE_KIND_OF_CODE[k], CLOSER_OF_CODE[w], bc, bs, hb, {"client": rc, "server": rs}, t0, t1, count,
                load, lo, hi))
    return conns


# --------------------------------------------------------------------------------------------------
# The classifier


def _endpoint_keys(t: TcpColumns) -> tuple[np.ndarray, np.ndarray]:
    """One int64 per (address, port): 48 bits for IPv4 captures, a dense address number otherwise."""
    v4 = not (t.src_hi.any() or t.dst_hi.any()) and bool(
        np.all((t.src_lo >> np.uint64(32)) == 0xFFFF) and np.all((t.dst_lo >> np.uint64(32)) == 0xFFFF))
    if v4:
        src = (t.src_lo & np.uint64(_M32)).astype(np.int64)
        dst = (t.dst_lo & np.uint64(_M32)).astype(np.int64)
    else:
        n = len(t.src_hi)
        ids, _ = factorize(np.concatenate([t.src_hi, t.dst_hi]), np.concatenate([t.src_lo, t.dst_lo]))
        src, dst = ids[:n], ids[n:]
    return (src << 16) | t.sport.astype(np.int64), (dst << 16) | t.dport.astype(np.int64)


def by_four_tuple(t: TcpColumns) -> np.ndarray:
    """The rows of ``t`` grouped by 4-tuple (either direction), capture order kept inside each: the
    first step of :func:`analyse`, which runs much faster on rows already in this order."""
    a, b = _endpoint_keys(t)
    return np.lexsort((np.maximum(a, b), np.minimum(a, b)))  # stable: capture order survives in a 4-tuple


def _breaks(src: list[int], dst: list[int], flags: list[int], seq: list[int], quiet: list[float]) -> list[int]:
    """Positions within one 4-tuple's segments where a new connection starts.

    A SYN without ACK starts a new connection when the current one has ended, when it comes from a
    side whose SYN had another ISN, or when the current one never had a SYN (its earlier segments
    belonged to an incarnation whose start the capture missed). A retransmitted SYN (same ISN) and
    the peer's SYN of a simultaneous open stay in the current connection. Any segment starts a new
    connection after the 4-tuple was silent longer than CLOSED_QUIET_SECONDS once the current one
    had ended, or OPEN_QUIET_SECONDS in any case. "Ended" is the classifier's: a FIN with ACK from
    each side, or an RST whose receiver has not spoken since (one that did ignored it).
    """
    breaks = []
    isn: dict[int, int] = {}
    fins: set[int] = set()
    reset_of: set[int] = set()  # receivers of an RST that have sent nothing but RSTs since
    for i, (s, d, f, q, gap) in enumerate(zip(src, dst, flags, seq, quiet)):
        if i > 0:
            ended = len(fins) == 2 or bool(reset_of)
            if (f & (SYN | ACK) == SYN and (ended or not isn or isn.get(s, q) != q)) \
                    or gap > OPEN_QUIET_SECONDS or (ended and gap > CLOSED_QUIET_SECONDS):
                breaks.append(i)
                isn, fins, reset_of = {}, set(), set()
        if f & (SYN | ACK) == SYN:
            isn.setdefault(s, q)
        if f & (FIN | ACK) == FIN | ACK:
            fins.add(s)
        if f & RST:
            reset_of.add(d)
        else:
            reset_of.discard(s)
    return breaks


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
        return first_in_group(self.cid, mask, self.count)

    def last(self, mask: np.ndarray) -> np.ndarray:
        """Per connection, the sorted row of the last segment where mask holds (-1: none)."""
        return last_in_group(self.cid, mask, self.count)


def _at(values: np.ndarray, pos: np.ndarray, missing: int = -1) -> np.ndarray:
    """values[pos] per connection, ``missing`` where pos is -1."""
    return np.where(pos >= 0, values[np.maximum(pos, 0)], missing)


def _sort_into_connections(t: TcpColumns) -> _Rows:
    """Sort segments by 4-tuple, keeping capture order, and cut each 4-tuple where a new connection starts."""
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
    time = t.time[order]
    # How long the 4-tuple had been silent when each segment came (capture clock - previous segment).
    quiet = np.zeros(n)
    quiet[1:] = t.clock[order][1:] - time[:-1]
    quiet[starts] = 0.0

    # Only 4-tuples with a SYN after their first segment, or a long silence, can hold several connections.
    candidate = (((flags & (SYN | ACK)) == SYN) | (quiet > min(CLOSED_QUIET_SECONDS, OPEN_QUIET_SECONDS))) & ~starts
    if candidate.any():
        tuple_id = np.cumsum(starts) - 1
        tuple_start = np.flatnonzero(starts)
        tuple_end = np.append(tuple_start[1:], n)
        for g in np.unique(tuple_id[candidate]).tolist():
            lo, hi = int(tuple_start[g]), int(tuple_end[g])
            for k in _breaks(a[lo:hi].tolist(), b[lo:hi].tolist(), flags[lo:hi].tolist(), seq[lo:hi].tolist(),
                             quiet[lo:hi].tolist()):
                starts[lo + k] = True
    return _Rows(order, np.cumsum(starts) - 1, np.flatnonzero(starts), a, b, flags, seq,
                 t.ack[order].astype(np.int64), t.plen[order].astype(np.int64))


def _from_server(r: _Rows, t: TcpColumns) -> np.ndarray:
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
    """(HandshakeCode, client ISN, server ISN) per connection.

    complete: SYN(x), SYN-ACK(y) with ack x+1 -- or x+1+data when the SYN carried data (TCP Fast
    Open) and the server took it -- then ACK with ack y+1; refused: the server answered the SYN with
    RST and never sent a SYN; incomplete: any other SYN; none: no SYN seen.
    """
    cid = r.cid
    pos_syn = r.first(r.syn & ~r.has_ack & ~from_server)
    has_syn = pos_syn >= 0
    isn_c = _at(r.seq, pos_syn)
    x1 = ((isn_c + 1) & _M32)[cid]
    x1_data = ((isn_c + 1 + _at(r.plen, pos_syn, 0)) & _M32)[cid]
    synack_ok = r.syn & r.has_ack & from_server & has_syn[cid] & ((r.ack == x1) | (r.ack == x1_data))
    pos_synack = r.first(synack_ok)
    pos_srv_syn = r.first(r.syn & from_server)
    isn_s = np.where(pos_synack >= 0, _at(r.seq, pos_synack), _at(r.seq, pos_srv_syn))
    y1 = (_at(r.seq, pos_synack) + 1) & _M32
    third = (~from_server & r.has_ack & ~r.syn & (pos_synack[cid] >= 0) & (r.ack == y1[cid])
             & (r.position > pos_synack[cid]))
    complete = r.first(third) >= 0
    refused = has_syn & (pos_srv_syn < 0) & (r.first(r.rst & from_server & (r.position > pos_syn[cid])) >= 0)
    code = np.select([complete, refused, has_syn], [HandshakeCode.COMPLETE, HandshakeCode.REFUSED,
                                                    HandshakeCode.INCOMPLETE], HandshakeCode.NONE)
    return code, isn_c, isn_s


@dataclass
class _Close:
    kind: np.ndarray  # CloseCode
    initiator: np.ndarray  # CloserCode of who sent the first FIN or RST
    fin: tuple[np.ndarray, np.ndarray]  # first FIN row of the client, of the server (-1: none)
    ended: np.ndarray


def _close(r: _Rows, from_server: np.ndarray) -> _Close:
    """How each connection ended (the rules and the reasons for them are in docs/trace.md).

    Only a FIN with ACK counts (a receiver drops a FIN without ACK), and only an RST that its
    receiver did not ignore (it sent nothing but RSTs afterwards). reset: such an RST came before
    both FINs had been seen; simultaneous: the passive side's FIN does not acknowledge the
    initiator's FIN (it left before that FIN arrived, wherever the capture was taken); three-way:
    the first passive segment *after* the initiator's FIN that acknowledges it (seq + payload + 1)
    is the passive FIN itself; four-way: it is not; open: not both FINs (the initiator is still named).
    """
    cid = r.cid
    big = len(cid) + 1
    from_client = ~from_server
    fin = r.fin & r.has_ack
    fin_c, fin_s = r.first(fin & from_client), r.first(fin & from_server)
    spoke_c, spoke_s = r.last(~r.rst & from_client), r.last(~r.rst & from_server)
    receiver_spoke_later = np.where(from_server, spoke_c[cid], spoke_s[cid]) > r.position
    effective_rst = r.rst & ~receiver_spoke_later
    rst_c, rst_s = r.first(effective_rst & from_client), r.first(effective_rst & from_server)

    def or_big(p: np.ndarray) -> np.ndarray:
        return np.where(p >= 0, p, big)

    event_c = np.minimum(or_big(fin_c), or_big(rst_c))
    event_s = np.minimum(or_big(fin_s), or_big(rst_s))
    initiator = np.where(event_c < event_s, CloserCode.CLIENT,
                         np.where(event_s < event_c, CloserCode.SERVER, CloserCode.NOBODY))
    first_rst = np.minimum(or_big(rst_c), or_big(rst_s))
    both_fins = (fin_c >= 0) & (fin_s >= 0)
    reset = (first_rst < big) & ~(both_fins & (np.maximum(fin_c, fin_s) < first_rst))

    fin_closed = both_fins & ~reset
    client_first = fin_c < fin_s
    f1 = np.maximum(np.where(client_first, fin_c, fin_s), 0)  # the initiator's FIN
    f2 = np.maximum(np.where(client_first, fin_s, fin_c), 0)  # the passive side's FIN
    fin_end = (r.seq[f1] + r.plen[f1] + r.syn[f1] + 1) & _M32  # the ack that covers F1
    simultaneous = fin_closed & (signed(r.ack[f2] - fin_end) < 0)
    acks_fin = (r.has_ack & (from_server == client_first[cid]) & (fin_closed & ~simultaneous)[cid]
                & (r.position > f1[cid]) & (signed(r.ack - fin_end[cid]) >= 0))
    pos_acks_fin = r.first(acks_fin)
    three_way = (pos_acks_fin >= 0) & r.fin[np.maximum(pos_acks_fin, 0)]
    kind = np.select([reset, simultaneous, fin_closed & three_way, fin_closed],
                     [CloseCode.RESET, CloseCode.SIMULTANEOUS, CloseCode.THREE_WAY, CloseCode.FOUR_WAY],
                     CloseCode.OPEN)
    return _Close(kind, initiator, (fin_c, fin_s), both_fins | (first_rst < big))


def analyse(t: TcpColumns) -> tuple[ConnectionTable, np.ndarray]:
    """Classify every connection of the segments ``t``; return the table (in order of each
    connection's first segment) and the sorted-row order its ``row_lo:row_hi`` ranges refer to."""
    if len(t) == 0:
        return ConnectionTable.empty(), np.zeros(0, np.int64)
    r = _sort_into_connections(t)
    from_server = _from_server(r, t)
    handshake, isn_c, isn_s = _handshake(r, from_server)
    close = _close(r, from_server)
    fin_c, fin_s = close.fin
    client = sequence_space(r.cid, r.count, r.seq, r.plen, r.syn, r.fin, ~from_server, isn_c, fin_s)
    server = sequence_space(r.cid, r.count, r.seq, r.plen, r.syn, r.fin, from_server, isn_s, fin_c)
    # Half-close: what the passive side added after the initiator's first FIN.
    half = np.select([(close.initiator == CloserCode.CLIENT) & (fin_c >= 0),
                      (close.initiator == CloserCode.SERVER) & (fin_s >= 0)],
                     [server.payload - server.before_peer_fin, client.payload - client.before_peer_fin], 0)
    who = np.where(close.kind == CloseCode.SIMULTANEOUS, CloserCode.BOTH, close.initiator)
    segments = r.end - r.start
    retrans_c, retrans_s = client.retransmissions, server.retransmissions
    if t.count is not None:  # rows that stand for several segments (a summarised long connection)
        segments = np.add.reduceat(t.counts()[r.order], r.start)
        again = t.retransmissions()[r.order]
        retrans_c = retrans_c + np.bincount(r.cid, weights=np.where(from_server, 0, again), minlength=r.count)
        retrans_s = retrans_s + np.bincount(r.cid, weights=np.where(from_server, again, 0), minlength=r.count)
        retrans_c, retrans_s = retrans_c.astype(np.int64), retrans_s.astype(np.int64)

    # Endpoints from each connection's first segment; connections in order of that segment.
    r0 = r.order[r.start]
    c_src = ~from_server[r.start]
    time = t.time[r.order]
    by_time = np.argsort(t.frame[r0], kind="stable")
    table = ConnectionTable(
        t.frame[r0].astype(np.int64),
        tuple_keys(t.src_hi[r0], t.src_lo[r0], t.sport[r0], t.dst_hi[r0], t.dst_lo[r0], t.dport[r0]),
        np.where(c_src, t.src_hi[r0], t.dst_hi[r0]), np.where(c_src, t.src_lo[r0], t.dst_lo[r0]),
        np.where(c_src, t.sport[r0], t.dport[r0]).astype(np.int64),
        np.where(c_src, t.dst_hi[r0], t.src_hi[r0]), np.where(c_src, t.dst_lo[r0], t.src_lo[r0]),
        np.where(c_src, t.dport[r0], t.sport[r0]).astype(np.int64),
        handshake, isn_c, isn_s, close.kind, who, client.payload, server.payload, half,
        retrans_c, retrans_s, np.minimum.reduceat(time, r.start),
        np.maximum.reduceat(time, r.start), time[r.end - 1], segments, close.ended, r.start, r.end)
    return table.select(by_time), r.order
