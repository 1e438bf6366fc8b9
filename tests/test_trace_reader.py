"""``netbed trace`` reads in a second process: same output, errors as one line, no process left behind."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
from conftest import NETBED, REPO, netbed
from pcapbuild import Conversation, pcap_bytes

from netbed.trace.reader import ForkedReader

T0 = 1_700_000_000.0


def _capture(count: int) -> bytes:
    packets = []
    for i in range(count):
        c = Conversation(client_addr=("10.0.0.1", 20000 + i % 30000), start=T0 + i * 0.01).handshake()
        c.client("P.", 100)
        c.four_way_close()
        packets.extend(c.packets)
    return pcap_bytes(sorted(packets, key=lambda p: p.time))


def _processes_reading(path: Path) -> list[int]:
    """Processes whose command line names ``path`` (ours: the path is a fresh temporary file)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if str(path).encode() in cmdline:
                found.append(int(entry))
    return found


def _children() -> list[str]:
    return Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()


def test_one_and_two_processes_print_the_same_and_the_reader_is_a_second_process(tmp_path: Path) -> None:
    path = tmp_path / "many.pcap"
    path.write_bytes(_capture(3000))
    env = {**os.environ, "NETBED_TRACE_PROCESSES": "1"}
    one = subprocess.run([*NETBED, "trace", str(path)], capture_output=True, text=True, cwd=REPO, env=env)
    two = netbed("trace", str(path))
    assert one.returncode == two.returncode == 0 and one.stdout == two.stdout
    assert two.stdout.splitlines()[-1] == f"3000 TCP connections, {3000 * 8} frames"
    # The reader runs in a child process while the classifier waits for its first chunk.
    before = set(_children())
    reader = ForkedReader(str(path), 1 << 12)
    chunks = iter(reader)
    next(chunks)
    assert set(_children()) - before, "no reader process"
    rest = sum(1 for _ in chunks)
    assert rest > 0 and reader.warnings == []
    assert set(_children()) - before == set(), "reader not reaped"


def test_a_reader_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a capture at all\n")
    res = netbed("trace", str(bad))
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr == f"netbed: not a pcap or pcapng file: {bad}\n"


def test_a_reader_left_early_is_stopped_and_reaped(tmp_path: Path) -> None:
    """`netbed trace big.pcap | head -3`: the classifier stops at the closed pipe; its reader with it."""
    path = tmp_path / "big.pcap"
    path.write_bytes(_capture(20000))
    proc = subprocess.Popen([*NETBED, "trace", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()
    proc.wait(timeout=60)
    deadline = time.monotonic() + 10
    while _processes_reading(path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_reading(path) == []


def test_columns_too_big_for_a_slot_come_through_the_pipe_alike(tmp_path: Path) -> None:
    path = tmp_path / "many.pcap"
    path.write_bytes(_capture(500))
    whole = ForkedReader(str(path), 1 << 14)
    small = ForkedReader(str(path), 1 << 14)
    small.slot_bytes = 64  # no chunk fits: every one is sent whole through the pipe
    a, b = list(whole), list(small)
    assert len(a) == len(b) > 1
    for x, y in zip(a, b):
        assert x.frames == y.frames and x.cut_frames == y.cut_frames
        columns = ("frame", "time", "clock", "src_lo", "dst_lo", "sport", "dport", "seq", "ack", "flags", "plen")
        assert all(np.array_equal(getattr(x.segments, c), getattr(y.segments, c)) for c in columns)
