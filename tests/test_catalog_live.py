"""Every experiment of the catalog passes on every topology it supports — and each one's key
assertion bites: a run that breaks the lecture's claim on purpose must fail, on that assertion."""
import json

import pytest
from sabotage import SABOTAGE

from netbed import runner, verdict
from netbed.experiment import catalog, get

pytestmark = pytest.mark.netbed

CASES = [(e.name, t) for e in catalog() for t in e.topologies]


@pytest.mark.parametrize("experiment, topology", CASES, ids=[f"{e}-{t}" for e, t in CASES])
def test_catalog_experiment_passes(experiment, topology, tmp_path):
    result = runner.run_experiment(get(experiment), topology, tmp_path / "run")
    failed = [a.to_json() for a in result.failed]
    assert result.passed, json.dumps(failed, indent=1, ensure_ascii=False)
    # the offline re-check of the saved folder gives the same verdict, assertion by assertion
    assert verdict.check_dir(tmp_path / "run").assertions == result.assertions
    # and result.json reads back as the very result the run returned
    assert verdict.RunResult.from_json(json.loads((tmp_path / "run" / "result.json").read_text())) == result


def test_the_catalog_covers_the_lecture():
    names = [e.name for e in catalog()]
    assert len(names) == 30 and len(set(names)) == 30
    assert {"handshake", "close-client", "close-server", "close-merged", "half-close", "close-on-exit",
            "close-unread-rst", "linger-rst", "refused", "simultaneous-close", "ports", "time-wait",
            "lan-ethernet", "cross-lan", "udp-no-handshake", "loss-recovery", "browser-server",
            "ipv6-handshake", "byte-stream", "fin-with-data", "fin-is-eof", "exit-voluntary", "privileged-ports",
            "dhcp", "ephemeral-restart", "backlog", "concurrency", "layers", "ftp",
            "bufferbloat"} == set(names)


# --- sabotage: each run breaks what its experiment demonstrates (tests/sabotage.py) -----------

SABOTAGE_CASES = [(name, sabotage, keys) for name, runs in SABOTAGE.items() for sabotage, keys in runs]


@pytest.mark.parametrize("experiment, sabotage, keys", SABOTAGE_CASES,
                         ids=[f"{name}-{sabotage.__name__}" for name, sabotage, _ in SABOTAGE_CASES])
def test_breaking_the_claim_fails_the_key_assertion(experiment, sabotage, keys, tmp_path, monkeypatch):
    exp = get(experiment)
    monkeypatch.setattr(exp.module, "run", sabotage)
    result = runner.run_experiment(exp, exp.topologies[0], tmp_path / "run")
    assert not result.passed
    by_name = {a.name: a for a in result.assertions}
    for key in keys:
        assert key in by_name, f"{key!r} not asserted; assertions: {list(by_name)}"
        assert not by_name[key].passed, by_name[key]


def test_a_run_that_breaks_down_is_a_failed_result_not_an_abort(tmp_path, monkeypatch):
    exp = get("handshake")

    def stuck(lab):
        lab.wait_socket_state(lab.server_host, "closing", 1, timeout=0.2)  # never happens

    monkeypatch.setattr(exp.module, "run", stuck)
    result = runner.run_experiment(exp, "lan", tmp_path / "run")
    assert not result.passed
    (only,) = result.assertions
    assert only.name == "the experiment ran to its end" and "reached closing" in only.detail


def test_a_state_stamped_before_the_segment_that_causes_it_fails_the_handshake(tmp_path):
    """The same saved run, its kernel state clock moved 1 ms earlier: ESTABLISHED before the SYN-ACK must fail."""
    result = runner.run_experiment(get("handshake"), "lan", tmp_path / "run")
    assert result.passed, json.dumps([a.to_json() for a in result.failed], ensure_ascii=False)
    evidence = tmp_path / "run" / "evidence.json"
    data = json.loads(evidence.read_text())
    data["facts"]["states"]["clock_offset"] -= 0.001
    evidence.write_text(json.dumps(data))
    by_name = {a.name: a for a in verdict.check_dir(tmp_path / "run").assertions}
    for side, what in (("client", "SYN-ACK"), ("server", "ACK")):
        key = f"the {side} is ESTABLISHED after the {what} reaches it ({side}-side capture)"
        assert not by_name[key].passed, by_name[key]
