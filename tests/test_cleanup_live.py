"""Nothing left behind: runs killed at any moment are reclaimed by `netbed clean`, and only they."""
import os
import signal
import subprocess
import time

import pytest
from conftest import NETBED, REPO, netbed, root_namespace_state, session_processes
from rootstate import differences

from netbed import runstate

pytestmark = pytest.mark.netbed

# seconds after start: during Mininet's build, tcpdump/bpftrace start-up, the programs, the check,
# the teardown (a `handshake` run on wan takes about 2 s here)
KILL_POINTS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.8,
               2.0, 2.3]


def start_run(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*NETBED, "run", *args], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


@pytest.mark.parametrize("delay", KILL_POINTS)
def test_a_run_killed_with_sigkill_is_reclaimed_by_clean(delay, tmp_path):
    before = root_namespace_state()
    proc = start_run("handshake", "--topo", "wan", "--out", str(tmp_path / "run"))
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    res = netbed("clean")
    assert res.returncode == 0, res.stderr
    deadline = time.monotonic() + 5
    while session_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session_processes() == []
    assert differences(before, root_namespace_state()) == {}
    assert [r for r in runstate.records() if r.pid == proc.pid] == [], "the dead run's record is still there"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("delay", [0.3, 1.0, 1.6])
def test_a_run_stopped_by_a_signal_cleans_up_by_itself(sig, delay, tmp_path):
    before = root_namespace_state()
    proc = start_run("handshake", "--topo", "wan", "--out", str(tmp_path / "run"))
    time.sleep(delay)
    # at the later delays the run may already have its verdict (result.json): then it may end normally
    in_the_middle = proc.poll() is None and not (tmp_path / "run" / "result.json").is_file()
    proc.send_signal(sig)
    code = proc.wait(timeout=30)
    if in_the_middle:
        assert code != 0, "the run went on to a normal end after the signal"
    assert session_processes() == []
    assert differences(before, root_namespace_state()) == {}


def test_clean_leaves_a_live_run_alone(tmp_path):
    proc = subprocess.Popen([*NETBED, "run", "loss-recovery", "--topo", "lan", "--out", str(tmp_path / "run"),
                             "--json"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # the run is in the middle of its transfers
    assert proc.poll() is None, "the run ended before netbed clean could be tried on it"
    res = netbed("clean")
    assert res.returncode == 0
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, f"the live run was disturbed by netbed clean: {err}{out}"


def test_clean_touches_nothing_netbed_did_not_create():
    # an unrelated process that merely looks like ours (a shell named like a Mininet one)
    decoy = subprocess.Popen(["bash", "-c", "exec -a mininet:h1 sleep 30"], env={**os.environ, "NETBED_RUN": ""})
    try:
        assert netbed("clean").returncode == 0
        assert decoy.poll() is None, "netbed clean killed a process it did not start"
    finally:
        decoy.kill()
        decoy.wait()


def test_clean_as_a_command_explains_itself():
    res = netbed("clean")
    assert res.returncode == 0
    assert res.stdout.strip().startswith(("nothing to clean", "reclaimed"))
