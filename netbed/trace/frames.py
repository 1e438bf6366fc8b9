"""The frame table (one NumPy column per header field) and the byte gathering both readers share.

Why columnar: a teaching capture has a hundred packets, a load test a million. Building a Python
object per packet costs more than everything else put together, so the container reader
(``container.py``) finds where each record starts and the header decoder (``headers.py``) pulls every
header field for all frames at once: each group's fixed-offset header bytes are gathered into a
``(frames, width)`` byte matrix that is *viewed* as a big-endian structured record.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

__all__ = ["Frames", "gather", "gather_fields"]


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
        if isinstance(rows, np.ndarray) and rows.dtype == np.bool_:  # row numbers select ~6x faster than a mask
            rows = np.flatnonzero(rows)
        return Frames(**{name: getattr(self, name)[rows] for name in self.columns()})

    def to_records(self) -> np.ndarray:
        """The same table as one NumPy structured array (handy for pandas or saving with np.save)."""
        dtype = np.dtype([(f.name, f.metadata["dtype"]) for f in fields(self)])
        out = np.empty(len(self), dtype)
        for name in self.columns():
            out[name] = getattr(self, name)
        return out


def gather(u8: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` bytes at each offset as a C-contiguous (n, width) matrix, without an index matrix.

    A strided view over the buffer makes "row k" mean "bytes k..k+width", so one fancy index over
    rows copies all headers at memcpy speed. Callers guarantee offset + width <= len(u8).
    """
    view = np.lib.stride_tricks.as_strided(u8, shape=(len(u8) - width + 1, width), strides=(1, 1),
                                           writeable=False)
    return view[offsets]


def gather_fields(u8: np.ndarray, offsets: np.ndarray, spec: dict[str, tuple[str, int]], width: int) -> np.ndarray:
    """Gather ``width`` bytes at each offset and view them as the named (dtype, offset) fields."""
    dtype = np.dtype({"names": list(spec), "formats": [s[0] for s in spec.values()],
                      "offsets": [s[1] for s in spec.values()], "itemsize": width})
    if len(offsets) == 0:
        return np.zeros(0, dtype)
    return gather(u8, offsets, width).view(dtype)[:, 0]
