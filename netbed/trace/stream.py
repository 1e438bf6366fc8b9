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

from .classify import analyse
from .columns import ConnectionTable, TcpColumns
from .constants import CLOSED_QUIET_SECONDS, OPEN_QUIET_SECONDS
from .pcap import DEFAULT_CHUNK_BYTES
from .reader import ForkedReader, InProcessReader
from .summary import summarise

__all__ = ["ConnectionTracker", "StreamStats", "stream_connections"]

SUMMARISE_AFTER_ROWS = 4096  # a carried connection with more rows than this is summarised (summary.py)


class _Block:
    """The segments of one analysis round, kept as they were made: carried connections are marked
    gone instead of copied out, and a block is dropped once none of its connections is carried."""

    def __init__(self, segments: TcpColumns, owner: np.ndarray, first_id: int, last_id: int) -> None:
        self.segments = segments
        self.owner = owner  # per segment: the id of its connection, all in first_id..last_id
        self.alive = np.ones(len(owner), bool)
        self.first_id = first_id
        self.last_id = last_id
        self.count = len(owner)

    def rows_of(self, ids: np.ndarray) -> np.ndarray | None:
        """A mask of the live segments owned by ``ids`` (None: none here)."""
        ids = ids[(ids >= self.first_id) & (ids <= self.last_id)]
        if not len(ids) or not self.count:
            return None
        wanted = np.zeros(self.last_id - self.first_id + 1, bool)
        wanted[ids - self.first_id] = True
        return wanted[self.owner - self.first_id] & self.alive

    def forget(self, rows: np.ndarray) -> None:
        self.alive &= ~rows
        self.count = int(np.count_nonzero(self.alive))
        if 0 < self.count < len(self.alive) // 2:  # mostly gone: copy the rest, free the rest
            self.segments = self.segments.select(self.alive)
            self.owner = self.owner[self.alive]
            self.alive = np.ones(self.count, bool)


class ConnectionTracker:
    """Feed it the TCP segments of a capture in order, chunk by chunk; it returns final connections."""

    def __init__(self, summarise_after: int = SUMMARISE_AFTER_ROWS) -> None:
        self.summarise_after = summarise_after
        self.clock = -np.inf
        self.blocks: list[_Block] = []  # segments of carried connections
        self.table = ConnectionTable.empty()  # carried connections
        self.ids = np.zeros(0, np.int64)
        self.next_id = 0

    @property
    def open_connections(self) -> int:
        return len(self.ids)

    @property
    def carried_rows(self) -> int:
        """Rows of segments (or summaries of them) kept for the connections still open."""
        return sum(block.count for block in self.blocks)

    def _classify(self, segs: TcpColumns) -> tuple[ConnectionTable, np.ndarray, np.ndarray]:
        """Classify ``segs``: the table, a fresh id per connection, the owning id of each segment."""
        table, order = analyse(segs)
        ids = self.next_id + np.arange(len(table))
        self.next_id += len(table)
        owner = np.empty(len(segs), np.int64)
        # Sorted rows row_lo:row_hi of each connection are rows order[row_lo:row_hi] of segs.
        by_rows = np.argsort(table.row_lo, kind="stable")
        owner[order] = np.repeat(ids[by_rows], (table.row_hi - table.row_lo)[by_rows])
        return table, ids, owner

    def _add_block(self, segs: TcpColumns, owner: np.ndarray, ids: np.ndarray, gone: np.ndarray | None) -> None:
        """Keep ``segs`` (owned by ``ids``) for later rounds, less the rows ``gone`` (classified again)."""
        if len(segs):
            block = _Block(segs, owner, int(ids[0]), int(ids[-1]))
            if gone is not None and gone.any():
                block.forget(gone)
            if block.count:
                self.blocks.append(block)

    def feed(self, t: TcpColumns, final: bool = False) -> ConnectionTable | None:
        """Add the next segments (their ``clock`` continued from :attr:`clock`; in capture order, or
        grouped by 4-tuple with capture order inside each); return the connections now final, in
        order of their first segment, or None."""
        if len(t):
            self.clock = max(self.clock, float(t.clock.max()))  # rows may come grouped by 4-tuple
        # The new segments are classified on their own first. Connections never span 4-tuples, so
        # only the 4-tuples that also have a carried connection (usually a few hundred at a chunk
        # boundary) are classified again, their carried segments together with their new ones.
        # Keys are compared per connection, not per segment.
        table, ids, owner = self._classify(t)
        touched = _member(self.table.key, table.key) if len(self.ids) and len(table) else \
            np.zeros(len(self.ids), bool)
        if touched.any():
            again = _member(table.key, self.table.key[touched])
            parts = []
            for block in self.blocks:
                rows = block.rows_of(self.ids[touched])
                if rows is not None and rows.any():
                    parts.append(block.segments.select(rows))
                    block.forget(rows)
            new_rows = again[owner - ids[0]]
            redo = TcpColumns.concat([*parts, t.select(new_rows)])
            self._add_block(t, owner, ids, new_rows)
            redo_table, redo_ids, redo_owner = self._classify(redo)
            self._add_block(redo, redo_owner, redo_ids, None)
            merged = ConnectionTable.concat([table.select(~again), redo_table])
            by_first = np.argsort(merged.first_frame, kind="stable")
            table, ids = merged.select(by_first), np.concatenate([ids[~again], redo_ids])[by_first]
        else:
            self._add_block(t, owner, ids, None)
        if touched.any():
            table = ConnectionTable.concat([self.table.select(~touched), table])
            ids = np.concatenate([self.ids[~touched], ids])
        else:
            table = ConnectionTable.concat([self.table, table])
            ids = np.concatenate([self.ids, ids])
        silent = self.clock - table.last_time
        done = np.ones(len(table), bool) if final else \
            (silent > OPEN_QUIET_SECONDS) | (table.ended & (silent > CLOSED_QUIET_SECONDS))
        if done.any():
            for block in self.blocks:
                rows = block.rows_of(ids[done])
                if rows is not None:
                    block.forget(rows)
            self.blocks = [b for b in self.blocks if b.count]
        self.table, self.ids = table.select(~done), ids[~done]
        self._summarise_long()
        out = table.select(done)
        return out.select(np.argsort(out.first_frame, kind="stable")) if len(out) else None


    def _summarise_long(self) -> None:
        """Replace the carried rows of each long connection by its summary (bounded per connection).

        Only a connection alone on its 4-tuple among the carried ones: a connection's rows then
        stay in capture order relative to the 4-tuple's other rows whatever block holds them.
        """
        big = self.table.segments >= self.summarise_after
        if not big.any():
            return
        keys, seen = np.unique(self.table.key, return_counts=True)
        alone = seen[np.searchsorted(keys, self.table.key)] == 1
        wanted = self.ids[big & alone]
        for block in list(self.blocks):
            rows = block.rows_of(wanted)
            if rows is None:
                continue
            owners = block.owner[rows]
            ids, counts = np.unique(owners, return_counts=True)
            for conn, count in zip(ids.tolist(), counts.tolist()):
                if count < self.summarise_after:
                    continue
                mine = rows & (block.owner == conn)
                summary = summarise(block.segments.select(mine), self.table.select(self.ids == conn))
                if summary is None:
                    continue
                block.forget(mine)
                self.blocks.append(_Block(summary, np.full(len(summary), conn, np.int64), conn, conn))
        self.blocks = [b for b in self.blocks if b.count]


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
                       on_chunk: Callable[[StreamStats], None] | None = None,
                       processes: int = 1) -> Iterator[ConnectionTable]:
    """Read and classify a capture chunk by chunk, yielding tables of connections as they become final.

    ``on_chunk`` sees the running :class:`StreamStats` after every chunk; once the iteration is over,
    the stats' ``warnings`` are complete (they include one about frames cut by the snap length).
    ``processes=2`` reads and decodes in a second process (``reader.py``); the results are the same.
    """
    stats = StreamStats()
    source = ForkedReader(os.fspath(path), chunk_bytes) if processes > 1 else \
        InProcessReader(os.fspath(path), chunk_bytes)
    tracker = ConnectionTracker()
    for chunk in source:
        stats.cut_frames += chunk.cut_frames
        stats.frames = chunk.frames
        out = tracker.feed(chunk.segments)
        stats.bytes_read, stats.total_bytes = chunk.bytes_read, chunk.total_bytes
        stats.open_connections = tracker.open_connections
        if out is not None:
            stats.connections += len(out)
            yield out
        if on_chunk is not None:
            on_chunk(stats)
    out = tracker.feed(_no_segments(), final=True)
    stats.warnings = list(source.warnings)
    if stats.cut_frames:
        stats.warnings.append(cut_warning(stats.cut_frames))
    if out is not None:
        stats.connections += len(out)
        yield out
    stats.open_connections = 0
    if on_chunk is not None:
        on_chunk(stats)


def _member(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Which of ``values`` are in ``pool`` (a binary search in the sorted pool; faster than np.isin here)."""
    if not len(pool):
        return np.zeros(len(values), bool)
    pool = np.sort(pool)
    at = np.minimum(np.searchsorted(pool, values), len(pool) - 1)
    return pool[at] == values


def cut_warning(count: int) -> str:
    return (f"{count} frame{'s' if count != 1 else ''} cut short by the capture's snap length (e.g. tcpdump -s): "
            "byte counts come from the IP headers, payload contents are not in the file")


def _no_segments() -> TcpColumns:
    z = np.zeros(0, np.int64)
    u = np.zeros(0, np.uint64)
    f = np.zeros(0)
    return TcpColumns(z, f, f, u, u, u, u, z, z, np.zeros(0, np.uint32), np.zeros(0, np.uint32),
                      np.zeros(0, np.uint8), np.zeros(0, np.uint32))
