"""bench/compare_switches.py: the catalog's verdicts on two switches, assertion by assertion.

Its comparison is tested on hand-made results (each kind of difference it must see, and the run-made
values it must not call a difference), on real runs made twice on Linux bridges (ports, sequence
numbers and timings differ from run to run; the verdicts and the lecture's values do not), and its
refusal of `ovs` on a kernel without the openvswitch module, in one line before anything runs."""
from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, netbed

SCRIPT = REPO / "bench" / "compare_switches.py"
spec = importlib.util.spec_from_file_location("compare_switches", SCRIPT)
cs = importlib.util.module_from_spec(spec)
sys.modules["compare_switches"] = cs  # dataclasses look their module up there
spec.loader.exec_module(cs)

RESULT = {
    "experiment": "handshake", "topology": "lan", "passed": True,
    "assertions": [
        {"name": "handshake (client side)", "passed": True, "detail": "'complete'", "kind": "equal",
         "expected": "complete", "observed": "complete"},
        {"name": "the same two ports in both captures", "passed": True, "detail": "(41554, 9000)", "kind": "equal",
         "expected": [41554, 9000], "observed": [41554, 9000]},
        {"name": "the client's port is ephemeral", "passed": True, "detail": "41554 in [32768, 60999]",
         "kind": "within", "expected": [32768, 60999], "observed": 41554},
        {"name": "the client is ESTABLISHED after the SYN-ACK", "passed": True, "detail": "+26 µs"},
    ],
}


def _folder(root: Path, name: str, results: list[dict]) -> Path:
    folder = root / name
    for i, result in enumerate(results):
        run = folder / f"20261125-1200{i:02d}-{result['experiment']}-{result['topology']}"
        run.mkdir(parents=True)
        (run / "result.json").write_text(json.dumps(result))
    return folder


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO, timeout=60)


def _other_run() -> dict:
    """The same run made again: another ephemeral port, another µs figure."""
    other = copy.deepcopy(RESULT)
    other["assertions"][1].update(detail="(50001, 9000)", expected=[50001, 9000], observed=[50001, 9000])
    other["assertions"][2].update(detail="50001 in [32768, 60999]", observed=50001)
    other["assertions"][3]["detail"] = "+31 µs"
    return other


def test_run_made_values_are_no_difference(tmp_path):
    a = _folder(tmp_path, "bridge", [RESULT])
    b = _folder(tmp_path, "ovs", [_other_run()])
    res = _run("--compare", str(a), str(b))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "handshake   lan       PASS    PASS  4           same" in res.stdout, res.stdout
    assert "1/1 runs the same on bridge and ovs, assertion by assertion; 0 differences" in res.stdout


@pytest.mark.parametrize("change, line", [
    (lambda r: r.update(passed=False) or r["assertions"][0].update(passed=False, observed="none", detail="'none'"),
     "handshake on lan: assertion: handshake (client side): bridge PASS ('complete'), ovs FAIL ('none')"),
    (lambda r: r["assertions"][0].update(observed="half"),  # same verdict, the lecture's value differs
     'handshake on lan: observed: handshake (client side): bridge observed "complete", ovs observed "half"'),
    (lambda r: r["assertions"].pop(3),
     "handshake on lan: assertions: only on bridge: ['the client is ESTABLISHED after the SYN-ACK']; only on ovs: -"),
    (lambda r: r.update(topology="wan"), "handshake on lan: missing: no run on ovs"),
    (lambda r: r.update(passed=False), "handshake on lan: verdict: bridge PASS, ovs FAIL"),
])
def test_each_kind_of_difference_is_seen_and_exits_1(tmp_path, change, line):
    other = _other_run()
    change(other)
    res = _run("--compare", str(_folder(tmp_path, "bridge", [RESULT])), str(_folder(tmp_path, "ovs", [other])))
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"  {line}" in res.stdout.splitlines(), res.stdout


def test_a_run_that_lost_fidelity_is_marked_beside_its_verdict(tmp_path):
    other = _other_run()
    other["fidelity"] = {"kept": False, "reasons": ["timers woke late"], "record": {}}
    res = _run("--compare", str(_folder(tmp_path, "bridge", [RESULT])), str(_folder(tmp_path, "ovs", [other])))
    assert res.returncode == 0, res.stdout  # the same verdicts: marked, not a difference
    assert "handshake   lan       PASS    PASS*  4           same" in res.stdout, res.stdout
    assert "* the run's fidelity was lost (the machine did not keep up)" in res.stdout


def test_bad_folders_are_one_line_and_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    for args, message in ((["--compare", str(tmp_path / "none"), str(tmp_path)],
                           f"{tmp_path / 'none'}: no such folder of run folders"),
                          (["--compare", str(tmp_path / "empty"), str(tmp_path)],
                           f"{tmp_path / 'empty'}: no run folder with a result.json in it")):
        res = _run(*args)
        assert res.returncode == 2 and res.stderr == f"compare-switches: {message}\n" and res.stdout == "", res


def test_ovs_is_refused_in_one_line_where_the_kernel_lacks_openvswitch(tmp_path, monkeypatch, capsys):
    from netbed import preflight

    monkeypatch.setattr(preflight, "kernel_has_module", lambda name: False)
    assert cs.main(["--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("compare-switches: --switch ovs: this kernel (") and err.count("\n") == 1, err
    assert err.rstrip().endswith("has no openvswitch module — use --switch bridge (the Vagrant lab's kernel has it)")
    assert not (tmp_path / "cmp").exists()  # refused before any run


# run-made values of every sort: ports, initial sequence numbers (also in cross-lan's per-hop SYN), timings
EXPERIMENTS = (("handshake", "lan"), ("ephemeral-restart", "lan"), ("loss-recovery", "lan"), ("time-wait", "lan"),
               ("cross-lan", "multi-lan"))


@pytest.mark.netbed
def test_two_real_runs_on_linux_bridges_compare_the_same(tmp_path):
    """Real runs differ in ports, sequence numbers and timings; the comparison must call them the same."""
    for label in ("1-bridge", "2-bridge"):
        for exp, topo in EXPERIMENTS:
            res = netbed("run", exp, "--topo", topo, "--out", str(tmp_path / label / exp))
            assert res.returncode == 0, res.stdout + res.stderr
    seen = [json.loads((tmp_path / label / "handshake" / "result.json").read_text()) for label in ("1-bridge",
                                                                                                    "2-bridge")]
    ladders = [next(a["observed"] for a in r["assertions"] if a.get("kind") == "ladder") for r in seen]
    assert ladders[0] != ladders[1]  # the runs really differ (random initial sequence numbers)
    res = _run("--compare", str(tmp_path / "1-bridge"), str(tmp_path / "2-bridge"))
    assert res.returncode == 0, res.stdout
    assert f"{len(EXPERIMENTS)}/{len(EXPERIMENTS)} runs the same on 1-bridge and 2-bridge" in res.stdout
    # sabotage: the same real result with one lecture value changed is a difference
    path = tmp_path / "2-bridge" / "handshake" / "result.json"
    data = json.loads(path.read_text())
    first = next(a for a in data["assertions"] if a.get("kind") == "equal" and isinstance(a["expected"], str))
    first["observed"] = first["observed"] + "?"
    path.write_text(json.dumps(data))
    res = _run("--compare", str(tmp_path / "1-bridge"), str(tmp_path / "2-bridge"))
    assert res.returncode == 1 and f"handshake on lan: observed: {first['name']}" in res.stdout, res.stdout
