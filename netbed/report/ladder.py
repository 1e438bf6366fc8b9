"""Ladder diagrams: the lecture's two columns, one arrow per segment, TCP states beside each column.

Why a model between the trace and the pictures: the terminal text and the SVG must show the very
same rows — same folding, same marks, same interleaving of states and arrows — so every decision is
made once here (:func:`build_ladder`) and the renderers only draw. A 200 KB transfer is hundreds of
segments; the lecture's picture has a dozen arrows. So long runs of plain data and ACK segments fold
into one "N segments, B bytes" arrow per direction, while the segments the lecture talks about
(SYN, FIN, RST, the ACKs of SYN and FIN, retransmissions) always keep their own arrow.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any, Union

from netbed.trace.constants import ACK, PSH
from netbed.trace.model import Connection, Endpoint, Segment

FOLD_AFTER = 6  # a run of more plain data/ACK segments than this folds into one arrow per direction
TEXT_WIDTH = 100  # the whole text diagram fits an ordinary terminal
_TIME_W = 8
_STATE_W = 13  # "SYN_RECEIVED" plus a "*" for a state seen by ss rather than traced
_INNER = TEXT_WIDTH - _TIME_W - 2 - 2 * (_STATE_W + 2) - 2  # characters between the two lifelines
_PLAIN_FLAGS = ACK | PSH  # flags a foldable segment may carry (any other bit keeps it visible)


@dataclass(frozen=True)
class Column:
    """One endpoint of the conversation as a column header: role, host name, ip:port."""

    role: str  # "client" or "server"
    host: str | None
    endpoint: Endpoint

    @property
    def title(self) -> str:
        return f"{self.role} {self.host}" if self.host else self.role


@dataclass(frozen=True)
class Arrow:
    """One segment, or a folded run of plain segments in one direction (``segments`` > 1)."""

    time: float
    sender: str  # "client" or "server"
    flags: str  # tcpdump letters; "" for a folded run
    seq: int  # relative; a folded run's first sequence number
    ack: int | None  # relative; a folded run's first acknowledgement number
    length: int  # payload bytes (a folded run: the sum)
    frames: tuple[int, ...]
    segments: int = 1
    seq_end: int = 0  # folded only: relative sequence number after the run's last byte
    ack_last: int | None = None  # folded only: the run's last acknowledgement number
    retransmission: bool = False
    reset: bool = False
    keepalive: bool = False

    @property
    def folded(self) -> bool:
        return self.segments > 1

    @property
    def marks(self) -> list[str]:
        out = []
        if self.reset:
            out.append("[RST]")
        if self.retransmission:
            out.append("[retransmission]")
        if self.keepalive:
            out.append("[keep-alive]")
        return out

    @property
    def label(self) -> str:
        """What the arrow says, in the notation of ``netbed.expect`` ladders (seq=, ack=, len=)."""
        if self.folded:
            text = f"{self.segments} segments, {self.length} bytes"
            if self.length:
                return f"{text}, seq={self.seq}..{self.seq_end}"
            if self.ack is not None:
                return f"{text}, ack={self.ack}..{self.ack_last}"
            return text
        parts = [self.flags, f"seq={self.seq}"]
        if self.ack is not None:
            parts.append(f"ack={self.ack}")
        parts.append(f"len={self.length}")
        return " ".join(parts + self.marks)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": "folded" if self.folded else "segment", "time": self.time,
                                "sender": self.sender, "label": self.label, "frames": list(self.frames)}
        if self.folded:
            data.update(segments=self.segments, bytes=self.length, seq=[self.seq, self.seq_end],
                        ack=None if self.ack is None else [self.ack, self.ack_last])
        else:
            data.update(flags=self.flags, seq=self.seq, ack=self.ack, len=self.length,
                        retransmission=self.retransmission, reset=self.reset)
        return data


@dataclass(frozen=True)
class StateMark:
    """A kernel TCP state change of one side's socket, written beside that side's column."""

    time: float
    side: str  # "client" or "server"
    state: str
    via: str | None = None  # "ss": seen in the socket table after the run, not traced

    @property
    def label(self) -> str:
        return self.state + ("*" if self.via else "")

    def to_json(self) -> dict[str, Any]:
        return {"kind": "state", "time": self.time, "side": self.side, "state": self.state, "via": self.via}


Row = Union[Arrow, StateMark]


@dataclass
class Ladder:
    """A connection drawn from one capture point: two columns and rows in time order."""

    client: Column
    server: Column
    captured_at: str  # "client side (h1-eth0)"
    rows: list[Row]
    summary: list[str] = field(default_factory=list)  # hop facts and classification, under the picture
    start: float = 0.0  # time zero of the diagram

    @property
    def arrows(self) -> list[Arrow]:
        return [r for r in self.rows if isinstance(r, Arrow)]

    def clock(self, row: Row) -> str:
        """The time shown beside a row: seconds since the diagram's start, to the millisecond."""
        return f"{row.time - self.start:.3f}"

    def lines(self) -> list[list[Row]]:
        """Rows grouped into drawn lines: an arrow alone, or a state change — together with the other
        side's next state change when no arrow comes between them and the time shown is the same."""
        out: list[list[Row]] = []
        for row in self.rows:
            prev = out[-1] if out else None
            if (isinstance(row, StateMark) and prev is not None and len(prev) == 1
                    and isinstance(prev[0], StateMark) and prev[0].side != row.side
                    and self.clock(prev[0]) == self.clock(row)):
                prev.append(row)
            else:
                out.append([row])
        return out

    @property
    def notes(self) -> list[str]:
        """Footnotes the marks in the picture need."""
        if any(isinstance(r, StateMark) and r.via for r in self.rows):
            return ["* state seen in the socket table (ss) after the run, not traced as it happened"]
        return []

    def to_json(self) -> dict[str, Any]:
        return {
            "captured_at": self.captured_at,
            "columns": {c.role: {"host": c.host, "endpoint": str(c.endpoint)} for c in (self.client, self.server)},
            "start": self.start,
            "rows": [r.to_json() for r in self.rows],
            "summary": list(self.summary),
        }


# --------------------------------------------------------------------------------------------------
# Building the rows


@dataclass
class _Seen:
    """Per segment, what the diagram needs beyond the segment itself."""

    seg: Segment
    sender: str
    seq: int
    ack: int | None
    retransmission: bool = False
    keepalive: bool = False
    visible: bool = False  # never folded: handshake, close, reset, retransmission...


def _signed(x: int) -> int:
    """A difference of sequence numbers modulo 2^32, read as a signed number."""
    x %= 2**32
    return x - 2**32 if x >= 2**31 else x


def _examine(conn: Connection) -> list[_Seen]:
    """Relative numbers and marks for every segment, in capture order.

    A retransmission is a segment whose sequence range starts below the highest end its side has
    already sent (what a receiver would see again). Handshake and close stay visible: a segment with
    SYN, FIN or RST, and the first segment of each side that acknowledges the peer's SYN or FIN.
    """
    high: dict[str, int | None] = {"client": None, "server": None}
    awaiting: dict[str, list[int]] = {"client": [], "server": []}  # peer SYN/FIN ends this side must ack
    out = []
    for seg in conn.segments:
        side = conn.side(seg)
        peer = "server" if side == "client" else "client"
        seen = _Seen(seg, side, conn.relative_seq(seg), conn.relative_ack(seg))
        end = seen.seq + seg.seq_len
        top = high[side]
        if top is not None and seg.seq_len and _signed(seen.seq - top) < 0:
            if seg.payload_len <= 1 and not (seg.syn or seg.fin) and _signed(seen.seq - top) == -1:
                seen.keepalive = True
            else:
                seen.retransmission = True
        if top is None or _signed(end - top) > 0:
            high[side] = end % 2**32
        if seen.ack is not None and any(_signed(seen.ack - e) >= 0 for e in awaiting[side]):
            awaiting[side] = [e for e in awaiting[side] if _signed(seen.ack - e) < 0]
            seen.visible = True
        if seg.syn or seg.fin:
            awaiting[peer].append(end % 2**32)
        seen.visible = (seen.visible or seen.retransmission or seen.keepalive
                        or bool(seg.flags & ~_PLAIN_FLAGS))
        out.append(seen)
    return out


def _arrow(s: _Seen) -> Arrow:
    return Arrow(s.seg.time, s.sender, s.seg.flag_text, s.seq, s.ack, s.seg.payload_len, (s.seg.frame,),
                 retransmission=s.retransmission, reset=s.seg.rst, keepalive=s.keepalive)


def _fold(run: list[_Seen]) -> list[Arrow]:
    """A run of plain segments: as it is when short, else one arrow per direction, in order of first."""
    if len(run) <= FOLD_AFTER:
        return [_arrow(s) for s in run]
    arrows = []
    for sender in dict.fromkeys(s.sender for s in run):
        mine = [s for s in run if s.sender == sender]
        if len(mine) == 1:
            arrows.append(_arrow(mine[0]))
            continue
        acks = [s.ack for s in mine if s.ack is not None]
        last = mine[-1]
        arrows.append(Arrow(mine[0].seg.time, sender, "", mine[0].seq, acks[0] if acks else None,
                            sum(s.seg.payload_len for s in mine), tuple(s.seg.frame for s in mine),
                            segments=len(mine), seq_end=(last.seq + last.seg.payload_len) % 2**32,
                            ack_last=acks[-1] if acks else None))
    return arrows


def _before(mark: StateMark, seen: _Seen) -> bool:
    """Whether a state change goes above a segment. On a tie, a side's state follows a segment it
    receives (the kernel acts on it) and precedes one it sends (a state stamped at a segment's time,
    like TIME_WAIT from ss, is the reaction to that segment)."""
    if mark.time != seen.seg.time:
        return mark.time < seen.seg.time
    return mark.side == seen.sender


def build_ladder(conn: Connection, states: dict[str, list[dict]] | None = None, *,
                 client_host: str | None = None, server_host: str | None = None,
                 captured_at: str = "", also_captured: list[str] | None = None) -> Ladder:
    """The rows of a connection's ladder, with the kernel states of each side interleaved by time.

    ``states`` are ``Evidence.states(side)`` lists (time on the capture's clock). A state change
    breaks a run of plain segments, so folding never moves a state past the segments around it.
    """
    marks = sorted((StateMark(float(s["time"]), side, s["state"], s.get("via"))
                    for side, items in (states or {}).items() for s in items), key=lambda m: m.time)
    rows: list[Row] = []
    run: list[_Seen] = []
    pending = list(marks)

    def flush() -> None:
        rows.extend(_fold(run))
        run.clear()

    for seen in _examine(conn):
        while pending and _before(pending[0], seen):
            flush()
            rows.append(pending.pop(0))
        if seen.visible:
            flush()
            rows.append(_arrow(seen))
        else:
            run.append(seen)
    flush()
    rows.extend(pending)
    times = [r.time for r in rows]
    ladder = Ladder(Column("client", client_host, conn.client), Column("server", server_host, conn.server),
                    captured_at, rows, start=min(times) if times else 0.0)
    ladder.summary = _summary(conn, also_captured or [])
    return ladder


def _summary(conn: Connection, also_captured: list[str]) -> list[str]:
    """Classification and hop facts: what the picture shows, said in words, plus the TTLs seen here."""
    lines = [f"handshake: {conn.handshake}; close: {conn.close_kind}"
             + (f" (initiator: {conn.close_initiator})" if conn.close_initiator else "")
             + f"; retransmissions: client {conn.retransmissions['client']}, server {conn.retransmissions['server']}"]
    ttls = {side: sorted({s.ttl for s in conn.segments if conn.side(s) == side}) for side in ("client", "server")}
    if ttls["client"] or ttls["server"]:
        lines.append("TTL seen here: " + ", ".join(
            f"{side}'s segments {'/'.join(map(str, values))}" for side, values in ttls.items() if values))
    if also_captured:
        lines.append("also captured at (for hop facts): " + ", ".join(also_captured))
    return lines


# --------------------------------------------------------------------------------------------------
# Text


def _fit(arrow: Arrow, width: int) -> str:
    """The arrow's label cut to ``width``, keeping its marks: a hidden [RST] would hide the point."""
    label = arrow.label
    if len(label) <= width:
        return label
    marks = " ".join(arrow.marks).replace("[retransmission]", "[retx]")
    room = width - len(marks) - 1 if marks else width
    base = label[: len(label) - len(" ".join(arrow.marks))].rstrip() if marks else label
    base = base if len(base) <= room else base[: room - 1] + "…"
    return f"{base} {marks}" if marks else base


def _arrow_text(arrow: Arrow) -> str:
    """The arrow between the lifelines: "|--- label --->|", dashed for a retransmission, "=" for RST."""
    label = _fit(arrow, _INNER - 4)
    if arrow.folded:
        label = f"~ {label} ~" if len(label) + 4 <= _INNER - 4 else label
    fill = "=" if arrow.reset else "-"
    body = f" {label} ".center(_INNER - 1, fill)
    if arrow.retransmission:
        body = "".join(" " if c == "-" and i % 2 else c for i, c in enumerate(body))
    return f"|{body}>|" if arrow.sender == "client" else f"|<{body}|"


def _header(ladder: Ladder) -> list[str]:
    """Two lines naming the columns (role and host, then ip:port), each centred on its lifeline.

    Each name stays on its own half of the line (and off the "time" heading), cut if it must be.
    """
    left = _TIME_W + 2 + _STATE_W + 1
    right = left + _INNER + 1
    middle = (left + right) // 2
    lines = []
    for texts in ((ladder.client.title, ladder.server.title),
                  (str(ladder.client.endpoint), str(ladder.server.endpoint))):
        line = [" "] * TEXT_WIDTH
        for at, lo, hi, text in ((left, _TIME_W + 2, middle, texts[0]), (right, middle + 1, TEXT_WIDTH, texts[1])):
            text = text if len(text) <= hi - lo else text[: hi - lo - 1] + "…"
            start = min(max(at - len(text) // 2, lo), hi - len(text))
            line[start:start + len(text)] = text
        lines.append("".join(line).rstrip())
    lines[0] = f"{'time':>{_TIME_W}}" + lines[0][_TIME_W:]
    return lines


def render_text(ladder: Ladder) -> str:
    """The ladder for a terminal, at most TEXT_WIDTH columns: client states left, server states right."""
    lines = [f"captured at: {ladder.captured_at}"] if ladder.captured_at else []
    lines += _header(ladder)
    blank = "|" + " " * _INNER + "|"
    for line in ladder.lines():
        first = line[0]
        if isinstance(first, Arrow):
            left, middle, right = "", _arrow_text(first), ""
        else:
            cells = {m.side: m.label for m in line if isinstance(m, StateMark)}
            left, middle, right = cells.get("client", ""), blank, cells.get("server", "")
        text = f"{ladder.clock(first):>{_TIME_W}}  {left:>{_STATE_W}} {middle} {right}"
        lines.append(text.rstrip())
    for text in ladder.summary + ladder.notes:
        lines += textwrap.wrap(text, TEXT_WIDTH, subsequent_indent="  ")
    return "\n".join(lines)
