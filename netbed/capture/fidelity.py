"""Did the machine keep up? What a run records of its own fidelity, as Mininet-HiFi asks of an emulator.

An emulated network is only as faithful as the machine under it: a saturated CPU delays packets,
timers and tracers, and a result that depends on timing (a queueing delay, an RTT) is then the
machine's, not the network's. While a run's programs run, this records:

- the CPU idle share of the whole machine (from /proc/stat, all CPUs, over the run);
- the timer slip: a thread asks for TICK sleeps over and over and records how late each wakes (the
  programs' own sleeps and timers are late by as much);
- the machine's slowdown factor (netbed.pace), by which every wait of the run was stretched;
- the tracer's lost events (bpftrace's "Lost N events" lines) and the captures' drops are counted
  by the verdict stage from the run folder.

The verdict stage (`netbed.verdict.fidelity_of`) judges the record; docs/research.md gives the limits.
"""
from __future__ import annotations

import threading
import time

from netbed import pace

TICK = 0.010  # s: the sleep whose lateness is measured
PROC_STAT = "/proc/stat"


def cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs since boot; idle includes iowait."""
    with open(PROC_STAT) as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return idle, total


class FidelityMonitor:
    """`with FidelityMonitor() as m:` around the part of a run whose timing matters; `m.facts()` after."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True, name="netbed-fidelity")
        self.late: list[float] = []
        self._start_cpu = self._end_cpu = (0, 0)
        self.seconds = 0.0

    def __enter__(self) -> FidelityMonitor:
        self._start_cpu = cpu_times()
        self._began = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._end_cpu = cpu_times()
        self.seconds = time.monotonic() - self._began

    def _tick(self) -> None:
        while not self._stop.is_set():
            asked = time.monotonic()
            time.sleep(TICK)
            self.late.append(time.monotonic() - asked - TICK)

    def facts(self) -> dict:
        idle = self._end_cpu[0] - self._start_cpu[0]
        total = self._end_cpu[1] - self._start_cpu[1]
        late = sorted(self.late)

        def ms(q: float) -> float | None:
            return round(late[min(len(late) - 1, int(q * len(late)))] * 1000, 3) if late else None

        return {**pace.record(), "seconds": round(self.seconds, 3),
                "cpu_idle_share": round(idle / total, 4) if total else None,
                "timer_tick_ms": TICK * 1000, "timer_samples": len(late), "timer_slip_ms": {
                    "p50": ms(0.5), "p99": ms(0.99), "max": round(late[-1] * 1000, 3) if late else None}}
