"""The kernel's congestion state per connection, from `tcp:tcp_probe` and `tcp:tcp_retransmit_skb`.

The tracer (capture/states.bt) logs a `P` line each time an established socket receives a segment
and an `R` line each time it retransmits one. After a run they are written to the run folder as two
CSV files with a header (columnar, readable by numpy, pandas, R, a spreadsheet; see docs/research.md):

- `tcp_probe.csv`: time (s, on the captures' clock), host, netns, sock, local_ip, local_port,
  remote_ip, remote_port, data_len, snd_nxt, snd_una, cwnd (segments), ssthresh (segments),
  snd_wnd (bytes), srtt_us, rcv_wnd (bytes)
- `tcp_retransmit.csv`: time, host, netns, sock, local_ip, local_port, remote_ip, remote_port, state

Checks read these files (offline, like the pcaps). `ack_agreement` joins them to a capture: the
kernel's snd_una must step through exactly the ACK numbers the sender's capture saw arrive.
"""
from __future__ import annotations

import csv
import json
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from netbed.capture.states import LOG as STATES_LOG
from netbed.trace.model import Connection, Endpoint

PROBE_FILE = "tcp_probe.csv"
RETRANSMIT_FILE = "tcp_retransmit.csv"
SEQ_SPACE = 1 << 32
# tcp_probe is stamped by the kernel's clock, the capture by tcpdump's: both near the same instant,
# but not the same instant; a captured ACK "arrived before" a probe line within this slack
CLOCK_SLACK = 0.005  # seconds


@dataclass(frozen=True)
class Probe:
    time: float
    host: str
    netns: int
    sock: str
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    data_len: int
    snd_nxt: int
    snd_una: int
    cwnd: int
    ssthresh: int
    snd_wnd: int
    srtt_us: int
    rcv_wnd: int


@dataclass(frozen=True)
class Retransmit:
    time: float
    host: str
    netns: int
    sock: str
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    state: int


def parse_log(text: str, clock_offset: float, hosts: dict[str, str]) -> tuple[list[Probe], list[Retransmit]]:
    """The P and R lines of a tracer log, in time order, named by host (`hosts`: netns inode → host).

    Lines of other namespaces and malformed lines (a cut last line) are skipped.
    """
    probes: list[Probe] = []
    retransmits: list[Retransmit] = []
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0] not in ("P", "R"):
            continue
        host = hosts.get(parts[2]) if len(parts) > 2 else None
        if host is None:
            continue
        try:
            head = (int(parts[1]) / 1e9 + clock_offset, host, int(parts[2]), parts[3], parts[5], int(parts[6]),
                    parts[7], int(parts[8]))
            if parts[0] == "P" and len(parts) == 17:
                probes.append(Probe(*head, *(int(v) for v in parts[9:17])))
            elif parts[0] == "R" and len(parts) == 10:
                retransmits.append(Retransmit(*head, int(parts[9])))
        except ValueError:
            continue
    probes.sort(key=lambda p: p.time)
    retransmits.sort(key=lambda r: r.time)
    return probes, retransmits


def write_kernel_tcp(out: Path, hosts: dict[str, str], clock_offset: float) -> None:
    """Write tcp_probe.csv and tcp_retransmit.csv from the run folder's tracer log (when there is one)."""
    log = Path(out) / STATES_LOG
    if not log.exists():
        return
    probes, retransmits = parse_log(log.read_text(errors="replace"), clock_offset, hosts)
    for name, cls, rows in ((PROBE_FILE, Probe, probes), (RETRANSMIT_FILE, Retransmit, retransmits)):
        with open(Path(out) / name, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([fl.name for fl in fields(cls)])
            writer.writerows(_row(astuple(r)) for r in rows)


def _row(values: tuple) -> list:
    return [f"{v:.6f}" if isinstance(v, float) else v for v in values]


def read_probes(directory: Path) -> list[Probe]:
    return _read(Path(directory) / PROBE_FILE, Probe)


def read_retransmits(directory: Path) -> list[Retransmit]:
    return _read(Path(directory) / RETRANSMIT_FILE, Retransmit)


def _read(path: Path, cls: type) -> list:
    if not path.exists():
        return []
    kinds = [fl.type for fl in fields(cls)]
    casts = [float if k == "float" else int if k == "int" else str for k in kinds]
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0] != [fl.name for fl in fields(cls)]:
        raise ValueError(f"{path.name}: not the documented header")
    return [cls(*(cast(v) for cast, v in zip(casts, row))) for row in rows[1:] if len(row) == len(casts)]


def of_socket(records: list, host: str, local: Endpoint, remote: Endpoint) -> list:
    """The records of the socket with this 4-tuple on `host` (the last socket, if the tuple was reused)."""
    mine = [r for r in records if r.host == host and (r.local_ip, r.local_port) == tuple(local)
            and (r.remote_ip, r.remote_port) == tuple(remote)]
    if not mine:
        return []
    last = mine[-1].sock
    return [r for r in mine if r.sock == last]


@dataclass(frozen=True)
class AckAgreement:
    """How the kernel's snd_una and the captured ACKs agree, for one sending socket.

    `kernel_only`: snd_una values the capture never saw as an ACK (should be none);
    `late`: the kernel held an snd_una before the capture saw that ACK arrive (beyond CLOCK_SLACK);
    `covered`: share of the captured ACK numbers (before the last probe) that snd_una passed through.
    """

    samples: int
    distinct_una: int
    kernel_only: list[int]
    late: int
    covered: float

    def to_json(self) -> dict:
        return {"samples": self.samples, "distinct_una": self.distinct_una, "kernel_only": self.kernel_only[:10],
                "late": self.late, "covered": round(self.covered, 4)}

    def __str__(self) -> str:
        return json.dumps(self.to_json())


def ack_agreement(probes: list[Probe], conn: Connection, side: str) -> AckAgreement:
    """Join the sender socket's probe lines (`side` of `conn`) to the ACKs its own capture saw arrive.

    tcp_probe fires before the segment is processed, so each snd_una is an ACK number that arrived
    earlier: it must be an ACK the capture holds, first seen no later than the probe (clock slack aside).
    """
    arrivals: dict[int, float] = {}
    for seg in conn.segments:
        if conn.side(seg) != side and seg.has_ack and seg.ack not in arrivals:
            arrivals[seg.ack] = seg.time
    seen: dict[int, float] = {}
    for p in probes:
        seen.setdefault(p.snd_una, p.time)
    isn = conn.isn.get(side)
    kernel_only = [u for u in seen if u not in arrivals and (isn is None or u != (isn + 1) % SEQ_SPACE)]
    late = sum(1 for u, t in seen.items() if u in arrivals and arrivals[u] > t + CLOCK_SLACK)
    last = probes[-1].time if probes else 0.0
    before = [a for a, t in arrivals.items() if t < last - CLOCK_SLACK]
    covered = sum(1 for a in before if a in seen) / len(before) if before else 0.0
    return AckAgreement(len(probes), len(seen), kernel_only, late, covered)
