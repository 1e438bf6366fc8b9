"""One long connection read in tiny chunks: bounded carried state, the verdict of one analysis.

Why: the chunked reader carries an open connection's segments to the next chunk. A capture that is
one long connection used to keep all of them (memory growing with the flow) and classify them again
with every chunk. ``summary.py`` now replaces what has been classified by a summary; these tests feed
a long flow to the tracker a few segments at a time, summarising whenever more than a few dozen rows
are carried, and ask for exactly the verdict of the whole capture classified at once.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pcapbuild import Conversation, Packet, write_pcap

from netbed.trace import summary
from netbed.trace.classify import analyse, connections_of
from netbed.trace.columns import ConnectionTable, TcpColumns
from netbed.trace.pcap import read_frames
from netbed.trace.stream import ConnectionTracker

SEGMENTS = 600  # of data (plus ACKs): long enough for many chunks, short enough for one-segment chunks
SUMMARISE_AFTER = 32  # rows: summarise a carried connection with more than this
CHUNK = 7  # segments fed at a time
HOLE_SEGMENTS = 24  # the flows below lose about this many segments: each leaves a run of bytes apart


def _flow(handshake: bool, seed: int = 1, isn: int = 2**32 - 5000) -> list[Packet]:
    """A bulk transfer with retransmissions, lost segments, keep-alives and data the other way,
    whose client sequence numbers wrap past 2^32, then a four-way close."""
    rnd = random.Random(seed)
    c = Conversation(headers_only=True, isn_client=isn)
    if handshake:
        c.handshake()
    holes = 0
    for _ in range(SEGMENTS):
        r = rnd.random()
        if r < 0.05:  # a retransmission of data sent earlier
            c.client(".", 1000, seq=c.next_seq["client"] - 3000)
        elif r < 0.09 and holes < HOLE_SEGMENTS:  # a segment lost before the capture point
            holes += 1
            c.next_seq["client"] += 1448
            c.client(".", 1448)
        elif r < 0.11:  # a keep-alive probe
            c.client(".", 0, seq=c.next_seq["client"] - 1)
        elif r < 0.16:
            c.server("P.", 200)
        else:
            c.client(".", 1448)
        if rnd.random() < 0.5:
            c.server(".")
    c.four_way_close()
    return c.packets


def _rows(tables: list[ConnectionTable]) -> list[dict[str, Any]]:
    return [c.to_json() for t in tables for c in connections_of(t, None)]


def _in_chunks(t: TcpColumns, tracker: ConnectionTracker, chunk: int) -> tuple[list[dict[str, Any]], int]:
    """The connections found feeding ``chunk`` segments at a time, and the most rows ever carried."""
    out, peak = [], 0
    for lo in range(0, len(t), chunk):
        got = tracker.feed(t.select(np.arange(lo, min(lo + chunk, len(t)))))
        if got is not None:
            out.append(got)
        peak = max(peak, tracker.carried_rows)
    last = tracker.feed(t.select(np.arange(0)), final=True)
    if last is not None:
        out.append(last)
    return _rows(out), peak


def _segments(tmp_path: Path, packets: list[Packet]) -> TcpColumns:
    frames, _ = read_frames(write_pcap(tmp_path / "long.pcap", packets))
    return TcpColumns.from_frames(frames)


@pytest.mark.parametrize("handshake", [True, False], ids=["handshake", "capture-began-mid-flow"])
def test_long_flow_in_tiny_chunks_is_bounded_and_classified_as_one(tmp_path: Path, handshake: bool) -> None:
    t = _segments(tmp_path, _flow(handshake))
    whole = _rows([analyse(t)[0]])
    assert len(whole) == 1 and whole[0]["retransmissions"]["client"] > 0 and whole[0]["bytes"]["server"] > 0
    assert whole[0]["handshake"] == ("complete" if handshake else "none")
    got, peak = _in_chunks(t, ConnectionTracker(SUMMARISE_AFTER), CHUNK)
    assert got == whole
    # What is carried: the summary (a row per run of contiguous bytes: one per lost segment, at most)
    # plus the rows since, never the flow.
    assert peak <= SUMMARISE_AFTER + CHUNK + HOLE_SEGMENTS + 16 < len(t) // 4


def test_every_segment_its_own_chunk_summarised_every_time(tmp_path: Path) -> None:
    t = _segments(tmp_path, _flow(True, seed=2)[:400])  # no close: the flow is still open at the end
    assert _in_chunks(t, ConnectionTracker(2), 1)[0] == _rows([analyse(t)[0]])


def test_without_summaries_the_carried_rows_grow_with_the_flow(tmp_path: Path) -> None:
    """Sabotage of the bound: a tracker that never summarises carries the whole flow."""
    t = _segments(tmp_path, _flow(True))
    got, peak = _in_chunks(t, ConnectionTracker(len(t) + 1), CHUNK)
    assert got == _rows([analyse(t)[0]])
    assert peak > len(t) - 2 * CHUNK


def test_a_summary_that_forgets_counts_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sabotage of the equality: a summary that keeps the first and last rows only, unchecked,
    gives another verdict (fewer bytes and segments), and the comparison says so."""
    t = _segments(tmp_path, _flow(True))
    monkeypatch.setattr("netbed.trace.stream.summarise",
                        lambda p, verdict=None: p.select(np.array([0, len(p) - 1])) if len(p) > 2 else None)
    got, _ = _in_chunks(t, ConnectionTracker(SUMMARISE_AFTER), CHUNK)
    whole = _rows([analyse(t)[0]])
    assert got != whole and got[0]["segments"] < whole[0]["segments"]


def test_a_connection_with_a_fin_is_not_summarised(tmp_path: Path) -> None:
    """After a FIN or RST the close rules look at single segments: such rows stay as they are."""
    t = _segments(tmp_path, _flow(True))
    assert summary.summarise(t.select(np.arange(len(t) - 3))) is None  # the client's FIN is in
    assert summary.summarise(t.select(np.arange(len(t) - 4))) is not None  # just before it
