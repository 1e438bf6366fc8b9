"""The one verdict path: evidence → expectations → a typed result that result.json gives back equal.

Run folders are written by hand (test_report_show.write_run): no network, no root.
"""
from __future__ import annotations

import json

import pytest
from test_expect import Conn, Seg
from test_report_show import write_run

from netbed import verdict
from netbed.expect import Assertion, Expect, assert_passed
from netbed.experiment import Evidence
from netbed.trace.model import ACK, FIN

THREE_WAY = ["client > F. seq=f", "server > F. seq=g ack=f+1", "client > .  ack=g+1"]
FOUR_WAY = [Seg(True, FIN | ACK, 100, 500), Seg(False, ACK, 500, 101), Seg(False, FIN | ACK, 500, 101),
            Seg(True, ACK, 101, 501)]


def test_assertions_carry_expected_and_observed_as_values():
    expect = Expect()
    expect.equal("close kind", "three-way", "four-way")
    expect.equal("the SYN was sent twice, with one ISN", (2, 1), (2, 1))
    expect.within("RTO", 1.4, 0.9, 1.2)
    expect.ladder("the close", Conn(), FOUR_WAY, THREE_WAY)
    kind, twice, rto, ladder = expect.assertions
    assert (kind.kind, kind.expected, kind.observed, kind.passed) == ("equal", "three-way", "four-way", False)
    assert (twice.expected, twice.observed, twice.detail) == ([2, 1], [2, 1], "(2, 1)")  # text as Python says it
    assert (rto.kind, rto.expected, rto.observed, rto.passed) == ("within", [0.9, 1.2], 1.4, False)
    assert ladder.kind == "ladder" and ladder.expected == THREE_WAY and ladder.differing == (1, 2, 3)
    assert ladder.observed[1] == "server > .  seq=500 ack=101 len=0"


def test_an_assertion_is_printed_the_same_way_everywhere():
    expect = Expect()
    expect.equal("close kind", "three-way", "four-way")
    expect.ladder("the close", Conn(), FOUR_WAY, THREE_WAY)
    kind, ladder = expect.assertions
    assert kind.lines("  ") == ["  ✗ close kind: expected 'three-way', observed 'four-way'"]
    lines = ladder.lines("  ")
    assert lines[0] == "  ✗ the close" and all(line.startswith("      ") for line in lines[1:])
    with pytest.raises(AssertionError) as failure:
        assert_passed(expect)
    assert str(failure.value).splitlines() == kind.lines() + ladder.lines()


def test_a_result_reads_back_equal_from_its_json(tmp_path):
    run = write_run(tmp_path / "run")
    result = verdict.check_dir(run)
    result.duration, result.build_seconds = 1.5, 0.25
    result.assertions.append(Assertion("bound", False, "expected None, observed 1", "equal", None, 1))
    verdict.save(run, result)
    again = verdict.RunResult.from_json(json.loads((run / verdict.RESULT).read_text()))
    assert again == result
    assert again.assertions[-1].kind == "equal" and again.assertions[-1].expected is None


def test_enum_values_are_saved_as_their_plain_values():
    from netbed.trace.constants import CloseKind

    expect = Expect()
    expect.equal("close kind", "four-way", CloseKind("four-way"))
    (a,) = expect.assertions
    assert a.passed and type(a.observed) is str and a.observed == "four-way" and a.detail == "'four-way'"


def test_a_result_json_written_before_values_still_reads():
    old = {"experiment": "handshake", "topology": "lan", "passed": False, "artifacts": {"dir": "/x"},
           "assertions": [{"name": "close kind", "passed": False, "detail": "expected 1, observed 2"}]}
    (a,) = verdict.RunResult.from_json(old).assertions
    assert (a.kind, a.expected, a.observed, a.detail) == ("that", None, None, "expected 1, observed 2")


def test_check_evidence_takes_any_check_and_guards_it(tmp_path):
    evidence = Evidence.load(write_run(tmp_path / "run"))

    def crashes(ev, expect):
        expect.equal("something", 1, 1)
        raise KeyError("sent_sha256")

    result = verdict.check_evidence(evidence, crashes)
    assert not result.passed and [a.name for a in result.failed] == ["the check ran to its end"]
    silent = verdict.check_evidence(evidence, lambda ev, expect: None)
    assert not silent.passed and silent.failed[0].name == "the experiment asserted something"
    assert verdict.check_evidence(evidence).passed  # the experiment's own check (handshake)


def test_a_capture_that_lost_packets_fails_the_verdict(tmp_path):
    run = write_run(tmp_path / "run")
    data = json.loads((run / "evidence.json").read_text())
    data["captures"][0].update(captured=10, received=12, dropped=2)
    (run / "evidence.json").write_text(json.dumps(data))
    result = verdict.check_dir(run)
    assert not result.passed
    assert [a.name for a in result.failed] == ["the client capture kept every packet"]


def test_packets_after_the_end_of_capture_marker_are_not_the_runs(tmp_path):
    """tcpdump counted one packet more than it wrote, none dropped, its marker in the file: an IPv6 neighbour
    solicitation after the run's end (seen under load) — not a loss. Without the marker it still fails."""
    run = write_run(tmp_path / "run")
    data = json.loads((run / "evidence.json").read_text())
    data["captures"][0].update(captured=19, received=20, dropped=0, marker=True)
    (run / "evidence.json").write_text(json.dumps(data))
    kept = [a for a in verdict.check_dir(run).assertions if a.name == "the client capture kept every packet"]
    assert kept[0].passed and "1 after the end-of-capture marker" in kept[0].detail
    data["captures"][0].update(marker=False)
    (run / "evidence.json").write_text(json.dumps(data))
    assert not verdict.check_dir(run).passed
    data["captures"][0].update(captured=17, received=20, dropped=3, marker=True)  # the kernel's drops still fail
    (run / "evidence.json").write_text(json.dumps(data))
    assert not verdict.check_dir(run).passed


def test_result_of_dir_rechecks_an_installed_experiment_and_keeps_the_saved_duration(tmp_path):
    run = write_run(tmp_path / "run")
    saved = verdict.check_dir(run)
    saved.duration, saved.passed = 4.5, False  # a re-check decides the verdict anew; the duration stays
    verdict.save(run, saved)
    result, source = verdict.result_of_dir(run)
    assert source == "re-check" and result.passed and result.duration == 4.5


def test_a_broken_run_is_a_failed_result_naming_why(tmp_path):
    (tmp_path / "client.pcap").write_bytes(b"")
    result = verdict.broken_run("handshake", "lan", tmp_path, "h1: no socket reached closing")
    assert not result.passed and result.failed[0].detail == "h1: no socket reached closing"
    assert result.artifacts["pcaps"] == {"client": str(tmp_path / "client.pcap")}
