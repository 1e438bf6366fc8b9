"""Damaged captures never crash or hang the reader: it returns what it can, or raises PcapError.

``netbed trace`` is pointed at files from anywhere (a student's laptop, a capture cut by a full disk).
Any exception other than PcapError would be a traceback for the user, so hypothesis mutates valid
captures (bit flips, byte overwrites, truncation, insertions) and checks the whole path:
read, classify, table, JSON.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pcapbuild import ETH_ARP, ETH_IPV6, Conversation, Packet, arp, ipv6, pcap_bytes, pcapng_bytes, tcp

from netbed.errors import NetbedError
from netbed.trace import PcapError, command, format_table, read_trace


def seed_captures() -> list[bytes]:
    c = Conversation(isn_client=2**32 - 3).handshake()
    c.client("P.", 40)
    c.server("F.")
    c.client("F.")
    c.server(".")
    extra = [Packet(c.time, arp(1, "02:00:00:00:00:01", "10.0.0.1", "00:00:00:00:00:00", "10.0.0.2"), ETH_ARP),
             Packet(c.time, ipv6("2001:db8::1", "2001:db8::2", 6, tcp(1, 2, 3, 4, "S"), extensions=[(0, b"")]),
                    ETH_IPV6, vlans=(5,))]
    packets = c.packets + extra
    return [
        pcap_bytes(packets),
        pcap_bytes(packets, big_endian=True, nano=True, snaplen=60),
        pcap_bytes(packets, linktype=113),
        pcapng_bytes(packets),
        pcapng_bytes(packets, interfaces=[(276, 9)], big_endian=True),
        pcapng_bytes(packets, simple=True),
    ]


SEEDS = seed_captures()

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 7)),
    st.tuples(st.just("set"), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("cut"), st.integers(0, 10**6), st.just(b"")),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=16)),
)


def mutate(data: bytes, mutations: list[tuple]) -> bytes:
    buf = bytearray(data)
    for kind, where, arg in mutations:
        if not buf:
            break
        at = where % len(buf)
        if kind == "flip":
            buf[at] ^= 1 << arg
        elif kind == "set":
            buf[at:at + len(arg)] = arg
        elif kind == "cut":
            del buf[at:]
        else:
            buf[at:at] = arg
    return bytes(buf)


def stream_everything(path: Path) -> str | None:
    """``netbed trace --json`` in 7-byte chunks: valid JSON, or one NetbedError line; never a traceback."""
    out, err = io.StringIO(), io.StringIO()
    try:
        command.run(path, as_json=True, out=out, err=err, chunk_bytes=7)
    except NetbedError as e:
        assert "\n" not in str(e) and str(path) in str(e)
        return None
    return out.getvalue()


def read_everything(path: Path) -> None:
    streamed = stream_everything(path)
    try:
        trace = read_trace(path)
    except PcapError as e:
        assert "\n" not in str(e) and str(path) in str(e)
        assert streamed is None
        return
    assert streamed is not None
    whole = sorted(json.loads(trace.to_json_text())["connections"], key=json.dumps)
    assert sorted(json.loads(streamed)["connections"], key=json.dumps) == whole
    for conn in trace.connections:
        conn.ladder()
    format_table(trace)
    json.dumps(trace.to_json())
    trace.udp_datagrams()
    trace.arp()


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, len(SEEDS) - 1), mutations=st.lists(mutation, min_size=1, max_size=6))
def test_mutated_captures_are_read_or_rejected_with_pcap_error(tmp_path: Path, seed: int, mutations: list) -> None:
    path = tmp_path / "fuzz.cap"
    path.write_bytes(mutate(SEEDS[seed], mutations))
    read_everything(path)


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=st.sampled_from([b"", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x0a\x0d\x0d\x0a",
                             b"\x0a\x0d\x0d\x0a" + struct.pack("<I", 28) + b"\x4d\x3c\x2b\x1a"]),
       body=st.binary(max_size=600))
def test_random_bytes_behind_a_valid_magic_never_crash(tmp_path: Path, head: bytes, body: bytes) -> None:
    path = tmp_path / "random.cap"
    path.write_bytes(head + body)
    read_everything(path)
