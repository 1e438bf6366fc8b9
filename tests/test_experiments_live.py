"""The experiments, live: real programs on real emulated networks, asserted on real captures."""
import json

import pytest
from conftest import netbed

from netbed import runner, verdict
from netbed.experiment import get

pytestmark = pytest.mark.netbed


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


def test_handshake_check_fails_on_a_capture_without_the_connection(tmp_path):
    result = runner.run_experiment(get("handshake"), "lan", tmp_path / "run")
    assert result.passed
    # replace the client-side capture with an empty one: the re-check must fail, not crash
    pcap = tmp_path / "run" / "client.pcap"
    pcap.write_bytes(pcap.read_bytes()[:24])
    again = verdict.check_dir(tmp_path / "run")
    assert not again.passed


def test_without_bpftrace_states_come_from_sampling_the_socket_tables(tmp_path):
    import os

    res = netbed("run", "close-client", "--topo", "lan", "--out", str(tmp_path / "ss"),
                 env={**os.environ, "NETBED_STATES": "ss"})
    result = json.loads((tmp_path / "ss" / "result.json").read_text())
    assert result["states_source"] == "ss", res.stderr
    client = [s["state"] for s in result["states"]["client"]]
    server = [s["state"] for s in result["states"]["server"]]
    assert client[-1] == "TIME_WAIT" and "CLOSE_WAIT" in server, (client, server)
    manifest = json.loads((tmp_path / "ss" / "manifest.json").read_text())
    assert manifest["states_source"] == "ss"
