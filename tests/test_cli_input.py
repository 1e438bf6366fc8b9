"""Bad input: one clear line, exit code 2, no traceback, nothing created."""
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import NETBED, REPO, netbed


@pytest.mark.parametrize("args, message", [
    (["topo", "ring"], "unknown topology 'ring': choose one of lan, multi-lan, wan"),
    (["topo", "lan", "--hosts", "0"], "--hosts must be between 1 and"),
    (["topo", "lan", "--hosts", "many"], "--hosts must be a whole number"),
    (["topo", "lan", "--subnet", "10.0.0.0/99"], "malformed subnet"),
    (["topo", "lan", "--routers", "3"], "topology lan takes no --routers"),
    (["topo", "wan", "--routers", "-1"], "--routers must be between 1 and"),
    (["run", "no-such-experiment"], "unknown experiment 'no-such-experiment': choose one of"),
    (["run", "handshake", "--topo", "ring"], "unknown topology"),
    (["run"], "name an experiment"),
    (["trace", "/nonexistent.pcap"], "no such file"),
    (["check", "/tmp"], "is not a netbed run folder"),
    # argparse's own errors: one line naming the subcommand, not the top level's usage first
    (["run", "handshake", "--hosts", "0"], "netbed run: unrecognized arguments: --hosts 0 (see netbed run --help)"),
    (["topo", "lan", "--switch", "foo"], "netbed topo: argument --switch: invalid choice: 'foo'"),
    (["trace"], "netbed trace: the following arguments are required: pcap"),
    (["frobnicate"], "netbed: argument COMMAND: invalid choice: 'frobnicate'"),
])
def test_bad_input_gives_one_line_and_exit_code_2(args, message):
    res = netbed(*args)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr


def test_trace_on_a_non_pcap_file_is_one_line(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("this is not a capture\n")
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    for path in (bad, empty, Path("/dev/null")):
        for json_flag in ([], ["--json"]):
            res = netbed("trace", str(path), *json_flag)
            assert res.returncode == 2 and "Traceback" not in res.stderr
            assert len(res.stderr.strip().splitlines()) == 1
            assert res.stdout == ""  # no table head, no half a JSON document before the error


@pytest.mark.netbed
def test_not_root_is_told_to_use_sudo():
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    res = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *NETBED, "topo", "lan"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == "netbed: building emulated networks needs root: run it with sudo"


@pytest.mark.netbed
@pytest.mark.parametrize("args", [["run", "handshake"], ["run", "handshake", "--json"], ["run", "--all"]])
def test_not_root_in_a_checkout_whose_runs_is_roots(args, tmp_path):
    """The first command a user types, without sudo, where runs/ is root's: one line, not a traceback."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    runs = tmp_path / "runs"
    runs.mkdir()  # root's, 0755: nobody may not make a run folder in it
    tmp_path.chmod(0o755)
    res = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *NETBED, *args],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.strip() == "netbed: building emulated networks needs root: run it with sudo"
    assert res.stdout == "" and list(runs.iterdir()) == []


def test_a_run_folder_that_cannot_be_made_is_one_line():
    from netbed.errors import NetbedError
    from netbed.runner import new_run_dir

    with pytest.raises(NetbedError, match="cannot make run folder /proc/sys/netbed-runs/"):
        new_run_dir(Path("/proc/sys/netbed-runs"), "handshake", "lan")  # even root cannot mkdir there


def test_list_names_each_experiment_with_its_claim_and_topologies():
    import json

    res = netbed("list", "--json")
    assert res.returncode == 0, res.stderr
    exps = {e["name"]: e for e in json.loads(res.stdout)["experiments"]}
    assert {"handshake", "close-client"} <= set(exps)
    for e in exps.values():
        assert e["claim"] and e["gloss"] and e["topologies"]
        assert "netbed" in e and "forcing" in e
    assert exps["simultaneous-close"]["netbed"].startswith("netbed's extension")
    assert "TCP_QUICKACK" in exps["close-client"]["forcing"] and "Content-Length" in exps["close-server"]["forcing"]


def test_list_shows_netbeds_own_words_and_the_forcing_apart_from_the_lecture():
    res = netbed("list")
    assert res.returncode == 0, res.stderr
    block = res.stdout.split("simultaneous-close", 1)[1].split("\n\n")[0]
    lines = [line.strip() for line in block.splitlines()]
    lecture = next(line for line in lines if line.startswith("lecture: 「"))
    assert "extension" not in lecture
    assert any(line.startswith("netbed (not the lecture): netbed's extension") for line in lines)
    assert any(line.startswith("forced: each host's outgoing queue is held") for line in lines)


@pytest.mark.netbed
def test_a_missing_tool_is_named_with_what_to_do(tmp_path):
    """PATH holds every tool but tcpdump: one line that names it and the fix, exit 2, nothing built."""
    import os

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mnexec", "ip", "ss", "brctl", "ifconfig", "ping", "unshare", "nsenter", "tc", "iptables"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    res = netbed("run", "handshake", env={**os.environ, "PATH": str(bin_dir)})
    assert res.returncode == 2
    assert res.stderr.strip() == "netbed: tcpdump is missing: run `sudo make setup` (Debian package tcpdump)"
