"""A root without the privileges emulation needs (a container started without --privileged) is told
so in one line, before anything is created."""
from __future__ import annotations

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
