"""The layer reader: one frame's headers as bytes, a TCP side's byte stream, a DHCP message's type."""
from __future__ import annotations

import struct

import pytest
from pcapbuild import MAC_CLIENT, MAC_SERVER, Packet, ipv4, mac, tcp, udp, write_pcap, write_pcapng

from netbed.trace import PcapError
from netbed.trace.layers import bootp, read_packets, tcp_stream

REQUEST = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"
TIMESTAMPS = b"\x01\x01\x08\x0a" + b"\0" * 8  # NOP, NOP, timestamps: a 32-byte TCP header, like Linux's


def test_a_request_frame_comes_apart_layer_by_layer(tmp_path):
    seg = tcp(40000, 8000, 1000, 2000, "P.", REQUEST, options=TIMESTAMPS)
    path = write_pcap(tmp_path / "x.pcap", [Packet(1.5, ipv4("10.0.0.1", "10.0.0.3", 6, seg, ttl=63))])
    (p,) = read_packets(path)
    assert (len(p.link), len(p.network), len(p.transport), len(p.payload)) == (14, 20, 32, len(REQUEST))
    assert len(p.frame) == 14 + 20 + 32 + len(REQUEST)
    assert (p.src_mac, p.dst_mac, p.ethertype) == (MAC_CLIENT, MAC_SERVER, 0x0800)
    assert (p.src_ip, p.dst_ip, p.ttl, p.protocol) == ("10.0.0.1", "10.0.0.3", 63, 6)
    assert (p.sport, p.dport, p.tcp_seq, p.payload) == (40000, 8000, 1000, REQUEST)
    assert p.time == pytest.approx(1.5)


def test_hop_fields_aside_a_routed_ip_header_is_unchanged(tmp_path):
    seg = tcp(40000, 8000, 1, 1, "P.", b"x")
    path = write_pcap(tmp_path / "x.pcap", [Packet(0, ipv4("10.0.1.1", "10.0.2.2", 6, seg, ttl=64)),
                                            Packet(0, ipv4("10.0.1.1", "10.0.2.2", 6, seg, ttl=63))])
    a, b = read_packets(path)
    assert a.network != b.network  # TTL and checksum differ
    assert a.network_without_hop_fields() == b.network_without_hop_fields()


def test_a_side_of_a_connection_is_one_stream_each_byte_once(tmp_path):
    client, server = ("10.0.0.1", 40000), ("10.0.0.3", 21)

    def seg(seq, data):
        return Packet(0, ipv4(client[0], server[0], 6, tcp(client[1], server[1], seq, 1, "P.", data)))

    # in order, a retransmission of the first segment, and a segment from the other side
    other = Packet(0, ipv4(server[0], client[0], 6, tcp(server[1], client[1], 1, 100, "P.", b"220 hi\r\n")))
    path = write_pcap(tmp_path / "x.pcap", [seg(100, b"USER a\r\n"), other, seg(108, b"RETR f\r\n"),
                                            seg(100, b"USER a\r\n")])
    packets = read_packets(path)
    assert tcp_stream(packets, client, server) == b"USER a\r\nRETR f\r\n"
    assert tcp_stream(packets, server, client) == b"220 hi\r\n"
    assert tcp_stream(packets, client, ("10.0.0.3", 20)) == b""


def dhcp_message(op: int, kind: int, xid: int, chaddr: str, yiaddr: str = "0.0.0.0") -> bytes:
    fixed = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", op, 1, 6, 0, xid, 0, 0, b"\0" * 4,
                        bytes(int(x) for x in yiaddr.split(".")), b"\0" * 4, b"\0" * 4,
                        mac(chaddr) + b"\0" * 10, b"", b"")
    return fixed + b"\x63\x82\x53\x63" + bytes([53, 1, kind, 0, 54, 4, 10, 0, 0, 3, 255])


def test_dhcp_messages_are_named_with_their_lease(tmp_path):
    offer = dhcp_message(2, 2, 0xABCD, MAC_CLIENT, "10.0.0.143")
    path = write_pcap(tmp_path / "x.pcap", [Packet(0, ipv4("10.0.0.3", "10.0.0.143", 17, udp(67, 68, offer)))])
    (p,) = read_packets(path)
    m = bootp(p.payload)
    assert (m.op, m.xid, m.chaddr, m.yiaddr, m.message_type, m.server_id) == (
        2, 0xABCD, MAC_CLIENT, "10.0.0.143", "OFFER", "10.0.0.3")
    assert bootp(b"not dhcp") is None


def test_pcapng_reads_the_same_and_other_link_types_are_one_clear_error(tmp_path):
    seg = tcp(1, 2, 0, 0, "S")
    packets = [Packet(0, ipv4("10.0.0.1", "10.0.0.2", 6, seg))]
    ng = read_packets(write_pcapng(tmp_path / "x.pcapng", packets))
    classic = read_packets(write_pcap(tmp_path / "x.pcap", packets))
    assert [p.frame for p in ng] == [p.frame for p in classic]
    raw = write_pcap(tmp_path / "raw.pcap", packets, linktype=101)
    with pytest.raises(PcapError, match="Ethernet"):
        read_packets(raw)
    (tmp_path / "junk").write_bytes(b"hello world")
    with pytest.raises(PcapError):
        read_packets(tmp_path / "junk")
