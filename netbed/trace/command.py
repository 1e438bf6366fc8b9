"""``netbed trace CAPTURE [--json]``: classify the connections of any capture, of any size.

Why streamed: a research capture of tens of millions of packets must not need tens of gigabytes,
and a user piping ``tcpdump -w -`` in wants to see connections while the capture runs. So the
capture is read in chunks (``stream.py``) and each connection is printed as soon as it is final;
``--json`` still makes one valid JSON document (the warnings, known only at the end, come last).
A progress bar (bytes read, packets/s, connections so far) appears on a terminal once the analysis
has taken a second; never with ``--json`` and never when stderr is not a terminal that can redraw a line
(a pipe, a log, TERM=dumb: netbed.terminal).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TextIO

from netbed.errors import NetbedError
from netbed.terminal import capability

from .container import PcapError
from .output import JSON_HEAD, json_lines, json_tail, table_head, table_rows
from .pcap import DEFAULT_CHUNK_BYTES
from .stream import StreamStats, stream_connections

__all__ = ["run"]

PROGRESS_AFTER_SECONDS = 1.0
PROCESSES_VARIABLE = "NETBED_TRACE_PROCESSES"
# glibc's mallopt parameters (malloc.h) and the values used: see _reuse_freed_memory.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
KEEP_FREED_BYTES = 128 << 20
MMAP_ABOVE_BYTES = 64 << 20


def _reuse_freed_memory() -> None:
    """Let the C allocator keep freed memory for the next chunk instead of giving it back.

    Why: every chunk makes and frees ~100 MB of NumPy columns of a few MB each. By default glibc
    maps each of them fresh from the kernel and unmaps it when freed, so the next chunk page-faults
    all of it in again: 167,000 page faults and ~0.35 s of system time for the 1.1M-packet benchmark
    capture, growing with the capture. Served from the heap (one arena, at most 128 MB kept free)
    they are faulted in once: ~80,000 faults whatever the length, for ~40 MB more resident memory.
    Only the command does this (it owns its process); elsewhere (glibc absent) nothing happens.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_ARENA_MAX, 1)
    mallopt(M_MMAP_THRESHOLD, MMAP_ABOVE_BYTES)
    mallopt(M_TRIM_THRESHOLD, KEEP_FREED_BYTES)


class _Progress:
    """A rich progress bar on stderr, started only once the analysis has run for a second."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.began = time.monotonic()
        self.bar = None
        self.task = None

    def update(self, stats: StreamStats) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.began
        if self.bar is None:
            if elapsed < PROGRESS_AFTER_SECONDS:
                return
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("reading"), BarColumn(), DownloadColumn(), TextColumn("{task.fields[rate]}"),
                                TextColumn("{task.fields[conns]}"), TimeElapsedColumn(),
                                console=Console(file=self.stream, **capability(self.stream).rich_options()),
                                transient=True)
            self.bar.start()
            self.task = self.bar.add_task("trace", total=stats.total_bytes, rate="", conns="")
        rate = f"{stats.frames / elapsed:,.0f} packets/s" if elapsed > 0 else ""
        conns = f"{stats.connections:,} connections ({stats.open_connections:,} open)"
        self.bar.update(self.task, completed=stats.bytes_read, rate=rate, conns=conns)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def processes() -> int:
    """Two processes (one reads and decodes, one classifies) when this process may use two CPUs or
    more; ``NETBED_TRACE_PROCESSES=1`` keeps it to one (with a reader thread)."""
    wanted = os.environ.get(PROCESSES_VARIABLE, "")
    if wanted.isdigit() and int(wanted) >= 1:
        return min(int(wanted), 2)
    return 2 if len(os.sched_getaffinity(0)) >= 2 else 1


def run(capture: str | os.PathLike[str], as_json: bool = False, out: TextIO | None = None,
        err: TextIO | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Print the capture's connections (``-`` reads standard input); bad input raises NetbedError."""
    out = out or sys.stdout
    err = err or sys.stderr
    name = os.fspath(capture)
    if name != "-":
        path = Path(name)
        if not path.exists():
            raise NetbedError(f"no such file: {path}")
        if path.is_dir():
            raise NetbedError(f"{path} is a folder, not a pcap file")
    progress = _Progress(err, enabled=not as_json and capability(err).live)
    _reuse_freed_memory()
    stats = StreamStats()

    def on_chunk(s: StreamStats) -> None:
        nonlocal stats
        stats = s
        progress.update(s)

    count = 0
    head = JSON_HEAD if as_json else table_head()
    try:
        # the head waits for the first connection (or the end): an empty or foreign file is one line
        # on stderr and nothing on stdout, never a table head or half a JSON document
        for table in stream_connections(name, chunk_bytes, on_chunk, processes()):
            out.write(head)
            head = ""
            if as_json:
                lines = json_lines(table)
                text = ",\n  ".join(lines)
                out.write(("\n  " if count == 0 else ",\n  ") + text)
            else:
                out.write("\n".join(table_rows(table)) + "\n")
            count += len(table)
            out.flush()
    except PcapError as exc:
        raise NetbedError(str(exc)) from None
    except OSError as exc:
        raise NetbedError(f"cannot read {name}: {exc.strerror or exc}") from None
    finally:
        progress.close()
    out.write(head)
    if as_json:
        out.write(json_tail(count > 0, stats.warnings))
    else:
        out.write(f"{count} TCP connection{'s' if count != 1 else ''}, {stats.frames} frames\n")
    for warning in stats.warnings:
        print(f"netbed: warning: {warning}", file=err)
    out.flush()
    return 0
