"""The trace model: the words of the lecture (segment, connection, handshake, close) as plain data.

Everything here is free of I/O and can be built by hand, so an experiment's expectation and a unit
test read like the ladder diagram they describe. The classifier (``classify.py``) fills these in
from a capture; nothing in this module knows about pcap files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from .constants import ACK, FIN, FLAG_LETTERS, RST, SEQ_MODULO, SYN, CloseKind, Closer, Handshake

__all__ = ["Endpoint", "Segment", "Connection", "flag_text", "HANDSHAKES", "CLOSE_KINDS"]

HANDSHAKES = tuple(Handshake)
CLOSE_KINDS = tuple(CloseKind)


def flag_text(flags: int) -> str:
    """TCP flags the way tcpdump and packetdrill print them: "S", "S.", ".", "F.", "R.", "P."."""
    return "".join(letter for bit, letter in FLAG_LETTERS if flags & bit) or "none"


class Endpoint(NamedTuple):
    """One end of a conversation: an IP address (text form) and a port.

    A NamedTuple rather than a dataclass because a large capture makes hundreds of thousands of
    them; it is just as immutable and hashable.
    """

    ip: str
    port: int

    def __str__(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


@dataclass
class Segment:
    """One TCP segment as seen on the wire at the capture point."""

    frame: int
    time: float
    src: Endpoint
    dst: Endpoint
    seq: int
    ack: int
    flags: int
    payload_len: int = 0
    ttl: int = 64
    window: int = 0
    src_mac: str | None = None
    dst_mac: str | None = None

    @property
    def syn(self) -> bool:
        return bool(self.flags & SYN)

    @property
    def fin(self) -> bool:
        return bool(self.flags & FIN)

    @property
    def rst(self) -> bool:
        return bool(self.flags & RST)

    @property
    def has_ack(self) -> bool:
        return bool(self.flags & ACK)

    @property
    def flag_text(self) -> str:
        return flag_text(self.flags)

    @property
    def seq_len(self) -> int:
        """Sequence space the segment occupies: payload plus one for SYN and one for FIN."""
        return self.payload_len + (1 if self.flags & SYN else 0) + (1 if self.flags & FIN else 0)

    def __str__(self) -> str:
        ack = f" ack {self.ack}" if self.has_ack else ""
        return (f"{self.src} > {self.dst}: {self.flag_text} {self.seq}:{(self.seq + self.payload_len) % SEQ_MODULO}"
                f"({self.payload_len}){ack}")


@dataclass(eq=False)
class Connection:
    """One TCP connection (one incarnation of a 4-tuple), classified per the definitions of docs/trace.md.

    ``segments`` is built on first use: a million-packet capture classifies 100,000 connections
    without making a million ``Segment`` objects nobody looks at.
    """

    client: Endpoint
    server: Endpoint
    handshake: Handshake  # a str: "complete", "refused", "incomplete" or "none"
    isn: dict[str, int | None]  # {"client": x, "server": y}; None where that SYN was not seen
    close_kind: CloseKind  # a str: "four-way", "three-way", "simultaneous", "reset" or "open"
    close_initiator: Closer | None  # "client", "server", "both" (simultaneous) or None
    bytes_client: int  # distinct payload bytes in sequence space, retransmissions counted once
    bytes_server: int
    half_close_bytes: int  # distinct payload bytes the passive side sent after the initiator's FIN
    retransmissions: dict[str, int]  # {"client": a, "server": b}
    start: float
    end: float
    segment_count: int = 0
    # Where the segments come from when first asked for: source(lo, hi) gives them (see classify.py).
    _source: Callable[[int, int], list[Segment]] | None = field(default=None, repr=False)
    _lo: int = field(default=0, repr=False)
    _hi: int = field(default=0, repr=False)
    _segments: list[Segment] | None = field(default=None, repr=False)
    _bases: dict[str, int | None] | None = field(default=None, repr=False)

    @property
    def segments(self) -> list[Segment]:
        """The connection's segments in capture order."""
        if self._segments is None:
            self._segments = self._source(self._lo, self._hi) if self._source is not None else []
            self._source = None
        return self._segments

    def side(self, segment: Segment) -> str:
        """ "client" if the segment was sent by the client, else "server"."""
        return "client" if segment.src == self.client else "server"

    def _base(self, side: str) -> int | None:
        """Where relative numbering starts for one side: its ISN, or (mid-stream) its first seq seen."""
        if self._bases is None:
            self._bases = {}
        if side not in self._bases:
            base = self.isn.get(side)
            if base is None:
                base = next((s.seq for s in self.segments if self.side(s) == side), None)
            self._bases[side] = base
        return self._bases[side]

    def relative_seq(self, segment: Segment) -> int:
        """``seq - ISN`` of the sender (mod 2^32), as Wireshark and ladder diagrams show it."""
        base = self._base(self.side(segment))
        return (segment.seq - (base if base is not None else segment.seq)) % SEQ_MODULO

    def relative_ack(self, segment: Segment) -> int | None:
        """``ack - ISN`` of the receiver (mod 2^32); None when the ACK flag is off."""
        if not segment.has_ack:
            return None
        base = self._base("server" if self.side(segment) == "client" else "client")
        return (segment.ack - (base if base is not None else segment.ack)) % SEQ_MODULO

    def ladder(self) -> list[str]:
        """One line per segment in packetdrill style with relative numbers: ``> F. 1001:1001(0) ack 1``."""
        lines = []
        for s in self.segments:
            arrow = ">" if self.side(s) == "client" else "<"
            rel = self.relative_seq(s)
            ack = self.relative_ack(s)
            lines.append(f"{arrow} {s.flag_text} {rel}:{rel + s.payload_len}({s.payload_len})"
                         + (f" ack {ack}" if ack is not None else ""))
        return lines

    def to_json(self) -> dict[str, Any]:
        """The connection as the JSON object of ``netbed trace --json`` (keys fixed, see docs/trace.md)."""
        return {
            "client": str(self.client),
            "server": str(self.server),
            "handshake": self.handshake,
            "isn": {"client": self.isn["client"], "server": self.isn["server"]},
            "close": {"kind": self.close_kind, "initiator": self.close_initiator},
            "bytes": {"client": self.bytes_client, "server": self.bytes_server},
            "half_close_bytes": self.half_close_bytes,
            "segments": self.segment_count,
            "retransmissions": {"client": self.retransmissions["client"], "server": self.retransmissions["server"]},
            "start": self.start,
            "end": self.end,
        }
