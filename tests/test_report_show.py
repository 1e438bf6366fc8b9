"""`netbed show DIR` and the ladder files of a run folder, on a run folder written by hand (no network)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from pcapbuild import Conversation, write_pcap

from netbed import runner, verdict
from netbed.cli import main
from netbed.experiment import Evidence
from netbed.report.folder import LADDER_SVG, LADDER_TEXT, ladder_files

T0 = 1_700_000_000.0
CLIENT, SERVER = ("10.0.0.1", 45000), ("10.0.0.3", 9000)
NETNS = {"h1": 4026531001, "h3": 4026531003}
# bpftrace lines (see netbed/capture/states.bt): ms after T0, host, socket, old and new Linux state numbers
KERNEL = [(-0.1, "h1", 7, 2), (1.5, "h1", 2, 1), (4.9, "h1", 1, 4), (6.5, "h1", 4, 5), (7.5, "h1", 5, 7),
          (2.5, "h3", 10, 3), (2.6, "h3", 3, 1), (5.5, "h3", 1, 8), (6.9, "h3", 8, 9), (8.5, "h3", 9, 7)]


def write_run(folder: Path, experiment: str = "handshake") -> Path:
    """A run folder as `netbed run handshake --topo lan` leaves it: pcaps, states log, evidence.json.

    The client connects, sends 100 bytes and closes first (a four-way close); h1 still lists the
    socket in TIME-WAIT afterwards, so its timeline ends in TIME_WAIT seen by ss.
    """
    folder.mkdir(parents=True, exist_ok=True)
    c = Conversation(client_addr=CLIENT, server_addr=SERVER, start=T0)
    c.handshake()
    c.client("P.", 100)
    c.server(".")
    c.client("F.")
    c.server(".")
    c.server("F.")
    c.client(".")
    for point in ("client", "server"):
        write_pcap(folder / f"{point}.pcap", c.packets)
    lines = ["Attaching 2 probes...", "READY"]
    for ms, host, old, new in KERNEL:
        local, remote = (CLIENT, SERVER) if host == "h1" else (SERVER, CLIENT)
        ns = round((1 + ms / 1000) * 1e9)
        lines.append(f"S {ns} {NETNS[host]} ffff{host} 4 {local[0]} {local[1]} {remote[0]} {remote[1]} {old} {new}")
    (folder / "states.txt").write_text("\n".join(lines) + "\n")
    evidence = Evidence(
        folder, experiment, {"name": "lan", "params": {"hosts": 3}, "segments": [], "nodes": []},
        [{"point": "client", "node": "h1", "interface": "h1-eth0", "file": "client.pcap"},
         {"point": "server", "node": "h3", "interface": "h3-eth0", "file": "server.pcap"}],
        {"client": {"role": "client", "local": list(CLIENT), "peer": list(SERVER), "node": "h1", "exit": 0},
         "server": {"role": "server", "local": list(SERVER), "peer": list(CLIENT), "node": "h3", "exit": 0}},
        {"client_host": "h1", "server_host": "h3", "ip_local_port_range": [32768, 60999],
         "netns": {str(ino): host for host, ino in NETNS.items()},
         "sockets_after": {"h1": [f"TIME-WAIT 0 0 {CLIENT[0]}:{CLIENT[1]} {SERVER[0]}:{SERVER[1]}"], "h3": []},
         "states": {"source": "bpftrace", "file": "states.txt", "clock_offset": T0 - 1, "error": None}})
    evidence.save()
    return folder


def test_show_rechecks_a_saved_run_and_prints_verdict_ladder_and_states(tmp_path, capsys):
    run = write_run(tmp_path / "run")
    assert main(["show", str(run)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS  handshake on lan  (re-checked from the saved captures)\n")
    assert "  ✓ handshake (client side): 'complete'" in out
    assert "captured at: client side (h1-eth0)" in out
    assert "also captured at (for hop facts): server side (h3-eth0)" in out
    assert sum(">|" in line or "|<" in line for line in out.splitlines()) == 9
    assert "client: SYN_SENT → ESTABLISHED → FIN_WAIT_1 → FIN_WAIT_2 → TIME_WAIT*" in out
    assert "server: SYN_RECEIVED → ESTABLISHED → CLOSE_WAIT → LAST_ACK → CLOSED" in out
    assert not (run / "result.json").exists()  # show only reads


def test_show_json_has_the_check_shape_plus_ladder_rows_and_states(tmp_path, capsys):
    run = write_run(tmp_path / "run")
    assert main(["show", str(run), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {"experiment", "topology", "passed", "assertions", "artifacts"} <= set(shown)
    assert shown["verdict_from"] == "re-check" and shown["states_source"] == "bpftrace"
    rows = shown["ladder"]["rows"]
    assert [r["flags"] for r in rows if r["kind"] == "segment"][:3] == ["S", "S.", "."]
    assert [r["state"] for r in rows if r["kind"] == "state" and r["side"] == "client"] == [
        s["state"] for s in shown["states"]["client"]]


def test_show_falls_back_to_the_saved_verdict_when_the_experiment_is_not_installed(tmp_path, capsys):
    run = write_run(tmp_path / "run", experiment="retired-experiment")
    (run / "result.json").write_text(json.dumps({
        "experiment": "retired-experiment", "topology": "lan", "passed": False,
        "assertions": [{"name": "the old claim", "passed": False, "detail": "expected 1, observed 2"}],
        "artifacts": {"dir": str(run)}}))
    assert main(["show", str(run)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL  retired-experiment on lan  (as saved in result.json")
    assert "  ✗ the old claim: expected 1, observed 2" in out
    assert "captured at: client side (h1-eth0)" in out  # the ladder needs only the captures


@pytest.mark.parametrize("damage", ["no evidence", "no verdict anywhere", "pcap missing", "evidence not JSON"])
def test_a_folder_that_cannot_be_shown_is_a_one_line_error(tmp_path, capsys, damage):
    run = tmp_path / "run"
    if damage == "no evidence":
        run.mkdir()
    elif damage == "no verdict anywhere":
        write_run(run, experiment="retired-experiment")
    elif damage == "pcap missing":
        write_run(run)
        (run / "client.pcap").unlink()
    else:
        write_run(run)
        (run / "evidence.json").write_text("{not json")
    assert main(["show", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netbed: ") and err.count("\n") == 1


def test_write_result_puts_the_same_ladder_in_text_and_svg(tmp_path):
    run = write_run(tmp_path / "run")
    runner.write_result(run, verdict.check_dir(run))
    text = (run / "ladder.txt").read_text()
    root = ET.fromstring((run / "ladder.svg").read_bytes())
    svg_arrows = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if "arrow" in g.get("class", "").split()]
    assert len(svg_arrows) == sum(">|" in line or "|<" in line for line in text.splitlines()) == 9
    assert "TIME_WAIT*" in text
    assert ladder_files(Evidence.load(run)) == {LADDER_TEXT: text, LADDER_SVG: (run / "ladder.svg").read_text()}


def test_a_run_named_twice_is_reported_once(tmp_path, capsys):
    """`netbed report runs/ runs/A` (or A through a symlink) lists A once, where it was first named."""
    from netbed.report.folder import run_dirs

    a = write_run(tmp_path / "runs" / "20261125-100000-handshake-lan")
    b = write_run(tmp_path / "runs" / "20261125-100001-handshake-lan")
    (tmp_path / "link").symlink_to(a)
    assert run_dirs([tmp_path / "runs", a, tmp_path / "link"]) == [a, b]
    assert run_dirs([b, tmp_path / "runs"]) == [b, a]
    assert main(["report", str(tmp_path / "runs"), str(a), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["results"]) == 2
