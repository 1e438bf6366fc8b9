"""A tiny pcap/pcapng writer for tests: hand-made captures whose every byte we know.

Why not a real capture: a test must show *one* behaviour (a three-way close, a wrapped sequence
number, an IPv4 option) deterministically, on any machine, without root. ``Conversation`` keeps the
seq/ack bookkeeping so a test reads like the ladder diagram:

    c = Conversation()
    c.handshake()
    c.client("P.", 100)
    c.server(".")
    c.four_way_close()
    write_pcap(tmp_path / "x.pcap", c.packets)
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from netbed.trace.constants import FLAG_LETTERS

FLAG_BITS = {letter: bit for bit, letter in FLAG_LETTERS}  # tcpdump's letters: "F", "S", "R", "P", "." ...
ETH_IPV4, ETH_IPV6, ETH_ARP, ETH_VLAN = 0x0800, 0x86DD, 0x0806, 0x8100
MAC_CLIENT = "02:00:00:00:00:01"
MAC_SERVER = "02:00:00:00:00:02"


def mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def flags_of(text: str) -> int:
    """tcpdump-style flag text ("S.", "F.", "R") to the TCP flags byte."""
    return sum(FLAG_BITS[ch] for ch in text)


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


# ----------------------------------------------------------------------------------------------
# Headers


def tcp(sport: int, dport: int, seq: int, ack: int, flags: int | str, payload: bytes = b"",
        window: int = 65535, options: bytes = b"") -> bytes:
    if isinstance(flags, str):
        flags = flags_of(flags)
    assert len(options) % 4 == 0
    offset = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq % 2**32, ack % 2**32, offset << 4, flags, window, 0,
                       0) + options + payload


def udp(sport: int, dport: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ipv4(src: str, dst: str, proto: int, payload: bytes, ttl: int = 64, options: bytes = b"",
         ident: int = 0, frag_offset: int = 0, more_fragments: bool = False, total_length: int | None = None) -> bytes:
    """An IPv4 header with a correct total length and checksum (options padded by the caller)."""
    assert len(options) % 4 == 0
    ihl = 5 + len(options) // 4
    total = 4 * ihl + len(payload) if total_length is None else total_length
    frag = (0x2000 if more_fragments else 0) | (frag_offset // 8)
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, ident, frag, ttl, proto, 0,
                         ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed) + options
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload


def ipv6(src: str, dst: str, next_header: int, payload: bytes, hop_limit: int = 64,
         extensions: Sequence[tuple[int, bytes]] = ()) -> bytes:
    """An IPv6 packet; ``extensions`` are (header type, body) pairs chained in front of the payload.

    Each body is padded to the 8-byte unit of hop-by-hop/routing/destination options; a fragment
    header (44) body must be the 6 bytes after its next-header and reserved fields.
    """
    chain = b""
    types = [t for t, _ in extensions] + [next_header]
    for (kind, body), following in zip(extensions, types[1:]):
        if kind == 44:
            chain += struct.pack("!BB", following, 0) + body
        else:
            body = body + b"\0" * (-(len(body) + 2) % 8)
            chain += struct.pack("!BB", following, (len(body) + 2) // 8 - 1) + body
    first = types[0]
    body = chain + payload
    return struct.pack("!IHBB16s16s", 6 << 28, len(body), first, hop_limit, ipaddress.IPv6Address(src).packed,
                       ipaddress.IPv6Address(dst).packed) + body


def arp(op: int, sender_mac: str, sender_ip: str, target_mac: str, target_ip: str) -> bytes:
    return struct.pack("!HHBBH6s4s6s4s", 1, ETH_IPV4, 6, 4, op, mac(sender_mac),
                       ipaddress.IPv4Address(sender_ip).packed, mac(target_mac),
                       ipaddress.IPv4Address(target_ip).packed)


# ----------------------------------------------------------------------------------------------
# Packets and link layers


@dataclass
class Packet:
    """A network-layer packet plus what the link layer needs to frame it."""

    time: float
    payload: bytes  # IPv4 / IPv6 / ARP bytes
    ethertype: int = ETH_IPV4
    src_mac: str = MAC_CLIENT
    dst_mac: str = MAC_SERVER
    vlans: tuple[int, ...] = ()
    interface: int = 0  # pcapng only
    missing: int = 0  # bytes the packet had on the wire beyond ``payload`` (a headers-only capture)


def frame(p: Packet, linktype: int = 1) -> bytes:
    """The packet framed for a link type: 1 Ethernet, 113 SLL, 276 SLL2, 101/228/229 raw, 0 null."""
    if linktype == 1:
        tags = b"".join(struct.pack("!HH", ETH_VLAN, vid) for vid in p.vlans)
        return mac(p.dst_mac) + mac(p.src_mac) + tags + struct.pack("!H", p.ethertype) + p.payload
    if linktype == 113:
        return struct.pack("!HHH8sH", 4, 1, 6, mac(p.src_mac) + b"\0\0", p.ethertype) + p.payload
    if linktype == 276:
        return struct.pack("!HHIHBB8s", p.ethertype, 0, 1, 1, 4, 6, mac(p.src_mac) + b"\0\0") + p.payload
    if linktype in (101, 228, 229):
        return p.payload
    if linktype == 0:
        family = 2 if p.ethertype == ETH_IPV4 else 30
        return struct.pack("<I", family) + p.payload
    raise ValueError(f"no framing for link type {linktype}")


def pcap_bytes(packets: Iterable[Packet], linktype: int = 1, nano: bool = False, big_endian: bool = False,
               snaplen: int = 262144) -> bytes:
    """A classic pcap file; frames longer than ``snaplen`` are cut like a real capture would."""
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    scale = 10**9 if nano else 10**6
    for p in packets:
        data = frame(p, linktype)
        sec, frac = divmod(round(p.time * scale), scale)
        cut = data[:snaplen]
        out.append(struct.pack(e + "IIII", sec, frac, len(cut), len(data) + p.missing) + cut)
    return b"".join(out)


def write_pcap(path: Path, packets: Iterable[Packet], **kwargs: object) -> Path:
    path.write_bytes(pcap_bytes(packets, **kwargs))  # type: ignore[arg-type]
    return path


def _block(e: str, kind: int, body: bytes) -> bytes:
    body = body + b"\0" * (-len(body) % 4)
    return struct.pack(e + "II", kind, len(body) + 12) + body + struct.pack(e + "I", len(body) + 12)


def pcapng_bytes(packets: Iterable[Packet], interfaces: Sequence[tuple[int, int]] = ((1, 6),),
                 big_endian: bool = False, simple: bool = False, snaplen: int = 262144) -> bytes:
    """A one-section pcapng file. ``interfaces`` are (link type, if_tsresol byte) pairs; each packet
    goes out on ``packet.interface``. ``simple`` writes Simple Packet Blocks (interface 0, no time)."""
    e = ">" if big_endian else "<"
    out = [_block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))]
    for linktype, tsresol in interfaces:
        options = struct.pack(e + "HHB3x", 9, 1, tsresol) + struct.pack(e + "HH", 0, 0)
        out.append(_block(e, 1, struct.pack(e + "HHI", linktype, 0, snaplen) + options))
    for p in packets:
        linktype, tsresol = interfaces[p.interface]
        data = frame(p, linktype)
        cut = data[:snaplen]
        if simple:
            out.append(_block(e, 3, struct.pack(e + "I", len(data) + p.missing) + cut))
            continue
        units = 2 ** (tsresol & 0x7F) if tsresol & 0x80 else 10 ** tsresol
        ts = round(p.time * units)
        out.append(_block(e, 6, struct.pack(e + "IIIII", p.interface, ts >> 32, ts & 0xFFFFFFFF, len(cut),
                                             len(data) + p.missing) + cut))
    return b"".join(out)


def write_pcapng(path: Path, packets: Iterable[Packet], **kwargs: object) -> Path:
    path.write_bytes(pcapng_bytes(packets, **kwargs))  # type: ignore[arg-type]
    return path


# ----------------------------------------------------------------------------------------------
# A TCP conversation with seq/ack bookkeeping


@dataclass
class Conversation:
    """Segments of one TCP connection, numbered like real stacks do, for tests to write as a ladder.

    By default every segment acknowledges everything the peer has sent so far; pass ``ack=`` to
    model a segment sent before the peer's last one arrived (simultaneous close), or ``seq=`` to
    retransmit.
    """

    client_addr: tuple[str, int] = ("10.0.0.1", 40000)
    server_addr: tuple[str, int] = ("10.0.0.2", 80)
    isn_client: int = 1000
    isn_server: int = 5000
    start: float = 1_700_000_000.0
    step: float = 0.001
    ip_options: bytes = b""
    ipv6_extensions: Sequence[tuple[int, bytes]] = ()
    headers_only: bool = False  # like tcpdump -s 54: payload counted in the IP length, not written (IPv4)
    packets: list[Packet] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.next_seq = {"client": self.isn_client % 2**32, "server": self.isn_server % 2**32}
        self.time = self.start

    def send(self, side: str, flags: str, data: int | bytes = b"", seq: int | None = None,
             ack: int | None = None) -> Packet:
        size = data if isinstance(data, int) else len(data)
        payload = b"" if self.headers_only else b"x" * data if isinstance(data, int) else data
        peer = "server" if side == "client" else "client"
        src, dst = (self.client_addr, self.server_addr) if side == "client" else (self.server_addr, self.client_addr)
        bits = flags_of(flags)
        first = self.next_seq[side] if seq is None else seq % 2**32
        acknowledged = (self.next_seq[peer] if ack is None else ack) if bits & 16 else 0
        segment = tcp(src[1], dst[1], first, acknowledged, bits, payload)
        length = size + (1 if bits & 2 else 0) + (1 if bits & 1 else 0)
        end = (first + length) % 2**32
        # Only move forward (modulo 2^32): a retransmission does not rewind the sender.
        if (end - self.next_seq[side]) % 2**32 < 2**31:
            self.next_seq[side] = end
        if ":" in src[0]:
            packet = ipv6(src[0], dst[0], 6, segment, extensions=self.ipv6_extensions)
            ethertype = ETH_IPV6
        else:
            total = 20 + len(self.ip_options) + len(segment) + size - len(payload)
            packet = ipv4(src[0], dst[0], 6, segment, options=self.ip_options, total_length=total)
            ethertype = ETH_IPV4
        src_mac, dst_mac = (MAC_CLIENT, MAC_SERVER) if side == "client" else (MAC_SERVER, MAC_CLIENT)
        p = Packet(self.time, packet, ethertype, src_mac, dst_mac, missing=size - len(payload))
        self.time += self.step
        self.packets.append(p)
        return p

    def client(self, flags: str, data: int | bytes = b"", **kw: int | None) -> Packet:
        return self.send("client", flags, data, **kw)

    def server(self, flags: str, data: int | bytes = b"", **kw: int | None) -> Packet:
        return self.send("server", flags, data, **kw)

    def handshake(self) -> Conversation:
        self.client("S")
        self.server("S.")
        self.client(".")
        return self

    def four_way_close(self, initiator: str = "client") -> Conversation:
        """FIN, ACK, FIN, ACK with the passive side's ACK and FIN as separate segments."""
        passive = "server" if initiator == "client" else "client"
        self.send(initiator, "F.")
        self.send(passive, ".")
        self.send(passive, "F.")
        self.send(initiator, ".")
        return self


def interleave(*conversations: Conversation) -> list[Packet]:
    """All packets of several conversations in time order (stable for equal times)."""
    return sorted((p for c in conversations for p in c.packets), key=lambda p: p.time)
