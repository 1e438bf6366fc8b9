"""The columns the classifier reads (TCP segments) and writes (connections), as plain NumPy tables.

Why tables and not objects: the chunked reader (``stream.py``) selects, concatenates and carries
hundreds of thousands of segments and connections from one chunk to the next; with columns that is
a handful of array operations, whatever the count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from .frames import Frames

__all__ = ["ConnectionTable", "TcpColumns", "clock_of", "row_numbers", "tuple_keys"]


@dataclass
class TcpColumns:
    """The TCP columns the classifier needs, one row per segment, in capture order.

    ``clock`` is the latest capture time of any TCP segment up to and including this one: how long
    a 4-tuple has been silent is measured against it, so the answer does not depend on chunking.

    ``count`` and ``again`` are None for segments read from a capture. A long connection carried
    from chunk to chunk is summarised (``summary.py``) into a few rows that stand for many: ``count``
    is how many segments a row stands for, ``again`` how many retransmissions it adds to its sender's.
    """

    frame: np.ndarray
    time: np.ndarray
    clock: np.ndarray
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
    count: np.ndarray | None = None
    again: np.ndarray | None = None

    @classmethod
    def from_frames(cls, frames: Frames, clock_before: float = -np.inf) -> TcpColumns:
        rows = np.flatnonzero(frames.has_tcp)
        # Usually every frame is TCP: then the columns are used as they are, without copies.
        pick: np.ndarray | slice = slice(None) if len(rows) == len(frames) else rows
        time = frames.time[pick]
        return cls(frames.frame[pick], time, clock_of(time, clock_before), frames.src_ip6_hi[pick],
                   frames.src_ip6_lo[pick], frames.dst_ip6_hi[pick], frames.dst_ip6_lo[pick], frames.sport[pick],
                   frames.dport[pick], frames.seq[pick], frames.ack[pick], frames.tcp_flags[pick],
                   frames.payload_len[pick])

    def __len__(self) -> int:
        return len(self.frame)

    def select(self, rows: np.ndarray) -> TcpColumns:
        rows = row_numbers(rows)
        return TcpColumns(*(None if (c := getattr(self, f.name)) is None else c[rows] for f in fields(self)))

    def counts(self) -> np.ndarray:
        """How many segments each row stands for."""
        return np.ones(len(self), np.int64) if self.count is None else self.count

    def retransmissions(self) -> np.ndarray:
        """How many retransmissions each row adds beyond its own."""
        return np.zeros(len(self), np.int64) if self.again is None else self.again

    @staticmethod
    def concat(parts: Sequence[TcpColumns]) -> TcpColumns:
        summarised = any(p.count is not None for p in parts)
        columns = [np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(TcpColumns)[:-2]]
        if summarised:
            columns += [np.concatenate([p.counts() for p in parts]),
                        np.concatenate([p.retransmissions() for p in parts])]
        return TcpColumns(*columns)


def row_numbers(rows: np.ndarray) -> np.ndarray:
    """A boolean mask as the row numbers it selects, index arrays as they are.

    Why: selecting with a mask that is true here and there costs ~6x selecting with its row
    numbers (the mask's branches mispredict), and a table selects each of its ~25 columns with it.
    """
    return np.flatnonzero(rows) if isinstance(rows, np.ndarray) and rows.dtype == np.bool_ else rows


def clock_of(time: np.ndarray, before: float) -> np.ndarray:
    """The capture clock at each segment: the latest time seen so far, starting from ``before``."""
    clock = np.maximum.accumulate(time) if len(time) else time.copy()
    return np.maximum(clock, before) if before > -np.inf else clock


@dataclass
class ConnectionTable:
    """One row per connection: every fact of the verdict as a NumPy column (codes are IntEnums)."""

    first_frame: np.ndarray
    key: np.ndarray  # a hash of the 4-tuple (either direction), to find a connection's later segments
    client_hi: np.ndarray
    client_lo: np.ndarray
    client_port: np.ndarray
    server_hi: np.ndarray
    server_lo: np.ndarray
    server_port: np.ndarray
    handshake: np.ndarray  # HandshakeCode
    isn_client: np.ndarray  # -1: SYN not seen
    isn_server: np.ndarray
    close_kind: np.ndarray  # CloseCode
    closer: np.ndarray  # CloserCode
    bytes_client: np.ndarray
    bytes_server: np.ndarray
    half_close: np.ndarray
    retrans_client: np.ndarray
    retrans_server: np.ndarray
    start: np.ndarray
    end: np.ndarray
    last_time: np.ndarray  # capture time of the last segment in capture order
    segments: np.ndarray
    ended: np.ndarray  # closed (both FINs, or an RST its receiver did not ignore)
    row_lo: np.ndarray  # where its segments are in the analysis' sorted rows
    row_hi: np.ndarray

    def __len__(self) -> int:
        return len(self.first_frame)

    @classmethod
    def empty(cls) -> ConnectionTable:
        kinds = {"client_hi": np.uint64, "client_lo": np.uint64, "server_hi": np.uint64, "server_lo": np.uint64,
                 "key": np.uint64, "start": np.float64, "end": np.float64, "last_time": np.float64, "ended": bool}
        return cls(*(np.zeros(0, kinds.get(f.name, np.int64)) for f in fields(cls)))

    def select(self, rows: np.ndarray) -> ConnectionTable:
        rows = row_numbers(rows)
        return ConnectionTable(*(getattr(self, f.name)[rows] for f in fields(self)))

    @staticmethod
    def concat(parts: Sequence[ConnectionTable]) -> ConnectionTable:
        parts = [p for p in parts if len(p)] or [ConnectionTable.empty()]
        return ConnectionTable(*(np.concatenate([getattr(p, f.name) for p in parts])
                                 for f in fields(ConnectionTable)))


def tuple_keys(src_hi: np.ndarray, src_lo: np.ndarray, sport: np.ndarray, dst_hi: np.ndarray,
               dst_lo: np.ndarray, dport: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each 4-tuple, the same in both directions (a collision costs only work)."""
    with np.errstate(over="ignore"):
        a = (src_hi * np.uint64(0x9E3779B97F4A7C15)) ^ (src_lo * np.uint64(0xC2B2AE3D27D4EB4F)) \
            ^ (sport.astype(np.uint64) * np.uint64(0x165667B19E3779F9))
        b = (dst_hi * np.uint64(0x9E3779B97F4A7C15)) ^ (dst_lo * np.uint64(0xC2B2AE3D27D4EB4F)) \
            ^ (dport.astype(np.uint64) * np.uint64(0x165667B19E3779F9))
        return a + b
