"""The trace model stage: any pcap/pcapng file -> frames and classified TCP connections.

    from netbed.trace import read_trace, format_table
    trace = read_trace("capture.pcap")
    for conn in trace.connections:
        print(conn.client, conn.server, conn.handshake, conn.close_kind, conn.close_initiator)

``netbed trace PCAP [--json]``, the offline ``netbed check`` and live experiments all go through
:func:`read_trace`, so a verdict never depends on which of them computed it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .addresses import gc_paused, ip_texts, mac_text
from .classify import classify_frames, classify_segments
from .constants import ARP_REPLY, ARP_REQUEST, IPV4_MAPPED_PREFIX
from .model import CLOSE_KINDS, HANDSHAKES, Connection, Endpoint, Segment, flag_text
from .pcap import Frames, PcapError, read_frames
from .stream import cut_warning

__all__ = [
    "ArpPacket", "CLOSE_KINDS", "Connection", "Datagram", "Endpoint", "Frames", "HANDSHAKES", "PcapError",
    "Segment", "Trace", "classify_segments", "flag_text", "format_table", "read_frames", "read_trace",
]


@dataclass
class Datagram:
    """One UDP datagram (DNS, DHCP... whatever an experiment sends besides TCP)."""

    frame: int
    time: float
    src: Endpoint
    dst: Endpoint
    length: int  # UDP payload bytes
    ttl: int


@dataclass
class ArpPacket:
    """One ARP request or reply: who asked for whose MAC address on the LAN."""

    frame: int
    time: float
    op: int  # ARP_REQUEST (1) or ARP_REPLY (2)
    sender_mac: str
    sender_ip: str
    target_mac: str
    target_ip: str

    @property
    def is_request(self) -> bool:
        return self.op == ARP_REQUEST

    @property
    def is_reply(self) -> bool:
        return self.op == ARP_REPLY


@dataclass
class Trace:
    """A capture, read and classified: the frame table, the TCP connections and what went wrong."""

    path: str
    frames: Frames
    warnings: list[str] = field(default_factory=list)
    _connections: list[Connection] | None = field(default=None, repr=False)

    @property
    def connections(self) -> list[Connection]:
        """TCP connections in the order their first segment was captured."""
        if self._connections is None:
            self._connections = classify_frames(self.frames)
        return self._connections

    def udp_datagrams(self) -> list[Datagram]:
        """Every UDP datagram, in capture order (experiments about ports and DNS look at these)."""
        f = self.frames
        r = np.flatnonzero(f.has_udp)
        src = ip_texts(f.src_ip6_hi[r], f.src_ip6_lo[r])
        dst = ip_texts(f.dst_ip6_hi[r], f.dst_ip6_lo[r])
        return [Datagram(fr, tm, Endpoint(si, sp), Endpoint(di, dp), ln, ttl)
                for fr, tm, si, sp, di, dp, ln, ttl in zip(
                    f.frame[r].tolist(), f.time[r].tolist(), src, f.sport[r].tolist(), dst,
                    f.dport[r].tolist(), f.udp_len[r].tolist(), f.ttl[r].tolist())]

    def arp(self) -> list[ArpPacket]:
        """Every ARP request and reply, in capture order (the LAN experiments' MAC-resolution facts)."""
        f = self.frames
        r = np.flatnonzero(f.has_arp)
        mapped = np.uint64(IPV4_MAPPED_PREFIX)
        zero = np.zeros(len(r), np.uint64)
        sender_ip = ip_texts(zero, mapped | f.arp_sender_ip[r].astype(np.uint64))
        target_ip = ip_texts(zero, mapped | f.arp_target_ip[r].astype(np.uint64))
        return [ArpPacket(fr, t, op, mac_text(smac), sip, mac_text(tmac), tip)
                for fr, t, op, smac, sip, tmac, tip in zip(
                    f.frame[r].tolist(), f.time[r].tolist(), f.arp_op[r].tolist(),
                    f.arp_sender_mac[r].tolist(), sender_ip, f.arp_target_mac[r].tolist(), target_ip)]

    def to_json(self) -> dict[str, Any]:
        """``{"connections": [...], "warnings": [...]}``, the output of ``netbed trace --json``."""
        with gc_paused():
            return {"connections": [c.to_json() for c in self.connections], "warnings": list(self.warnings)}

    def to_json_text(self) -> str:
        """:meth:`to_json` as text with one connection per line.

        Why not ``json.dumps(..., indent=2)``: any ``indent`` makes the json module fall back from its C
        encoder to pure Python, which takes ~7 s for 120,000 connections; encoding each connection
        compactly on its own line keeps the C encoder, stays readable and diffable, and is the same JSON.
        """
        with gc_paused():
            lines = [json.dumps(c.to_json()) for c in self.connections]
        body = "[\n  " + ",\n  ".join(lines) + "\n ]" if lines else "[]"
        return f'{{\n "connections": {body},\n "warnings": {json.dumps(self.warnings)}\n}}\n'


def read_trace(path: str | os.PathLike[str]) -> Trace:
    """Read and classify a pcap/pcapng file.

    Raises :class:`PcapError` (a ValueError) only when the file is empty or not a capture; a
    damaged capture gives what could be read plus ``trace.warnings``.
    """
    frames, warnings = read_frames(path)
    cut = int(np.count_nonzero(frames.caplen < frames.wirelen))
    if cut:
        warnings.append(cut_warning(cut))
    trace = Trace(os.fspath(path), frames, warnings)
    trace.connections  # noqa: B018 - classify now, so timing and errors belong to read_trace
    return trace


_TABLE_COLUMNS = ("client", "server", "handshake", "close", "initiator", "bytes c>s", "bytes s>c",
                  "half-close", "segments")


def format_table(trace: Trace) -> str:
    """One fixed-width row per connection, for ``netbed trace PCAP`` without ``--json``."""
    with gc_paused():
        rows = [(str(c.client), str(c.server), c.handshake, c.close_kind, c.close_initiator or "-",
                 str(c.bytes_client), str(c.bytes_server), str(c.half_close_bytes), str(c.segment_count))
                for c in trace.connections]
        widths = [max([len(h), *map(len, column)]) for h, column in zip(_TABLE_COLUMNS, zip(*rows))] if rows \
            else [len(h) for h in _TABLE_COLUMNS]
        # Text columns left-aligned, counts right-aligned.
        row_format = "  ".join(f"{{:{'>' if i >= 5 else '<'}{w}}}" for i, w in enumerate(widths))
        out = [row_format.format(*_TABLE_COLUMNS).rstrip(), row_format.format(*("-" * w for w in widths))]
        out.extend([row_format.format(*r).rstrip() for r in rows])
    out.append(f"{len(rows)} TCP connection{'s' if len(rows) != 1 else ''}, {len(trace.frames)} frames")
    out.extend(f"warning: {w}" for w in trace.warnings)
    return "\n".join(out) + "\n"
