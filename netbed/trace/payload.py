"""TCP payload bytes of chosen frames, for the few checks that must read what was said (an HTTP "GET ").

The trace model keeps headers and lengths only: a million-frame capture never copies its payloads. A
check that needs the bytes asks for the frames it cares about; this module finds them with the same
record index and decoded header columns as `read_frames`, and cuts each payload out of its IP packet:
the payload is the last `payload_len` bytes before the IP packet's end (its own length field), so no
TCP option or IPv6 extension header needs decoding twice.
"""
from __future__ import annotations

import os

import numpy as np

from .pcap import _decode, _index_classic, _index_pcapng

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
ETHERNET, RAW_IP, RAW_IPV4, RAW_IPV6, NULL, LINUX_SLL, LINUX_SLL2 = 1, 101, 228, 229, 0, 113, 276
LINK_HEADER = {RAW_IP: 0, RAW_IPV4: 0, RAW_IPV6: 0, NULL: 4, LINUX_SLL: 16, LINUX_SLL2: 20}
ETHER_HEADER, VLAN_TAG = 14, 4
VLAN_TPIDS = (0x8100, 0x88A8)
IPV6_HEADER = 40


def tcp_payloads(path: str | os.PathLike[str], frame_numbers: set[int]) -> dict[int, bytes]:
    """{frame number: the TCP payload bytes captured} for each asked-for frame that carries TCP."""
    name = os.fspath(path)
    with open(name, "rb") as f:
        data = f.read()
    warnings: list[str] = []
    index = _index_pcapng(data, warnings, name) if data[:4] == PCAPNG_MAGIC else _index_classic(data, warnings)
    frames = _decode(np.frombuffer(data, np.uint8), index, warnings)
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


def _ip_start(data: bytes, start: int, end: int, linktype: int) -> int | None:
    if linktype == ETHERNET:
        at, ethertype = start + ETHER_HEADER, int.from_bytes(data[start + 12:start + 14], "big")
        while ethertype in VLAN_TPIDS and at + VLAN_TAG <= end:
            ethertype = int.from_bytes(data[at + 2:at + 4], "big")
            at += VLAN_TAG
        return at
    header = LINK_HEADER.get(linktype)
    return None if header is None else start + header
