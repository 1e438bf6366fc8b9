"""Shared fixtures. Tests marked `netbed` (the pytest plugin's marker) build real emulated networks and
are skipped, with preflight's reason, where this machine cannot (not root); a root that lacks the
privileges stops the session with netbed's one line instead. The session checks that the tests leave
the root namespace exactly as it found it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rootstate import differences, network_state

REPO = Path(__file__).resolve().parents[1]
NETBED = [sys.executable, "-m", "netbed.cli"]
IS_ROOT = os.geteuid() == 0
# Every process this test session starts inherits this mark; the leftover check looks for it only,
# so another netbed run on the machine (a second pytest, a user's demo) is none of our business.
SESSION_MARK = f"NETBED_TEST_SESSION={os.getpid()}"
os.environ["NETBED_TEST_SESSION"] = str(os.getpid())


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """Root that cannot emulate (a container without --privileged, a read-only /proc/sys, a partial
    capability set) stops the session before it starts, with the very line `netbed` prints, exit 2 —
    not with a hundred failures that each hide the cause (or hang in Mininet waiting for a shell)."""
    if not IS_ROOT or config.option.help or config.option.version or config.option.collectonly:
        return None
    from netbed.privileges import privilege_problem

    problem = privilege_problem()
    if problem is None:
        return None
    print(f"netbed: {problem}", file=sys.stderr)
    return 2


def netbed(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run the netbed CLI as a user would, from the repository root (`timeout` in reference-machine
    seconds: netbed.pace stretches it on a slow machine, as netbed stretches its own waits)."""
    from netbed.pace import patience

    return subprocess.run([*NETBED, *args], capture_output=True, text=True, timeout=patience(timeout), cwd=REPO,
                          **kwargs)


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def session_processes() -> list[str]:
    """Processes (other than pytest itself and its shared state tracer) that carry this session's mark:
    left behind, if any."""
    from netbed import runner

    keep = {os.getpid(), runner.shared_tracer_pid()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in keep:
            continue
        try:
            if SESSION_MARK.encode() in (entry / "environ").read_bytes().split(b"\0"):
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{entry.name} {cmdline}")
        except OSError:
            continue
    return sorted(found)


def root_namespace_state() -> dict:
    """What a run must not change: namespaces, links, routes, addresses, firewall, sysctls, processes
    (compared as state: tests/rootstate.py leaves out lifetimes and counters, which change by themselves)."""
    return {
        **network_state(with_firewall=IS_ROOT),
        "sysctls": {k: _read("/proc/sys/" + k) for k in (
            "net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
            "net/bridge/bridge-nf-call-arptables", "net/ipv4/ip_forward", "net/ipv4/ip_local_port_range")},
        "processes": session_processes(),
        # the checkout's own runs/: a test names its --out under tmp_path, so a user's runs stay theirs
        "checkout runs/": sorted(p.name for p in (REPO / "runs").iterdir()) if (REPO / "runs").is_dir() else [],
    }


@pytest.fixture(scope="session", autouse=True)
def root_namespace_left_as_found():
    before = root_namespace_state()
    yield
    changed = differences(before, root_namespace_state())
    assert not changed, f"the test run left the root namespace changed: {changed}"


@pytest.fixture(scope="session", autouse=True)
def one_state_tracer_for_the_session(root_namespace_left_as_found):
    """bpftrace takes about a second to attach: the live tests share one (stopped before the check above)."""
    if not IS_ROOT:
        yield
        return
    from netbed import runner

    with runner.shared_state_tracer():
        yield
