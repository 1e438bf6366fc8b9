"""The experiments, live: real programs on real emulated networks, asserted on real captures."""
import json

import pytest
from conftest import netbed

from netbed import runner
from netbed.experiment import get

pytestmark = pytest.mark.root

TOPOLOGIES = ["lan", "multi-lan", "wan"]


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("experiment", ["handshake", "close-client"])
def test_experiment_passes_on_every_topology(experiment, topology, tmp_path):
    result = runner.run_experiment(get(experiment), topology, tmp_path / "run")
    failed = [a for a in result["assertions"] if not a["passed"]]
    assert result["passed"], json.dumps(failed, indent=1, ensure_ascii=False)
    # the offline re-check of the saved folder gives the same verdict, assertion by assertion
    again = runner.check_dir(tmp_path / "run")
    assert again["assertions"] == result["assertions"]


def test_run_cli_prints_verdict_ladder_and_writes_artifacts(tmp_path):
    out = tmp_path / "hs"
    res = netbed("run", "handshake", "--topo", "wan", "--out", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("PASS  handshake on wan")
    assert "S seq=0" in res.stdout and "S. seq=0 ack=1" in res.stdout  # the ladder, relative numbers
    for name in ("client.pcap", "server.pcap", "r1.pcap", "r2.pcap", "result.json", "ladder.txt"):
        assert (out / name).is_file(), name
    result = json.loads((out / "result.json").read_text())
    assert result["passed"] and result["connections"]
    conn = result["main_connection"]
    assert conn["handshake"] == "complete" and conn["close"]["initiator"] == "client"


def test_run_json_has_the_documented_shape(tmp_path):
    res = netbed("run", "close-client", "--topo", "lan", "--out", str(tmp_path / "cc"), "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads(res.stdout)
    assert {"experiment", "topology", "passed", "assertions", "artifacts"} <= set(data)
    assert all({"name", "passed", "detail"} <= set(a) for a in data["assertions"])


def test_close_client_fails_when_the_server_closes_at_once(tmp_path, monkeypatch):
    """The key assertion bites: without the server's pause its FIN carries the ACK (three-way)."""
    exp = get("close-client")

    def hasty_run(lab):
        server = lab.server(["recv-eof", "close"])
        client = lab.client(server, ["send:1000", "close"])
        lab.wait(client, server)

    monkeypatch.setattr(exp.module, "run", hasty_run)
    result = runner.run_experiment(exp, "lan", tmp_path / "run")
    assert not result["passed"]
    kinds = {a["name"]: a for a in result["assertions"]}
    assert not kinds["close kind"]["passed"]
    assert "expected 'four-way', observed 'three-way'" in kinds["close kind"]["detail"]


def test_handshake_check_fails_on_a_capture_without_the_connection(tmp_path):
    result = runner.run_experiment(get("handshake"), "lan", tmp_path / "run")
    assert result["passed"]
    # replace the client-side capture with an empty one: the re-check must fail, not crash
    pcap = tmp_path / "run" / "client.pcap"
    pcap.write_bytes(pcap.read_bytes()[:24])
    again = runner.check_dir(tmp_path / "run")
    assert not again["passed"]
