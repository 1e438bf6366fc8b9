"""Two testbeds on one machine at once: same topology, same names, same addresses, no interference."""
import json
import subprocess

import pytest
from conftest import NETBED, REPO

from netbed import topologies
from netbed.network import Testbed

pytestmark = pytest.mark.netbed


def test_two_identical_testbeds_coexist_in_one_process():
    topo = topologies.build("wan", routers=2)
    with Testbed(topo) as first, Testbed(topo) as second:
        # same names and addresses, different namespaces
        assert {first.netns_inode(n.name) for n in topo.nodes}.isdisjoint(
            {second.netns_inode(n.name) for n in topo.nodes})
        for tb in (first, second):
            hosts = topo.hosts
            assert tb.ping_pairs([(a.name, b.ip) for a in hosts for b in hosts if a is not b]) == []
        # a change in one (h1 loses its default route) is invisible in the other
        first.run("h1", ["ip", "route", "del", "default"])
        assert not first.ping("h1", topo.hosts[-1].ip, wait=0.3)
        assert second.ping("h1", topo.hosts[-1].ip)


def test_two_netbed_runs_at_once_both_pass(tmp_path):
    runs = [subprocess.Popen([*NETBED, "run", name, "--topo", "wan", "--out", str(tmp_path / name), "--json"],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name in ("close-client", "simultaneous-close")]
    for proc in runs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err + out
        assert json.loads(out)["passed"]
