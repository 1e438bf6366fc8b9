"""Real emulated networks: every topology answers pingall, routed paths cross their routers."""
import re

import pytest
from conftest import netbed

pytestmark = pytest.mark.netbed


@pytest.mark.parametrize("args", [
    ["lan"],
    ["lan", "--hosts", "5"],
    ["multi-lan"],
    ["multi-lan", "--lans", "3", "--hosts", "2"],
    ["wan"],
    ["wan", "--routers", "4", "--hosts", "1"],
])
def test_every_topology_passes_pingall(args):
    res = netbed("topo", *args, "--test", "pingall")
    assert res.returncode == 0, res.stdout + res.stderr
    # each phase with its time: the build, the test, the teardown
    assert re.search(r"switch(es)? built in \d+\.\d\d s$", res.stdout, re.M), res.stdout
    assert re.search(r"^test pingall: PASS \(.*\) in \d+\.\d\d s$", res.stdout, re.M), res.stdout
    assert re.search(r"^teardown in \d+\.\d\d s; total \d+\.\d\d s$", res.stdout, re.M), res.stdout


def test_ping_ends_crosses_a_long_router_chain():
    res = netbed("topo", "wan", "--routers", "6", "--test", "ping-ends")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0% dropped (1/1 received)" in res.stdout


def test_topology_scripts_run_on_their_own_like_mn():
    import subprocess
    import sys

    from conftest import REPO

    res = subprocess.run([sys.executable, "topologies/lan.py", "--hosts", "4", "--test", "pingall"],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "0% dropped (12/12 received)" in res.stdout


def test_hosts_have_no_route_to_the_outside_world():
    from netbed import topologies
    from netbed.network import Testbed

    with Testbed(topologies.build("multi-lan")) as tb:
        routes = tb.run("h1", ["ip", "route"]).stdout
        assert "default via 10.0.1.254" in routes
        # the gateway itself knows only the emulated subnets: the outside is unreachable
        router_routes = tb.run("r1", ["ip", "route"]).stdout
        assert "default" not in router_routes
        assert not tb.ping("h1", "192.0.2.1", wait=0.5)  # TEST-NET-1: never routed anywhere


def test_bridge_netfilter_is_off_inside_the_switch_and_untouched_outside():
    from pathlib import Path

    from netbed import topologies
    from netbed.network import Testbed

    knob = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    before = knob.read_text() if knob.exists() else None
    with Testbed(topologies.build("lan")) as tb:
        inside = tb.run("s1", ["cat", str(knob)], check=False).stdout.strip()
        if before is not None:
            assert inside == "0"
        assert (knob.read_text() if knob.exists() else None) == before


def test_the_summary_line_reads_as_english():
    res = netbed("topo", "multi-lan", "--test", "none")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("multi-lan: 4 hosts, 1 router, 2 switches built in "), res.stdout
    res = netbed("topo", "lan", "--hosts", "1", "--test", "none")
    assert res.stdout.startswith("lan: 1 host, 0 routers, 1 switch built in "), res.stdout
    res = netbed("topo", "--topo", "single,1", "--test", "none")  # Mininet's built-in, Mininet's build
    assert res.stdout.startswith("single,1: 1 host, 0 routers, 1 switch built by Mininet in "), res.stdout
