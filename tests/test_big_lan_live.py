"""One LAN beyond one Linux bridge: a stack of bridges, still one broadcast domain and one subnet.

Every claim is read from the kernel: the bridge each port joins (`ip link ... master`), the route
the sender uses (`ip route get`: on-link, no gateway), the ARP entry the ping left (the far host's
real MAC), and the echo reply.
"""
from __future__ import annotations

import subprocess

import pytest
from conftest import REPO, netbed

from netbed import topologies
from netbed.network import Testbed, plan

pytestmark = pytest.mark.netbed


def _master(tb: Testbed, port: str) -> str:
    words = tb.run("s1", ["ip", "-o", "link", "show", "dev", port]).stdout.split()
    return words[words.index("master") + 1]


def _mac(tb: Testbed, host: str) -> str:
    words = tb.run(host, ["ip", "-o", "link", "show", "dev", f"{host}-eth0"]).stdout.split()
    return words[words.index("link/ether") + 1]


def assert_one_lan(tb: Testbed, near: str, far: str, far_port: str, far_bridge: str) -> None:
    far_ip = tb.topology.node(far).ip
    assert _master(tb, "s1-eth1") == "s1" and _master(tb, far_port) == far_bridge
    route = tb.run(near, ["ip", "route", "get", far_ip]).stdout
    assert f"{far_ip} dev {near}-eth0" in route and " via " not in route  # same subnet: on-link
    assert tb.ping(near, far_ip, wait=2)
    neigh = tb.run(near, ["ip", "neigh", "show", far_ip]).stdout
    assert _mac(tb, far) in neigh  # ARP crossed the stack of bridges and got the far host's answer


def test_stack_of_bridges_is_one_broadcast_domain(monkeypatch):
    monkeypatch.setattr(plan, "HOSTS_PER_BRIDGE", 4)  # 10 hosts: three bridges, as 4,096 hosts make five
    with Testbed(topologies.build("lan", hosts=10)) as tb:
        bridges = tb.run("s1", ["ip", "-o", "link", "show", "type", "bridge"]).stdout
        assert [line.split(":")[1].strip() for line in bridges.splitlines()] == ["s1", "s1-br2", "s1-br3"]
        assert_one_lan(tb, "h1", "h10", "s1-eth10", "s1-br3")
        assert_one_lan(tb, "h10", "h5", "s1-eth5", "s1-br2")
        assert [s.name for s in tb.net.switches] == ["s1"]  # Mininet sees one switch
        assert len(tb.net.get("s1").intfList()) == 11  # lo and one port per host


def test_sabotage_a_stack_without_trunks_splits_the_lan(monkeypatch):
    """The cross-bridge ping above can fail: without the trunk veths the far bridge is an island."""
    monkeypatch.setattr(plan, "HOSTS_PER_BRIDGE", 4)
    real = plan.make_plan

    def without_trunks(*args, **kwargs):
        result = real(*args, **kwargs)
        result.links = [link for link in result.links if not link.trunk]
        return result

    monkeypatch.setattr(plan, "make_plan", without_trunks)
    with Testbed(topologies.build("lan", hosts=10)) as tb:
        assert tb.ping("h1", tb.topology.node("h2").ip, wait=2)
        assert not tb.ping("h1", tb.topology.node("h10").ip, wait=1)


def test_lan_beyond_linux_bridge_port_limit():
    """1,100 hosts: more than BR_MAX_PORTS (1,024), where one bridge said `Exchange full`."""
    with Testbed(topologies.build("lan", hosts=1100)) as tb:
        assert_one_lan(tb, "h1", "h1100", "s1-eth1100", "s1-br2")


@pytest.mark.parametrize("args, words", [
    (["--hosts", "5000"], "--hosts must be between 1 and 4096"),
    (["--hosts", "200", "--test", "pingall"], "use --test ping-ends"),
    (["--hosts", "2000", "--subnet", "10.0.0.0/24"], "too small"),
])
def test_size_limits_are_one_line_before_anything_is_built(args, words):
    res = netbed("topo", "lan", *args)
    assert res.returncode == 2, res.stdout + res.stderr
    assert words in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "built in" not in res.stdout and "Traceback" not in res.stderr


def test_open_file_limit_is_checked_before_anything_is_built():
    res = subprocess.run(["prlimit", "--nofile=512:512", str(REPO / ".venv/bin/netbed"), "topo", "lan",
                          "--hosts", "1000", "--test", "none"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "open files" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "built in" not in res.stdout
