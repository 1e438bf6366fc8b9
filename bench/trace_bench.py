"""Trace analyser benchmark: `netbed trace` against `tshark -T fields` on the same big capture.

Why this exists: the performance goal is that analysing ~1,000,000 packets / 120,000 short TCP
connections takes at most a fifth of what tshark needs just to print five fields per packet. The
capture is generated here with NumPy (a few seconds, no network needed), so the run is reproducible on
any machine:

    .venv/bin/python bench/trace_bench.py [--connections 120000] [--keep FILE]

Timed in the same run, on the same file (page cache warm for both):
- ``read_trace``: reading + decoding + classifying (in process);
- ``format_table`` and ``to_json_text``: the two outputs of ``netbed trace``;
- ``python -m netbed.trace FILE``: the whole command as a user runs it (interpreter start, imports, table);
- ``tshark -T fields -e frame.number -e ip.src -e ip.dst -e tcp.srcport -e tcp.flags -r FILE > /dev/null``.
Then both tools' SYN/FIN/RST counts are compared (tshark run once more, printing only tcp.flags).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

# The short connection every client runs: handshake, one request, one answer, four-way close.
# (direction: 0 = client->server, 1 = server->client; TCP flags; payload bytes)
FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16
REQUEST, ANSWER = 100, 200
SCRIPT = [
    (0, SYN, 0),
    (1, SYN | ACK, 0),
    (0, ACK, 0),
    (0, PSH | ACK, REQUEST),
    (1, PSH | ACK, ANSWER),
    (0, FIN | ACK, 0),
    (1, ACK, 0),
    (1, FIN | ACK, 0),
    (0, ACK, 0),
]

_FRAME = np.dtype(
    [
        ("ts_sec", "<u4"), ("ts_usec", "<u4"), ("incl_len", "<u4"), ("orig_len", "<u4"),
        ("eth_dst", "V6"), ("eth_src", "V6"), ("ethertype", ">u2"),
        ("ver_ihl", "u1"), ("tos", "u1"), ("total_len", ">u2"), ("ip_id", ">u2"), ("frag", ">u2"),
        ("ttl", "u1"), ("proto", "u1"), ("ip_csum", ">u2"), ("src", ">u4"), ("dst", ">u4"),
        ("sport", ">u2"), ("dport", ">u2"), ("seq", ">u4"), ("ack", ">u4"),
        ("off", "u1"), ("flags", "u1"), ("window", ">u2"), ("tcp_csum", ">u2"), ("urg", ">u2"),
    ]
)
assert _FRAME.itemsize == 16 + 54


def write_bench_pcap(path: Path, connections: int = 120_000, seed: int = 7) -> int:
    """Write a classic pcap of `connections` interleaved short TCP connections; return packet count.

    Built column-wise with NumPy so 1M packets take seconds, not minutes: one fixed-layout header
    record per packet, then the records are scattered into the file buffer with their payloads.
    """
    rng = np.random.default_rng(seed)
    n_steps = len(SCRIPT)
    # Unique (client address, port) pairs so no 4-tuple is reused.
    pick = rng.choice(250 * 28000, size=connections, replace=False)
    client_ip = (10 << 24) | (1 << 16) | (pick // 28000 + 1).astype(np.uint32)
    client_port = (32768 + pick % 28000).astype(np.uint16)
    server_ip = np.full(connections, (10 << 24) | (9 << 16) | 1, np.uint32)
    isn_c = rng.integers(0, 2**32, connections, dtype=np.int64)
    isn_s = rng.integers(0, 2**32, connections, dtype=np.int64)

    # Connections start 50 us apart and each step takes 100-300 us: many are open at once.
    start = np.arange(connections) * 50e-6
    gaps = rng.uniform(100e-6, 300e-6, (connections, n_steps))
    when = start[:, None] + np.cumsum(gaps, axis=1)

    direction = np.array([d for d, _, _ in SCRIPT])
    flags = np.array([f for _, f, _ in SCRIPT], np.uint8)
    plen = np.array([p for _, _, p in SCRIPT])
    # Sequence offsets relative to each side's ISN, computed from the script itself.
    seq_rel = np.zeros(n_steps, np.int64)
    ack_rel = np.zeros(n_steps, np.int64)
    sent = [0, 0]  # sequence space used so far per side
    for i, (d, f, p) in enumerate(SCRIPT):
        seq_rel[i] = sent[d]
        sent[d] += p + (1 if f & (SYN | FIN) else 0)
        ack_rel[i] = sent[1 - d] if f & ACK else 0

    order = np.argsort(when, axis=None, kind="stable")
    conn = order // n_steps
    step = order % n_steps
    n = len(order)
    d = direction[step]
    rec = np.zeros(n, _FRAME)
    t = when.ravel()[order] + 1_700_000_000.0
    rec["ts_sec"] = t.astype(np.uint32)
    rec["ts_usec"] = ((t - np.floor(t)) * 1e6).astype(np.uint32)
    rec["incl_len"] = rec["orig_len"] = 54 + plen[step]
    mac_c = np.frombuffer(b"\x02\x00\x00\x00\x00\x01", "V6")[0]
    mac_s = np.frombuffer(b"\x02\x00\x00\x00\x00\x02", "V6")[0]
    rec["eth_src"] = np.where(d == 0, mac_c, mac_s)
    rec["eth_dst"] = np.where(d == 0, mac_s, mac_c)
    rec["ethertype"] = 0x0800
    rec["ver_ihl"] = 0x45
    rec["total_len"] = 40 + plen[step]
    rec["ip_id"] = np.arange(n) & 0xFFFF
    rec["frag"] = 0x4000
    rec["ttl"] = np.where(d == 0, 64, 63)
    rec["proto"] = 6
    rec["src"] = np.where(d == 0, client_ip[conn], server_ip[conn])
    rec["dst"] = np.where(d == 0, server_ip[conn], client_ip[conn])
    rec["sport"] = np.where(d == 0, client_port[conn], 80)
    rec["dport"] = np.where(d == 0, 80, client_port[conn])
    own = np.where(d == 0, isn_c[conn], isn_s[conn])
    peer = np.where(d == 0, isn_s[conn], isn_c[conn])
    rec["seq"] = (own + seq_rel[step]) & 0xFFFFFFFF
    rec["ack"] = np.where(flags[step] & ACK, (peer + ack_rel[step]) & 0xFFFFFFFF, 0)
    rec["off"] = 5 << 4
    rec["flags"] = flags[step]
    rec["window"] = 64240
    # IPv4 header checksum, vectorised over the ten 16-bit words of the header.
    words = rec.view(np.uint8).reshape(n, -1)[:, 30:50].copy()
    words[:, 10:12] = 0
    s = words.view(">u2").astype(np.uint32).sum(axis=1)
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    rec["ip_csum"] = ~s.astype(np.uint16)

    sizes = 16 + 54 + plen[step]
    offsets = 24 + np.concatenate(([0], np.cumsum(sizes)[:-1]))
    out = np.zeros(24 + int(sizes.sum()), np.uint8)
    out[:24] = np.frombuffer(
        np.array([0xA1B2C3D4], "<u4").tobytes() + bytes([2, 0, 4, 0]) + bytes(8)
        + np.array([65535, 1], "<u4").tobytes(), np.uint8)
    raw = rec.view(np.uint8).reshape(n, -1)
    out[offsets[:, None] + np.arange(70)] = raw
    payload_rows = np.flatnonzero(plen[step] > 0)
    for size in np.unique(plen[step][payload_rows]):
        rows = payload_rows[plen[step][payload_rows] == size]
        out[(offsets[rows] + 70)[:, None] + np.arange(size)] = ord("x")
    path.write_bytes(out.tobytes())
    return n


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, Python {platform.python_version()}, " \
           f"NumPy {np.__version__}"


def timed(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def median_of(repeat: int, run: Callable[[], float]) -> float:
    return statistics.median(run() for _ in range(repeat))


def tshark_flag_counts(path: Path) -> tuple[int, int, int, int]:
    """(TCP segments, SYNs, FINs, RSTs) as tshark sees them."""
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "tcp.flags"], capture_output=True,
                         check=True).stdout.split()
    flags = np.array([int(x, 16) for x in out], np.int64)
    return len(flags), int((flags & SYN != 0).sum()), int((flags & FIN != 0).sum()), int((flags & RST != 0).sum())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=120_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is shown")
    parser.add_argument("--keep", type=Path, help="write the capture here and keep it")
    args = parser.parse_args(argv)
    if shutil.which("tshark") is None:
        print("trace_bench: tshark is not installed (Debian package tshark)", file=sys.stderr)
        return 2
    repo = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repo))
    from netbed.trace import format_table, read_trace

    def in_process(step: str) -> float:
        t = time.perf_counter()
        trace = read_trace(path)
        if step == "table":
            format_table(trace)
        elif step == "json":
            trace.to_json_text()
        return time.perf_counter() - t

    with tempfile.TemporaryDirectory(prefix="netbed-bench-") as tmp:
        path = args.keep or Path(tmp) / "bench.pcap"
        t = time.perf_counter()
        packets = write_bench_pcap(path, args.connections)
        print(f"generated {path}: {packets:,} packets, {args.connections:,} connections, "
              f"{path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t:.1f} s")
        path.read_bytes()  # warm the page cache for whoever runs first
        command = [sys.executable, "-m", "netbed.trace", str(path)]
        tshark = ["tshark", "-T", "fields", "-e", "frame.number", "-e", "ip.src", "-e", "ip.dst", "-e", "tcp.srcport",
                  "-e", "tcp.flags", "-r", str(path)]
        rows = [
            ("netbed read_trace (read + classify)", median_of(args.repeat, lambda: in_process("read"))),
            ("netbed read_trace + format_table", median_of(args.repeat, lambda: in_process("table"))),
            ("netbed read_trace + to_json_text", median_of(args.repeat, lambda: in_process("json"))),
            ("python -m netbed.trace FILE", median_of(args.repeat, lambda: timed(command))),
            ("python -m netbed.trace FILE --json", median_of(args.repeat, lambda: timed(command + ["--json"]))),
            ("tshark -T fields (5 fields) > /dev/null", median_of(args.repeat, lambda: timed(tshark))),
        ]
        trace = read_trace(path)
        f = trace.frames
        flags = f.tcp_flags[f.has_tcp]
        mine = (len(flags), int((flags & SYN != 0).sum()), int((flags & FIN != 0).sum()),
                int((flags & RST != 0).sum()))
        theirs = tshark_flag_counts(path)

    t_tshark = rows[-1][1]
    print(f"machine: {machine()}")
    print(f"capture: {len(f):,} packets, {len(trace.connections):,} connections; median of {args.repeat} runs")
    print(f"| {'step':45} | {'seconds':>7} | {'tshark / step':>13} |")
    print(f"| {'-' * 45} | {'-' * 7}:| {'-' * 13}:|")
    for name, seconds in rows:
        print(f"| {name:45} | {seconds:7.2f} | {t_tshark / seconds:12.1f}x |")
    print(f"TCP segments / SYN / FIN / RST: netbed {mine}, tshark {theirs}")
    kinds = sorted({(c.handshake, c.close_kind, c.close_initiator) for c in trace.connections})
    print(f"classified as {kinds}")
    if mine != theirs or len(trace.connections) != args.connections:
        print("MISMATCH between netbed and tshark", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
