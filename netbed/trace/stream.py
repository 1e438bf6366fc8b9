"""Classify a capture of any size in bounded memory: chunk by chunk, carrying only open connections.

Why this works and gives the same answer as reading the whole file at once: a connection is
*final* when its 4-tuple has been silent, on the capture's clock, for longer than
CLOSED_QUIET_SECONDS after it ended (both FINs, or an RST that was not ignored) or
OPEN_QUIET_SECONDS in any case -- and the classifier itself (``classify._breaks``) starts a new
connection on a segment that comes after such a silence. The capture clock only moves forward, so a
connection found final at the end of one chunk can get no more segments from later chunks: it is
emitted and its segments are dropped. Everything else is carried to the next chunk, its segments
kept; a carried connection whose 4-tuple shows up again is classified anew together with the new
segments, the others keep the verdict they had. What is in memory is one chunk plus the connections
still open or recently closed -- not the capture.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .classify import ConnectionTable, TcpColumns, analyse, tuple_keys
from .constants import CLOSED_QUIET_SECONDS, OPEN_QUIET_SECONDS
from .pcap import DEFAULT_CHUNK_BYTES, CaptureStream

__all__ = ["ConnectionTracker", "StreamStats", "stream_connections"]


class ConnectionTracker:
    """Feed it the TCP segments of a capture in order, chunk by chunk; it returns final connections."""

    def __init__(self) -> None:
        self.clock = -np.inf
        self.segments: TcpColumns | None = None  # segments of carried connections
        self.owner = np.zeros(0, np.int64)  # per carried segment: the id of its connection
        self.table: ConnectionTable | None = None  # carried connections
        self.ids = np.zeros(0, np.int64)
        self.next_id = 0

    @property
    def open_connections(self) -> int:
        return len(self.ids)

    def feed(self, t: TcpColumns, final: bool = False) -> ConnectionTable | None:
        """Add the next segments (their ``clock`` continued from :attr:`clock`); return the connections
        now final, in order of their first segment, or None."""
        if len(t):
            self.clock = max(self.clock, float(t.clock[-1]))
        if self.table is None or self.segments is None:
            table, order = analyse(t)
            segs, owner_rows = t, order
            touched_segs = None
        else:
            # Carried connections whose 4-tuple appears again are classified anew with the new segments.
            new_keys = np.unique(tuple_keys(t.src_hi, t.src_lo, t.sport, t.dst_hi, t.dst_lo, t.dport))
            touched = np.isin(self.table.key, new_keys)
            touched_segs = np.isin(self.owner, self.ids[touched])
            sub = TcpColumns.concat([self.segments.select(touched_segs), t]) if touched_segs.any() else t
            table, order = analyse(sub)
            segs, owner_rows = sub, order
        ids = self.next_id + np.arange(len(table))
        self.next_id += len(table)
        owner = np.empty(len(segs), np.int64)
        # Sorted rows row_lo:row_hi of each connection are rows order[row_lo:row_hi] of segs.
        by_rows = np.argsort(table.row_lo, kind="stable")
        owner[owner_rows] = np.repeat(ids[by_rows], (table.row_hi - table.row_lo)[by_rows])
        if touched_segs is not None and self.table is not None and self.segments is not None:
            keep = ~np.isin(self.ids, self.ids[touched])
            table = ConnectionTable.concat([self.table.select(keep), table])
            ids = np.concatenate([self.ids[keep], ids])
            rest = ~touched_segs
            segs = TcpColumns.concat([self.segments.select(rest), segs])
            owner = np.concatenate([self.owner[rest], owner])
        silent = self.clock - table.last_time
        done = np.ones(len(table), bool) if final else \
            (silent > OPEN_QUIET_SECONDS) | (table.ended & (silent > CLOSED_QUIET_SECONDS))
        if done.any():
            kept = ~np.isin(owner, ids[done])
            self.segments, self.owner = segs.select(kept), owner[kept]
        else:
            self.segments, self.owner = segs, owner
        self.table, self.ids = table.select(~done), ids[~done]
        out = table.select(done)
        return out.select(np.argsort(out.first_frame, kind="stable")) if len(out) else None


@dataclass
class StreamStats:
    """How far a streamed analysis got: for the progress bar and the summary line."""

    bytes_read: int = 0
    total_bytes: int | None = None
    frames: int = 0
    connections: int = 0
    open_connections: int = 0
    cut_frames: int = 0
    warnings: list[str] = field(default_factory=list)


def stream_connections(path: str | os.PathLike[str], chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                       on_chunk: Callable[[StreamStats], None] | None = None) -> Iterator[ConnectionTable]:
    """Read and classify a capture chunk by chunk, yielding tables of connections as they become final.

    ``on_chunk`` sees the running :class:`StreamStats` after every chunk; once the iteration is over,
    the stats' ``warnings`` are complete (they include one about frames cut by the snap length).
    """
    stats = StreamStats()
    capture = CaptureStream(path, chunk_bytes)
    tracker = ConnectionTracker()
    for frames in capture:
        t = TcpColumns.from_frames(frames, tracker.clock)
        stats.cut_frames += int(np.count_nonzero(frames.caplen < frames.wirelen))
        stats.frames = capture.frames
        out = tracker.feed(t)
        stats.bytes_read, stats.total_bytes = capture.bytes_read, capture.total_bytes
        stats.open_connections = tracker.open_connections
        if out is not None:
            stats.connections += len(out)
            yield out
        if on_chunk is not None:
            on_chunk(stats)
    out = tracker.feed(_no_segments(), final=True)
    stats.bytes_read = capture.bytes_read
    stats.warnings = list(capture.warnings)
    if stats.cut_frames:
        stats.warnings.append(cut_warning(stats.cut_frames))
    if out is not None:
        stats.connections += len(out)
        yield out
    stats.open_connections = 0
    if on_chunk is not None:
        on_chunk(stats)


def cut_warning(count: int) -> str:
    return (f"{count} frame{'s' if count != 1 else ''} cut short by the capture's snap length (e.g. tcpdump -s): "
            "byte counts come from the IP headers, payload contents are not in the file")


def _no_segments() -> TcpColumns:
    z = np.zeros(0, np.int64)
    u = np.zeros(0, np.uint64)
    f = np.zeros(0)
    return TcpColumns(z, f, f, u, u, u, u, z, z, np.zeros(0, np.uint32), np.zeros(0, np.uint32),
                      np.zeros(0, np.uint8), np.zeros(0, np.uint32))
