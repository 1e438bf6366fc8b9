"""Decode the link, network and transport headers of every indexed record at once.

No per-packet Python: frames are grouped by link type and header position, and each group's
fixed-offset header bytes are gathered and viewed as a big-endian structured record (see
``frames.py``). Link types: Ethernet (with 802.1Q/802.1ad tags), Linux cooked SLL and SLL2, raw IP
(and its BSD aliases), BSD/OpenBSD loopback; IPv4 with options, IPv6 with extension headers, ARP,
TCP, UDP.

Sizes come from the IP length fields, never from the captured length: a capture cut to its headers
(``tcpdump -s 64``) still says how many bytes each packet carried.
"""

from __future__ import annotations

import numpy as np

from .constants import (
    AF_INET,
    AF_INET6_VALUES,
    ARP_IPV4_OVER_ETHERNET,
    COOKED_LAYOUTS,
    ETH_ARP,
    ETH_IPV4,
    ETH_IPV6,
    ETHERNET_HEADER,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV4_FRAGMENT_OFFSET_MASK,
    IPV4_HEADER,
    IPV4_MAPPED_PREFIX,
    IPV6_AUTH,
    IPV6_EXTENSION_HEADERS,
    IPV6_FRAGMENT,
    IPV6_HEADER,
    IPV6_MAX_EXTENSIONS,
    LOOPBACK_LINKTYPES,
    MAC_BITS,
    RAW_IP_LINKTYPES,
    TCP_HEADER,
    UDP_HEADER,
    VLAN_TAG,
    VLAN_TPIDS,
    LinkType,
)
from .container import RecordIndex
from .frames import Frames, gather_fields

__all__ = ["decode"]

_MAC_MASK = np.uint64((1 << MAC_BITS) - 1)
_KNOWN_LINKTYPES = tuple(int(k) for k in LinkType)
_NO_ROWS = np.zeros(0, np.int64)


def _compact(rows: np.ndarray) -> np.ndarray | slice:
    """A run of consecutive row numbers as a slice: scattering into a slice is a plain copy, which
    matters when (as usual) every frame is Ethernet, IPv4 and TCP."""
    if len(rows) and int(rows[-1]) - int(rows[0]) + 1 == len(rows):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def decode(u8: np.ndarray, ix: RecordIndex, warnings: list[str], first_frame: int = 1) -> Frames:
    """The frame table of the indexed records of buffer ``u8``; frames are numbered from ``first_frame``."""
    n = len(ix.start)
    fr = Frames.zeros(n)
    fr.frame[:] = np.arange(first_frame, first_frame + n)
    fr.time[:] = ix.time
    fr.interface[:] = ix.interface
    fr.linktype[:] = ix.linktype
    fr.caplen[:] = ix.caplen
    fr.wirelen[:] = ix.wirelen
    l3 = _link_layer(u8, ix, fr, warnings)
    l4 = _network_layer(u8, ix, fr, l3)
    _transport_layer(u8, ix, fr, l4)
    return fr


def _link_layer(u8: np.ndarray, ix: RecordIndex, fr: Frames, warnings: list[str]) -> np.ndarray:
    """Fill MACs, EtherType and VLAN; return each frame's network-layer offset (-1: none)."""
    start, lt = ix.start, ix.linktype
    end = start + ix.caplen  # first byte after this frame's captured bytes
    l3 = np.full(len(start), -1, np.int64)
    # Usually every frame has the same link type (always in classic pcap): then which frames a
    # branch decodes depends on their length alone, and no link-type column is searched.
    single = int(lt[0]) if len(lt) and not (lt != lt[0]).any() else None

    def rows_of(types: tuple[int, ...], long_enough: np.ndarray) -> np.ndarray:
        if single is not None:
            return np.flatnonzero(long_enough) if single in types else _NO_ROWS
        return np.flatnonzero(np.isin(lt, types) & long_enough)

    m = rows_of((LinkType.ETHERNET,), ix.caplen >= ETHERNET_HEADER)
    if len(m):
        eth = m
        m = _compact(m)
        # 8-byte big-endian reads starting 2 bytes early put each MAC in the low 48 bits.
        h = gather_fields(u8, start[m] - 2, {"dst": (">u8", 0), "src": (">u8", 6), "type": (">u2", 14)}, 16)
        fr.dst_mac[m] = h["dst"] & _MAC_MASK
        fr.src_mac[m] = h["src"] & _MAC_MASK
        fr.ethertype[m] = h["type"]
        l3[m] = start[m] + ETHERNET_HEADER
        for depth in range(2):  # 802.1Q, and one more level for 802.1ad (QinQ)
            tagged = eth[np.isin(fr.ethertype[eth], VLAN_TPIDS) & (l3[eth] + VLAN_TAG <= end[eth])]
            if not len(tagged):
                break
            t = gather_fields(u8, l3[tagged], {"tci": (">u2", 0), "type": (">u2", 2)}, VLAN_TAG)
            if depth == 0:
                fr.vlan[tagged] = t["tci"] & 0x0FFF
            fr.ethertype[tagged] = t["type"]
            l3[tagged] += VLAN_TAG
    for linktype, (size, spec) in COOKED_LAYOUTS.items():
        m = rows_of((linktype,), ix.caplen >= size)
        if len(m):
            m = _compact(m)
            h = gather_fields(u8, start[m], spec, size)
            fr.src_mac[m] = np.where(h["halen"] == 6, h["addr"] >> np.uint64(16), 0)
            fr.ethertype[m] = h["proto"]
            l3[m] = start[m] + size
    m = rows_of(RAW_IP_LINKTYPES, ix.caplen >= 1)
    if len(m):
        version = u8[start[m]] >> 4
        fr.ethertype[m] = np.where(version == 4, ETH_IPV4, np.where(version == 6, ETH_IPV6, 0))
        l3[m] = start[m]
    m = rows_of(LOOPBACK_LINKTYPES, ix.caplen >= 4)
    if len(m):
        family = gather_fields(u8, start[m], {"le": ("<u4", 0), "be": (">u4", 0)}, 4)
        # DLT_NULL is in the capturing host's byte order; a family number never exceeds 0xFFFF.
        af = np.where((lt[m] == LinkType.LOOP) | (family["le"] > 0xFFFF), family["be"], family["le"])
        fr.ethertype[m] = np.where(af == AF_INET, ETH_IPV4, np.where(np.isin(af, AF_INET6_VALUES), ETH_IPV6, 0))
        l3[m] = start[m] + 4
    unknown = ~np.isin(lt, _KNOWN_LINKTYPES) if single is None or single not in _KNOWN_LINKTYPES else None
    if unknown is not None and unknown.any():
        kinds = ", ".join(str(k) for k in np.unique(lt[unknown])[:5])
        warnings.append(f"{int(unknown.sum())} frames have an unsupported link type ({kinds}); not decoded")
    return l3


def _network_layer(u8: np.ndarray, ix: RecordIndex, fr: Frames, l3: np.ndarray) -> np.ndarray:
    """Fill IPv4, IPv6 (after extension headers) and ARP; return the transport offset (-1: none)."""
    start = ix.start
    end = start + ix.caplen
    l4 = np.full(len(start), -1, np.int64)
    m = np.flatnonzero((fr.ethertype == ETH_IPV4) & (l3 >= 0) & (l3 + IPV4_HEADER <= end))
    if len(m):
        h = gather_fields(u8, l3[m], {"vihl": ("u1", 0), "total": (">u2", 2), "frag": (">u2", 6), "ttl": ("u1", 8),
                                      "proto": ("u1", 9), "src": (">u4", 12), "dst": (">u4", 16)}, IPV4_HEADER)
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
        fr.src_ip6_lo[m] = np.uint64(IPV4_MAPPED_PREFIX) | h["src"]  # IPv4-mapped, for uniform keys
        fr.dst_ip6_lo[m] = np.uint64(IPV4_MAPPED_PREFIX) | h["dst"]
        fr.ttl[m] = h["ttl"]
        fr.ip_proto[m] = h["proto"]
        fr.fragment[m] = (h["frag"] & IPV4_FRAGMENT_OFFSET_MASK) != 0
        fr.ip_payload_len[m] = np.maximum(total - ihl, 0)
        l4[m] = np.where(fr.fragment[m], -1, l3[m] + ihl)
    m = np.flatnonzero((fr.ethertype == ETH_IPV6) & (l3 >= 0) & (l3 + IPV6_HEADER <= end))
    if len(m):
        _ipv6(u8, ix, fr, l3, l4, m)
    m = np.flatnonzero((fr.ethertype == ETH_ARP) & (l3 >= 0) & (l3 + ARP_IPV4_OVER_ETHERNET <= end))
    if len(m):
        h = gather_fields(u8, l3[m], {"htype": (">u2", 0), "ptype": (">u2", 2), "hlen": ("u1", 4), "plen": ("u1", 5),
                                      "op": (">u2", 6), "sha": (">u8", 6), "spa": (">u4", 14), "tha": (">u8", 16),
                                      "tpa": (">u4", 24)}, ARP_IPV4_OVER_ETHERNET)
        ok = (h["hlen"] == 6) & (h["plen"] == 4) & (h["ptype"] == ETH_IPV4)
        m, h = _compact(m[ok]), h[ok]
        fr.has_arp[m] = True
        fr.arp_op[m] = h["op"]
        fr.arp_sender_mac[m] = h["sha"] & _MAC_MASK
        fr.arp_sender_ip[m] = h["spa"]
        fr.arp_target_mac[m] = h["tha"] & _MAC_MASK
        fr.arp_target_ip[m] = h["tpa"]
    return l4


def _ipv6(u8: np.ndarray, ix: RecordIndex, fr: Frames, l3: np.ndarray, l4: np.ndarray, m: np.ndarray) -> None:
    end = ix.start + ix.caplen
    h = gather_fields(u8, l3[m], {"vtc": ("u1", 0), "plen": (">u2", 4), "nh": ("u1", 6), "hlim": ("u1", 7),
                                  "shi": (">u8", 8), "slo": (">u8", 16), "dhi": (">u8", 24), "dlo": (">u8", 32)},
                      IPV6_HEADER)
    ok = (h["vtc"] >> 4) == 6
    m, h = m[ok], h[ok]
    v6 = m
    m = _compact(m)
    plen = h["plen"].astype(np.int64)
    plen = np.where(plen == 0, ix.wirelen[m] - (l3[m] - ix.start[m]) - IPV6_HEADER, plen)
    fr.has_ip[m] = True
    fr.ip_version[m] = 6
    fr.src_ip6_hi[m], fr.src_ip6_lo[m] = h["shi"], h["slo"]
    fr.dst_ip6_hi[m], fr.dst_ip6_lo[m] = h["dhi"], h["dlo"]
    fr.ttl[m] = h["hlim"]
    proto = h["nh"].astype(np.int64)
    at = l3[m] + IPV6_HEADER
    # Walk the extension headers of all frames in step.
    for _ in range(IPV6_MAX_EXTENSIONS):
        ext = np.isin(proto, IPV6_EXTENSION_HEADERS) & (at + 8 <= end[m])
        if not ext.any():
            break
        e = gather_fields(u8, at[ext], {"nh": ("u1", 0), "len": ("u1", 1), "frag": (">u2", 2)}, 8)
        units = e["len"].astype(np.int64)
        size = np.where(proto[ext] == IPV6_FRAGMENT, 8,
                        np.where(proto[ext] == IPV6_AUTH, (units + 2) * 4, (units + 1) * 8))
        later = (proto[ext] == IPV6_FRAGMENT) & ((e["frag"] >> 3) != 0)
        rows = v6[ext]
        fr.fragment[rows] |= later
        at[ext] += size
        plen[ext] -= size
        proto[ext] = e["nh"]
    fr.ip_proto[m] = proto & 0xFF
    fr.ip_payload_len[m] = np.maximum(plen, 0)
    l4[m] = np.where(fr.fragment[m] | np.isin(proto, IPV6_EXTENSION_HEADERS), -1, at)


def _transport_layer(u8: np.ndarray, ix: RecordIndex, fr: Frames, l4: np.ndarray) -> None:
    end = ix.start + ix.caplen
    m = np.flatnonzero((fr.ip_proto == IPPROTO_TCP) & fr.has_ip & (l4 >= 0) & (l4 + TCP_HEADER <= end))
    if len(m):
        h = gather_fields(u8, l4[m], {"sport": (">u2", 0), "dport": (">u2", 2), "seq": (">u4", 4),
                                      "ack": (">u4", 8), "off": ("u1", 12), "flags": ("u1", 13), "win": (">u2", 14)},
                          TCP_HEADER)
        hlen = (h["off"] >> 4).astype(np.int64) * 4
        ok = hlen >= TCP_HEADER
        m, h, hlen = _compact(m[ok]), h[ok], hlen[ok]
        fr.has_tcp[m] = True
        fr.sport[m] = h["sport"]
        fr.dport[m] = h["dport"]
        fr.seq[m] = h["seq"]
        fr.ack[m] = h["ack"]
        fr.tcp_flags[m] = h["flags"]
        fr.window[m] = h["win"]
        fr.payload_len[m] = np.maximum(fr.ip_payload_len[m].astype(np.int64) - hlen, 0)
    m = np.flatnonzero((fr.ip_proto == IPPROTO_UDP) & fr.has_ip & (l4 >= 0) & (l4 + UDP_HEADER <= end))
    if len(m):
        m = _compact(m)
        h = gather_fields(u8, l4[m], {"sport": (">u2", 0), "dport": (">u2", 2), "len": (">u2", 4)}, UDP_HEADER)
        fr.has_udp[m] = True
        fr.sport[m] = h["sport"]
        fr.dport[m] = h["dport"]
        length = h["len"].astype(np.int64)
        length = np.where(length == 0, fr.ip_payload_len[m], length)  # 0: IPv6 jumbogram
        fr.udp_len[m] = np.maximum(length - UDP_HEADER, 0)
