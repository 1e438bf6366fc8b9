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
