"""Trace analyser benchmark: `netbed trace` against `tshark -T fields` on the same big capture, and
how time and memory grow with the capture (1x, 2x, 20x).

Why this exists: the goals are that `netbed trace` analyses the ~1.1M-packet capture of 120,000 short
TCP connections at least 15x faster than tshark needs just to print five fields per packet, at
1.5M packets/s or more end to end, and in memory that does not grow with the capture (at most 1 GB
for 20x, about 22M packets). The capture is generated here with NumPy (no network needed), so the run
is reproducible on any machine:

    .venv/bin/python bench/trace_bench.py [--connections 120000] [--scales 1,2,20] [--keep DIR]

Timed in the same run, on the same files (page cache warm):
- ``netbed trace FILE`` and ``netbed trace FILE --json`` as a user runs them (interpreter start,
  imports, output to /dev/null): wall time, CPU time (user + system) and peak resident memory from
  ``/usr/bin/time -f "%e %U %S %M"``. Packets/s is printed both per wall second and per CPU second:
  on a machine shared with other work the wall time mostly measures the others, the CPU time does not
  (reading runs in a second thread, so on a quiet 2-CPU machine wall time can be below CPU time);
- ``read_trace`` (the whole-file API experiments use) in process, on the 1x capture;
- ``tshark -T fields -e frame.number -e ip.src -e ip.dst -e tcp.srcport -e tcp.flags -r FILE > /dev/null``
  on the 1x capture, timed the same way; the ratios are given by wall time and by CPU time.
Then both tools' SYN/FIN/RST counts are compared (tshark run once more, printing only tcp.flags).
The 2x and 20x captures repeat the 1x traffic with other addresses and ISNs, one block after another.
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from netbed.trace.constants import ACK, FIN, PSH, RST, SYN

# The short connection every client runs: handshake, one request, one answer, four-way close.
# (direction: 0 = client->server, 1 = server->client; TCP flags; payload bytes)
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


PCAP_HEADER = np.array([0xA1B2C3D4], "<u4").tobytes() + bytes([2, 0, 4, 0]) + bytes(8) \
    + np.array([65535, 1], "<u4").tobytes()
BLOCK_GAP = 10.0  # seconds between the blocks of a 2x/20x capture


def write_bench_pcap(path: Path, connections: int = 120_000, seed: int = 7, blocks: int = 1) -> int:
    """Write a classic pcap of ``blocks`` x ``connections`` interleaved short TCP connections; return
    the packet count. Each block is made in memory and appended, so 20x needs no more memory than 1x."""
    packets = 0
    with open(path, "wb") as f:
        f.write(PCAP_HEADER)
        t = 1_700_000_000.0
        for block in range(blocks):
            data, n, duration = _block(connections, seed + block, block, t)
            f.write(data.tobytes())
            packets += n
            t += duration + BLOCK_GAP
    return packets


def _block(connections: int, seed: int, block: int, t0: float) -> tuple[np.ndarray, int, float]:
    """The records of one block of connections (client addresses 10.<block+1>.x.y), starting at t0.

    Built column-wise with NumPy so 1M packets take seconds, not minutes: one fixed-layout header
    record per packet, then the records are scattered into the buffer with their payloads.
    """
    rng = np.random.default_rng(seed)
    n_steps = len(SCRIPT)
    # Unique (client address, port) pairs so no 4-tuple is reused.
    pick = rng.choice(250 * 28000, size=connections, replace=False)
    client_ip = (10 << 24) | ((block % 250 + 1) << 16) | (pick // 28000 + 1).astype(np.uint32)
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
    t = when.ravel()[order] + t0
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
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    out = np.zeros(int(sizes.sum()), np.uint8)
    raw = rec.view(np.uint8).reshape(n, -1)
    out[offsets[:, None] + np.arange(70)] = raw
    payload_rows = np.flatnonzero(plen[step] > 0)
    for size in np.unique(plen[step][payload_rows]):
        rows = payload_rows[plen[step][payload_rows] == size]
        out[(offsets[rows] + 70)[:, None] + np.arange(size)] = ord("x")
    return out, n, float(when.max())


LONG_FLOW_SEGMENT = 1448  # bytes of data per segment of the long flow
LONG_FLOW_STEP = 10e-6  # seconds between its packets


def write_long_flow_pcap(path: Path, packets: int) -> int:
    """Write one bulk-transfer connection of about ``packets`` packets, cut to its headers (like
    ``tcpdump -s 54``): handshake, data from the client with an ACK from the server after every
    second segment, four-way close. Written in blocks, so any length needs little memory."""
    data_rows = max(2, (packets - 7) * 2 // 3)
    isn_c, isn_s = 123_456_789, 987_654_321
    script = [(0, SYN, 0, 0), (1, SYN | ACK, 0, 1), (0, ACK, 1, 1)]  # (direction, flags, seq_rel, ack_rel)
    written = 0
    with open(path, "wb") as f:
        f.write(PCAP_HEADER)
        f.write(_long_rows(_script_rows(script), isn_c, isn_s, 0).tobytes())
        written += len(script)
        block = 300_000
        for lo in range(0, data_rows, block):
            k = np.arange(lo, min(lo + block, data_rows))
            n_acks = np.count_nonzero(k % 2 == 1)
            rows = np.zeros(len(k) + n_acks, _LONG_ROW)
            j = k - lo  # block is even: j and k have the same parity
            at = j + j // 2  # a data row, and after every second one an ACK row
            rows["d"][at] = 0
            rows["flags"][at] = PSH | ACK
            rows["seq"][at] = 1 + k * LONG_FLOW_SEGMENT
            rows["ack"][at] = 1
            rows["plen"][at] = LONG_FLOW_SEGMENT
            acks = at[k % 2 == 1] + 1
            rows["d"][acks] = 1
            rows["flags"][acks] = ACK
            rows["seq"][acks] = 1
            rows["ack"][acks] = 1 + (k[k % 2 == 1] + 1) * LONG_FLOW_SEGMENT
            first = written
            f.write(_long_rows(rows, isn_c, isn_s, first).tobytes())
            written += len(rows)
        end = 1 + data_rows * LONG_FLOW_SEGMENT
        close = [(0, FIN | ACK, end, 1), (1, ACK, 1, end + 1), (1, FIN | ACK, 1, end + 1), (0, ACK, end + 1, 2)]
        f.write(_long_rows(_script_rows(close), isn_c, isn_s, written).tobytes())
        written += len(close)
    return written


_LONG_ROW = np.dtype([("d", "u1"), ("flags", "u1"), ("seq", "i8"), ("ack", "i8"), ("plen", "u4")])


def _script_rows(script: list[tuple[int, int, int, int]]) -> np.ndarray:
    rows = np.zeros(len(script), _LONG_ROW)
    for i, (d, flags, seq, ack) in enumerate(script):
        rows[i] = (d, flags, seq, ack, 0)
    return rows


def _long_rows(rows: np.ndarray, isn_c: int, isn_s: int, first: int) -> np.ndarray:
    """Header-only records for rows (direction, flags, seq and ack relative to the ISNs, payload) of the long flow."""
    n = len(rows)
    d = rows["d"].astype(np.int64)
    flags, seq_rel, ack_rel, plen = rows["flags"], rows["seq"], rows["ack"], rows["plen"].astype(np.int64)
    rec = np.zeros(n, _FRAME)
    t = 1_700_000_000.0 + (first + np.arange(n)) * LONG_FLOW_STEP
    rec["ts_sec"] = t.astype(np.uint32)
    rec["ts_usec"] = ((t - np.floor(t)) * 1e6).astype(np.uint32)
    rec["incl_len"] = 54
    rec["orig_len"] = 54 + plen
    rec["ethertype"] = 0x0800
    rec["ver_ihl"] = 0x45
    rec["total_len"] = 40 + plen
    rec["ttl"] = 64
    rec["proto"] = 6
    client, server = (10 << 24) | (1 << 16) | 1, (10 << 24) | (9 << 16) | 1
    rec["src"] = np.where(d == 0, client, server)
    rec["dst"] = np.where(d == 0, server, client)
    rec["sport"] = np.where(d == 0, 40000, 80)
    rec["dport"] = np.where(d == 0, 80, 40000)
    rec["seq"] = (np.where(d == 0, isn_c, isn_s) + seq_rel) & 0xFFFFFFFF
    rec["ack"] = np.where(flags & ACK, (np.where(d == 0, isn_s, isn_c) + ack_rel) & 0xFFFFFFFF, 0)
    rec["off"] = 5 << 4
    rec["flags"] = flags
    rec["window"] = 64240
    return rec


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, Python {platform.python_version()}, " \
           f"NumPy {np.__version__}"


@dataclass
class Timing:
    wall: float  # seconds
    cpu: float  # user + system seconds of the command and its child processes
    peak_mb: float  # GNU time's %M: the peak resident memory of the largest single process
    tree_mb: float  # the peak of the summed proportional memory (Pss) of all its processes, sampled


SAMPLE_SECONDS = 0.02


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            todo.extend(int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split())
        except OSError:
            pass
    return found


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def time_and_memory(argv: list[str], env: dict[str, str] | None = None) -> Timing:
    """Wall seconds, CPU seconds (children included) and peak resident MB of a command, from GNU time's
    %e %U %S %M; meanwhile the proportional memory of all its processes is summed every 20 ms."""
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%e %U %S %M", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    tree_kib = 0
    while proc.poll() is None:
        tree_kib = max(tree_kib, sum(_pss_kib(p) for p in _tree(proc.pid)[1:]))
        time.sleep(SAMPLE_SECONDS)
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} failed: {err}")
    wall, user, system, kib = err.strip().splitlines()[-1].split()
    return Timing(float(wall), float(user) + float(system), int(kib) / 1024, tree_kib / 1024)


def median_timing(runs: list[Timing]) -> Timing:
    """Median wall and median CPU time of the runs (each on its own), the largest peak memories."""
    return Timing(statistics.median(r.wall for r in runs), statistics.median(r.cpu for r in runs),
                  max(r.peak_mb for r in runs), max(r.tree_mb for r in runs))


def tshark_flag_counts(path: Path) -> tuple[int, int, int, int]:
    """(TCP segments, SYNs, FINs, RSTs) as tshark sees them."""
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "tcp.flags"], capture_output=True,
                         check=True).stdout.split()
    flags = np.array([int(x, 16) for x in out], np.int64)
    return len(flags), int((flags & SYN != 0).sum()), int((flags & FIN != 0).sum()), int((flags & RST != 0).sum())


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def interleaved(netbed: list[str], tshark: list[str], path: Path, rounds: int) -> dict[str, list[Timing]]:
    """netbed (table, JSON, one process) and tshark alternated ``rounds`` times on the same file, so
    that load on a shared machine falls on both alike: each round gives its own ratio."""
    runs: dict[str, list[Timing]] = {"table": [], "json": [], "one process": [], "tshark": []}
    one = {**os.environ, "NETBED_TRACE_PROCESSES": "1"}
    for r in range(rounds):
        runs["table"].append(time_and_memory([*netbed, str(path)]))
        runs["tshark"].append(time_and_memory(tshark))
        runs["json"].append(time_and_memory([*netbed, str(path), "--json"]))
        runs["one process"].append(time_and_memory([*netbed, str(path)], env=one))
        t, k = runs["table"][-1], runs["tshark"][-1]
        print(f"  round {r + 1}: netbed {t.wall:.2f} s wall {t.cpu:.2f} s CPU, tshark {k.wall:.2f} s wall "
              f"{k.cpu:.2f} s CPU: {k.wall / t.wall:.1f}x wall, {k.cpu / t.cpu:.1f}x CPU (load {load_average()})",
              flush=True)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=120_000)
    parser.add_argument("--repeat", type=int, default=5,
                        help="rounds at 1x, netbed and tshark alternated; medians are shown")
    parser.add_argument("--scales", default="1,2,20", help="capture sizes to measure, in multiples of the 1x capture")
    parser.add_argument("--long-flow", type=int, default=5_000_000, metavar="PACKETS",
                        help="also one connection of this many packets (0: not)")
    parser.add_argument("--keep", type=Path, help="write the captures into this folder and keep them")
    args = parser.parse_args(argv)
    for tool in ("tshark", "/usr/bin/time"):
        if shutil.which(tool) is None:
            print(f"trace_bench: {tool} is not installed (Debian packages tshark, time)", file=sys.stderr)
            return 2
    repo = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repo))
    from netbed.trace import read_trace

    try:
        from netbed.trace.command import processes
    except ImportError:  # an older netbed (PYTHONPATH=...), to measure before and after alike

        def processes() -> int:
            return 1

    netbed = [str(Path(sys.executable).parent / "netbed"), "trace"]
    scales = sorted({1, *(int(x) for x in args.scales.split(","))})
    print(f"machine: {machine()}; load average {load_average()} at the start")
    print(f"netbed trace runs as {processes()} process(es) here (reader + classifier); CPU time is both "
          "processes' (GNU time counts the child), as it counts all of tshark's threads")
    with tempfile.TemporaryDirectory(prefix="netbed-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        rows: list[tuple[str, str, int, Timing]] = []
        for scale in scales:
            path = folder / f"bench-{scale}x.pcap"
            t = time.perf_counter()
            packets = write_bench_pcap(path, args.connections, blocks=scale)
            print(f"generated {path}: {packets:,} packets, {args.connections * scale:,} connections, "
                  f"{path.stat().st_size / 1e6:,.0f} MB in {time.perf_counter() - t:.1f} s", flush=True)
            if scale == 1:
                path.read_bytes()  # warm the page cache for whoever runs first
                one, one_packets = path, packets
                tshark = ["tshark", "-T", "fields", "-e", "frame.number", "-e", "ip.src", "-e", "ip.dst", "-e",
                          "tcp.srcport", "-e", "tcp.flags", "-r", str(path)]
                runs = interleaved(netbed, tshark, path, args.repeat)
                for label, key in (("netbed trace FILE", "table"), ("netbed trace FILE --json", "json"),
                                   ("netbed trace, 1 process", "one process"),
                                   ("tshark -T fields (5 fields)", "tshark")):
                    rows.append(("1x", label, packets, median_timing(runs[key])))
                continue
            for label, extra in (("netbed trace FILE", []), ("netbed trace FILE --json", ["--json"])):
                timing = time_and_memory([*netbed, str(path), *extra])
                rows.append((f"{scale}x", label, packets, timing))
                print(f"  {scale}x {label}: {timing.wall:.2f} s wall, {timing.cpu:.2f} s CPU, peak "
                      f"{timing.peak_mb:,.0f} MB (all processes {timing.tree_mb:,.0f} MB)", flush=True)
            path.unlink()
        if args.long_flow:
            path = folder / "long-flow.pcap"
            packets = write_long_flow_pcap(path, args.long_flow)
            print(f"generated {path}: one connection of {packets:,} packets (headers only), "
                  f"{path.stat().st_size / 1e6:,.0f} MB", flush=True)
            rows.append(("1 flow", "netbed trace FILE", packets, time_and_memory([*netbed, str(path)])))
            path.unlink()

        def in_process() -> float:
            t = time.process_time()
            read_trace(one)
            return time.process_time() - t

        t_read = statistics.median(in_process() for _ in range(3))  # CPU seconds (both threads)
        trace = read_trace(one)
        f = trace.frames
        flags = f.tcp_flags[f.has_tcp]
        mine = (len(flags), int((flags & SYN != 0).sum()), int((flags & FIN != 0).sum()),
                int((flags & RST != 0).sum()))
        theirs = tshark_flag_counts(one)

    t_tshark = median_timing(runs["tshark"])
    print(f"\n1x capture: {one_packets:,} packets, {len(trace.connections):,} connections; medians of "
          f"{args.repeat} interleaved rounds at 1x, one run otherwise; load average {load_average()} at the end")
    print(f"| {'scale':>6} | {'step':28} | {'packets':>11} | {'wall s':>7} | {'CPU s':>6} | {'packets/s wall':>14} "
          f"| {'packets/s CPU':>13} | {'peak MB':>7} | {'all procs MB':>12} | {'tshark/step wall':>16} "
          f"| {'tshark/step CPU':>15} |")
    print(f"| {'-' * 5}:| {'-' * 28} | {'-' * 10}:| {'-' * 6}:| {'-' * 5}:| {'-' * 13}:| {'-' * 12}:| {'-' * 6}:"
          f"| {'-' * 11}:| {'-' * 15}:| {'-' * 14}:|")
    for scale, label, packets, timing in rows:
        one_x = scale == "1x"
        ratio_wall = f"{t_tshark.wall / timing.wall:15.1f}x" if one_x else f"{'':>16}"
        ratio_cpu = f"{t_tshark.cpu / timing.cpu:14.1f}x" if one_x else f"{'':>15}"
        print(f"| {scale:>6} | {label:28} | {packets:>11,} | {timing.wall:7.2f} | {timing.cpu:6.2f} "
              f"| {packets / timing.wall / 1e6:13.2f}M | {packets / timing.cpu / 1e6:12.2f}M | {timing.peak_mb:7,.0f} "
              f"| {timing.tree_mb:12,.0f} | {ratio_wall} | {ratio_cpu} |")
    print(f"| {'1x':>6} | {'read_trace (in process)':28} | {one_packets:>11,} | {'':>7} | {t_read:6.2f} | {'':>14} "
          f"| {one_packets / t_read / 1e6:12.2f}M | {'':>7} | {'':>12} | {'':>16} | {t_tshark.cpu / t_read:14.1f}x |")
    per_round = [(k.wall / t.wall, k.cpu / t.cpu) for t, k in zip(runs["table"], runs["tshark"])]
    print(f"tshark / netbed trace FILE per round (same round, back to back): wall "
          f"{', '.join(f'{w:.1f}x' for w, _ in per_round)}; CPU {', '.join(f'{c:.1f}x' for _, c in per_round)}; "
          f"median {statistics.median(w for w, _ in per_round):.1f}x wall, "
          f"{statistics.median(c for _, c in per_round):.1f}x CPU")
    print(f"TCP segments / SYN / FIN / RST: netbed {mine}, tshark {theirs}")
    kinds = sorted({(c.handshake, c.close_kind, c.close_initiator) for c in trace.connections})
    print(f"classified as {[tuple(str(x) for x in k) for k in kinds]}")
    if mine != theirs or len(trace.connections) != args.connections:
        print("MISMATCH between netbed and tshark", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
