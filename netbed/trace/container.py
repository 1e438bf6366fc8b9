"""Find the records of a classic pcap or pcapng byte stream, one buffer at a time.

Why incremental: a research capture is gigabytes and may come through a pipe (``tcpdump -w - |``)
or out of gzip; the reader is handed one buffer after another and says how many bytes it used, so
a record cut by the buffer's end is simply seen again, whole, with the next buffer. Only the
per-file state survives between buffers: the classic header's byte order and link type, pcapng's
section byte order and interface table.

Robustness rules (a capture that stopped abruptly is normal, not an error):
- a truncated file (partial last record, cut block) yields the complete records plus a warning;
- a record whose length fields are absurd ends the reading there, again with a warning;
- only input that is not pcap at all (or is empty) raises :class:`PcapError`.

Supported: classic pcap (both byte orders, micro- and nanosecond magic), pcapng (SHB/IDB/EPB/SPB,
several sections and interfaces, per-interface link type, ``if_tsresol`` and ``if_tsoffset``).
"""

from __future__ import annotations

import array
import struct
from dataclasses import dataclass
from typing import Union

import numpy as np

from .constants import (
    MAX_RECORD,
    PCAP_FILE_HEADER,
    PCAP_LINKTYPE_MASK,
    PCAP_LITTLE_ENDIAN,
    PCAP_MAGICS,
    PCAP_NANOSECONDS,
    PCAP_RECORD_HEADER,
    PCAPNG_BYTE_ORDER_BE,
    PCAPNG_BYTE_ORDER_LE,
    PCAPNG_EPB,
    PCAPNG_EPB_HEADER,
    PCAPNG_IDB,
    PCAPNG_IF_TSOFFSET,
    PCAPNG_IF_TSRESOL,
    PCAPNG_OPT_END,
    PCAPNG_SHB,
    PCAPNG_SHB_MAGIC,
    PCAPNG_SPB,
    PCAPNG_SPB_HEADER,
    LinkType,
)
from .frames import gather_fields

__all__ = ["PcapError", "RecordIndex", "ContainerReader"]

Buffer = Union[bytes, bytearray, memoryview]
_BLOCK_MIN = 12  # type, length, trailing length
_IDB_MIN = 20


class PcapError(ValueError):
    """The input is not a capture we can read at all (empty, or neither pcap nor pcapng)."""


@dataclass
class RecordIndex:
    """Where each record's packet bytes are in the buffer, plus the per-record metadata of the format."""

    start: np.ndarray  # offset of the first link-layer byte in the buffer
    caplen: np.ndarray
    wirelen: np.ndarray
    time: np.ndarray
    linktype: np.ndarray
    interface: np.ndarray

    @classmethod
    def empty(cls) -> RecordIndex:
        z = np.zeros(0, np.int64)
        return cls(z, z, z, np.zeros(0), z, z)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


@dataclass
class _Interface:
    linktype: int
    snaplen: int
    units_per_second: int = 1_000_000
    offset_seconds: int = 0


class ContainerReader:
    """Index the records of one capture, fed buffer by buffer (see :meth:`index`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.warnings: list[str] = []
        self.offset = 0  # bytes of the input used so far (for positions in warnings)
        self.records = 0
        self.stopped = False  # corrupt input met: everything after it is ignored
        self.format: str | None = None
        # classic pcap
        self.little = True
        self.nano = False
        self.linktype = 0
        self.limit = MAX_RECORD
        # pcapng: the current section's byte order and first interface number, every interface so far
        self.bo = "little"
        self.section_base = 0
        self.interfaces: list[_Interface] = []
        self.short_blocks = 0

    def index(self, data: Buffer, final: bool) -> tuple[RecordIndex, int]:
        """Index the complete records at the start of ``data``; return them and the bytes used.

        With ``final`` the input ends with this buffer: whatever is left is reported as truncated.
        """
        if self.stopped:
            return RecordIndex.empty(), len(data)
        if self.format is None:
            if len(data) < 4 and not final:
                return RecordIndex.empty(), 0
            magic = bytes(data[:4])
            if not self.offset and not len(data):
                raise PcapError(f"empty file: {self.name}")
            if magic in PCAP_MAGICS:
                self.format = "pcap"
            elif magic == PCAPNG_SHB_MAGIC:
                self.format = "pcapng"
            else:
                raise PcapError(f"not a pcap or pcapng file: {self.name}")
        if self.format == "pcap":
            index, used = self._classic(data, final)
        else:
            index, used = self._pcapng(data, final)
        self.offset += used
        self.records += len(index.start)
        return index, used

    # ----------------------------------------------------------------------------------------------
    # Classic pcap

    def _classic(self, data: Buffer, final: bool) -> tuple[RecordIndex, int]:
        n = len(data)
        o = 0
        if self.offset == 0:
            if n < PCAP_FILE_HEADER:
                if final:
                    self.warnings.append(f"truncated file: the {n}-byte pcap header is cut short "
                                         f"({PCAP_FILE_HEADER} bytes expected); no frames")
                    self.stopped = True
                    return RecordIndex.empty(), n
                return RecordIndex.empty(), 0
            magic = bytes(data[:4])
            self.little = magic in PCAP_LITTLE_ENDIAN
            self.nano = magic in PCAP_NANOSECONDS
            bo = "little" if self.little else "big"
            snaplen = int.from_bytes(data[16:20], bo)
            self.linktype = int.from_bytes(data[20:24], bo) & PCAP_LINKTYPE_MASK
            self.limit = max(snaplen, MAX_RECORD)
            o = PCAP_FILE_HEADER
        base = o

        # The one per-record Python loop of the reader: follow the length chain. Absurd lengths are
        # looked for afterwards, in bulk, to keep this loop minimal.
        offsets = array.array("q")  # 8 bytes per record; a list would keep a 32-byte int object per record
        append = offsets.append
        captured_length = struct.Struct(("<" if self.little else ">") + "8xI").unpack_from
        last_header = n - PCAP_RECORD_HEADER
        while o <= last_header:
            append(o)
            o += PCAP_RECORD_HEADER + captured_length(data, o)[0]
        at = np.frombuffer(offsets, np.int64) if offsets else np.zeros(0, np.int64)
        lengths = np.diff(np.append(at, o)) - PCAP_RECORD_HEADER
        bad = np.flatnonzero(lengths > self.limit)
        used = o
        if len(bad):
            cut = int(bad[0])
            self.warnings.append(f"corrupt record at byte {self.offset + int(at[cut])}: captured length "
                                 f"{lengths[cut]} exceeds {self.limit}; "
                                 f"kept the {self.records + cut} records before it")
            at = at[:cut]
            self.stopped = True
            used = n
        elif len(at) and o > n:
            at = at[:-1]
            used = int(offsets[-1])
            if final:
                self.warnings.append(f"truncated file: the last record (at byte {self.offset + used}) is cut "
                                     f"short; kept {self.records + len(at)} complete records")
                used = n
        elif o < n and final:
            self.warnings.append(f"truncated file: an incomplete record header ({_plural(n - o, 'byte')}) at the "
                                 f"end; kept {self.records + len(at)} complete records")
            used = n
        if not len(at):
            return RecordIndex.empty(), max(used, base)

        u8 = np.frombuffer(data, np.uint8)
        e = "<" if self.little else ">"
        hdr = gather_fields(u8, at, {"sec": (e + "u4", 0), "frac": (e + "u4", 4), "incl": (e + "u4", 8),
                                     "orig": (e + "u4", 12)}, PCAP_RECORD_HEADER)
        count = len(at)
        return RecordIndex(
            start=at + PCAP_RECORD_HEADER,
            caplen=hdr["incl"].astype(np.int64),
            wirelen=hdr["orig"].astype(np.int64),
            time=hdr["sec"] + hdr["frac"] * (1e-9 if self.nano else 1e-6),
            linktype=np.full(count, self.linktype, np.int64),
            interface=np.zeros(count, np.int64),
        ), used

    # ----------------------------------------------------------------------------------------------
    # pcapng

    def _idb_options(self, data: Buffer, o: int, end: int, iface: _Interface) -> None:
        """Read if_tsresol and if_tsoffset from an IDB's options; ignore everything else."""
        bo = self.bo
        while o + 4 <= end:
            code = int.from_bytes(data[o:o + 2], bo)
            size = int.from_bytes(data[o + 2:o + 4], bo)
            value = data[o + 4:o + 4 + size]
            if code == PCAPNG_OPT_END:
                break
            if code == PCAPNG_IF_TSRESOL and size >= 1:
                v = value[0]
                exponent = v & 0x7F
                binary = bool(v & 0x80)
                if exponent <= (62 if binary else 18):  # beyond that, 64-bit timestamps make no sense
                    iface.units_per_second = 2 ** exponent if binary else 10 ** exponent
            elif code == PCAPNG_IF_TSOFFSET and size == 8:
                iface.offset_seconds = int.from_bytes(value, bo, signed=True)
            o += 4 + (size + 3) // 4 * 4

    def _pcapng(self, data: Buffer, final: bool) -> tuple[RecordIndex, int]:
        n = len(data)
        # Each section restarts interface numbering and may change byte order: remember, per section
        # met in this buffer, the byte order, the first global interface number and its first record.
        sections: list[tuple[str, int, int]] = [(self.bo, self.section_base, 0)]
        epb: list[int] = []
        spb: list[int] = []  # simple packet blocks, kept apart (they have another layout)
        kinds: list[int] = []  # 0 = EPB, 1 = SPB, in file order (only filled once an SPB is seen)
        o = 0
        from_bytes = int.from_bytes
        while o + _BLOCK_MIN <= n:
            bo = self.bo
            btype = from_bytes(data[o:o + 4], bo)
            if btype == PCAPNG_SHB:
                magic = bytes(data[o + 8:o + 12])
                if magic == PCAPNG_BYTE_ORDER_LE:
                    bo = "little"
                elif magic == PCAPNG_BYTE_ORDER_BE:
                    bo = "big"
                else:
                    if self.offset + o == 0:
                        raise PcapError(f"not a pcap or pcapng file: {self.name}")
                    self.warnings.append(f"corrupt pcapng section header at byte {self.offset + o}; "
                                         "kept the frames before it")
                    self.stopped = True
                    o = n
                    break
            blen = from_bytes(data[o + 4:o + 8], bo)
            if blen < _BLOCK_MIN or blen % 4:
                self.warnings.append(f"corrupt pcapng block at byte {self.offset + o} (length {blen}); "
                                     "kept the frames before it")
                self.stopped = True
                o = n
                break
            if o + blen > n:
                if blen > max(self.limit, MAX_RECORD) + 4096 and not final:
                    self.warnings.append(f"corrupt pcapng block at byte {self.offset + o} (length {blen}); "
                                         "kept the frames before it")
                    self.stopped = True
                    o = n
                elif final:
                    self.warnings.append(f"truncated file: the last pcapng block (at byte {self.offset + o}) is "
                                         f"cut short; kept {self.records + len(epb) + len(spb)} complete records")
                    o = n
                break
            if btype == PCAPNG_SHB:
                self.bo = bo
                self.section_base = len(self.interfaces)
                sections.append((bo, self.section_base, len(epb) + len(spb)))
            elif (btype == PCAPNG_EPB and blen < PCAPNG_EPB_HEADER + 4) or (
                    btype == PCAPNG_SPB and blen < PCAPNG_SPB_HEADER + 4):
                self.short_blocks += 1
            elif btype == PCAPNG_EPB:
                epb.append(o)
                if spb:
                    kinds.append(0)
            elif btype == PCAPNG_SPB:
                if not spb:
                    kinds = [0] * len(epb)
                spb.append(o)
                kinds.append(1)
            elif btype == PCAPNG_IDB and blen >= _IDB_MIN:
                iface = _Interface(from_bytes(data[o + 8:o + 10], bo), from_bytes(data[o + 12:o + 16], bo))
                self._idb_options(data, o + 16, o + blen - 4, iface)
                self.interfaces.append(iface)
            o += blen
        else:
            if o < n and final:
                self.warnings.append(f"truncated file: an incomplete pcapng block header "
                                     f"({_plural(n - o, 'byte')}) at the end")
                o = n
        if final and self.short_blocks:
            self.warnings.append(f"{self.short_blocks} packet blocks too short to hold a packet header were skipped")
        if not epb and not spb:
            return RecordIndex.empty(), o
        return self._pcapng_records(data, sections, epb, spb, kinds), o

    def _pcapng_records(self, data: Buffer, sections: list[tuple[str, int, int]], epb: list[int], spb: list[int],
                        kinds: list[int]) -> RecordIndex:
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
            h = gather_fields(u8, block_at[m], {"blen": (e + "u4", 4), "ifid": (e + "u4", 8), "hi": (e + "u4", 12),
                                                "lo": (e + "u4", 16), "cap": (e + "u4", 20), "orig": (e + "u4", 24)},
                              PCAPNG_EPB_HEADER)
            start[m] = block_at[m] + PCAPNG_EPB_HEADER
            caplen[m] = h["cap"]
            wirelen[m] = h["orig"]
            ts_units[m] = (h["hi"].astype(np.uint64) << np.uint64(32)) | h["lo"]
            local_if[m] = h["ifid"]
            blen_all[m] = h["blen"]
            m = (section_of == s) & (kind == 1)
            h = gather_fields(u8, block_at[m], {"blen": (e + "u4", 4), "orig": (e + "u4", 8)}, PCAPNG_SPB_HEADER)
            start[m] = block_at[m] + PCAPNG_SPB_HEADER
            wirelen[m] = h["orig"]
            caplen[m] = np.minimum(h["orig"], h["blen"].astype(np.int64) - PCAPNG_SPB_HEADER - 4)
            blen_all[m] = h["blen"]

        interfaces = self.interfaces
        section_base = np.asarray([s[1] for s in sections], np.int64)
        section_end = np.append(section_base[1:], len(interfaces))
        section_ifaces = section_end - section_base
        bad_if = local_if >= section_ifaces[section_of]
        over = (start + caplen > block_at + blen_all - 4) | (caplen < 0)
        if bad_if.any():
            self.warnings.append(f"{int(bad_if.sum())} packet blocks name an interface that was never described; "
                                 "their frames are kept but not decoded")
        if over.any():
            self.warnings.append(f"{int(over.sum())} packet blocks claim more captured bytes than the block holds; "
                                 "their frames are kept but not decoded")
        iface = np.where(bad_if, 0, section_base[section_of] + local_if)
        linktypes = np.asarray([i.linktype for i in interfaces] or [LinkType.BROKEN], np.int64)
        linktype = np.where(bad_if | over, LinkType.BROKEN, linktypes[np.minimum(iface, len(linktypes) - 1)])
        caplen = np.where(over, 0, caplen)
        spb_rows = kind == 1
        if spb_rows.any():
            snap = np.asarray([i.snaplen or (1 << 31) for i in interfaces] or [1 << 31], np.int64)
            caplen[spb_rows] = np.minimum(caplen[spb_rows], snap[np.minimum(iface[spb_rows], len(snap) - 1)])

        time = np.zeros(count)
        for i in np.unique(iface[~bad_if & ~spb_rows]).tolist():
            itf = interfaces[i]
            m = (iface == i) & ~bad_if & ~spb_rows
            per = np.uint64(itf.units_per_second)
            units = ts_units[m]
            time[m] = (units // per).astype(np.float64) + (units % per).astype(np.float64) / itf.units_per_second \
                + itf.offset_seconds
        return RecordIndex(start, caplen, wirelen, time, linktype, iface)
