"""Who owns what: every run is registered, marks its processes, and cleans up after dead runs only.

Everything a run builds lives in network namespaces (hosts, routers and switches alike): links,
addresses, routes, firewall rules, qdiscs and sysctls vanish with them. A namespace lives as long as
a process inside it, so after a SIGKILL the only leftovers are processes — Mininet's shells,
tcpdump, bpftrace, the programs under test. Each run therefore puts its identity in the
environment (NETBED_RUN), which every process it starts inherits, and records itself in
/run/netbed/. `netbed clean` (and every new run, before it starts) kills the marked processes of
runs whose owner is gone — never those of a live run, never anything unmarked.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_DIR = Path(os.environ.get("NETBED_STATE_DIR", "/run/netbed"))
ENV = "NETBED_RUN"


@dataclass(frozen=True)
class RunRecord:
    id: str
    pid: int
    start: str  # the owner's start time in clock ticks (/proc/PID/stat field 22): pids get reused
    command: list[str]

    @property
    def path(self) -> Path:
        return STATE_DIR / f"{self.id}.json"

    def alive(self) -> bool:
        return _start_time(self.pid) == self.start


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


@contextmanager
def registered(command: list[str]) -> Iterator[RunRecord]:
    """Register this process as a run without marking its children: only those given the mark explicitly
    (`{ENV: record.id}` in their environment) are reclaimed with it — a test session's shared tracer,
    beside the tests' own runs, which carry their own marks."""
    record = RunRecord(uuid.uuid4().hex[:10], os.getpid(), _start_time(os.getpid()) or "", list(command))
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    record.path.write_text(json.dumps(asdict(record)))
    try:
        yield record
    finally:
        _kill_marked(record.id, exclude={os.getpid()})
        record.path.unlink(missing_ok=True)


@contextmanager
def owned(command: list[str]) -> Iterator[RunRecord]:
    """Reclaim what dead runs left, then register this process as a run for the block's duration.

    Children started inside the block carry the run's mark. SIGTERM and SIGHUP unwind the block
    like an exception, so the testbed's own teardown runs; on the way out any straggler the run
    marked is killed and the record is removed.
    """
    reclaim()
    record = RunRecord(uuid.uuid4().hex[:10], os.getpid(), _start_time(os.getpid()) or "", list(command))
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    record.path.write_text(json.dumps(asdict(record)))
    previous_mark = os.environ.get(ENV)
    os.environ[ENV] = record.id
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {sig: signal.signal(sig, _unwind) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield record
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        _kill_marked(record.id, exclude={os.getpid()})
        record.path.unlink(missing_ok=True)
        if previous_mark is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous_mark


def _unwind(signum, _frame) -> None:
    # SIGTERM/SIGHUP: leave through the same `with` blocks as an exception, so everything stops
    raise SystemExit(128 + signum)


def load(path: Path) -> RunRecord:
    data = json.loads(path.read_text())
    return RunRecord(data["id"], int(data["pid"]), str(data["start"]), list(data["command"]))


def records() -> list[RunRecord]:
    found = []
    for path in sorted(STATE_DIR.glob("*.json")) if STATE_DIR.is_dir() else []:
        try:
            found.append(load(path))
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a half-written record of a run killed while starting
    return found


def reclaim() -> list[tuple[RunRecord, int]]:
    """Clean up after every dead run: (run, processes killed) for each one reclaimed."""
    done = []
    for record in records():
        if record.alive():
            continue
        killed = _kill_marked(record.id)
        record.path.unlink(missing_ok=True)
        done.append((record, killed))
    return done


def marked_processes(run_id: str) -> list[int]:
    mark = f"{ENV}={run_id}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if mark in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _kill_marked(run_id: str, exclude: set[int] | None = None, grace: float = 1.0) -> int:
    pids = [p for p in marked_processes(run_id) if p not in (exclude or set())]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.01)
    return len(pids)
