"""How slow this machine is, as one factor that every wait of netbed's stretches by.

Why: netbed's waits (a program's end, a port that listens, a socket that reaches TIME_WAIT, tcpdump
that starts) are budgets sized for an ordinary machine. Under software CPU emulation (QEMU TCG, as the
Vagrant lab runs where there is no KVM) the same work takes five to twenty times as long, and a fixed
5 s budget failed a run whose network behaved exactly as the lecture says. Scattered constants cannot
all be tuned for every machine; one factor, measured once, applied where a budget becomes a deadline
(`patience`), keeps every budget in proportion.

The factor is how much longer than on the reference machine a short, fixed pure-Python workload takes
(the best of a few tries, so a moment of load does not count as slowness), never below 1. It is
measured once per process tree (children inherit it through the environment) and recorded with each
run's fidelity record. NETBED_SLOWDOWN=F sets it instead (for a machine known to be slow, or a test).
"""
from __future__ import annotations

import os
import time
from functools import lru_cache

from netbed.errors import NetbedError

ENV = "NETBED_SLOWDOWN"  # set by the user: the factor, instead of measuring it
MEASURED_ENV = "NETBED_SLOWDOWN_MEASURED"  # set by netbed: the factor its parent measured, passed down
CALIBRATION_ROUNDS = 100_000  # iterations of the workload
REFERENCE_SECONDS = 0.020  # the workload's best time on the reference machine (a 2-core cloud EPYC, 2026)
TRIES = 5
MIN_FACTOR, MAX_FACTOR = 1.0, 50.0
MAX_SET_FACTOR = 1000.0


def _workload(rounds: int = CALIBRATION_ROUNDS) -> int:
    """Integer arithmetic and dictionary stores: what netbed's own Python does between system calls."""
    acc, table = 0, {}
    for i in range(rounds):
        acc = (acc * 31 + i) & 0xFFFFFFFF
        table[i & 1023] = acc
    return acc


def calibrate(tries: int = TRIES) -> float:
    """The workload's best time over `tries`, divided by the reference time, within [1, MAX_FACTOR]."""
    best = float("inf")
    for _ in range(tries):
        began = time.perf_counter()
        _workload()
        best = min(best, time.perf_counter() - began)
    return round(min(MAX_FACTOR, max(MIN_FACTOR, best / REFERENCE_SECONDS)), 2)


def _parse(value: str, name: str) -> float:
    try:
        factor = float(value)
    except ValueError:
        raise NetbedError(f"{name} must be a number (how many times slower than usual), not {value!r}") from None
    if not 0 < factor <= MAX_SET_FACTOR:
        raise NetbedError(f"{name} must be above 0 and at most {MAX_SET_FACTOR:g}, not {value}")
    return factor


@lru_cache(maxsize=1)
def slowdown() -> tuple[float, str]:
    """(factor, where it came from: "NETBED_SLOWDOWN", "measured" or "measured by the parent process")."""
    if os.environ.get(ENV, "").strip():
        return _parse(os.environ[ENV].strip(), ENV), ENV
    if os.environ.get(MEASURED_ENV, "").strip():
        try:
            return _parse(os.environ[MEASURED_ENV].strip(), MEASURED_ENV), "measured by the parent process"
        except NetbedError:
            pass  # not the user's: measure again
    factor = calibrate()
    os.environ[MEASURED_ENV] = f"{factor:g}"  # children (netbed CLIs a test starts, programs) need not measure
    return factor, "measured"


def check_setting() -> None:
    """Refuse a NETBED_SLOWDOWN that is not a factor (NetbedError, one line); measures nothing."""
    if os.environ.get(ENV, "").strip():
        _parse(os.environ[ENV].strip(), ENV)


def factor() -> float:
    return slowdown()[0]


def patience(seconds: float) -> float:
    """A budget in reference-machine seconds, as long as this machine needs for the same work."""
    return seconds * factor()


def budget_text(seconds: float) -> str:
    """How a timed-out wait names its budget: "5 s", or "25 s (5 s × machine slowdown 5)"."""
    f = factor()
    if f == 1:
        return f"{seconds:g} s"
    return f"{seconds * f:g} s ({seconds:g} s × machine slowdown {f:g})"


def record() -> dict:
    """What a run's fidelity record keeps of it."""
    f, source = slowdown()
    return {"slowdown": f, "slowdown_source": source}
