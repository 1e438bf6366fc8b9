"""`netbed run --all --jobs N`: runs side by side on disjoint namespaces, the same verdicts as one at a time."""
import pytest

from netbed import runner
from netbed.experiment import get

pytestmark = pytest.mark.netbed
NAMES = ("handshake", "close-client", "half-close", "refused")


def verdicts(results):
    return [(r.experiment, r.topology, r.passed, [(a.name, a.passed) for a in r.assertions]) for r in results]


def test_two_jobs_give_the_verdicts_of_one(tmp_path):
    pairs = [(get(name), "lan") for name in NAMES]
    one = list(runner.run_series(pairs, tmp_path / "one", jobs=1))
    two = list(runner.run_series(pairs, tmp_path / "two", jobs=2))
    assert verdicts(two) == verdicts(one)
    assert all(r.passed for r in two), [a.lines() for r in two for a in r.failed]
    # the series' one tracer served the parallel runs: each kept its own sockets' states, as one at a time
    def states(results):
        return [{side: [s["state"] for s in r.states[side]] for side in ("client", "server")} for r in results]

    assert states(two) == states(one)
    assert all(r.states_source == "bpftrace" for r in two) and any(s["client"] for s in states(two))
    assert len({r.artifacts["dir"] for r in two}) == len(NAMES)


def span(result) -> tuple[float, float]:
    """When a run ran, build to verdict: its result.json was written at the end, `duration` seconds after it began."""
    from pathlib import Path

    end = (Path(result.artifacts["dir"]) / "result.json").stat().st_mtime
    return end - result.duration, end


@pytest.mark.parametrize("alone", [True, False])  # False: the sabotage, the same run side by side with others
def test_an_experiment_that_must_run_alone_has_the_machine_to_itself(tmp_path, monkeypatch, alone):
    monkeypatch.setattr(get("refused").module, "ALONE", alone, raising=False)
    pairs = [(get(name), "lan") for name in ("handshake", "refused", "close-client", "half-close")]
    results = list(runner.run_series(pairs, tmp_path, jobs=2))
    assert [r.experiment for r in results] == [p[0].name for p in pairs]  # plan order, whatever ran when
    lo, hi = span(results[1])
    beside = [r.experiment for r in results if r is not results[1] and span(r)[0] < hi and lo < span(r)[1]]
    assert (beside == []) == alone, beside
