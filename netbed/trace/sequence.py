"""Sequence-space arithmetic per connection, on columns grouped by connection (see classify.py).

Why apart: these are the parts of the classifier that know TCP's numbering -- modulo 2^32
differences, distinct bytes counted once, retransmissions -- and nothing about flags or verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Bytes", "first_in_group", "last_in_group", "sequence_space", "signed", "union_bytes"]

_GROUP_SHIFT = 42  # connection id << 42 keeps per-connection sequence ranges apart in one int64 axis
_GROUP_OFFSET = 1 << 41


def signed(x: np.ndarray) -> np.ndarray:
    """A difference of sequence numbers read modulo 2^32 as a signed 32-bit number."""
    return x.astype(np.int32).astype(np.int64)


def first_in_group(group: np.ndarray, mask: np.ndarray, count: int) -> np.ndarray:
    """Per group (rows sorted by group), the first row where mask holds (-1: none)."""
    pos = np.full(count, -1, np.int64)
    idx = np.flatnonzero(mask)
    if len(idx):
        c = group[idx]
        keep = np.empty(len(idx), bool)
        keep[0] = True
        np.not_equal(c[1:], c[:-1], out=keep[1:])
        pos[c[keep]] = idx[keep]
    return pos


def last_in_group(group: np.ndarray, mask: np.ndarray, count: int) -> np.ndarray:
    """Per group (rows sorted by group), the last row where mask holds (-1: none)."""
    pos = np.full(count, -1, np.int64)
    idx = np.flatnonzero(mask)
    if len(idx):
        c = group[idx]
        keep = np.empty(len(idx), bool)
        keep[-1] = True
        np.not_equal(c[1:], c[:-1], out=keep[:-1])
        pos[c[keep]] = idx[keep]
    return pos


def union_bytes(conn: np.ndarray, start: np.ndarray, end: np.ndarray, count: int) -> np.ndarray:
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
class Bytes:
    payload: np.ndarray  # distinct payload bytes per connection
    before_peer_fin: np.ndarray  # ... of them sent before the other side's first FIN (capture order)
    retransmissions: np.ndarray


def sequence_space(cid: np.ndarray, count: int, seq: np.ndarray, plen: np.ndarray, syn: np.ndarray,
                   fin: np.ndarray, mine: np.ndarray, isn: np.ndarray, peer_fin: np.ndarray) -> Bytes:
    """Bytes and retransmissions of one side (``mine``: its segments) per connection.

    Relative sequence numbers come from accumulating signed 32-bit steps between consecutive
    segments, so numbers that wrap past 2^32 keep counting up. The base is the side's ISN, or its
    first sequence number seen when the SYN was not captured. Payload sizes come from the IP
    length, so a capture cut to its headers counts the bytes that were sent, not those it kept.
    """
    idx = np.flatnonzero(mine)
    if len(idx) == 0:
        zero = np.zeros(count, np.int64)
        return Bytes(zero, zero, zero)
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
    step = signed(np.where(group_first, s - base, s - prev))
    acc = np.cumsum(step)
    rel = acc - (acc - step)[group_first][group]

    syn_i = syn[idx].astype(np.int64)
    fin_i = fin[idx]
    p = plen[idx]
    # Retransmission: occupies sequence space starting below the highest end this side reached
    # before (keep-alive probes, one byte below that end, excepted).
    key = c << _GROUP_SHIFT
    start_key = key + rel + _GROUP_OFFSET
    end_key = start_key + syn_i + p + fin_i
    reached = np.empty_like(end_key)
    reached[0] = start_key[0]
    np.maximum.accumulate(end_key[:-1], out=reached[1:])
    reached = np.where(group_first, start_key, reached)
    keepalive = (p <= 1) & (syn_i == 0) & ~fin_i & (start_key == reached - 1)
    again = (end_key > start_key) & (start_key < reached) & ~keepalive

    data = p > 0
    first_byte = rel + syn_i
    before = data & ((peer_fin[c] < 0) | (idx < peer_fin[c]))
    return Bytes(union_bytes(c[data], first_byte[data], (first_byte + p)[data], count),
                 union_bytes(c[before], first_byte[before], (first_byte + p)[before], count),
                 np.bincount(c[again], minlength=count))
