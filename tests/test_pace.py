"""Waits stretch with the machine's slowness (netbed.pace) instead of failing on a slow CPU.

In the Vagrant VM under software emulation, `time-wait` on wan failed with "no socket on port 9000
reached time-wait in 5 s" although the network did what the lecture says. Here a slow machine is
forced (NETBED_SLOWDOWN) and a real socket that reaches TIME_WAIT late: the same budget fails at
factor 1 and holds at a factor that covers the lateness, and the run records the factor."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, netbed

from netbed import pace
from netbed.errors import NetbedError
from netbed.experiment import DEFAULT_PORT


@pytest.fixture
def fresh_pace(monkeypatch):
    """Each test measures or reads the factor anew, and leaves no cached factor to the next."""
    monkeypatch.delenv(pace.ENV, raising=False)
    monkeypatch.delenv(pace.MEASURED_ENV, raising=False)
    pace.slowdown.cache_clear()
    yield monkeypatch
    pace.slowdown.cache_clear()


def _force(monkeypatch, factor: str) -> None:
    monkeypatch.setenv(pace.ENV, factor)
    pace.slowdown.cache_clear()


def test_a_forced_factor_stretches_every_budget_and_names_itself(fresh_pace):
    _force(fresh_pace, "4")
    assert pace.slowdown() == (4.0, "NETBED_SLOWDOWN")
    assert pace.patience(5) == 20
    assert pace.budget_text(5) == "20 s (5 s × machine slowdown 4)"
    assert pace.record() == {"slowdown": 4.0, "slowdown_source": "NETBED_SLOWDOWN"}
    _force(fresh_pace, "1")
    assert pace.budget_text(5) == "5 s"


def test_the_factor_is_measured_once_and_passed_to_child_processes(fresh_pace):
    factor, source = pace.slowdown()
    assert source == "measured" and pace.MIN_FACTOR <= factor <= pace.MAX_FACTOR
    assert float(os.environ[pace.MEASURED_ENV]) == factor  # a netbed CLI the test starts reads it, not measures
    pace.slowdown.cache_clear()
    assert pace.slowdown() == (factor, "measured by the parent process")


def test_calibration_measures_the_workload_against_the_reference(fresh_pace):
    # sabotage-proofing: a reference far faster than any machine gives the largest factor, a far slower one 1
    fresh_pace.setattr(pace, "REFERENCE_SECONDS", 1e-9)
    assert pace.calibrate(tries=1) == pace.MAX_FACTOR
    fresh_pace.setattr(pace, "REFERENCE_SECONDS", 1e3)
    assert pace.calibrate(tries=1) == pace.MIN_FACTOR


# A CPU that runs a tenth of the time, as a slow emulated one: the child is stopped and continued by turns
RUN_SLICE, STOP_SLICE = 0.004, 0.036  # s
# A tenth of the CPU measures about 7-10 on a quiet machine; under the suite's own load the parent's 4 ms
# sleeps overrun and the child runs longer slices (2.28 measured once in a full `make test`); an
# unthrottled child measures 1.0-1.1, so 2 still tells the two apart.
SLOW_ENOUGH = 2.0


def test_a_cpu_that_runs_a_tenth_of_the_time_is_measured_slow(fresh_pace):
    env = {k: v for k, v in os.environ.items() if k not in (pace.ENV, pace.MEASURED_ENV)}
    code = "import json; from netbed import pace; print(json.dumps(pace.slowdown()))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)
    try:
        while proc.poll() is None:
            os.kill(proc.pid, signal.SIGSTOP)  # a zombie not yet reaped still takes signals: no race with its end
            time.sleep(STOP_SLICE)
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(RUN_SLICE)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
    out, _ = proc.communicate(timeout=60)
    factor, source = json.loads(out)
    assert source == "measured" and factor >= SLOW_ENOUGH, (factor, source)


@pytest.mark.parametrize("value, message", [
    ("fast", "NETBED_SLOWDOWN must be a number (how many times slower than usual), not 'fast'"),
    ("0", "NETBED_SLOWDOWN must be above 0 and at most 1000, not 0"),
    ("-2", "NETBED_SLOWDOWN must be above 0 and at most 1000, not -2"),
])
def test_a_bad_factor_is_one_line_and_exit_2_before_anything_runs(value, message, fresh_pace):
    res = netbed("run", "handshake", env={**os.environ, pace.ENV: value})
    assert res.returncode == 2 and res.stderr.strip() == f"netbed: {message}", res.stderr
    assert res.stdout == ""


LATE = 1.5  # s: how long after the data the server closes (its socket reaches TIME_WAIT)
BUDGET = 0.5  # s: the wait's budget on the reference machine


@pytest.mark.netbed
def test_a_wait_that_fails_at_factor_1_holds_when_the_machine_is_known_slow(netbed_lab, fresh_pace):
    lab = netbed_lab("lan", hosts=2)
    server = lab.server(["recv:100", f"sleep:{LATE}", "close"])
    client = lab.client(server, ["send:100", "recv-eof", "close"])
    _force(fresh_pace, "1")  # sabotage: the budget as it was, on a machine this late
    with pytest.raises(NetbedError, match=rf"no socket on port {DEFAULT_PORT} reached time-wait in {BUDGET:g} s$"):
        lab.wait_socket_state(lab.server_host, "time-wait", DEFAULT_PORT, timeout=BUDGET)
    _force(fresh_pace, str(2 * LATE / BUDGET))  # 3 s: covers the lateness with room
    lab.wait_socket_state(lab.server_host, "time-wait", DEFAULT_PORT, timeout=BUDGET)
    assert any(f":{DEFAULT_PORT} " in line + " " for line in lab.sockets(lab.server_host, "time-wait"))
    lab.wait(client, server)


@pytest.mark.netbed
def test_a_run_records_the_factor_its_waits_were_stretched_by(tmp_path, fresh_pace):
    env = {**os.environ, pace.ENV: "2.5"}
    res = netbed("run", "handshake", "--out", str(tmp_path / "run"), env=env)
    assert res.returncode == 0, res.stderr
    assert "waits stretched ×2.5 for a slow machine" in res.stdout, res.stdout
    record = json.loads((tmp_path / "run" / "result.json").read_text())["fidelity"]["record"]
    assert record["slowdown"] == 2.5 and record["slowdown_source"] == "NETBED_SLOWDOWN"
    shown = netbed("show", str(tmp_path / "run"), env=env)
    assert "waits stretched ×2.5 for a slow machine" in shown.stdout, shown.stdout
