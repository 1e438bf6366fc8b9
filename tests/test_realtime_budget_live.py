"""A CI container often has no real-time budget: no verdict may depend on one without saying so.

Docker and podman put a container in a cpu cgroup whose `cpu.rt_runtime_us` is 0 unless
`--cpu-rt-runtime` is given; there `sched_setscheduler(SCHED_FIFO)` fails with EPERM. These tests
make that case for real on this machine — this test process moves itself into a child cgroup with
a budget of 0, so every program the run starts inherits it — and check that close-merged still
passes (its server takes nice -20 where SCHED_FIFO is refused), and that a program which insists on
real-time priority fails the run with the reason on one line, first among the assertions.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from netbed import runner, verdict
from netbed.experiment import Evidence, get
from netbed.programs import PEER

pytestmark = pytest.mark.netbed

CPU = Path("/sys/fs/cgroup/cpu")


def _own_cpu_group() -> Path:
    """This process's cpu cgroup folder: its path under the mount, or (in a container that is shown
    only its own group, at the mount's top) the top itself."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            folder = CPU / path.lstrip("/")
            return folder if folder.is_dir() else CPU
    pytest.skip("no cgroup v1 cpu controller here: real-time budgets are not per group on this machine")


@contextmanager
def no_realtime_budget() -> Iterator[Path]:
    """This process, for the duration, in a child cpu cgroup whose real-time budget is 0."""
    parent = _own_cpu_group()
    if not (parent / "cpu.rt_runtime_us").exists():
        pytest.skip("the kernel has no real-time group scheduling (CONFIG_RT_GROUP_SCHED)")
    group = parent / f"netbed-test-no-rt-{os.getpid()}"
    group.mkdir()
    try:
        (group / "cpu.rt_runtime_us").write_text("0\n")
        (group / "cgroup.procs").write_text(f"{os.getpid()}\n")
        try:
            yield group
        finally:
            (parent / "cgroup.procs").write_text(f"{os.getpid()}\n")
    finally:
        for _ in range(100):  # the run's programs have exited; the kernel may still be reaping them
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.05)


@pytest.mark.parametrize("topology", ["lan", "wan"])
def test_close_merged_passes_without_a_realtime_budget(topology, tmp_path):
    with no_realtime_budget():
        result = runner.run_experiment(get("close-merged"), topology, tmp_path / "run")
    assert result.passed, [a.to_json() for a in result.failed]
    # the kernel really refused real-time scheduling: the server says what it ran with instead
    server = Evidence.load(tmp_path / "run").program("server")
    assert server["priority"] == "nice -20 (SCHED_FIFO refused: EPERM)"


def test_a_program_that_needs_realtime_fails_the_run_with_the_reason_on_one_line(tmp_path, monkeypatch):
    exp = get("close-merged")

    def insisting_on_realtime(lab):
        server = lab.server(["realtime", "recv-eof", "close"])
        lab.wait(lab.client(server, ["send:1000", "close"]), server)

    monkeypatch.setattr(exp.module, "run", insisting_on_realtime)
    with no_realtime_budget() as group:
        result = runner.run_experiment(exp, "lan", tmp_path / "run")
    assert not result.passed
    first = result.failed[0]
    assert first.name == "the server program could do what the experiment needs"
    # the cgroup as the kernel names it (in a container: its path on the host, ending in ours)
    assert re.fullmatch(
        "server program failed at 'realtime': EPERM — the container has no real-time budget: "
        rf"cpu.rt_runtime_us is 0 in its cgroup /\S*{group.name} "
        r"\(give it one: docker or podman run --cpu-rt-runtime=950000\)", first.detail), first.detail
    # the offline re-check says the same: the reason is in the evidence, not only in this process
    assert verdict.check_dir(tmp_path / "run").assertions == result.assertions


_WITHOUT_SYS_NICE = """
import os, sys
sys.path.insert(0, sys.argv[1])
import peer
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(peer.RT_PRIORITY))
    print("granted")
except OSError as exc:
    print(peer.why_refused("realtime", exc))
p = peer.Peer(None, "server", udp=False)
p.do_prompt("")
print(p.priority)
"""


def test_without_cap_sys_nice_the_reason_names_it_and_prompt_runs_on_at_normal_priority():
    proc = subprocess.run(["capsh", "--drop=cap_sys_nice", "--", "-c", 'exec "$0" "$@"', sys.executable, "-c",
                           _WITHOUT_SYS_NICE, str(Path(PEER).parent)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    reason, priority = proc.stdout.strip().splitlines()
    assert reason == ("this root lacks CAP_SYS_NICE, which real-time scheduling needs "
                      "(a container started without --privileged or --cap-add SYS_NICE?)")
    assert priority == "normal (SCHED_FIFO refused: EPERM, nice -20 refused: EACCES)"
