"""Every capture a trace test reads is also analysed in chunks, and must give the same connections.

Why a fixture and not one test: the promise is "identical results for every capture in the suite and
for captures split at every possible chunk boundary". Importing :func:`chunked_equivalence` into a
test module makes it autouse there: each ``read_trace`` call is then checked three ways -- the
capture streamed in chunks of one byte (every record its own chunk; small captures), in 4 KiB
chunks (also read by a second process), its TCP segments fed to the tracker in two parts split at
every frame, and fed with every carried connection summarised after every chunk.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import netbed.trace
from netbed.trace.classify import analyse, connections_of
from netbed.trace.columns import ConnectionTable, TcpColumns
from netbed.trace.frames import Frames
from netbed.trace.stream import ConnectionTracker, stream_connections

ONE_BYTE_CHUNKS_UP_TO = 16 << 10  # bytes of capture; above this, one-byte chunks take too long
SUMMARISE_EVERYTHING = 2  # rows: a carried connection of two rows or more is summarised
EVERY_SPLIT_UP_TO = 300  # TCP segments; above this, seven splits spread over the capture
SMALL_CHUNKS_UP_TO = 1 << 20  # bytes of capture read in 4 KiB chunks; above, in 256 KiB chunks


def _rows(tables: list[ConnectionTable]) -> list[dict[str, Any]]:
    rows = [c.to_json() for t in tables for c in connections_of(t, None)]
    return sorted(rows, key=lambda d: (d["start"], d["client"], d["server"], d["segments"]))


def _split(t: TcpColumns, at: list[int], summarise_after: int | None = None) -> list[dict[str, Any]]:
    tracker = ConnectionTracker() if summarise_after is None else ConnectionTracker(summarise_after)
    out = []
    bounds = [0, *at, len(t)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        got = tracker.feed(t.select(np.arange(lo, hi)))
        if got is not None:
            out.append(got)
    last = tracker.feed(t.select(np.arange(0)), final=True)
    if last is not None:
        out.append(last)
    return _rows(out)


def check_chunked(path: str | os.PathLike[str], frames: Frames) -> None:
    t = TcpColumns.from_frames(frames)
    whole = _rows([analyse(t)[0]])
    size = os.path.getsize(path)
    for chunk in ([1] if size <= ONE_BYTE_CHUNKS_UP_TO else []) + [4096 if size <= SMALL_CHUNKS_UP_TO else 256 << 10]:
        assert _rows(list(stream_connections(path, chunk))) == whole, f"chunks of {chunk} bytes"
    # Read and decoded by a second process (reader.py), as `netbed trace` does on two CPUs.
    assert _rows(list(stream_connections(path, chunk, processes=2))) == whole, "in two processes"
    small = len(t) <= EVERY_SPLIT_UP_TO
    for s in range(1, len(t), 1 if small else max(1, len(t) // 7)):
        assert _split(t, [s]) == whole, f"split at segment {s}"
    if small:
        assert _split(t, list(range(1, len(t)))) == whole, "one segment per chunk"
    # Every carried connection of more than one row summarised after every chunk (summary.py).
    step = 1 if small else max(1, len(t) // 50)
    assert _split(t, list(range(step, len(t), step)), SUMMARISE_EVERYTHING) == whole, "summarised"


@pytest.fixture(autouse=True)
def chunked_equivalence(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    original = netbed.trace.read_frames

    def read_and_check(path: str | os.PathLike[str]) -> tuple[Frames, list[str]]:
        frames, warnings = original(path)
        check_chunked(path, frames)
        return frames, warnings

    monkeypatch.setattr(netbed.trace, "read_frames", read_and_check)
    yield
