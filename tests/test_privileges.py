"""A root without the privileges emulation needs (a container started without --privileged) is told
so in one line, before anything is created."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netbed.errors import NetbedError
from netbed.privileges import missing_capabilities, privilege_problem, require_privileges

FULL_ROOT = "Name:\tpython3\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\n"
DOCKER_DEFAULT = "Name:\tpython3\nCapEff:\t00000000a80425fb\n"  # docker run without --privileged


def test_full_root_misses_no_capability():
    assert missing_capabilities(FULL_ROOT) == []


def test_docker_default_capabilities_lack_net_admin_and_sys_admin():
    assert missing_capabilities(DOCKER_DEFAULT) == ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]


def test_missing_capabilities_are_named_with_the_docker_flag_that_grants_them():
    problem = privilege_problem(DOCKER_DEFAULT, probe=lambda: pytest.fail("probed despite missing capabilities"))
    assert problem is not None and "\n" not in problem
    assert "CAP_NET_ADMIN, CAP_SYS_ADMIN" in problem and "docker run --privileged" in problem


def test_a_refused_network_namespace_is_reported_even_with_every_capability():
    # seccomp or an LSM can refuse unshare() although the capability bits are all set
    problem = privilege_problem(FULL_ROOT, probe=lambda: "unshare: unshare failed: Operation not permitted")
    assert problem is not None and "\n" not in problem
    assert "cannot create a network namespace (unshare: unshare failed: Operation not permitted)" in problem


def test_full_root_that_can_create_namespaces_has_no_problem():
    assert privilege_problem(FULL_ROOT, probe=lambda: None) is None


def test_require_privileges_raises_the_one_line_netbed_error(monkeypatch):
    monkeypatch.setattr("netbed.privileges.privilege_problem", lambda: "root here lacks CAP_NET_ADMIN")
    with pytest.raises(NetbedError, match="lacks CAP_NET_ADMIN") as err:
        require_privileges()
    assert err.value.exit_code == 2


def test_status_without_capability_line_is_a_bug_not_a_verdict():
    with pytest.raises(ValueError):
        missing_capabilities("Name:\tpython3\n")


# -- partial privileges, as a user meets them -------------------------------------------------------

DOCKER_CAP_ADD = f"Name:\tpython3\nCapEff:\t{0xa80425fb | 1 << 12 | 1 << 13 | 1 << 21:016x}\n"  # + NET_ADMIN, SYS_ADMIN


def test_every_capability_added_but_a_read_only_proc_sys_is_one_line():
    # docker run --cap-add NET_ADMIN,SYS_ADMIN,NET_RAW without --privileged: the bits are there, /proc/sys is not
    assert missing_capabilities(DOCKER_CAP_ADD) == []
    problem = privilege_problem(DOCKER_CAP_ADD, probe=lambda: pytest.fail("probed despite read-only sysctls"),
                                sysctls_read_only=lambda: True)
    assert problem is not None and "\n" not in problem
    assert problem.startswith("/proc/sys is read-only here") and "--privileged" in problem


def test_a_root_without_setgid_is_caught_since_tcpdump_needs_it():
    problem = privilege_problem(f"CapEff:\t{0x1ffffffffff & ~(1 << 6):016x}\n", probe=lambda: None,
                                sysctls_read_only=lambda: False)
    assert problem is not None and "lacks CAP_SETGID" in problem


_READ_ONLY_PROC_SYS = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                       'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$@"', "sh"]

# How each partial privilege is made for real: a private mount namespace, or a smaller bounding set
# (the capability then leaves root's effective set at exec, as in a container that never had it).
PARTIAL = {
    "read-only /proc/sys": (_READ_ONLY_PROC_SYS, "/proc/sys is read-only here"),
    "no CAP_NET_ADMIN": (["capsh", "--drop=cap_net_admin", "--", "-c", 'exec "$0" "$@"'], "lacks CAP_NET_ADMIN"),
    "no CAP_SETGID": (["capsh", "--drop=cap_setgid", "--", "-c", 'exec "$0" "$@"'], "lacks CAP_SETGID"),
}


@pytest.mark.netbed
@pytest.mark.parametrize("case", sorted(PARTIAL))
def test_partial_privileges_stop_netbed_and_the_test_session_with_one_line_before_anything_is_built(case, tmp_path):
    from conftest import IS_ROOT, NETBED, REPO, root_namespace_state
    from rootstate import differences

    if not IS_ROOT:
        pytest.skip("needs root")
    wrapper, message = PARTIAL[case]
    before = root_namespace_state()
    out = tmp_path / "run"
    res = subprocess.run([*wrapper, *NETBED, "run", "handshake", "--out", str(out)], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("netbed: ") and message in lines[0], res.stderr
    assert not out.exists(), "a run folder was made before the privilege check"
    # make test's own session stops on the same line (a pure test file: nothing to build there anyway)
    suite = subprocess.run([*wrapper, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/test_spec.py"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert suite.returncode == 2, suite.stdout + suite.stderr
    assert suite.stderr.strip().splitlines() == lines and suite.stdout.strip() == ""
    assert differences(before, root_namespace_state()) == {}


_PROBE_UNDER_SIGTERM = """
import sys
sys.path.insert(0, sys.argv[1])
from netbed.privileges import try_network_namespace
print("probing", flush=True)
try_network_namespace()
"""


@pytest.mark.netbed
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_a_signal_during_the_namespace_probe_leaves_no_probe_behind(sig, tmp_path):
    # a stand-in `unshare` that outlives any real probe, and says where it is
    (tmp_path / "unshare").write_text(f"#!/bin/sh\necho $$ > {tmp_path}/probe.pid\nexec sleep 30\n")
    (tmp_path / "unshare").chmod(0o755)
    from conftest import REPO

    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-c", _PROBE_UNDER_SIGTERM, str(REPO)], env=env, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "probing"
    pid_file = tmp_path / "probe.pid"
    deadline = time.monotonic() + 10
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    probe = int(pid_file.read_text())
    proc.send_signal(sig)
    proc.wait(timeout=10)
    try:
        if sig != signal.SIGKILL:  # netbed reaps it before it exits: gone by now, no waiting
            assert not _alive(probe), "the probe outlived netbed"
        deadline = time.monotonic() + 5  # after SIGKILL the kernel kills it (PR_SET_PDEATHSIG)
        while _alive(probe):
            assert time.monotonic() < deadline, "the probe outlived netbed"
            time.sleep(0.01)
    finally:
        if _alive(probe):  # only after a failure: the stand-in this test made
            os.kill(probe, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
