#!/usr/bin/env python3
"""close-merged with and without a real-time budget: the same verdict either way?

    sudo .venv/bin/python bench/close_merged_priority.py [--runs 20] [--topo lan] [--actions ...]

A CI container often has no real-time budget (cgroup v1 `cpu.rt_runtime_us` = 0: Docker and podman
give none unless `--cpu-rt-runtime` is set), so `sched_setscheduler(SCHED_FIFO)` fails with EPERM there.
This runs `netbed run close-merged` N times in this process's own cgroup and N times in a child cgroup
made here with `cpu.rt_runtime_us` = 0 — the container's case, on this machine — and prints per mode:
the verdicts, the priority the server was granted (its own report), and from the server-side capture
how long after the client's FIN the server's FIN left (the delayed-ACK timer gives it 40 ms to merge).
The child cgroup is removed at the end. Figures depend on the machine's load: say what it was.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from netbed.experiment import Evidence  # noqa: E402

CPU_CGROUP = Path("/sys/fs/cgroup/cpu")
DELAYED_ACK_MS = 40  # TCP_DELACK_MIN: the longest the passive side may take to close for a merged FIN


@contextmanager
def no_realtime_budget() -> Iterator[Path]:
    """A child cpu cgroup whose real-time budget is 0; yields its cgroup.procs file."""
    group = CPU_CGROUP / f"netbed-no-rt-{os.getpid()}"
    group.mkdir()
    try:
        (group / "cpu.rt_runtime_us").write_text("0\n")
        yield group / "cgroup.procs"
    finally:
        for _ in range(100):  # the runs' processes have exited; the kernel may still be reaping them
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.05)


def gaps_ms(run_dir: Path) -> tuple[float | None, float | None]:
    """At the server's capture point: milliseconds from the client's FIN to the server's FIN, and from
    the client's FIN to the server program's own `eof` event (its wake-up; the same wall clock)."""
    evidence = Evidence.load(run_dir)
    conn = evidence.connection("server")
    if conn is None:
        return None, None
    fins = [(conn.side(s), s.time) for s in conn.segments if s.fin]
    client = next((t for side, t in fins if side == "client"), None)
    server = next((t for side, t in fins if side == "server"), None)
    eof = next((e["t"] for e in evidence.program("server")["events"] if e["event"] == "eof"), None)
    if client is None:
        return None, None
    return ((server - client) * 1000 if server is not None else None,
            (eof - client) * 1000 if eof is not None else None)


def run_once(topo: str, out: Path, procs: Path | None) -> dict:
    def join_group() -> None:
        if procs is not None:
            procs.write_text(f"{os.getpid()}\n")

    argv = [str(REPO / ".venv" / "bin" / "netbed"), "run", "close-merged", "--topo", topo, "--json", "--out", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, preexec_fn=join_group, timeout=300)
    if not proc.stdout.strip():
        return {"passed": False, "error": proc.stderr.strip()[-300:]}
    result = json.loads(proc.stdout)
    run_dir = Path(result["artifacts"]["dir"])
    server = Evidence.load(run_dir).programs.get("server", {})
    failed = [f"{a['name']}: {a['detail']}".splitlines()[0] for a in result["assertions"] if not a["passed"]]
    gap, wake = gaps_ms(run_dir)
    return {"passed": result["passed"], "priority": server.get("priority"), "unable": server.get("unable"),
            "gap_ms": gap, "wake_ms": wake, "failed": failed[:1]}


def summary(mode: str, rows: list[dict]) -> str:
    passed = sum(r["passed"] for r in rows)
    gaps = [r["gap_ms"] for r in rows if r.get("gap_ms") is not None]
    priorities = sorted({str(r.get("priority")) for r in rows})
    line = f"{mode:<10} {passed}/{len(rows)} PASS; server priority: {', '.join(priorities)}"
    if gaps:
        line += (f"; server FIN after client FIN: median {statistics.median(gaps):.2f} ms, "
                 f"max {max(gaps):.2f} ms (merges if < {DELAYED_ACK_MS} ms)")
    wakes = [r["wake_ms"] for r in rows if r.get("wake_ms") is not None]
    if wakes:
        line += f"; server's eof after client FIN: median {statistics.median(wakes):.2f} ms, max {max(wakes):.2f} ms"
    return line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--topo", default="lan")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still remove the cgroup
    if os.geteuid() != 0:
        print("close_merged_priority: needs root (cgroups and emulation)", file=sys.stderr)
        return 2
    with open("/proc/loadavg") as f:
        print(f"load average before: {f.read().split()[:3]}")
    results: dict[str, list[dict]] = {"budget": [], "no-budget": []}
    tmp = Path(tempfile.mkdtemp(prefix="netbed-bench-close-merged-"))
    with no_realtime_budget() as procs:
        for i in range(args.runs):
            for mode, group in (("budget", None), ("no-budget", procs)):
                out = tmp / mode / str(i)
                row = run_once(args.topo, out, group)
                results[mode].append(row)
                if row["passed"]:
                    shutil.rmtree(out, ignore_errors=True)
                else:  # kept, to open the pcaps
                    print(f"  {mode} run {i}: FAIL {row.get('failed') or row.get('error')} ({out})")
    for mode, rows in results.items():
        print(summary(mode, rows))
    with open("/proc/loadavg") as f:
        print(f"load average after: {f.read().split()[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
