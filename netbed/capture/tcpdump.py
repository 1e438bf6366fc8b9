"""tcpdump inside hosts, started and stopped so that no packet is lost.

--immediate-mode hands each packet to tcpdump at once (otherwise packets wait in the kernel ring
and are lost when the capture stops); the capture counts as started only when tcpdump says
"listening on"; it stops with SIGINT and we wait for it to flush and exit.
"""
from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from netbed.errors import NetbedError
from netbed.network import Testbed
from netbed.pace import patience

_STATS = re.compile(r"(\d+) packets? (captured|received by filter|dropped by kernel)")


@dataclass
class Capture:
    point: str  # what the capture shows: "client", "server", a router's name
    node: str
    interface: str
    path: Path
    proc: subprocess.Popen | None = None
    stats: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {"point": self.point, "node": self.node, "interface": self.interface,
                "file": self.path.name, **self.stats}


def _argv(cap: Capture, snaplen: int) -> list[str]:
    # -B: a 16 MiB kernel buffer, so a starved tcpdump (two busy CPUs) falls behind without dropping
    return ["tcpdump", "-i", cap.interface, "-w", str(cap.path), "--immediate-mode", "-U", "-n",
            "-s", str(snaplen), "-Z", "root", "--packet-buffered", "-B", "16384"]


class capture_all:  # noqa: N801 — used as a context manager, reads like a statement
    """Capture on every given point while the block runs: `with capture_all(tb, caps): ...`."""

    def __init__(self, tb: Testbed, captures: list[Capture], snaplen: int = 262144,
                 timeout: float = 10.0) -> None:
        self.tb = tb
        self.captures = captures
        self.snaplen = snaplen
        self.timeout = timeout

    def __enter__(self) -> list[Capture]:
        for cap in self.captures:
            cap.path.parent.mkdir(parents=True, exist_ok=True)
            cap.proc = self.tb.popen(cap.node, _argv(cap, self.snaplen), text=True)
        deadline = time.monotonic() + patience(self.timeout)
        for cap in self.captures:
            _wait_listening(cap, deadline)
        return self.captures

    def __exit__(self, *exc) -> None:
        _flush(self.tb, self.captures)
        for cap in self.captures:
            if cap.proc and cap.proc.poll() is None:
                cap.proc.send_signal(signal.SIGINT)
        for cap in self.captures:
            if cap.proc is None:
                continue
            try:
                _, err = cap.proc.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                cap.proc.kill()
                _, err = cap.proc.communicate()
            self.tb.forget(cap.proc)
            cap.stats = {key.split()[0]: int(n) for n, key in _STATS.findall(err or "")}


# An end-of-capture marker: IEEE's "local experimental" EtherType, sent to the interface's own MAC
# (see Testbed.send_local_frame: no other capture sees it).
MARKER_TYPE = 0x88B5
MARKER = b"netbed end-of-capture marker"


def _flush(tb: Testbed, captures: list[Capture], limit: float = 10.0) -> None:
    """Make sure tcpdump has written everything the kernel handed it before it is stopped.

    On SIGINT tcpdump stops reading at once; packets still in its socket buffer (a starved tcpdump
    falls behind by tens of milliseconds) would never reach the file. So each capture point sends
    one marker frame out of its interface and waits for it in the file: tcpdump handles packets in
    order, so everything before the marker is written by then. Wireshark shows it as the last frame.
    """
    for cap in captures:
        tb.send_local_frame(cap.node, cap.interface, MARKER, MARKER_TYPE)
    deadline = time.monotonic() + limit
    for cap in captures:
        _wait_for_marker(cap.path, deadline)


def _wait_for_marker(path: Path, deadline: float, poll: float = 0.005) -> bool:
    """Read the growing pcap from where the last look ended (keeping a marker's length of overlap)."""
    offset, tail = 0, b""
    with open(path, "rb") as f:
        while True:
            f.seek(offset)
            chunk = f.read()
            offset += len(chunk)
            window = tail + chunk
            if MARKER in window:
                return True
            tail = window[-(len(MARKER) - 1):]
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)


def _wait_listening(cap: Capture, deadline: float) -> None:
    """Read tcpdump's stderr until it says it is listening (it prints that once the socket is up).

    Raw os.read on the descriptor: a buffered readline could swallow the line select() waits for.
    """
    assert cap.proc is not None and cap.proc.stderr is not None
    fd = cap.proc.stderr.fileno()
    seen = b""
    while b"listening on" not in seen:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0.0, left))
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            text = seen.decode(errors="replace").strip()[-300:]
            raise NetbedError(f"tcpdump on {cap.node}:{cap.interface} did not start: {text or 'timeout'}")
        seen += chunk
