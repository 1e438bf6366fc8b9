"""TCP payload bytes cut out of captured frames: the bytes as sent, whatever the link layer and headers."""
import gzip
import struct

import pytest
from pcapbuild import Conversation, frame, pcap_bytes

from netbed.trace import read_trace
from netbed.trace.payload import tcp_payloads

REQUEST = b"GET /index.html HTTP/1.1\r\nHost: h3\r\n\r\n"


def conversation(**kwargs) -> Conversation:
    c = Conversation(**kwargs)
    c.send("client", "S")
    c.send("server", "S.")
    c.send("client", ".")
    c.send("client", "P.", REQUEST)
    c.send("server", "P.", b"HTTP/1.0 200 OK\r\n\r\nhello")
    c.send("client", ".", b"x")  # one byte: the Ethernet frame is padded to 60 bytes after it
    return c


CASES = [(lt, kind) for lt in (1, 113, 276, 101, 0) for kind in ("ipv4", "ipv6+ext")] + [(1, "vlan")]


def padded_ethernet_pcap(packets) -> bytes:
    """Ethernet frames padded to the 60-byte minimum, as a NIC sends them (the padding is not payload)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    for p in packets:
        data = frame(p).ljust(60, b"\0")
        out.append(struct.pack("<IIII", int(p.time), 0, len(data), len(data)) + data)
    return b"".join(out)


@pytest.mark.parametrize("linktype, kind", CASES, ids=[f"{lt}-{kind}" for lt, kind in CASES])
def test_payloads_are_the_bytes_sent(tmp_path, linktype, kind):
    if kind == "ipv6+ext":
        c = conversation(client_addr=("fd00::1", 40000), server_addr=("fd00::2", 80),
                         ipv6_extensions=[(60, b"\x01\x04\0\0\0\0")])
    else:
        c = conversation(ip_options=b"\x01\x01\x01\x00" if kind == "ipv4" else b"")  # NOP options: IHL 6
    if kind == "vlan":
        for p in c.packets:
            p.vlans = (7,)
    data = padded_ethernet_pcap(c.packets) if linktype == 1 else pcap_bytes(c.packets, linktype=linktype)
    path = tmp_path / "c.pcap"
    path.write_bytes(data)
    (conn,) = read_trace(path).connections
    got = tcp_payloads(path, {s.frame for s in conn.segments})
    assert [got[s.frame] for s in conn.segments if s.payload_len] == [REQUEST, b"HTTP/1.0 200 OK\r\n\r\nhello", b"x"]
    assert all(got[s.frame] == b"" for s in conn.segments if not s.payload_len)


def test_a_frame_cut_by_the_snap_length_gives_what_was_captured(tmp_path):
    c = conversation()
    path = tmp_path / "c.pcap"
    path.write_bytes(pcap_bytes(c.packets, snaplen=14 + 20 + 20 + 10))
    (conn,) = read_trace(path).connections
    request = next(s for s in conn.segments if s.payload_len == len(REQUEST))
    assert tcp_payloads(path, {request.frame}) == {request.frame: REQUEST[:10]}


def test_payloads_of_a_gzip_capture_are_those_of_the_plain_one(tmp_path):
    """A rotating capture's .pcap.gz: the same opener as read_trace, so the same bytes come out (the
    reader used to take the compressed bytes for the capture and find no frames at all)."""
    c = conversation()
    plain = tmp_path / "c.pcap"
    plain.write_bytes(pcap_bytes(c.packets))
    packed = tmp_path / "c.pcap.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    (conn,) = read_trace(packed).connections
    frames = {s.frame for s in conn.segments}
    got = tcp_payloads(packed, frames)
    assert got == tcp_payloads(plain, frames)
    assert got[next(s.frame for s in conn.segments if s.payload_len == len(REQUEST))] == REQUEST
