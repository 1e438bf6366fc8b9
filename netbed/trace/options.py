"""TCP options of chosen frames: SACK blocks and the window scale, for the time-sequence graph.

The trace model keeps headers and lengths only; like `payload.py`, this module reads the few frames
a picture needs, with the same record index and decoded columns as `read_frames`, and walks their
TCP option bytes (RFC 9293 §3.1, RFC 2018 for SACK, RFC 7323 for the window scale).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .container import ContainerReader
from .headers import decode
from .payload import _ip_start
from .pcap import capture_bytes

OPT_END, OPT_NOP, OPT_WSCALE, OPT_SACK = 0, 1, 3, 5
TCP_MIN_HEADER = 20
IPV6_FIXED = 40
IPPROTO_TCP = 6


@dataclass
class TcpOptions:
    sack: list[tuple[int, int]] = field(default_factory=list)  # (left edge, right edge), absolute
    wscale: int | None = None


def tcp_options(path: str | os.PathLike[str], frame_numbers: set[int]) -> dict[int, TcpOptions]:
    """{frame number: its TCP options} for each asked-for frame that carries TCP with options."""
    name = os.fspath(path)
    with capture_bytes(name) as (data, _):  # the same opener as the rest of the trace stage: .gz too, mapped
        return _options(name, data, frame_numbers)


def _options(name: str, data, frame_numbers: set[int]) -> dict[int, TcpOptions]:
    reader = ContainerReader(name)
    index, _ = reader.index(data, final=True)
    frames = decode(np.frombuffer(data, np.uint8), index, reader.warnings)
    out = {}
    for number in sorted(frame_numbers):
        row = number - 1
        if not 0 <= row < len(frames) or not frames.has_tcp[row]:
            continue
        start = int(index.start[row])
        end = start + int(index.caplen[row])
        ip = _ip_start(data, start, end, int(frames.linktype[row]))
        if ip is None:
            continue
        if frames.ip_version[row] == 4:
            tcp = ip + (data[ip] & 0x0F) * 4
        elif data[ip + 6] == IPPROTO_TCP:
            tcp = ip + IPV6_FIXED
        else:
            continue  # extension headers: not needed for the picture
        if tcp + TCP_MIN_HEADER > end:
            continue
        header_end = min(end, tcp + (data[tcp + 12] >> 4) * 4)
        opts = parse_options(data[tcp + TCP_MIN_HEADER:header_end])
        if opts.sack or opts.wscale is not None:
            out[number] = opts
    return out


def parse_options(raw: bytes) -> TcpOptions:
    """SACK blocks and window scale from a TCP header's option bytes; a cut option ends the walk."""
    opts = TcpOptions()
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind == OPT_END:
            break
        if kind == OPT_NOP:
            i += 1
            continue
        if i + 1 >= len(raw) or raw[i + 1] < 2 or i + raw[i + 1] > len(raw):
            break
        length = raw[i + 1]
        body = raw[i + 2:i + length]
        if kind == OPT_WSCALE and length == 3:
            opts.wscale = body[0]
        elif kind == OPT_SACK:
            for j in range(0, len(body) - 7, 8):
                opts.sack.append((int.from_bytes(body[j:j + 4], "big"), int.from_bytes(body[j + 4:j + 8], "big")))
        i += length
    return opts
