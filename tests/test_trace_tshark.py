"""Agreement with the reference dissector: tshark sees the same streams and the same SYN/FIN/RST."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from chunked import chunked_equivalence  # noqa: F401 - every capture here is also read in tiny chunks
from pcapbuild import Conversation, interleave, write_pcap, write_pcapng

from netbed.trace import read_trace

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None,
                                reason="tshark is not installed (Debian package tshark); nothing to compare with")


def mixed_conversations() -> list[Conversation]:
    """One conversation per close kind and handshake outcome, overlapping in time."""
    convs = []

    def conv(i: int, **kw: object) -> Conversation:
        c = Conversation(client_addr=(kw.pop("ip", "10.0.0.1"), 41000 + i),  # type: ignore[arg-type]
                         server_addr=(kw.pop("server_ip", "10.0.0.2"), 80),  # type: ignore[arg-type]
                         start=1000.0 + i * 0.0007, isn_client=1000 * i + 5, **kw)  # type: ignore[arg-type]
        convs.append(c)
        return c

    c = conv(0).handshake()  # four-way with data
    c.client("P.", 100)
    c.server("P.", 200)
    c.client("F.")
    c.server(".")
    c.server("F.")
    c.client(".")
    c = conv(1).handshake()  # three-way
    c.client("F.")
    c.server("F.")
    c.client(".")
    c = conv(2).handshake()  # simultaneous
    x = c.next_seq["client"]
    c.client("F.")
    c.server("F.", ack=x)
    c.client(".")
    c.server(".")
    c = conv(3).handshake()  # reset after data
    c.client("P.", 10)
    c.server("R.")
    c = conv(4)  # refused
    c.client("S")
    c.server("R.", seq=0, ack=c.isn_client + 1)
    c = conv(5, isn_server=2**32 - 3).handshake()  # wraparound, half-close
    c.client("F.")
    c.server("P.", 500)
    c.client(".")
    c.server("F.")
    c.client(".")
    c = conv(6, ip="2001:db8::1", server_ip="2001:db8::2").handshake()  # IPv6
    c.client("R.")
    c = conv(7, ip_options=b"\x01" * 4).handshake()  # IPv4 options, left open
    c.client("P.", 33)
    return convs


def port_reuse() -> Conversation:
    # Same 4-tuple as conversation 0 but after it ended, with a new ISN.
    c = Conversation(client_addr=("10.0.0.1", 41000), start=1001.0, isn_client=777_777).handshake()
    c.client("F.")
    c.server("F.")
    c.client(".")
    return c


def tshark_streams(path: Path) -> list[tuple[int, int, int, int]]:
    """Per tcp.stream, in stream order: (segments, SYNs, FINs, RSTs)."""
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "tcp.stream", "-e", "tcp.flags"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    per: dict[int, Counter[str]] = {}
    for line in out.splitlines():
        stream, flags = line.split("\t")
        bits = int(flags, 16)
        c = per.setdefault(int(stream), Counter())
        c["n"] += 1
        c["syn"] += bool(bits & 2)
        c["fin"] += bool(bits & 1)
        c["rst"] += bool(bits & 4)
    return [(c["n"], c["syn"], c["fin"], c["rst"]) for _, c in sorted(per.items())]


def ours(path: Path) -> list[tuple[int, int, int, int]]:
    trace = read_trace(path)
    assert trace.warnings == []
    return [(len(c.segments), sum(s.syn for s in c.segments), sum(s.fin for s in c.segments),
             sum(s.rst for s in c.segments)) for c in trace.connections]


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_streams_and_their_syn_fin_rst_counts_match_tshark(tmp_path: Path, fmt: str) -> None:
    packets = interleave(*mixed_conversations(), port_reuse())
    path = (write_pcap(tmp_path / "m.pcap", packets) if fmt == "pcap"
            else write_pcapng(tmp_path / "m.pcapng", packets))
    expected = tshark_streams(path)
    assert len(expected) == 9
    assert ours(path) == expected


def test_complete_handshakes_agree_with_tshark_completeness(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "m.pcap", interleave(*mixed_conversations()))
    out = subprocess.run(["tshark", "-2", "-r", str(path), "-T", "fields", "-e", "tcp.stream",
                          "-e", "tcp.completeness"], capture_output=True, text=True, timeout=120, check=True).stdout
    completeness: dict[int, int] = {}
    for line in out.splitlines():
        stream, value = line.split("\t")
        completeness[int(stream)] = max(completeness.get(int(stream), 0), int(value or 0))
    theirs = [completeness[s] & 7 == 7 for s in sorted(completeness)]
    mine = [c.handshake == "complete" for c in read_trace(path).connections]
    assert mine == theirs
    assert mine.count(True) == 7
