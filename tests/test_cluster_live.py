"""netbed on Mininet Cluster Edition, over emulated servers (`netbed cluster up`): each a namespace
with its own sshd, reached over ssh like a real machine. Everything goes through the CLI a user types."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import NETBED, REPO, netbed

pytestmark = [pytest.mark.netbed, pytest.mark.cluster]  # run alone: make test-cluster

KEY = "/run/netbed-cluster/id_ed25519"
KNOWN = "/run/netbed-cluster/known_hosts"


def ssh(server: str, command: str) -> str:
    return subprocess.run(["ssh", "-i", KEY, "-o", f"UserKnownHostsFile={KNOWN}", "-o", "BatchMode=yes",
                           f"root@{server}", command], capture_output=True, text=True, timeout=60).stdout


def emulated_leftovers() -> list[str]:
    """Whatever of an emulated cluster exists: its namespaces, bridge, veths, sshds."""
    left = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
            if n.startswith("nbc-")]
    left += [line.split(":")[1].strip() for line in
             subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()
             if ": nbc-" in line]
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"/run/netbed-cluster/" in (proc / "cmdline").read_bytes():
                left.append(f"process {proc.name}")
        except OSError:
            continue
    return left


def test_cluster_up_status_down_leaves_nothing():
    assert not emulated_leftovers(), "an emulated cluster is up already"
    up = netbed("cluster", "up", "2")
    assert up.returncode == 0, up.stderr
    servers = up.stdout.strip().split(",")
    try:
        assert len(servers) == 2
        status = netbed("cluster", "status")
        assert status.returncode == 0 and status.stdout.count(" up") == 2, status.stdout
        # each server is its own machine as far as ssh shows: its hostname, its PID namespace (sshd is
        # pid 1 there), its own interfaces — and sudo works without a password
        for k, server in enumerate(servers, 1):
            out = ssh(server, "hostname; cat /proc/1/comm; ip -o -4 addr show eth0; sudo -n true && echo sudo")
            assert out.split()[0] == f"nbc-s{k}" and out.split()[1] == "sshd" and server in out and "sudo" in out
        assert netbed("cluster", "up", "2").returncode == 2  # one cluster at a time, said in one line
    finally:
        down = netbed("cluster", "down")
    assert down.returncode == 0, down.stderr
    assert emulated_leftovers() == []
    assert netbed("cluster", "status").returncode == 0  # nothing up, nothing dead


def three_servers():
    """Three emulated servers for one test module (their addresses, as `--cluster` takes them), taken down
    after the module's last test and checked to leave nothing behind."""
    up = netbed("cluster", "up", "3")
    assert up.returncode == 0, up.stderr
    try:
        yield up.stdout.strip()
    finally:
        netbed("cluster", "down")
        assert emulated_leftovers() == []


cluster = pytest.fixture(scope="module", name="cluster")(three_servers)


def server_state(servers: str) -> dict[str, str]:
    """On each server: the run-marked processes and the links of its root namespace."""
    return {s: ssh(s, "grep -lz NETBED_RUN= /proc/[0-9]*/environ 2>/dev/null | grep -v self | wc -l; "
                      "ip -o link | cut -d: -f2") for s in servers.split(",")}


def test_topo_pingall_across_servers(cluster):
    before = server_state(cluster)
    out = netbed("topo", "lan", "--hosts", "6", "--cluster", cluster, "--placement", "roundrobin",
                 "--test", "pingall")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASS (0% dropped (30/30 received))" in out.stdout
    held = [line for line in out.stdout.splitlines() if line.strip().startswith("10.251.")]
    assert len(held) == 3, out.stdout  # every server holds nodes: pings crossed the tunnels
    assert server_state(cluster) == before


def test_run_handshake_client_and_server_on_different_servers(cluster, tmp_path):
    run_dir = tmp_path / "run"
    out = netbed("run", "handshake", "--topo", "multi-lan", "--cluster", cluster, "--out", str(run_dir), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["passed"]
    manifest = json.loads((run_dir / "manifest.json").read_text())["cluster"]
    facts = json.loads((run_dir / "evidence.json").read_text())["facts"]
    client, server = facts["client_host"], facts["server_host"]
    # where they ran, as the servers themselves answer (their UTS hostname), not as netbed placed them
    assert manifest["uts_hostname"][client] != manifest["uts_hostname"][server]
    assert netbed("check", str(run_dir)).returncode == 0


def test_unreachable_server_is_one_line_and_builds_nothing(cluster):
    before = server_state(cluster)
    first = cluster.split(",")[0]
    out = netbed("topo", "lan", "--hosts", "2", "--cluster", f"{first},10.251.0.250", timeout=120)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "cannot log in to root@10.251.0.250" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert server_state(cluster) == before
    assert not list(Path("/run/netbed").glob("cl-*"))


def test_wrong_key_is_one_line(cluster, tmp_path):
    from netbed.errors import NetbedError
    from netbed.network.cluster import ClusterSpec, ClusterTestbed
    from netbed.topologies import build

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    spec = ClusterSpec(cluster.split(","), user="root",
                       ssh_options=["-i", str(tmp_path / "k"), "-o", "IdentitiesOnly=yes",
                                    "-o", f"UserKnownHostsFile={KNOWN}"])
    with pytest.raises(NetbedError, match="Permission denied"):
        ClusterTestbed(build("lan"), cluster=spec).start()


def test_sigkilled_run_is_reclaimed_on_every_server_by_netbed_clean(cluster):
    before = server_state(cluster)
    proc = subprocess.Popen([*NETBED, "topo", "lan", "--hosts", "4", "--cluster", cluster, "--placement",
                             "roundrobin", "--test", "none", "--cli"], cwd=REPO, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        while "built in" not in (line := proc.stdout.readline()):
            assert line, "netbed exited before the network was built"
        during = server_state(cluster)
        assert during != before  # the run's shells are on the servers
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    clean = netbed("clean")
    assert clean.returncode == 0, clean.stderr
    assert "reclaimed cluster run" in clean.stdout, clean.stdout
    assert server_state(cluster) == before


def test_sabotage_a_cut_tunnel_fails_pingall(cluster):
    """The pingall above can fail: cut one host's tunnel on the switch's server and the pings across it
    are lost (so a PASS there means frames crossed the VXLAN tunnels)."""
    from netbed import topo_cli
    from netbed.cluster_lab import cluster_spec
    from netbed.network.cluster import ClusterTestbed
    from netbed.topologies import build

    with ClusterTestbed(build("lan", hosts="4"), cluster=cluster_spec(cluster, "roundrobin")) as tb:
        switch_server = tb.placement["s1"]
        remote = next(h.name for h in tb.topology.hosts if tb.placement[h.name] != switch_server)
        port = next(i.name for i in tb["s1"].intfList() if i.link and remote in (i.link.intf1.node.name,
                                                                                 i.link.intf2.node.name))
        assert "vxlan" in tb["s1"].cmd(f"ip -d link show {port}")  # it is a tunnel end
        tb["s1"].cmd(f"ip link del {port}")
        passed, text = topo_cli.reachability(tb, "pingall")
    assert not passed and "no answer" in text, text
