"""--cluster on every path a user takes besides `netbed topo` and a catalog `netbed run`: a user's own
Mininet topology (`--custom FILE --topo NAME`), `netbed lab`, claim files; the kernel's TCP states traced
on the servers that hold the two ends and joined; a server that dies mid-run. Over emulated servers
(`netbed cluster up 3`), through the CLI; run alone (make test-cluster)."""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from conftest import NETBED, REPO, netbed
from test_claims_live import class_folder, doc_table_rows, table_rows
from test_cluster_live import server_state, ssh, three_servers

pytestmark = [pytest.mark.netbed, pytest.mark.cluster]  # run alone: make test-cluster

LINUXROUTER = "from mininet.examples.linuxrouter import NetworkTopo\ntopos = {'linuxrouter': NetworkTopo}\n"


cluster = pytest.fixture(scope="module", name="cluster")(three_servers)  # this module's own three servers


@pytest.fixture
def shared_tmp():
    """A folder `nobody` can reach (claim programs run as the folder's owner), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="netbed-cluster-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_custom_topology_runs_with_client_and_server_on_different_servers(cluster, tmp_path):
    """linuxrouter.py's LinuxRouter class under RemoteMixin; roundrobin alone would put h1 and h3 together."""
    (tmp_path / "lr.py").write_text(LINUXROUTER)
    before = server_state(cluster)
    run_dir = tmp_path / "run"
    out = netbed("run", "handshake", "--custom", str(tmp_path / "lr.py"), "--topo", "linuxrouter",
                 "--cluster", cluster, "--placement", "roundrobin", "--out", str(run_dir), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["passed"]
    facts = json.loads((run_dir / "evidence.json").read_text())["facts"]
    client, server = facts["client_host"], facts["server_host"]
    assert (client, server) == ("h1", "h3")
    manifest = json.loads((run_dir / "manifest.json").read_text())["cluster"]
    assert manifest["uts_hostname"][client] != manifest["uts_hostname"][server]  # as the hosts themselves say
    # r0 forwards (its class's config ran on its server) and the topology was read back from the kernels
    topo = json.loads((run_dir / "evidence.json").read_text())["topology"]
    assert any(n["name"] == "r0" and n["kind"] == "router" for n in topo["nodes"])
    assert server_state(cluster) == before


LAB_SCRIPT = """\
h1 ping -c 1 -W 2 10.0.0.100
h3 python3 -m http.server 80 &
h3 while ! ss -ltn | grep -q ':80 '; do sleep 0.1; done
h1 curl -s -o /dev/null -w "%{http_code}\\n" 10.0.0.100
h2 curl -s -o /dev/null -w "%{http_code}\\n" 10.0.0.100
h1 sleep 2
"""


def test_lab_on_a_custom_topology_across_three_servers(cluster, tmp_path):
    (tmp_path / "lr.py").write_text(LINUXROUTER)
    (tmp_path / "session.cli").write_text(LAB_SCRIPT)
    before = server_state(cluster)
    out_dir = tmp_path / "lab"
    res = netbed("lab", "--custom", str(tmp_path / "lr.py"), "--topo", "linuxrouter", "--script",
                 str(tmp_path / "session.cli"), "--cluster", cluster, "--placement", "roundrobin",
                 "--out", str(out_dir))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 TCP connections in this session:" in res.stdout
    lab = json.loads((out_dir / "lab.json").read_text())
    nodes = lab["facts"]["cluster"]["nodes"]
    assert len({nodes["h1"], nodes["h2"], nodes["h3"]}) == 3  # each host on its own server
    conns = json.loads((out_dir / "connections.json").read_text())
    assert sorted(c["connection"]["client"].split(":")[0] for c in conns) == ["172.16.0.100", "192.168.1.100"]
    for c in conns:
        assert c["connection"]["handshake"] == "complete"
        for side in ("client", "server"):  # both kernels' states, traced on the server that held each host
            assert "ESTABLISHED" in [s["state"] for s in c["states"][side]], (side, c["states"])
    assert server_state(cluster) == before


def test_the_doc_class_grades_the_same_across_servers(cluster, shared_tmp):
    """docs/grading.md's worked example, run with --cluster: the same table as on one machine."""
    root = class_folder(shared_tmp)
    before = server_state(cluster)
    res = netbed("run", str(root), "--cluster", cluster, "--out", str(shared_tmp / "runs"), timeout=600)
    assert res.returncode == 1, res.stdout + res.stderr  # bob fails, as the doc says
    assert table_rows(res.stdout) == doc_table_rows(), res.stdout
    for run in (shared_tmp / "runs").iterdir():
        manifest = json.loads((run / "manifest.json").read_text())["cluster"]
        ends = list(manifest["uts_hostname"].values())
        assert len(ends) == 2 and ends[0] != ends[1], manifest
    assert server_state(cluster) == before


@pytest.mark.parametrize("experiment", ["close-client", "time-wait"])
def test_kernel_state_assertions_hold_across_servers(cluster, tmp_path, experiment):
    run_dir = tmp_path / "run"
    out = netbed("run", experiment, "--topo", "wan", "--cluster", cluster, "--out", str(run_dir), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout)
    states = [a for a in result["assertions"] if "states" in a["name"]]
    assert states and all(a["passed"] for a in states), states
    facts = json.loads((run_dir / "evidence.json").read_text())["facts"]
    assert facts["states"]["source"] == "bpftrace"
    where = facts["cluster"]["nodes"]
    client, server = facts["client_host"], facts["server_host"]
    assert where[client] != where[server]
    # a tracer on each of the two servers, each contributing its own host's lines
    assert set(facts["states"]["servers"]) == {where[client], where[server]}
    assert all(s["lines"] > 0 for s in facts["states"]["servers"].values()), facts["states"]

    # sabotage: without the records of the server host's server, the server-side state assertion fails
    inode = next(ino for ino, name in facts["netns"].items() if name == server)
    log = run_dir / "states.txt"
    log.write_text("".join(line for line in log.read_text().splitlines(keepends=True)
                           if line.split(" ")[2:3] != [inode]))
    again = json.loads(netbed("check", str(run_dir), "--json").stdout)
    failed = [a["name"] for a in again["assertions"] if not a["passed"]]
    assert any("server states" in name for name in failed), again["assertions"]


SLOW_CLAIM = """\
name = "slow"
topology = "multi-lan"

[server]
port = 8000
run = "python3 -m http.server {port}"

[client]
run = "bash -c 'sleep 8; exec curl -s -o /dev/null http://$0:$1/' {server_ip} {port}"
timeout = 30
"""


def _holding(servers: list[str], word: str) -> str | None:
    """The server on which a process of a run (its mark) with `word` in its command line runs."""
    probe = (f"for p in /proc/[0-9]*; do grep -qz NETBED_RUN= $p/environ 2>/dev/null && "
             f"grep -q {word} $p/cmdline 2>/dev/null && echo yes; done")
    return next((s for s in servers if "yes" in ssh(s, probe)), None)


def test_a_server_that_dies_mid_run_fails_the_run_naming_it_and_the_others_are_cleaned(cluster, shared_tmp):
    """The sshd of the server that holds the claim's server host is killed (and with it, as the init of
    that server's PID namespace, everything it ran) while the client sleeps. Runs last: its server stays dead."""
    servers = cluster.split(",")
    (shared_tmp / "slow.toml").write_text(SLOW_CLAIM)
    before = server_state(cluster)
    proc = subprocess.Popen([*NETBED, "run", str(shared_tmp / "slow.toml"), "--cluster", cluster, "--out",
                             str(shared_tmp / "run"), "--json"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while (victim := _holding(servers, "http.server")) is None:
            assert proc.poll() is None and time.monotonic() < deadline, "the claim's server never started"
            time.sleep(0.2)
        pid = next(s["pid"] for s in json.loads(Path("/run/netbed-cluster/servers.json").read_text())
                   if s["address"] == victim)
        subprocess.run(["kill", "-9", str(pid)], check=True)  # the emulated server's unshare: its sshd dies
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out + err
    result = json.loads(out)
    assert not result["passed"]
    reasons = [a["detail"] for a in result["assertions"] if not a["passed"]]
    assert any(f"server {victim} stopped answering mid-run" in r and "\n" not in r for r in reasons), reasons
    assert "Traceback" not in err
    # nothing of the run on the servers that are left, nor here
    after = server_state(",".join(s for s in servers if s != victim))
    assert after == {s: v for s, v in before.items() if s != victim}
    assert not list(Path("/run/netbed").glob("cl-*")) and not list(Path("/run/netbed").glob("*.cluster"))
    assert "reclaimed cluster run" not in netbed("clean").stdout
