"""The pcap/pcapng reader: every format, link type and header variant decodes to the same columns."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from chunked import chunked_equivalence  # noqa: F401 - every capture here is also read in tiny chunks
from pcapbuild import (
    ETH_ARP,
    ETH_IPV6,
    Conversation,
    Packet,
    arp,
    ipv4,
    ipv6,
    pcap_bytes,
    pcapng_bytes,
    tcp,
    udp,
    write_pcap,
    write_pcapng,
)

from netbed.trace import PcapError, read_trace
from netbed.trace.pcap import read_frames

T0 = 1_700_000_000.0


def one_segment(**kw: object) -> list[Packet]:
    seg = tcp(40000, 80, 1000, 2000, "P.", b"hello")
    return [Packet(T0 + 0.25, ipv4("10.0.0.1", "10.0.0.2", 6, seg, ttl=61), **kw)]  # type: ignore[arg-type]


def assert_hello_segment(f, row: int = 0) -> None:
    assert f.has_ip[row] and f.has_tcp[row]
    assert f.ip_version[row] == 4
    assert f.src_ip4[row] == 0x0A000001 and f.dst_ip4[row] == 0x0A000002
    assert (f.sport[row], f.dport[row]) == (40000, 80)
    assert (f.seq[row], f.ack[row]) == (1000, 2000)
    assert f.tcp_flags[row] == 8 | 16
    assert f.payload_len[row] == 5
    assert f.ttl[row] == 61
    assert f.ip_proto[row] == 6


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nano", [False, True])
def test_classic_pcap_in_both_byte_orders_and_resolutions_decodes_fields(tmp_path: Path, big_endian: bool,
                                                                         nano: bool) -> None:
    path = write_pcap(tmp_path / "a.pcap", one_segment() * 3, big_endian=big_endian, nano=nano)
    f, warnings = read_frames(path)
    assert warnings == []
    assert list(f.frame) == [1, 2, 3]
    assert f.time[0] == pytest.approx(T0 + 0.25, abs=1e-6)
    assert f.src_mac[0] == 0x020000000001 and f.dst_mac[0] == 0x020000000002
    assert f.ethertype[0] == 0x0800
    assert_hello_segment(f)


def test_pcapng_with_two_interfaces_uses_each_interfaces_link_type_and_time_resolution(tmp_path: Path) -> None:
    packets = one_segment(interface=0) + one_segment(interface=1)
    path = write_pcapng(tmp_path / "a.pcapng", packets, interfaces=[(1, 9), (101, 3)])
    f, warnings = read_frames(path)
    assert warnings == []
    assert list(f.linktype) == [1, 101]
    assert list(f.interface) == [0, 1]
    assert f.time[0] == pytest.approx(T0 + 0.25, abs=1e-6)
    assert f.time[1] == pytest.approx(T0 + 0.25, abs=1e-3)
    assert f.src_mac[1] == 0  # raw IP has no MAC
    for row in (0, 1):
        assert_hello_segment(f, row)


def test_big_endian_pcapng_and_simple_packet_blocks_are_read(tmp_path: Path) -> None:
    f, warnings = read_frames(write_pcapng(tmp_path / "b.pcapng", one_segment(), big_endian=True))
    assert warnings == []
    assert_hello_segment(f)
    f, warnings = read_frames(write_pcapng(tmp_path / "s.pcapng", one_segment() * 2, simple=True))
    assert warnings == [] and len(f) == 2
    assert_hello_segment(f, 1)


@pytest.mark.parametrize("linktype", [1, 113, 276, 101, 228, 0])
def test_every_supported_link_type_reaches_the_tcp_header(tmp_path: Path, linktype: int) -> None:
    f, warnings = read_frames(write_pcap(tmp_path / "l.pcap", one_segment(), linktype=linktype))
    assert warnings == []
    assert_hello_segment(f)
    if linktype in (113, 276):  # cooked captures carry the sender's MAC only
        assert f.src_mac[0] == 0x020000000001 and f.dst_mac[0] == 0


def test_raw_ipv6_link_type_229_and_bsd_loopback_ipv6(tmp_path: Path) -> None:
    seg = tcp(40000, 80, 1, 2, "S")
    packets = [Packet(T0, ipv6("2001:db8::1", "2001:db8::2", 6, seg), ETH_IPV6)]
    for linktype in (229, 0):
        f, _ = read_frames(write_pcap(tmp_path / f"{linktype}.pcap", packets, linktype=linktype))
        assert f.ip_version[0] == 6 and f.has_tcp[0] and f.tcp_flags[0] == 2


def test_vlan_tags_single_and_double_are_skipped(tmp_path: Path) -> None:
    packets = one_segment(vlans=(10,)) + one_segment(vlans=(20, 30))
    f, _ = read_frames(write_pcap(tmp_path / "v.pcap", packets))
    assert list(f.vlan) == [10, 20]
    assert list(f.ethertype) == [0x0800, 0x0800]
    assert_hello_segment(f, 0)
    assert_hello_segment(f, 1)


def test_ipv4_options_move_the_tcp_header(tmp_path: Path) -> None:
    seg = tcp(40000, 80, 1000, 2000, "P.", b"hello")
    options = b"\x94\x04\x00\x00" + b"\x01" * 4  # router alert + NOPs: IHL 7
    packet = Packet(T0, ipv4("10.0.0.1", "10.0.0.2", 6, seg, ttl=61, options=options))
    f, _ = read_frames(write_pcap(tmp_path / "o.pcap", [packet]))
    assert_hello_segment(f)


def test_ipv6_extension_headers_are_walked_to_tcp(tmp_path: Path) -> None:
    seg = tcp(40000, 80, 7, 9, "S")
    exts = [(0, b"\x01\x04\0\0\0\0"), (43, b"\0\0\0\0\0\0"), (60, b"\x01\x0c" + bytes(12))]
    packet = Packet(T0, ipv6("2001:db8::1", "2001:db8::2", 6, seg, hop_limit=33, extensions=exts), ETH_IPV6)
    f, _ = read_frames(write_pcap(tmp_path / "e.pcap", [packet]))
    assert f.ip_version[0] == 6 and f.ip_proto[0] == 6 and f.has_tcp[0]
    assert (f.sport[0], f.dport[0], f.seq[0], f.ttl[0]) == (40000, 80, 7, 33)
    assert f.src_ip6_hi[0] == 0x20010DB800000000 and f.src_ip6_lo[0] == 1
    assert f.payload_len[0] == 0


def test_only_the_first_fragment_carries_a_tcp_header(tmp_path: Path) -> None:
    seg = tcp(40000, 80, 7, 9, "P.", b"y" * 40)
    v4_first = ipv4("10.0.0.1", "10.0.0.2", 6, seg[:32], more_fragments=True)
    v4_later = ipv4("10.0.0.1", "10.0.0.2", 6, seg[32:], frag_offset=32)
    v6_first = ipv6("2001:db8::1", "2001:db8::2", 6, seg[:32], extensions=[(44, struct.pack("!HI", 1, 7))])
    v6_later = ipv6("2001:db8::1", "2001:db8::2", 6, seg[32:], extensions=[(44, struct.pack("!HI", 32, 7))])
    packets = [Packet(T0, v4_first), Packet(T0, v4_later), Packet(T0, v6_first, ETH_IPV6),
               Packet(T0, v6_later, ETH_IPV6)]
    f, _ = read_frames(write_pcap(tmp_path / "f.pcap", packets))
    assert list(f.has_tcp) == [True, False, True, False]
    assert list(f.fragment) == [False, True, False, True]


def test_snaplen_truncated_frames_still_count_payload_from_ip_length(tmp_path: Path) -> None:
    seg = tcp(40000, 80, 1000, 2000, "P.", b"z" * 1400)
    packet = Packet(T0, ipv4("10.0.0.1", "10.0.0.2", 6, seg))
    f, warnings = read_frames(write_pcap(tmp_path / "s.pcap", [packet], snaplen=68))
    assert warnings == []
    assert f.caplen[0] == 68 and f.wirelen[0] == 14 + 20 + 20 + 1400
    assert f.has_tcp[0] and f.payload_len[0] == 1400


def test_a_cut_tcp_header_keeps_the_ip_facts_but_no_tcp(tmp_path: Path) -> None:
    f, _ = read_frames(write_pcap(tmp_path / "c.pcap", one_segment(), snaplen=14 + 20 + 10))
    assert f.has_ip[0] and f.ip_proto[0] == 6 and not f.has_tcp[0]


def test_udp_and_arp_are_decoded(tmp_path: Path) -> None:
    packets = [
        Packet(T0, ipv4("10.0.0.1", "10.0.0.53", 17, udp(5353, 53, b"q" * 30))),
        Packet(T0 + 1, arp(1, "02:00:00:00:00:01", "10.0.0.1", "00:00:00:00:00:00", "10.0.0.2"), ETH_ARP,
               dst_mac="ff:ff:ff:ff:ff:ff"),
        Packet(T0 + 2, arp(2, "02:00:00:00:00:02", "10.0.0.2", "02:00:00:00:00:01", "10.0.0.1"), ETH_ARP),
    ]
    trace = read_trace(write_pcap(tmp_path / "u.pcap", packets))
    (d,) = trace.udp_datagrams()
    assert (str(d.src), str(d.dst), d.length) == ("10.0.0.1:5353", "10.0.0.53:53", 30)
    request, reply = trace.arp()
    assert request.is_request and request.sender_ip == "10.0.0.1" and request.target_ip == "10.0.0.2"
    assert reply.is_reply and reply.sender_mac == "02:00:00:00:00:02" and reply.target_mac == "02:00:00:00:00:01"
    assert trace.frames.dst_mac[1] == 0xFFFFFFFFFFFF
    assert trace.connections == []


def test_a_partial_last_record_gives_the_complete_records_and_a_warning(tmp_path: Path) -> None:
    data = pcap_bytes(one_segment() * 3)
    for cut in (1, 10, 30):  # inside the data, inside the record header
        path = tmp_path / "t.pcap"
        path.write_bytes(data[:-cut] if cut != 30 else data + b"\0" * 7)
        f, warnings = read_frames(path)
        assert len(f) == (2 if cut != 30 else 3)
        assert len(warnings) == 1 and "truncated" in warnings[0]
        assert_hello_segment(f, 1)


def test_a_cut_global_header_or_pcapng_block_is_a_warning_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "h.pcap"
    path.write_bytes(pcap_bytes([])[:12])
    trace = read_trace(path)
    assert len(trace.frames) == 0 and "truncated" in trace.warnings[0]
    data = pcapng_bytes(one_segment() * 2)
    path.write_bytes(data[:-8])
    trace = read_trace(path)
    assert len(trace.frames) == 1 and "truncated" in trace.warnings[0]


def test_an_absurd_record_length_ends_reading_with_a_warning(tmp_path: Path) -> None:
    data = bytearray(pcap_bytes(one_segment() * 3))
    second = 24 + 16 + (len(data) - 24) // 3 - 16
    struct.pack_into("<I", data, second + 8, 0x7FFFFFFF)
    path = tmp_path / "x.pcap"
    path.write_bytes(bytes(data))
    f, warnings = read_frames(path)
    assert len(f) == 1 and "corrupt" in warnings[0]


def test_empty_and_non_pcap_files_raise_pcap_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(PcapError, match=r"^empty file: .*empty\.pcap$"):
        read_trace(empty)
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a capture\n")
    with pytest.raises(PcapError, match=r"^not a pcap or pcapng file: .*notes\.txt$"):
        read_trace(text)
    assert issubclass(PcapError, ValueError)


def test_frames_table_converts_to_one_structured_array(tmp_path: Path) -> None:
    c = Conversation().handshake()
    f, _ = read_frames(write_pcap(tmp_path / "r.pcap", c.packets))
    records = f.to_records()
    assert records.dtype.names is not None and "tcp_flags" in records.dtype.names
    assert list(records["tcp_flags"]) == [2, 18, 16]
    assert np.array_equal(f.select(f.tcp_flags == 16).frame, [3])


def test_pcapng_sections_of_both_byte_orders_number_interfaces_globally(tmp_path: Path) -> None:
    first = pcapng_bytes(one_segment(), interfaces=[(1, 6)])
    second = pcapng_bytes(one_segment(), interfaces=[(101, 9)], big_endian=True)
    path = tmp_path / "two.pcapng"
    path.write_bytes(first + second)
    f, warnings = read_frames(path)
    assert warnings == []
    assert list(f.interface) == [0, 1] and list(f.linktype) == [1, 101]
    assert_hello_segment(f, 0)
    assert_hello_segment(f, 1)


def test_a_packet_block_too_short_for_its_header_is_skipped_with_a_warning(tmp_path: Path) -> None:
    data = pcapng_bytes(one_segment())
    short_epb = struct.pack("<III", 6, 12, 12)
    path = tmp_path / "short.pcapng"
    path.write_bytes(data + short_epb)
    f, warnings = read_frames(path)
    assert len(f) == 1 and "too short" in warnings[0]
