"""netbed as a pytest plugin: a real emulated network as a fixture, for tests in any repository.

Installing netbed registers this module under pytest's `pytest11` entry point, so a user's own
test only asks for `netbed_lab`::

    def test_passive_side_closing_at_once_gives_a_three_way_close(netbed_lab):
        lab = netbed_lab("lan", hosts=2)
        server = lab.server(["recv-eof", "close"])
        lab.wait(lab.client(server, ["send:1000", "close"]), server)
        conn = netbed_lab.evidence().connection("client")
        assert conn.close_kind == "three-way"

The fixture is the very path `netbed run` takes (`runstate.owned` + `runner.lab_session`), so a
test sees the same Lab and the same Evidence as a catalog experiment, and `netbed.expect`'s helpers
work on it unchanged. Why a plugin and not a conftest to copy: the testbed is set up and torn down
in one place, a machine that cannot emulate skips with the reason instead of failing, and a
failure names the run folder so the pcaps are one `wireshark` away.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import pytest

from netbed.errors import NetbedError

if TYPE_CHECKING:
    from netbed.experiment import Evidence, Lab
    from netbed.spec import Topology
    from netbed.verdict import Check, RunResult

# pytest loads this module in every session of the environment, netbed's or not: the testbed's
# modules (numpy, the trace parser, the runner) are imported only once a test builds a lab.

MARKER = "netbed"
RUN_FOLDER_PROPERTY = "netbed_run_folder"  # in item.user_properties, hence in --junitxml too

_LABS = pytest.StashKey["NetbedLab"]()
_CANNOT_EMULATE = pytest.StashKey[Optional[str]]()  # the skip reason, found once per session
_SHOWN = pytest.StashKey[bool]()


class _TestFailed(Exception):
    """Thrown into a lab the test left open while failing.

    Leaving the lab through an exception stops everything without waiting for programs that may
    never finish; the pcaps are flushed all the same. A fresh exception (rather than the test's own)
    keeps the test's traceback exactly as pytest recorded it.
    """


class NetbedLab:
    """The `netbed_lab` fixture: call it to build a lab, `evidence()` to leave it and read the trace.

    One lab is open at a time; each gets its own run folder `tmp_path / "netbed-<topology>"`, which
    pytest keeps for the last few sessions, so a failed run can be opened afterwards.
    """

    def __init__(self, item: pytest.Item, tmp_path: Path) -> None:
        self._item = item
        self._tmp_path = tmp_path
        self._stack: ExitStack | None = None
        self._deferred: BaseException | None = None
        self.lab: Lab | None = None
        self.folders: list[Path] = []

    @property
    def out(self) -> Path | None:
        """The run folder of the latest lab (None before the first)."""
        return self.folders[-1] if self.folders else None

    def __call__(self, topology: str | Topology = "lan", *, switch: str = "bridge", ipv6: bool = False,
                 **params: object) -> Lab:
        """Build `topology` (a name from `netbed topo`, with its options, or a Topology) and start a lab.

        The first host is the client, the last the server; tcpdump records the path between them.
        """
        from netbed import runstate, topologies
        from netbed.runner import lab_session
        from netbed.spec import Topology

        if self._stack is not None:
            raise RuntimeError("a netbed lab is already open in this test: call netbed_lab.evidence() first")
        if isinstance(topology, Topology):
            if params:
                raise TypeError(f"options {sorted(params)} apply to topology names, not to a built Topology")
            topo = topology
        else:
            topo = topologies.build(topology, **params)
        _skip_unless_emulation(self._item.config)
        out = self._new_folder(topo.name)
        self._item.user_properties.append((RUN_FOLDER_PROPERTY, str(out)))
        stack = ExitStack()
        try:
            stack.enter_context(runstate.owned(["pytest", self._item.nodeid]))
            self.lab = stack.enter_context(lab_session(topo, out, experiment=self._item.name, switch=switch,
                                                       ipv6=ipv6))
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self.lab

    def evidence(self) -> Evidence:
        """Leave the open lab — servers stopped, captures flushed, evidence saved — and load it.

        Called again without a new lab, it returns the latest run's evidence.
        """
        from netbed.experiment import Evidence

        if self._stack is not None:
            self.close()
        if self.out is None:
            raise RuntimeError('no netbed lab was built in this test: call netbed_lab("lan") first')
        return Evidence.load(self.out)

    def check(self, check: Check) -> RunResult:
        """The verdict of `check(evidence, expect)` on this test's run, as `netbed run` would give it.

        It leaves the open lab, then takes netbed's one verdict path (so the captures must also have
        kept every packet, and a check that asserts nothing fails) and saves result.json in the run
        folder. Pass the result to `netbed.expect.assert_passed` to fail the test with every failed
        assertion's expected vs. observed.
        """
        from netbed import verdict

        result = verdict.check_evidence(self.evidence(), check)
        verdict.save(self.out, result)
        return result

    def close(self, failed: bool = False) -> None:
        """Leave the open lab, if any; the run folder gets its ladder files when evidence was saved.

        failed: the test is failing, so unwind at once instead of waiting for every program's report.
        """
        from netbed.experiment import Evidence
        from netbed.report.folder import write_ladder_files

        stack, self._stack, self.lab = self._stack, None, None
        if stack is None:
            return
        if failed:
            stack.__exit__(_TestFailed, _TestFailed("the test failed"), None)
        else:
            stack.close()
        if (self.out / "evidence.json").is_file():
            write_ladder_files(Evidence.load(self.out))

    def _close_after_call(self, failed: bool) -> None:
        # Runs in a hook wrapper, where an exception would break pytest itself: keep it for teardown.
        try:
            self.close(failed=failed)
        except BaseException as exc:  # re-raised, unchanged, in the fixture's teardown
            self._deferred = exc

    def _new_folder(self, topology: str) -> Path:
        base = self._tmp_path / f"netbed-{topology}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        self.folders.append(path)
        return path

    def describe(self) -> str:
        """What a failure report shows: each run folder, its pcaps, and the ladder when there is one."""
        from netbed.verdict import LADDER_TEXT

        lines = []
        for folder in self.folders:
            pcaps = sorted(p.name for p in folder.glob("*.pcap"))
            lines.append(f"run folder: {folder}")
            lines.append(f"  pcaps: {', '.join(pcaps) or 'none'}   (wireshark {folder / 'client.pcap'})")
            ladder = folder / LADDER_TEXT
            if ladder.is_file():
                lines += ["", ladder.read_text().rstrip(), ""]
            elif not (folder / "evidence.json").is_file():
                lines.append("  (the test failed inside the lab: call netbed_lab.evidence() before asserting "
                             "to get the ladder and evidence.json)")
        return "\n".join(lines)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: builds real emulated networks (root, Mininet, tcpdump); skipped with the reason where "
        "this machine cannot. Tests that use the netbed_lab fixture get it automatically.")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses `netbed_lab`, and mark it skipped where this machine cannot emulate.

    The marker lets `-m "not netbed"` leave out every live test, whether or not its author marked
    it. The skip is a marker rather than a `pytest.skip()` call so that pytest reports it at the
    test's own line, before any fixture is set up.
    """
    for item in items:
        if "netbed_lab" in getattr(item, "fixturenames", ()):
            item.add_marker(MARKER)
        if item.get_closest_marker(MARKER) is not None:
            reason = _cannot_emulate(config)
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


def _cannot_emulate(config: pytest.Config) -> str | None:
    """Preflight's own one-line reason (not root, a tool missing, no namespaces), found once a session."""
    if _CANNOT_EMULATE not in config.stash:
        from netbed.preflight import require_emulation

        try:
            require_emulation("tcpdump")
        except NetbedError as exc:
            config.stash[_CANNOT_EMULATE] = f"netbed: {exc}"
        else:
            config.stash[_CANNOT_EMULATE] = None
    return config.stash[_CANNOT_EMULATE]


def _skip_unless_emulation(config: pytest.Config) -> None:
    # For a lab asked for in a way collection cannot see (request.getfixturevalue).
    reason = _cannot_emulate(config)
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def netbed_lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NetbedLab]:
    """A factory of live labs: `lab = netbed_lab("lan", hosts=2)`, then `netbed_lab.evidence()`.

    Whatever the test does, teardown leaves the lab: the network, its processes and its namespaces
    are gone before the next test starts.
    """
    _skip_unless_emulation(request.config)
    labs = NetbedLab(request.node, tmp_path)
    request.node.stash[_LABS] = labs
    yield labs
    labs.close()
    if labs._deferred is not None:
        raise labs._deferred


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    # Leave the lab as soon as the test body ends, before its report is made, so that a failure
    # report can show the ladder of what the network really did.
    outcome = yield
    labs = item.stash.get(_LABS, None)
    if labs is not None:
        labs._close_after_call(failed=outcome.excinfo is not None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    labs = item.stash.get(_LABS, None)
    if report.failed and labs is not None and labs.folders and not item.stash.get(_SHOWN, False):
        item.stash[_SHOWN] = True
        report.sections.append(("netbed run folder", labs.describe()))
