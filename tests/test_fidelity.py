"""Fidelity: each run records whether the machine kept up, and timing-dependent assertions refuse to
pass on a run that lost it."""
import pytest

from netbed import verdict
from netbed.capture.fidelity import FidelityMonitor
from netbed.expect import Expect


def test_timing_assertions_pass_through_when_fidelity_was_kept():
    expect = Expect()
    with expect.timing():
        expect.within("rtt", 10.0, 5.0, 15.0)
    assert expect.passed


def test_timing_assertions_are_refused_when_fidelity_was_lost_and_others_are_not():
    expect = Expect(fidelity_lost="timers woke late")
    expect.that("bytes arrived", True, "all")
    with expect.timing():
        expect.within("rtt", 10.0, 5.0, 15.0)
    plain, timed = expect.assertions
    assert plain.passed and not timed.passed
    assert timed.detail.startswith("refused: timing-dependent") and "timers woke late" in timed.detail
    assert timed.observed == 10.0  # the observation is kept beside the refusal


def test_the_monitor_measures_a_real_sleep_and_the_cpu():
    import time

    with FidelityMonitor() as monitor:
        time.sleep(0.3)
    facts = monitor.facts()
    assert facts["timer_samples"] >= 5 and facts["timer_slip_ms"]["p50"] >= 0
    assert 0.0 <= facts["cpu_idle_share"] <= 1.0 and facts["seconds"] >= 0.3


def _timed_check(ev, expect):
    conn = ev.found(expect)
    with expect.timing():
        expect.within("handshake took under a second (s)", conn.segments[2].time - conn.segments[0].time, 0, 1)


@pytest.mark.netbed
def test_a_run_records_its_fidelity_and_a_lossy_tracer_refuses_timing(netbed_lab):
    lab = netbed_lab("lan", hosts=2)
    server = lab.server(["recv-eof", "close"])
    lab.wait(lab.client(server, ["send:1000", "close"]), server)
    ev = netbed_lab.evidence()
    record = ev.facts["fidelity"]
    assert record["timer_samples"] > 0 and record["cpu_idle_share"] is not None
    result = netbed_lab.check(_timed_check)
    judged = verdict.fidelity_of(ev)
    assert result.fidelity == judged and judged["record"]["tracer_lost_events"] == 0
    # sabotage: bpftrace said it lost events (its own line in the log): the same check is now refused
    with open(ev.directory / "states.txt", "a") as log:
        log.write("Lost 7 events\n")
    again = verdict.check_evidence(type(ev).load(ev.directory), _timed_check)
    assert not again.fidelity["kept"] and "the tracer lost 7 events" in again.fidelity["reasons"]
    timed = next(a for a in again.assertions if a.name.startswith("handshake took"))
    assert not timed.passed and timed.detail.startswith("refused")
