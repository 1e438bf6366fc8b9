"""Every number of the trace stage, named once: file formats, link layers, protocols, TCP flags and
the words of the verdicts.

Why one module: a bare ``(12, 14, 101, 228, 229)`` says nothing to a reader, and the TCP flag bits
used to be defined three times. Like dpkt (``TH_FIN = 0x01``, ``DLT_EN10MB = 1``), each number has a
name and a comment saying where it comes from; every other module imports it from here.

The verdict words (handshake, close kind, who closed) are string enums, so ``conn.close_kind ==
"three-way"`` and JSON keep working, and the vectorised classifier's integer codes for them are
IntEnums whose *names* map to the words: no meaning hangs on the position in a tuple.
"""

from __future__ import annotations

from enum import Enum, IntEnum

# --------------------------------------------------------------------------------------------------
# Capture file formats (pcap-savefile(5), draft-ietf-opsawg-pcapng)

PCAP_MAGIC_USEC_LE = b"\xd4\xc3\xb2\xa1"  # classic pcap, microsecond timestamps, little-endian writer
PCAP_MAGIC_USEC_BE = b"\xa1\xb2\xc3\xd4"
PCAP_MAGIC_NSEC_LE = b"\x4d\x3c\xb2\xa1"  # nanosecond timestamps
PCAP_MAGIC_NSEC_BE = b"\xa1\xb2\x3c\x4d"
PCAP_MAGICS = (PCAP_MAGIC_USEC_LE, PCAP_MAGIC_USEC_BE, PCAP_MAGIC_NSEC_LE, PCAP_MAGIC_NSEC_BE)
PCAP_LITTLE_ENDIAN = (PCAP_MAGIC_USEC_LE, PCAP_MAGIC_NSEC_LE)
PCAP_NANOSECONDS = (PCAP_MAGIC_NSEC_LE, PCAP_MAGIC_NSEC_BE)
PCAP_FILE_HEADER = 24  # magic, version, thiszone, sigfigs, snaplen, linktype
PCAP_RECORD_HEADER = 16  # ts_sec, ts_frac, incl_len, orig_len
PCAP_LINKTYPE_MASK = 0x0FFF_FFFF  # the upper bits of the link type field carry FCS information

PCAPNG_SHB = 0x0A0D_0D0A  # section header block; its first 4 bytes are also the file's magic
PCAPNG_SHB_MAGIC = PCAPNG_SHB.to_bytes(4, "big")
PCAPNG_BYTE_ORDER_LE = b"\x4d\x3c\x2b\x1a"  # 0x1A2B3C4D written little-endian
PCAPNG_BYTE_ORDER_BE = b"\x1a\x2b\x3c\x4d"
PCAPNG_IDB = 1  # interface description block
PCAPNG_SPB = 3  # simple packet block (no timestamp, interface 0)
PCAPNG_EPB = 6  # enhanced packet block
PCAPNG_EPB_HEADER = 28  # type, length, interface, timestamp (2 words), captured, original length
PCAPNG_SPB_HEADER = 12  # type, length, original length
PCAPNG_OPT_END = 0
PCAPNG_IF_TSRESOL = 9  # timestamp resolution: 10^-n or 2^-n seconds
PCAPNG_IF_TSOFFSET = 14  # seconds to add to every timestamp of the interface

# Upper bound for one record's captured length; anything bigger means the length field is garbage.
MAX_RECORD = 1 << 18


# --------------------------------------------------------------------------------------------------
# Link layers (tcpdump.org/linktypes.html)


class LinkType(IntEnum):
    NULL = 0  # BSD loopback: 4-byte address family in the capturing host's byte order
    ETHERNET = 1
    RAW_BSD_12 = 12  # raw IP, as some BSDs number it
    RAW_BSD_14 = 14
    RAW = 101  # raw IPv4 or IPv6, version nibble decides
    LOOP = 108  # OpenBSD loopback: the address family in network byte order
    LINUX_SLL = 113  # Linux cooked capture ("any" interface)
    IPV4 = 228
    IPV6 = 229
    LINUX_SLL2 = 276
    BROKEN = 0xFFFF  # netbed's own marker: a pcapng record whose block is damaged (never decoded)


RAW_IP_LINKTYPES = (LinkType.RAW_BSD_12, LinkType.RAW_BSD_14, LinkType.RAW, LinkType.IPV4, LinkType.IPV6)
LOOPBACK_LINKTYPES = (LinkType.NULL, LinkType.LOOP)
ETHERNET_HEADER = 14
VLAN_TAG = 4
# Linux cooked captures: header size and fields; they carry only the sender's address.
COOKED_LAYOUTS = {
    LinkType.LINUX_SLL: (16, {"halen": (">u2", 4), "addr": (">u8", 6), "proto": (">u2", 14)}),
    LinkType.LINUX_SLL2: (20, {"proto": (">u2", 0), "halen": ("u1", 11), "addr": (">u8", 12)}),
}
AF_INET = 2
AF_INET6_VALUES = (10, 24, 28, 30)  # Linux, OpenBSD/NetBSD, FreeBSD, macOS: AF_INET6 differs per OS

# --------------------------------------------------------------------------------------------------
# Network and transport layers

ETH_IPV4, ETH_IPV6, ETH_ARP = 0x0800, 0x86DD, 0x0806
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)  # 802.1Q, 802.1ad, the old QinQ value
MAC_BITS = 48
ARP_REQUEST, ARP_REPLY = 1, 2
ARP_IPV4_OVER_ETHERNET = 28  # bytes of an Ethernet/IPv4 ARP packet

IPV4_HEADER = 20
IPV4_FRAGMENT_OFFSET_MASK = 0x1FFF
IPV6_HEADER = 40
IPPROTO_TCP, IPPROTO_UDP = 6, 17
# IPv6 extension headers that chain to a next header (RFC 8200 §4)
IPV6_HOP_BY_HOP = 0
IPV6_ROUTING = 43
IPV6_FRAGMENT = 44
IPV6_AUTH = 51  # its length counts 4-byte units minus 2, unlike the others (8-byte units minus 1)
IPV6_DEST_OPTS = 60
IPV6_EXTENSION_HEADERS = (IPV6_HOP_BY_HOP, IPV6_ROUTING, IPV6_FRAGMENT, IPV6_AUTH, IPV6_DEST_OPTS)
IPV6_MAX_EXTENSIONS = 8  # deeper chains are not followed (no sane packet has them)
IPV4_MAPPED_PREFIX = 0xFFFF_0000_0000  # ::ffff:a.b.c.d, how IPv4 addresses share the IPv6 columns

TCP_HEADER = 20
UDP_HEADER = 8

# TCP flags (RFC 9293 §3.1; RFC 3168 for ECE/CWR), as in dpkt and tcpdump
FIN = 0x01  # no more data from the sender
SYN = 0x02  # synchronise sequence numbers
RST = 0x04  # reset the connection
PSH = 0x08  # push
ACK = 0x10  # the acknowledgement field is significant
URG = 0x20  # the urgent pointer is significant
ECE = 0x40  # ECN echo
CWR = 0x80  # congestion window reduced
# tcpdump's order and letters (print-tcp.c); "." is ACK.
FLAG_LETTERS = ((FIN, "F"), (SYN, "S"), (RST, "R"), (PSH, "P"), (ACK, "."), (URG, "U"), (ECE, "E"), (CWR, "W"))

SEQ_MODULO = 1 << 32  # sequence numbers wrap here

# --------------------------------------------------------------------------------------------------
# Connection bookkeeping in bounded memory (see docs/trace.md, "Where a connection ends")

# A closed connection (both FINs, or an RST) whose 4-tuple has been silent this long in capture time
# is final: a later segment on the same 4-tuple starts a new connection. Zeek's tcp_close_delay.
CLOSED_QUIET_SECONDS = 5.0
# A connection that never closed and has been silent this long is given up as open: Zeek's
# tcp_inactivity_timeout. Longer than Linux's whole SYN retry series (63 s).
OPEN_QUIET_SECONDS = 300.0


# --------------------------------------------------------------------------------------------------
# The verdict words


class Word(str, Enum):
    """A string enum: compares equal to its text and prints as its text (JSON, f-strings, and repr,
    which assertion details use: a verdict reads 'complete', not <Handshake.COMPLETE: 'complete'>)."""

    def __str__(self) -> str:
        return str(self.value)

    def __repr__(self) -> str:
        return repr(self.value)

    def __hash__(self) -> int:  # hash like the text, so a set of words finds "four-way" too
        return str.__hash__(self)


class Handshake(Word):
    COMPLETE = "complete"  # SYN, SYN-ACK acknowledging x+1, ACK acknowledging y+1
    REFUSED = "refused"  # the SYN was answered by RST
    INCOMPLETE = "incomplete"  # any other connection that began with a SYN
    NONE = "none"  # no SYN captured: the capture began mid-connection


class CloseKind(Word):
    FOUR_WAY = "four-way"
    THREE_WAY = "three-way"
    SIMULTANEOUS = "simultaneous"
    RESET = "reset"
    OPEN = "open"


class Closer(Word):
    """Who closed: the side that sent the first FIN or RST ("both" for a simultaneous close)."""

    CLIENT = "client"
    SERVER = "server"
    BOTH = "both"


class HandshakeCode(IntEnum):
    """Handshake as the classifier's NumPy columns hold it; the name is the :class:`Handshake`."""

    COMPLETE = 0
    REFUSED = 1
    INCOMPLETE = 2
    NONE = 3


class CloseCode(IntEnum):
    """Close kind as the classifier's NumPy columns hold it; the name is the :class:`CloseKind`."""

    FOUR_WAY = 0
    THREE_WAY = 1
    SIMULTANEOUS = 2
    RESET = 3
    OPEN = 4


class CloserCode(IntEnum):
    """Who closed, as the classifier's columns hold it; NOBODY is ``None`` in the model."""

    NOBODY = -1
    CLIENT = 0
    SERVER = 1
    BOTH = 2


HANDSHAKE_OF_CODE = {code: Handshake[code.name] for code in HandshakeCode}
CLOSE_KIND_OF_CODE = {code: CloseKind[code.name] for code in CloseCode}
CLOSER_OF_CODE: dict[int, Closer | None] = {code: Closer[code.name] if code != CloserCode.NOBODY else None
                                             for code in CloserCode}
