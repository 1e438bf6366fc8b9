"""TCP payload bytes of chosen frames, for the few checks that must read what was said (an HTTP "GET ").

The trace model keeps headers and lengths only: a million-frame capture never copies its payloads. A
check that needs the bytes asks for the frames it cares about; this module finds them with the same
record index and decoded header columns as `read_frames`, and cuts each payload out of its IP packet:
a file is mapped, a `.pcap.gz` decompressed, as everywhere else in the stage (`pcap.capture_bytes`);
the payload is the last `payload_len` bytes before the IP packet's end (its own length field), so no
TCP option or IPv6 extension header needs decoding twice.
"""
from __future__ import annotations

import os

import numpy as np

from .constants import (
    COOKED_LAYOUTS,
    ETHERNET_HEADER,
    IPV6_HEADER,
    LOOPBACK_LINKTYPES,
    RAW_IP_LINKTYPES,
    VLAN_TAG,
    VLAN_TPIDS,
    LinkType,
)
from .container import Buffer, ContainerReader
from .headers import decode
from .pcap import capture_bytes

LOOPBACK_HEADER = 4  # the address family word before the IP header
LINK_HEADER = {**{lt: 0 for lt in RAW_IP_LINKTYPES}, **{lt: LOOPBACK_HEADER for lt in LOOPBACK_LINKTYPES},
               **{lt: size for lt, (size, _) in COOKED_LAYOUTS.items()}}


def tcp_payloads(path: str | os.PathLike[str], frame_numbers: set[int]) -> dict[int, bytes]:
    """{frame number: the TCP payload bytes captured} for each asked-for frame that carries TCP."""
    name = os.fspath(path)
    with capture_bytes(name) as (data, _):
        return _payloads(name, data, frame_numbers)


def _payloads(name: str, data: Buffer, frame_numbers: set[int]) -> dict[int, bytes]:
    reader = ContainerReader(name)
    index, _ = reader.index(data, final=True)
    frames = decode(np.frombuffer(data, np.uint8), index, reader.warnings)
    out = {}
    for number in sorted(frame_numbers):
        row = number - 1
        if not 0 <= row < len(frames) or not frames.has_tcp[row]:
            continue
        start, end = int(index.start[row]), int(index.start[row] + index.caplen[row])
        ip = _ip_start(data, start, end, int(frames.linktype[row]))
        if ip is None:
            continue
        if frames.ip_version[row] == 4:
            ip_end = ip + int.from_bytes(data[ip + 2:ip + 4], "big")
        else:
            ip_end = ip + IPV6_HEADER + int.from_bytes(data[ip + 4:ip + 6], "big")
        first = ip_end - int(frames.payload_len[row])
        out[number] = bytes(data[first:min(ip_end, end)])
    return out


def _ip_start(data: Buffer, start: int, end: int, linktype: int) -> int | None:
    if linktype == LinkType.ETHERNET:
        at, ethertype = start + ETHERNET_HEADER, int.from_bytes(data[start + 12:start + 14], "big")
        while ethertype in VLAN_TPIDS and at + VLAN_TAG <= end:
            ethertype = int.from_bytes(data[at + 2:at + 4], "big")
            at += VLAN_TAG
        return at
    header = LINK_HEADER.get(linktype)
    return None if header is None else start + header
