"""One frame, layer by layer: the bytes of each header, as the lecture's OSI picture stacks them.

The columnar reader (``pcap.py``) keeps header *fields* for millions of frames and never the bytes.
A few experiments need the bytes themselves — a request frame taken apart header by header, the
text of an FTP control connection, a DHCP message's type — for the handful of frames a teaching
capture holds. So this module reads an Ethernet capture record by record into plain objects that
keep each layer's bytes. Records are found by the same container reader as every capture's
(classic pcap or pcapng); frames of a link type other than Ethernet are a :class:`PcapError`.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from .constants import (
    ETH_IPV4,
    ETHERNET_HEADER,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV4_HEADER,
    TCP_HEADER,
    UDP_HEADER,
    LinkType,
)
from .container import ContainerReader, PcapError

__all__ = ["Packet", "read_packets", "tcp_stream", "Bootp", "bootp"]



def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


@dataclass(frozen=True)
class Packet:
    """One Ethernet frame and, where present, its IPv4 and TCP/UDP headers and payload, as bytes."""

    number: int  # 1-based, like Wireshark
    time: float
    frame: bytes
    link: bytes  # the Ethernet header
    network: bytes = b""  # the IPv4 header, options included
    transport: bytes = b""  # the TCP header (options included) or the UDP header
    payload: bytes = b""  # the application's bytes

    @property
    def src_mac(self) -> str:
        return _mac(self.link[6:12])

    @property
    def dst_mac(self) -> str:
        return _mac(self.link[0:6])

    @property
    def ethertype(self) -> int:
        return int.from_bytes(self.link[12:14], "big")

    @property
    def src_ip(self) -> str | None:
        return str(ipaddress.IPv4Address(self.network[12:16])) if self.network else None

    @property
    def dst_ip(self) -> str | None:
        return str(ipaddress.IPv4Address(self.network[16:20])) if self.network else None

    @property
    def ttl(self) -> int | None:
        return self.network[8] if self.network else None

    @property
    def protocol(self) -> int | None:
        return self.network[9] if self.network else None

    @property
    def sport(self) -> int | None:
        return int.from_bytes(self.transport[0:2], "big") if self.transport else None

    @property
    def dport(self) -> int | None:
        return int.from_bytes(self.transport[2:4], "big") if self.transport else None

    @property
    def tcp_seq(self) -> int | None:
        return int.from_bytes(self.transport[4:8], "big") if self.protocol == IPPROTO_TCP else None

    @property
    def tcp_flags(self) -> int:
        return self.transport[13] if self.protocol == IPPROTO_TCP else 0

    def network_without_hop_fields(self) -> bytes:
        """The IPv4 header with TTL and header checksum zeroed: what a router must not change."""
        if not self.network:
            return b""
        head = bytearray(self.network)
        head[8] = 0
        head[10:12] = b"\0\0"
        return bytes(head)


def _decode(number: int, time: float, frame: bytes) -> Packet:
    link = frame[:ETHERNET_HEADER]
    if len(frame) < ETHERNET_HEADER or int.from_bytes(link[12:14], "big") != ETH_IPV4:
        return Packet(number, time, frame, link)
    ip = frame[ETHERNET_HEADER:]
    ihl = (ip[0] & 0x0F) * 4 if ip else 0
    total = int.from_bytes(ip[2:4], "big") if len(ip) >= 4 else 0
    if len(ip) < IPV4_HEADER or ihl < IPV4_HEADER or total < ihl:
        return Packet(number, time, frame, link)
    network, rest = ip[:ihl], ip[ihl:total]
    if network[9] == IPPROTO_TCP and len(rest) >= TCP_HEADER:
        offset = (rest[12] >> 4) * 4
        return Packet(number, time, frame, link, network, rest[:offset], rest[offset:])
    if network[9] == IPPROTO_UDP and len(rest) >= UDP_HEADER:
        return Packet(number, time, frame, link, network, rest[:UDP_HEADER], rest[UDP_HEADER:])
    return Packet(number, time, frame, link, network, b"", rest)


def read_packets(path: str | os.PathLike[str]) -> list[Packet]:
    """Every frame of an Ethernet capture (classic pcap or pcapng), in file order."""
    name = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    index, _used = ContainerReader(name).index(data, final=True)
    packets = []
    for start, caplen, time, linktype in zip(index.start.tolist(), index.caplen.tolist(), index.time.tolist(),
                                             index.linktype.tolist()):
        if linktype != LinkType.ETHERNET:
            raise PcapError(f"{name}: link type {linktype}; the layer reader reads Ethernet "
                            f"({LinkType.ETHERNET:d}) only")
        packets.append(_decode(len(packets) + 1, time, data[start:start + caplen]))
    return packets


def tcp_stream(packets: list[Packet], src: tuple[str, int], dst: tuple[str, int]) -> bytes:
    """The bytes one side of a TCP connection sent, in sequence order, each byte once."""
    chunks: dict[int, bytes] = {}
    for p in packets:
        if p.protocol == IPPROTO_TCP and (p.src_ip, p.sport) == src and (p.dst_ip, p.dport) == dst and p.payload:
            chunks.setdefault(p.tcp_seq, p.payload)
    if not chunks:
        return b""
    first = next(iter(chunks))  # the first payload captured starts the stream (retransmissions come later)
    out, at = bytearray(), first
    for seq in sorted(chunks, key=lambda s: (s - first) % 2**32):
        data = chunks[seq]
        skip = (at - seq) % 2**32
        if skip < len(data):
            out += data[skip:]
            at = (seq + len(data)) % 2**32
    return bytes(out)


# --- DHCP (BOOTP) ------------------------------------------------------------------------------

DHCP_MAGIC = b"\x63\x82\x53\x63"
BOOTP_FIXED = 236  # op .. file, before the magic cookie
OPTION_PAD, OPTION_END, OPTION_MESSAGE_TYPE, OPTION_SERVER_ID = 0, 255, 53, 54
DHCP_MESSAGE_TYPES = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE", 5: "ACK", 6: "NAK", 7: "RELEASE",
                      8: "INFORM"}


@dataclass(frozen=True)
class Bootp:
    """The fields of a DHCP message the lecture's "dynamically assigned" needs."""

    op: int  # 1 request (client to server), 2 reply
    xid: int  # transaction id: ties an OFFER to its DISCOVER
    chaddr: str  # the client's MAC address
    yiaddr: str  # "your" address: what the server gives
    message_type: str  # DISCOVER, OFFER, REQUEST, ACK, …
    server_id: str | None


def bootp(payload: bytes) -> Bootp | None:
    """Decode a DHCP message from a UDP payload (None if it is not one)."""
    if len(payload) < BOOTP_FIXED + len(DHCP_MAGIC) or payload[BOOTP_FIXED:BOOTP_FIXED + 4] != DHCP_MAGIC:
        return None
    options: dict[int, bytes] = {}
    o = BOOTP_FIXED + 4
    while o < len(payload):
        code = payload[o]
        if code == OPTION_END:
            break
        if code == OPTION_PAD:
            o += 1
            continue
        if o + 1 >= len(payload):
            break
        length = payload[o + 1]
        options[code] = payload[o + 2:o + 2 + length]
        o += 2 + length
    kind = options.get(OPTION_MESSAGE_TYPE, b"\0")[0]
    server = options.get(OPTION_SERVER_ID)
    return Bootp(payload[0], int.from_bytes(payload[4:8], "big"), _mac(payload[28:34]),
                 str(ipaddress.IPv4Address(payload[16:20])), DHCP_MESSAGE_TYPES.get(kind, str(kind)),
                 str(ipaddress.IPv4Address(server)) if server and len(server) == 4 else None)
