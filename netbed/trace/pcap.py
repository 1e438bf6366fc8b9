"""Read a classic pcap or pcapng file into one columnar table of frames.

Why columnar: a teaching capture has a hundred packets, a load test a million. Building a Python
object per packet costs more than everything else put together, so the reader finds where each record
starts with one tight loop and then pulls every header field for all frames at once with NumPy: frames
are grouped by link type and header position, and each group's fixed-offset header bytes are gathered
into a ``(frames, width)`` byte matrix that is *viewed* as a big-endian structured record. No per-packet
parsing happens in Python.

Robustness rules (a capture that stopped abruptly is normal, not an error):
- a truncated file (partial last record, cut block) yields the complete records plus a warning string;
- a record whose length fields are absurd ends the reading there, again with a warning;
- only a file that is not pcap at all (or is empty) raises :class:`PcapError`.

Supported: classic pcap (both byte orders, micro- and nanosecond magic), pcapng (SHB/IDB/EPB/SPB,
several sections and interfaces, per-interface link type, ``if_tsresol`` and ``if_tsoffset``); link
types Ethernet (1, with 802.1Q/802.1ad tags), Linux cooked SLL (113) and SLL2 (276), raw IP (101, 228,
229, and the BSD aliases 12, 14), BSD loopback (0, 108); IPv4 with options, IPv6 with extension headers,
ARP, TCP, UDP.
"""

from __future__ import annotations

import array
import mmap
import os
import struct
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

__all__ = ["Frames", "PcapError", "read_frames", "LINKTYPE_NAMES"]


class PcapError(ValueError):
    """The file is not a capture we can read at all (empty, or neither pcap nor pcapng)."""


LINKTYPE_NAMES = {
    0: "BSD loopback",
    1: "Ethernet",
    12: "raw IP",
    14: "raw IP",
    101: "raw IP",
    108: "OpenBSD loopback",
    113: "Linux cooked (SLL)",
    228: "raw IPv4",
    229: "raw IPv6",
    276: "Linux cooked v2 (SLL2)",
}

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 1, 2, 4, 8, 16, 32, 64, 128
ETH_IPV4, ETH_IPV6, ETH_ARP = 0x0800, 0x86DD, 0x0806
_VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
_MAC_MASK = np.uint64(0xFFFF_FFFF_FFFF)
# Linux cooked captures (SLL, SLL2): header size and fields; they carry only the sender's address.
_COOKED = {
    113: (16, {"halen": (">u2", 4), "addr": (">u8", 6), "proto": (">u2", 14)}),
    276: (20, {"proto": (">u2", 0), "halen": ("u1", 11), "addr": (">u8", 12)}),
}
# Upper bound for one record's captured length; anything bigger means the length field is garbage.
_MAX_RECORD = 1 << 18


def _col(dtype: str, doc: str) -> Any:
    return field(metadata={"dtype": dtype, "doc": doc})


@dataclass
class Frames:
    """Every frame of a capture as parallel NumPy columns (one row per frame, in file order).

    Zero means "absent" in every column (no MAC on raw IP, no ports on ICMP...); the boolean columns
    ``has_ip``/``has_tcp``/``has_udp``/``has_arp`` say which header groups were actually decoded.
    """

    frame: np.ndarray = _col("u4", "frame number, 1-based like Wireshark")
    time: np.ndarray = _col("f8", "capture timestamp, seconds since the epoch")
    interface: np.ndarray = _col("u2", "pcapng interface index (0 for classic pcap)")
    linktype: np.ndarray = _col("u2", "link-layer header type of the frame")
    caplen: np.ndarray = _col("u4", "bytes captured")
    wirelen: np.ndarray = _col("u4", "bytes on the wire")
    src_mac: np.ndarray = _col("u8", "source MAC as a 48-bit integer (0: none)")
    dst_mac: np.ndarray = _col("u8", "destination MAC as a 48-bit integer (0: none)")
    ethertype: np.ndarray = _col("u2", "EtherType after VLAN tags (0x0800 IPv4, 0x86dd IPv6, 0x0806 ARP)")
    vlan: np.ndarray = _col("u2", "outer 802.1Q VLAN id (0: untagged)")
    has_arp: np.ndarray = _col("?", "an Ethernet/IPv4 ARP packet was decoded")
    arp_op: np.ndarray = _col("u2", "ARP operation (1 request, 2 reply)")
    arp_sender_mac: np.ndarray = _col("u8", "ARP sender hardware address")
    arp_sender_ip: np.ndarray = _col("u4", "ARP sender protocol address")
    arp_target_mac: np.ndarray = _col("u8", "ARP target hardware address")
    arp_target_ip: np.ndarray = _col("u4", "ARP target protocol address")
    has_ip: np.ndarray = _col("?", "an IPv4 or IPv6 header was decoded")
    ip_version: np.ndarray = _col("u1", "4 or 6 (0: not IP)")
    src_ip4: np.ndarray = _col("u4", "IPv4 source address")
    dst_ip4: np.ndarray = _col("u4", "IPv4 destination address")
    src_ip6_hi: np.ndarray = _col("u8", "IPv6 source address, upper 64 bits")
    src_ip6_lo: np.ndarray = _col("u8", "IPv6 source address, lower 64 bits")
    dst_ip6_hi: np.ndarray = _col("u8", "IPv6 destination address, upper 64 bits")
    dst_ip6_lo: np.ndarray = _col("u8", "IPv6 destination address, lower 64 bits")
    ttl: np.ndarray = _col("u1", "IPv4 TTL or IPv6 hop limit")
    ip_proto: np.ndarray = _col("u1", "transport protocol (6 TCP, 17 UDP; after IPv6 extension headers)")
    fragment: np.ndarray = _col("?", "a non-first IP fragment (carries no transport header)")
    ip_payload_len: np.ndarray = _col("u4", "transport bytes per the IP length fields")
    has_tcp: np.ndarray = _col("?", "a complete TCP header was decoded")
    has_udp: np.ndarray = _col("?", "a complete UDP header was decoded")
    sport: np.ndarray = _col("u2", "TCP/UDP source port")
    dport: np.ndarray = _col("u2", "TCP/UDP destination port")
    seq: np.ndarray = _col("u4", "TCP sequence number")
    ack: np.ndarray = _col("u4", "TCP acknowledgement number")
    tcp_flags: np.ndarray = _col("u1", "TCP flags FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32 ECE=64 CWR=128")
    window: np.ndarray = _col("u2", "TCP window field (unscaled)")
    payload_len: np.ndarray = _col("u4", "TCP payload bytes, from the IP length (right even if truncated)")
    udp_len: np.ndarray = _col("u4", "UDP payload bytes")

    @classmethod
    def zeros(cls, n: int) -> Frames:
        """An all-absent table of ``n`` rows, the starting point the decoder fills in."""
        return cls(**{f.name: np.zeros(n, f.metadata["dtype"]) for f in fields(cls)})

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def __len__(self) -> int:
        return len(self.frame)

    def select(self, rows: np.ndarray) -> Frames:
        """The sub-table of the given rows (boolean mask or index array)."""
        return Frames(**{name: getattr(self, name)[rows] for name in self.columns()})

    def to_records(self) -> np.ndarray:
        """The same table as one NumPy structured array (handy for pandas or saving with np.save)."""
        dtype = np.dtype([(f.name, f.metadata["dtype"]) for f in fields(self)])
        out = np.empty(len(self), dtype)
        for name in self.columns():
            out[name] = getattr(self, name)
        return out


@dataclass
class _Index:
    """Where each record's packet bytes are, plus the per-record metadata from the file format."""

    start: np.ndarray  # offset of the first link-layer byte in the file
    caplen: np.ndarray
    wirelen: np.ndarray
    time: np.ndarray
    linktype: np.ndarray
    interface: np.ndarray


def read_frames(path: str | os.PathLike[str]) -> tuple[Frames, list[str]]:
    """Read every frame of a pcap/pcapng file; return the table and the warnings met on the way."""
    name = os.fspath(path)
    with open(name, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        try:
            # Mapping the file costs a page fault per 64 KiB instead of a copy of the whole file. (A file
            # that grows meanwhile is read up to its size now; one truncated meanwhile would SIGBUS.)
            data: bytes | mmap.mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else f.read()
        except (OSError, ValueError):  # not mappable (a pipe, a special file): read it
            data = f.read()
    try:
        return _read(data, name)
    finally:
        if isinstance(data, mmap.mmap):
            try:
                data.close()
            except BufferError:  # a view still alive (only on an error path): the collector closes it
                pass


def _read(data: bytes | mmap.mmap, name: str) -> tuple[Frames, list[str]]:
    if not len(data):
        raise PcapError(f"empty file: {name}")
    warnings: list[str] = []
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
        index = _index_classic(data, warnings)
    elif magic == b"\x0a\x0d\x0d\x0a":
        index = _index_pcapng(data, warnings, name)
    else:
        raise PcapError(f"not a pcap or pcapng file: {name}")
    return _decode(np.frombuffer(data, np.uint8), index, warnings), warnings


# --------------------------------------------------------------------------------------------------
# Finding the records


def _rows(u8: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` bytes at each offset as a C-contiguous (n, width) matrix, without an index matrix.

    A strided view over the file makes "row k" mean "bytes k..k+width", so one fancy index over rows
    copies all headers at memcpy speed. Callers guarantee offset + width <= len(u8).
    """
    view = np.lib.stride_tricks.as_strided(u8, shape=(len(u8) - width + 1, width), strides=(1, 1),
                                           writeable=False)
    return view[offsets]


def _fields(u8: np.ndarray, offsets: np.ndarray, spec: dict[str, tuple[str, int]], width: int) -> np.ndarray:
    """Gather ``width`` bytes at each offset and view them as the named (dtype, offset) fields."""
    dtype = np.dtype({"names": list(spec), "formats": [s[0] for s in spec.values()],
                      "offsets": [s[1] for s in spec.values()], "itemsize": width})
    if len(offsets) == 0:
        return np.zeros(0, dtype)
    return _rows(u8, offsets, width).view(dtype)[:, 0]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _compact(rows: np.ndarray) -> np.ndarray | slice:
    """A run of consecutive row numbers as a slice: scattering into a slice is a plain copy, which
    matters when (as usual) every frame is Ethernet, IPv4 and TCP."""
    if len(rows) and int(rows[-1]) - int(rows[0]) + 1 == len(rows):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def _index_classic(data: bytes | mmap.mmap, warnings: list[str]) -> _Index:
    bo = "little" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else "big"
    nano = data[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    n = len(data)
    if n < 24:
        warnings.append(f"truncated file: the {n}-byte pcap header is cut short (24 bytes expected); no frames")
        return _empty_index()
    snaplen = int.from_bytes(data[16:20], bo)
    linktype = int.from_bytes(data[20:24], bo) & 0x0FFFFFFF
    limit = max(snaplen, _MAX_RECORD)

    # The one per-record Python loop of the reader: follow the length chain. Absurd lengths are
    # looked for afterwards, in bulk, to keep this loop minimal.
    offsets = array.array("q")  # 8 bytes per record; a list would keep a 32-byte int object per record
    append = offsets.append
    captured_length = struct.Struct(("<" if bo == "little" else ">") + "8xI").unpack_from
    last_header = n - 16
    o = 24
    while o <= last_header:
        append(o)
        o += 16 + captured_length(data, o)[0]
    at = np.frombuffer(offsets, np.int64) if offsets else np.zeros(0, np.int64)
    lengths = np.diff(np.append(at, o)) - 16
    bad = np.flatnonzero(lengths > limit)
    if len(bad):
        cut = int(bad[0])
        warnings.append(f"corrupt record at byte {at[cut]}: captured length {lengths[cut]} exceeds {limit}; "
                        f"kept the {cut} records before it")
        at = at[:cut]
    elif len(at) and o > n:
        at = at[:-1]
        warnings.append(f"truncated file: the last record (at byte {offsets[-1]}) is cut short; "
                        f"kept {len(at)} complete records")
    elif o < n:
        warnings.append(f"truncated file: an incomplete record header ({_plural(n - o, 'byte')}) at the end; "
                        f"kept {len(at)} complete records")

    u8 = np.frombuffer(data, np.uint8)
    e = "<" if bo == "little" else ">"
    hdr = _fields(u8, at, {"sec": (e + "u4", 0), "frac": (e + "u4", 4), "incl": (e + "u4", 8),
                           "orig": (e + "u4", 12)}, 16)
    starts = at + 16
    count = len(starts)
    return _Index(
        start=starts,
        caplen=hdr["incl"].astype(np.int64),
        wirelen=hdr["orig"].astype(np.int64),
        time=hdr["sec"] + hdr["frac"] * (1e-9 if nano else 1e-6),
        linktype=np.full(count, linktype, np.int64),
        interface=np.zeros(count, np.int64),
    )


def _empty_index() -> _Index:
    z = np.zeros(0, np.int64)
    return _Index(z, z, z, np.zeros(0), z, z)


@dataclass
class _Interface:
    linktype: int
    snaplen: int
    units_per_second: int = 1_000_000
    offset_seconds: int = 0


def _idb_options(data: bytes | mmap.mmap, o: int, end: int, bo: str, iface: _Interface) -> None:
    """Read if_tsresol (9) and if_tsoffset (14) from an IDB's options; ignore everything else."""
    while o + 4 <= end:
        code = int.from_bytes(data[o:o + 2], bo)
        size = int.from_bytes(data[o + 2:o + 4], bo)
        value = data[o + 4:o + 4 + size]
        if code == 0:
            break
        if code == 9 and size >= 1:
            v = value[0]
            exponent = v & 0x7F
            binary = bool(v & 0x80)
            if exponent <= (62 if binary else 18):  # beyond that, 64-bit timestamps make no sense
                iface.units_per_second = 2 ** exponent if binary else 10 ** exponent
        elif code == 14 and size == 8:
            iface.offset_seconds = int.from_bytes(value, bo, signed=True)
        o += 4 + (size + 3) // 4 * 4


def _index_pcapng(data: bytes | mmap.mmap, warnings: list[str], name: str) -> _Index:
    n = len(data)
    interfaces: list[_Interface] = []
    # Each section restarts interface numbering and may change byte order: remember, per section,
    # the byte order, the first global interface number and the first packet record of the section.
    sections: list[tuple[str, int, int]] = []
    epb: list[int] = []
    spb: list[int] = []  # simple packet blocks, kept apart (they have another layout)
    kinds: list[int] = []  # 0 = EPB, 1 = SPB, in file order (only filled once an SPB is seen)
    bo = "little"
    o = 0
    short = 0
    from_bytes = int.from_bytes
    while o + 12 <= n:
        btype = from_bytes(data[o:o + 4], bo)
        if btype == 0x0A0D0D0A:
            magic = data[o + 8:o + 12]
            if magic == b"\x4d\x3c\x2b\x1a":
                bo = "little"
            elif magic == b"\x1a\x2b\x3c\x4d":
                bo = "big"
            else:
                if o == 0:
                    raise PcapError(f"not a pcap or pcapng file: {name}")
                warnings.append(f"corrupt pcapng section header at byte {o}; kept the frames before it")
                break
            sections.append((bo, len(interfaces), len(epb) + len(spb)))
        blen = from_bytes(data[o + 4:o + 8], bo)
        if blen < 12 or blen % 4:
            warnings.append(f"corrupt pcapng block at byte {o} (length {blen}); kept the frames before it")
            break
        if o + blen > n:
            warnings.append(f"truncated file: the last pcapng block (at byte {o}) is cut short; "
                            f"kept {len(epb) + len(spb)} complete records")
            break
        if (btype == 6 and blen < 32) or (btype == 3 and blen < 16):
            short += 1
        elif btype == 6:
            epb.append(o)
            if spb:
                kinds.append(0)
        elif btype == 3:
            if not spb:
                kinds = [0] * len(epb)
            spb.append(o)
            kinds.append(1)
        elif btype == 1 and blen >= 20:
            iface = _Interface(from_bytes(data[o + 8:o + 10], bo), from_bytes(data[o + 12:o + 16], bo))
            _idb_options(data, o + 16, o + blen - 4, bo, iface)
            interfaces.append(iface)
        o += blen
    else:
        if o < n:
            warnings.append(f"truncated file: an incomplete pcapng block header ({_plural(n - o, 'byte')}) at the end")
    if short:
        warnings.append(f"{short} packet blocks too short to hold a packet header were skipped")
    if not sections:
        return _empty_index()

    u8 = np.frombuffer(data, np.uint8)
    epb_at = np.asarray(epb, np.int64)
    spb_at = np.asarray(spb, np.int64)
    # Record position in the file order decides the section; section start counters were taken over
    # EPB+SPB together, so merge the two kinds into file order first.
    if spb:
        kind = np.asarray(kinds, np.int8)
        block_at = np.empty(len(kind), np.int64)
        block_at[kind == 0] = epb_at
        block_at[kind == 1] = spb_at
    else:
        kind = np.zeros(len(epb_at), np.int8)
        block_at = epb_at
    count = len(block_at)
    section_first = np.asarray([s[2] for s in sections], np.int64)
    section_of = np.searchsorted(section_first, np.arange(count), side="right") - 1

    start = np.zeros(count, np.int64)
    caplen = np.zeros(count, np.int64)
    wirelen = np.zeros(count, np.int64)
    ts_units = np.zeros(count, np.uint64)
    local_if = np.zeros(count, np.int64)
    blen_all = np.zeros(count, np.int64)
    for s, (sbo, _, _) in enumerate(sections):
        e = "<" if sbo == "little" else ">"
        m = (section_of == s) & (kind == 0)
        h = _fields(u8, block_at[m], {"blen": (e + "u4", 4), "ifid": (e + "u4", 8), "hi": (e + "u4", 12),
                                      "lo": (e + "u4", 16), "cap": (e + "u4", 20), "orig": (e + "u4", 24)}, 28)
        start[m] = block_at[m] + 28
        caplen[m] = h["cap"]
        wirelen[m] = h["orig"]
        ts_units[m] = (h["hi"].astype(np.uint64) << np.uint64(32)) | h["lo"]
        local_if[m] = h["ifid"]
        blen_all[m] = h["blen"]
        m = (section_of == s) & (kind == 1)
        h = _fields(u8, block_at[m], {"blen": (e + "u4", 4), "orig": (e + "u4", 8)}, 12)
        start[m] = block_at[m] + 12
        wirelen[m] = h["orig"]
        caplen[m] = np.minimum(h["orig"], h["blen"].astype(np.int64) - 16)
        blen_all[m] = h["blen"]

    section_base = np.asarray([s[1] for s in sections], np.int64)
    section_ifaces = np.diff(np.append(section_base, len(interfaces)))
    bad_if = local_if >= section_ifaces[section_of]
    over = (start + caplen > block_at + blen_all - 4) | (caplen < 0)
    if bad_if.any():
        warnings.append(f"{int(bad_if.sum())} packet blocks name an interface that was never described; "
                        "their frames are kept but not decoded")
    if over.any():
        warnings.append(f"{int(over.sum())} packet blocks claim more captured bytes than the block holds; "
                        "their frames are kept but not decoded")
    iface = np.where(bad_if, 0, section_base[section_of] + local_if)
    linktypes = np.asarray([i.linktype for i in interfaces] or [0xFFFF], np.int64)
    linktype = np.where(bad_if | over, 0xFFFF, linktypes[np.minimum(iface, len(linktypes) - 1)])
    caplen = np.where(over, 0, caplen)
    spb_rows = kind == 1
    if spb_rows.any():
        snap = np.asarray([i.snaplen or (1 << 31) for i in interfaces] or [1 << 31], np.int64)
        caplen[spb_rows] = np.minimum(caplen[spb_rows], snap[np.minimum(iface[spb_rows], len(snap) - 1)])

    time = np.zeros(count)
    for i, itf in enumerate(interfaces):
        m = (iface == i) & ~bad_if & ~spb_rows
        if not m.any():
            continue
        per = np.uint64(itf.units_per_second)
        units = ts_units[m]
        time[m] = (units // per).astype(np.float64) + (units % per).astype(np.float64) / itf.units_per_second \
            + itf.offset_seconds
    return _Index(start, caplen, wirelen, time, linktype, iface)


# --------------------------------------------------------------------------------------------------
# Decoding the headers, all frames at once


def _decode(u8: np.ndarray, ix: _Index, warnings: list[str]) -> Frames:
    n = len(ix.start)
    fr = Frames.zeros(n)
    fr.frame[:] = np.arange(1, n + 1)
    fr.time[:] = ix.time
    fr.interface[:] = ix.interface
    fr.linktype[:] = ix.linktype
    fr.caplen[:] = ix.caplen
    fr.wirelen[:] = ix.wirelen
    start = ix.start
    end = start + ix.caplen  # first byte after this frame's captured bytes
    l3 = np.full(n, -1, np.int64)  # offset of the network-layer header (-1: none)
    lt = ix.linktype

    # Link layer -> (ethertype, l3), per link type.
    m = np.flatnonzero((lt == 1) & (ix.caplen >= 14))
    if len(m):
        eth = m
        m = _compact(m)
        # 8-byte big-endian reads starting 2 bytes early put each MAC in the low 48 bits.
        h = _fields(u8, start[m] - 2, {"dst": (">u8", 0), "src": (">u8", 6), "type": (">u2", 14)}, 16)
        fr.dst_mac[m] = h["dst"] & _MAC_MASK
        fr.src_mac[m] = h["src"] & _MAC_MASK
        fr.ethertype[m] = h["type"]
        l3[m] = start[m] + 14
        for depth in range(2):  # 802.1Q, and one more level for 802.1ad (QinQ)
            tagged = eth[np.isin(fr.ethertype[eth], _VLAN_TPIDS) & (l3[eth] + 4 <= end[eth])]
            if not len(tagged):
                break
            t = _fields(u8, l3[tagged], {"tci": (">u2", 0), "type": (">u2", 2)}, 4)
            if depth == 0:
                fr.vlan[tagged] = t["tci"] & 0x0FFF
            fr.ethertype[tagged] = t["type"]
            l3[tagged] += 4
    for linktype, (size, spec) in _COOKED.items():
        m = np.flatnonzero((lt == linktype) & (ix.caplen >= size))
        if len(m):
            m = _compact(m)
            h = _fields(u8, start[m], spec, size)
            fr.src_mac[m] = np.where(h["halen"] == 6, h["addr"] >> np.uint64(16), 0)
            fr.ethertype[m] = h["proto"]
            l3[m] = start[m] + size
    m = np.flatnonzero(np.isin(lt, (12, 14, 101, 228, 229)) & (ix.caplen >= 1))
    if len(m):
        version = u8[start[m]] >> 4
        fr.ethertype[m] = np.where(version == 4, ETH_IPV4, np.where(version == 6, ETH_IPV6, 0))
        l3[m] = start[m]
    m = np.flatnonzero(np.isin(lt, (0, 108)) & (ix.caplen >= 4))
    if len(m):
        family = _fields(u8, start[m], {"le": ("<u4", 0), "be": (">u4", 0)}, 4)
        # DLT_NULL is in the capturing host's byte order; a family number never exceeds 0xFFFF.
        af = np.where((lt[m] == 108) | (family["le"] > 0xFFFF), family["be"], family["le"])
        fr.ethertype[m] = np.where(af == 2, ETH_IPV4, np.where(np.isin(af, (10, 24, 28, 30)), ETH_IPV6, 0))
        l3[m] = start[m] + 4
    unknown = ~np.isin(lt, (0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 0xFFFF))
    if unknown.any():
        kinds = ", ".join(str(k) for k in np.unique(lt[unknown])[:5])
        warnings.append(f"{int(unknown.sum())} frames have an unsupported link type ({kinds}); not decoded")

    # Network layer.
    l4 = np.full(n, -1, np.int64)  # offset of the transport header (-1: none)
    m = np.flatnonzero((fr.ethertype == ETH_IPV4) & (l3 >= 0) & (l3 + 20 <= end))
    if len(m):
        h = _fields(u8, l3[m], {"vihl": ("u1", 0), "total": (">u2", 2), "frag": (">u2", 6), "ttl": ("u1", 8),
                                "proto": ("u1", 9), "src": (">u4", 12), "dst": (">u4", 16)}, 20)
        ok = ((h["vihl"] >> 4) == 4) & ((h["vihl"] & 15) >= 5)
        m, h = _compact(m[ok]), h[ok]
        ihl = (h["vihl"] & 15).astype(np.int64) * 4
        total = h["total"].astype(np.int64)
        # Total length 0 is what segmentation offload leaves in captures taken on the sender.
        total = np.where(total == 0, ix.wirelen[m] - (l3[m] - start[m]), total)
        fr.has_ip[m] = True
        fr.ip_version[m] = 4
        fr.src_ip4[m] = h["src"]
        fr.dst_ip4[m] = h["dst"]
        fr.src_ip6_lo[m] = np.uint64(0xFFFF_0000_0000) | h["src"]  # IPv4-mapped, for uniform keys
        fr.dst_ip6_lo[m] = np.uint64(0xFFFF_0000_0000) | h["dst"]
        fr.ttl[m] = h["ttl"]
        fr.ip_proto[m] = h["proto"]
        fr.fragment[m] = (h["frag"] & 0x1FFF) != 0
        fr.ip_payload_len[m] = np.maximum(total - ihl, 0)
        l4[m] = np.where(fr.fragment[m], -1, l3[m] + ihl)
    m = np.flatnonzero((fr.ethertype == ETH_IPV6) & (l3 >= 0) & (l3 + 40 <= end))
    if len(m):
        h = _fields(u8, l3[m], {"vtc": ("u1", 0), "plen": (">u2", 4), "nh": ("u1", 6), "hlim": ("u1", 7),
                                "shi": (">u8", 8), "slo": (">u8", 16), "dhi": (">u8", 24), "dlo": (">u8", 32)}, 40)
        ok = (h["vtc"] >> 4) == 6
        m, h = m[ok], h[ok]
        v6 = m
        m = _compact(m)
        plen = h["plen"].astype(np.int64)
        plen = np.where(plen == 0, ix.wirelen[m] - (l3[m] - start[m]) - 40, plen)
        fr.has_ip[m] = True
        fr.ip_version[m] = 6
        fr.src_ip6_hi[m], fr.src_ip6_lo[m] = h["shi"], h["slo"]
        fr.dst_ip6_hi[m], fr.dst_ip6_lo[m] = h["dhi"], h["dlo"]
        fr.ttl[m] = h["hlim"]
        proto = h["nh"].astype(np.int64)
        at = l3[m] + 40
        # Walk extension headers (hop-by-hop 0, routing 43, fragment 44, AH 51, dest-opts 60),
        # all frames in step; at most 8 deep, which no sane packet exceeds.
        for _ in range(8):
            ext = np.isin(proto, (0, 43, 44, 51, 60)) & (at + 8 <= end[m])
            if not ext.any():
                break
            e = _fields(u8, at[ext], {"nh": ("u1", 0), "len": ("u1", 1), "frag": (">u2", 2)}, 8)
            size = np.where(proto[ext] == 44, 8, np.where(proto[ext] == 51, (e["len"].astype(np.int64) + 2) * 4,
                                                           (e["len"].astype(np.int64) + 1) * 8))
            later = (proto[ext] == 44) & ((e["frag"] >> 3) != 0)
            rows = v6[ext]
            fr.fragment[rows] |= later
            at[ext] += size
            plen[ext] -= size
            proto[ext] = e["nh"]
        fr.ip_proto[m] = proto & 0xFF
        fr.ip_payload_len[m] = np.maximum(plen, 0)
        l4[m] = np.where(fr.fragment[m] | np.isin(proto, (0, 43, 44, 51, 60)), -1, at)
    m = np.flatnonzero((fr.ethertype == ETH_ARP) & (l3 >= 0) & (l3 + 28 <= end))
    if len(m):
        h = _fields(u8, l3[m], {"htype": (">u2", 0), "ptype": (">u2", 2), "hlen": ("u1", 4), "plen": ("u1", 5),
                                "op": (">u2", 6), "sha": (">u8", 6), "spa": (">u4", 14), "tha": (">u8", 16),
                                "tpa": (">u4", 24)}, 28)
        ok = (h["hlen"] == 6) & (h["plen"] == 4) & (h["ptype"] == ETH_IPV4)
        m, h = _compact(m[ok]), h[ok]
        fr.has_arp[m] = True
        fr.arp_op[m] = h["op"]
        fr.arp_sender_mac[m] = h["sha"] & _MAC_MASK
        fr.arp_sender_ip[m] = h["spa"]
        fr.arp_target_mac[m] = h["tha"] & _MAC_MASK
        fr.arp_target_ip[m] = h["tpa"]

    # Transport layer.
    m = np.flatnonzero((fr.ip_proto == 6) & fr.has_ip & (l4 >= 0) & (l4 + 20 <= end))
    if len(m):
        h = _fields(u8, l4[m], {"sport": (">u2", 0), "dport": (">u2", 2), "seq": (">u4", 4), "ack": (">u4", 8),
                                "off": ("u1", 12), "flags": ("u1", 13), "win": (">u2", 14)}, 20)
        hlen = (h["off"] >> 4).astype(np.int64) * 4
        ok = hlen >= 20
        m, h, hlen = _compact(m[ok]), h[ok], hlen[ok]
        fr.has_tcp[m] = True
        fr.sport[m] = h["sport"]
        fr.dport[m] = h["dport"]
        fr.seq[m] = h["seq"]
        fr.ack[m] = h["ack"]
        fr.tcp_flags[m] = h["flags"]
        fr.window[m] = h["win"]
        fr.payload_len[m] = np.maximum(fr.ip_payload_len[m].astype(np.int64) - hlen, 0)
    m = np.flatnonzero((fr.ip_proto == 17) & fr.has_ip & (l4 >= 0) & (l4 + 8 <= end))
    if len(m):
        m = _compact(m)
        h = _fields(u8, l4[m], {"sport": (">u2", 0), "dport": (">u2", 2), "len": (">u2", 4)}, 8)
        fr.has_udp[m] = True
        fr.sport[m] = h["sport"]
        fr.dport[m] = h["dport"]
        length = h["len"].astype(np.int64)
        length = np.where(length == 0, fr.ip_payload_len[m], length)  # 0: IPv6 jumbogram
        fr.udp_len[m] = np.maximum(length - 8, 0)
    return fr
