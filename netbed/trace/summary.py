"""Summarise a long connection carried between chunks into a few rows that classify the same.

Why: the chunked reader (``stream.py``) carries the segments of every open connection to the next
chunk and classifies a carried connection again, with its new segments, whenever it gets more. For
one connection of millions of segments that is memory growing with the connection and work growing
with the square of its chunks. But of the segments already seen the classifier still needs little:

- the segments that settle the handshake (every SYN, the third ACK) and each side's first segment
  (where its sequence numbers start), kept as they are;
- per side, the sequence space it has covered, as one row per run of contiguous bytes (the distinct
  bytes still to come are counted against it), and the highest point it reached (a later segment
  starting below it is a retransmission);
- per side, its last segment (a later RST counts only if its receiver sent nothing after it; the
  next segment's silence and sequence step are measured from it), and the earliest and latest time.

The count of segments and of retransmissions the dropped rows stood for rides on the summary rows
(``TcpColumns.count``/``again``). Only a connection that has neither FIN nor RST so far, whose
handshake is complete or was not captured at all, is summarised: after a FIN or RST the close rules
look at single segments again, and such a connection ends soon. The summary is checked before it
replaces the segments: classified alone, it must give exactly the connection's verdict.
"""

from __future__ import annotations

import numpy as np

from .classify import analyse
from .columns import ConnectionTable, TcpColumns
from .constants import ACK, FIN, RST, SEQ_MODULO, SYN, HandshakeCode
from .sequence import signed

__all__ = ["summarise"]

PIECE_BYTES = 1 << 30  # one summary row covers at most this much sequence space: steps stay below 2^31
MAX_STEP = 1 << 31  # a sequence step is read modulo 2^32 as signed: only steps below 2^31 survive
MAX_SYN_ROWS = 16  # SYNs are kept whole; a connection with more (a SYN storm) is not summarised
_COMPARED = [name for name in ConnectionTable.__dataclass_fields__ if name not in ("row_lo", "row_hi")]


def summarise(p: TcpColumns, verdict: ConnectionTable | None = None) -> TcpColumns | None:
    """The rows of one connection (capture order) as a summary, or None when it cannot be summarised
    exactly or would not be smaller. ``verdict``: the connection's row, when already classified."""
    flags = p.flags.astype(np.int64)
    syn_rows = np.flatnonzero(flags & SYN)
    if (flags & (FIN | RST)).any() or len(syn_rows) > MAX_SYN_ROWS:
        return None
    if verdict is None:
        verdict, _ = analyse(p)
    if len(verdict) != 1 or (len(syn_rows) and verdict.handshake[0] != HandshakeCode.COMPLETE):
        return None
    keep = {0, *syn_rows.tolist()}
    if len(syn_rows):
        third = _third_ack(p, flags, verdict)
        if third is None:
            return None
        keep.add(third)
    forward = (p.src_hi == p.src_hi[0]) & (p.src_lo == p.src_lo[0]) & (p.sport == p.sport[0])
    sides = [rows for rows in (np.flatnonzero(forward), np.flatnonzero(~forward)) if len(rows)]
    keep.update(int(rows[0]) for rows in sides)
    made: list[TcpColumns] = []
    last_rows: list[int] = []
    for rows in sides:
        last = int(rows[-1])
        if len(rows) - len(keep.intersection(rows.tolist())) - (last not in keep) == 0:
            continue  # every segment of this side is kept anyway
        if last in keep:
            return None
        side = _side_rows(p, flags, rows, keep)
        if side is None:
            return None
        made.append(side)
        last_rows.append(last)
    if not made:
        return None
    early = sorted(keep)
    when = made[0].select(np.array([-1, -1]))  # the earliest and latest time, on rows that change nothing else
    when.time = np.array([p.time.min(), p.time.max()])
    k = TcpColumns.concat([p.select(np.array(early)), *made, when, p.select(np.array(sorted(last_rows)))])
    # Silence is measured from the previous row; inside the summary nothing was silent (the
    # connection did not break there), and the first row keeps its own.
    k.clock = np.concatenate([p.clock[:1], k.time[:-1]])
    k.count = np.ones(len(k), np.int64)
    k.count[-1] += int(p.counts().sum()) - len(k)
    k.again = np.zeros(len(k), np.int64)
    raw, _ = analyse(k)
    if len(raw) != 1:
        return None
    client = (k.src_hi == verdict.client_hi[0]) & (k.src_lo == verdict.client_lo[0]) & \
        (k.sport == verdict.client_port[0])
    for mine, extra in ((client, verdict.retrans_client[0] - raw.retrans_client[0]),
                        (~client, verdict.retrans_server[0] - raw.retrans_server[0])):
        if extra:
            rows = np.flatnonzero(mine)
            if not len(rows):
                return None
            k.again[rows[-1]] += extra
    check, _ = analyse(k)
    if len(check) != 1 or any(getattr(check, f)[0] != getattr(verdict, f)[0] for f in _COMPARED):
        return None
    return k if len(k) < len(p) else None


def _third_ack(p: TcpColumns, flags: np.ndarray, verdict: ConnectionTable) -> int | None:
    """The row of the handshake's third segment (the client's ACK of the server's ISN + 1)."""
    client = (p.src_hi == verdict.client_hi[0]) & (p.src_lo == verdict.client_lo[0]) & \
        (p.sport == verdict.client_port[0])
    syn, has_ack = (flags & SYN) != 0, (flags & ACK) != 0
    seq, ack, plen = p.seq.astype(np.int64), p.ack.astype(np.int64), p.plen.astype(np.int64)
    first_syn = np.flatnonzero(syn & ~has_ack & client)
    if not len(first_syn):
        return None
    s = int(first_syn[0])
    wanted = ((seq[s] + 1) % SEQ_MODULO, (seq[s] + 1 + plen[s]) % SEQ_MODULO)
    synack = np.flatnonzero(syn & has_ack & ~client & ((ack == wanted[0]) | (ack == wanted[1])))
    if not len(synack):
        return None
    a = int(synack[0])
    third = np.flatnonzero(client & has_ack & ~syn & (ack == (seq[a] + 1) % SEQ_MODULO)
                           & (np.arange(len(p)) > a))
    return int(third[0]) if len(third) else None


def _side_rows(p: TcpColumns, flags: np.ndarray, rows: np.ndarray, keep: set[int]) -> TcpColumns | None:
    """One side's summary rows: its covered sequence space in pieces, then the highest point it
    reached; or None when the steps between the rows would not survive modulo 2^32."""
    seq = p.seq[rows].astype(np.int64)
    rel = np.zeros(len(rows), np.int64)
    rel[1:] = np.cumsum(signed(seq[1:] - seq[:-1]))
    syn = ((flags[rows] & SYN) != 0).astype(np.int64)
    plen = p.plen[rows].astype(np.int64)
    start = rel + syn
    end = start + plen
    data = plen > 0
    order = np.argsort(start[data], kind="stable")
    s, e = start[data][order], end[data][order]
    pieces: list[tuple[int, int]] = []
    if len(s):
        reach = np.maximum.accumulate(e)
        new_run = np.ones(len(s), bool)
        new_run[1:] = s[1:] > reach[:-1]
        run_start = s[new_run]
        run_end = np.append(reach[np.flatnonzero(new_run)[1:] - 1], reach[-1])
        for lo, hi in zip(run_start.tolist(), run_end.tolist()):
            for at in range(lo, hi, PIECE_BYTES):
                pieces.append((at, min(hi, at + PIECE_BYTES)))
    reached = int(end.max())
    kept = [int(rel[i]) for i, row in enumerate(rows.tolist()) if row in keep]
    points = [*kept, *(lo for lo, _ in pieces), reached, reached, reached, int(rel[-1])]
    if any(abs(b - a) >= MAX_STEP for a, b in zip(points[:-1], points[1:])):
        return None
    template = int(rows[-1])
    count = len(pieces) + 1
    out = p.select(np.full(count, template))
    out.seq = ((seq[0] + np.array([lo for lo, _ in pieces] + [reached], np.int64)) % SEQ_MODULO).astype(np.uint32)
    out.plen = np.array([hi - lo for lo, hi in pieces] + [0], np.uint32)
    out.flags = np.full(count, ACK, np.uint8)
    out.time = np.full(count, p.time.max())
    return out
