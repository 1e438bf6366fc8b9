"""The verdict: evidence → expectations → result, by one path for every caller.

`netbed run` (on the folder its live run just saved), `netbed check DIR`, `netbed show` and `netbed
report` (which re-check saved folders) and the pytest plugin's `netbed_lab.check` all come here, so a
run folder re-checked on any machine, years later, gets the very verdict the live run got. The
result is typed (`RunResult`, whose assertions are `expect.Assertion`s carrying expected and
observed values) and is saved as result.json; `RunResult.from_json` reads it back equal.

This module sits at the expect stage: it reads saved evidence and runs expectations, and knows
nothing of networks, captures being taken, or how a result is shown.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netbed.claims.experiment import ClaimExperiment, claim_of_run
from netbed.errors import NetbedError
from netbed.expect import Assertion, Expect
from netbed.experiment import EVIDENCE, Evidence, Experiment, catalog, get

# The files of a run folder besides the captures and evidence.json
RESULT = "result.json"
LADDER_TEXT = "ladder.txt"
LADDER_SVG = "ladder.svg"
# the pictures beside the ladder (netbed/report/figures.py draws them; docs/research.md)
TSEQ_SVG = "tseq.svg"
CWND_SVG = "cwnd.svg"
EXPERIMENT_SVG = "figure.svg"  # an experiment's own figure (bufferbloat: RTT over time)
SIDES = ("client", "server")

Check = Callable[[Evidence, Expect], None]


@dataclass
class RunResult:
    """The verdict of one run, and what a report shows beside it (connections, kernel states, files).

    `duration` and `build_seconds` only a live run can measure; a re-check leaves them None.
    """

    experiment: str
    topology: str
    passed: bool
    assertions: list[Assertion]
    artifacts: dict[str, Any]
    connections: list[dict[str, Any]] = field(default_factory=list)
    main_connection: dict[str, Any] | None = None
    states: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {side: [] for side in SIDES})
    states_source: str | None = None
    warnings: list[str] = field(default_factory=list)
    duration: float | None = None
    build_seconds: float | None = None
    fidelity: dict[str, Any] | None = None  # fidelity_of: {"kept", "reasons", "record"}; None: not recorded

    @property
    def failed(self) -> list[Assertion]:
        return [a for a in self.assertions if not a.passed]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "experiment": self.experiment, "topology": self.topology, "passed": self.passed,
            "assertions": [a.to_json() for a in self.assertions], "artifacts": self.artifacts,
            "connections": self.connections, "main_connection": self.main_connection, "states": self.states,
            "states_source": self.states_source, "warnings": self.warnings, "fidelity": self.fidelity,
        }
        for key in ("duration", "build_seconds"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    def summary(self) -> dict[str, Any]:
        """What `--json` prints of a run: the verdict and where its files are, not the whole trace."""
        data = self.to_json()
        keys = ("experiment", "topology", "passed", "assertions", "artifacts")
        return {**{k: data[k] for k in keys}, "duration": self.duration}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        return cls(
            experiment=str(data["experiment"]), topology=str(data["topology"]), passed=bool(data["passed"]),
            assertions=[Assertion.from_json(a) for a in data.get("assertions") or []],
            artifacts=dict(data.get("artifacts") or {}), connections=list(data.get("connections") or []),
            main_connection=data.get("main_connection"),
            states={side: list((data.get("states") or {}).get(side) or []) for side in SIDES},
            states_source=data.get("states_source"), warnings=list(data.get("warnings") or []),
            duration=data.get("duration"), build_seconds=data.get("build_seconds"), fidelity=data.get("fidelity"))


def capture_kept(cap: dict) -> tuple[bool, str]:
    """Did a capture keep every packet of the run (tcpdump's counts, and whether its end-of-capture marker came)?

    With the marker in the file, everything before it was written (tcpdump handles packets in order):
    the kernel's drops are the only loss, and packets it counted after the marker (received, neither
    captured nor dropped: IPv6 neighbour solicitations and multicast reports come at any time) arrived
    after the run ended. Without a marker (older run folders), every packet received must be captured.
    """
    captured, received, dropped = cap.get("captured"), cap["received"], cap.get("dropped", 0)
    detail = f"{captured} captured, {received} received, {dropped} dropped"
    if cap.get("marker") and captured is not None:
        after = received - captured - dropped
        return dropped == 0 and after >= 0, detail + (f" ({after} after the end-of-capture marker)" if after else "")
    return captured == received and dropped == 0, detail


def check_evidence(evidence: Evidence, check: Check | None = None) -> RunResult:
    """Run `check` (by default: the experiment's own) on saved evidence, and say the verdict.

    Besides the experiment's assertions, every capture must have kept every packet (tcpdump's own
    count), a program the machine refused something (peer.py's `unable`) fails first with the
    reason, a check that crashes is a failed check, and a check that asserted nothing fails.
    """
    if check is None:
        check = experiment_of(evidence).check
    expect = Expect()
    fidelity = fidelity_of(evidence)
    if fidelity is not None and not fidelity["kept"]:
        expect.fidelity_lost = "; ".join(fidelity["reasons"])
    for cap in evidence.captures:
        if "received" in cap:  # tcpdump's own count of what the kernel handed it
            expect.that(f"the {cap['point']} capture kept every packet", *capture_kept(cap))
    for name, report in evidence.programs.items():
        if report.get("unable"):  # the machine refused what the experiment needs (peer.py): say so first
            expect.that(f"the {name} program could do what the experiment needs", False,
                        f"{name} program {report['unable']}")
    try:
        check(evidence, expect)
    except NetbedError:
        raise
    except Exception as exc:  # a check that cannot finish is a failed check, shown as such
        expect.that("the check ran to its end", False, f"{type(exc).__name__}: {exc}")
    if not expect.assertions:
        expect.that("the experiment asserted something", False, "no assertion was made")
    main = evidence.connection("client") if "client" in evidence.programs else None
    trace = evidence.trace("client") if "client" in evidence.points() else None  # none: nothing ran (a failed build)
    return RunResult(
        experiment=evidence.experiment, topology=evidence.topology["name"], passed=expect.passed,
        assertions=list(expect.assertions), artifacts=artifacts(evidence.directory, evidence),
        connections=[c.to_json() for c in trace.connections] if trace else [],
        main_connection=main.to_json() if main is not None else None,
        states={side: evidence.states(side) for side in SIDES},
        states_source=(evidence.facts.get("states") or {}).get("source"),
        warnings=list(trace.warnings) if trace else [], fidelity=fidelity)


# A run kept its fidelity when the machine kept up (docs/research.md): the kernel's record and the
# captures are whole, and the programs' timers woke close to when they asked.
SLIP_P99_MS = 20.0  # a timer 20 ms late at the 99th percentile: delays of that size are the machine's
SLIP_MAX_MS = 200.0
# The CPU idle share is recorded and shown, not judged: a machine with no idle time (other work at
# lower need) can still serve every timer on time; what saturation costs shows in the slip and drops.


def fidelity_of(evidence: Evidence) -> dict[str, Any] | None:
    """Judge a run's fidelity record: {"kept": bool, "reasons": [why not], "record": the measurements}."""
    record = dict(evidence.facts.get("fidelity") or {})
    if not record:
        return None
    states = evidence.facts.get("states") or {}
    lost = 0
    if states.get("source") == "bpftrace" and states.get("file"):
        path = evidence.directory / states["file"]
        if path.exists():
            lost = sum(int(line.split()[1]) for line in path.read_text(errors="replace").splitlines()
                       if line.startswith("Lost ") and line.split()[1].isdigit())
    record["tracer_lost_events"] = lost
    record["capture_dropped"] = sum(int(c.get("dropped") or 0) for c in evidence.captures)
    reasons = []
    slip = record.get("timer_slip_ms") or {}
    if lost:
        reasons.append(f"the tracer lost {lost} events")
    if record["capture_dropped"]:
        reasons.append(f"the captures dropped {record['capture_dropped']} packets")
    if (slip.get("p99") or 0) > SLIP_P99_MS or (slip.get("max") or 0) > SLIP_MAX_MS:
        reasons.append(f"timers woke late: {record.get('timer_tick_ms')} ms sleeps were {slip.get('p99')} ms late at "
                       f"the 99th percentile, {slip.get('max')} ms at worst (limits {SLIP_P99_MS:g}, {SLIP_MAX_MS:g})")
    return {"kept": not reasons, "reasons": reasons, "record": record}


def experiment_of(evidence: Evidence) -> Experiment:
    """The experiment a run folder is checked against: a catalog experiment, or the claim file the run
    was made from (saved in its evidence, so the folder re-checks anywhere, the claim file or not)."""
    claim = claim_of_run(evidence)
    return ClaimExperiment.from_json(claim) if claim is not None else get(evidence.experiment)


def check_dir(directory: Path) -> RunResult:
    """Re-run an experiment's assertions on a saved run folder: no network, same verdict."""
    return check_evidence(Evidence.load(Path(directory)))


def broken_run(experiment: str, topology: str, out: Path, error: str) -> RunResult:
    """The result of a run that could not finish: failed, saying why, with what was captured."""
    pcaps = {p.stem: str(p) for p in sorted(out.glob("*.pcap"))}
    return RunResult(experiment, topology, False, [Assertion("the experiment ran to its end", False, error)],
                     {**_files(out), "pcaps": pcaps})


def artifacts(directory: Path, evidence: Evidence) -> dict[str, Any]:
    return {**_files(directory), "pcaps": {c["point"]: str(directory / c["file"]) for c in evidence.captures}}


def _files(directory: Path) -> dict[str, Any]:
    return {"dir": str(directory), "pcaps": {}, "result": str(directory / RESULT),
            "ladder": str(directory / LADDER_TEXT), "evidence": str(directory / EVIDENCE)}


def save(directory: Path, result: RunResult) -> None:
    (Path(directory) / RESULT).write_text(json.dumps(result.to_json(), indent=2) + "\n")


def result_of_dir(directory: Path) -> tuple[RunResult, str]:
    """The verdict of a saved run, and where it came from ("re-check" or "result.json").

    Re-checked from the saved captures when the experiment is installed (so it reflects the current
    assertions); otherwise the verdict saved in result.json, its file paths moved to where the folder
    is now. The duration always comes from result.json: only the live run could measure it.
    A damaged folder is one line (NetbedError), not a traceback.
    """
    directory = Path(directory)
    try:
        saved = _saved(directory)
        evidence = Evidence.load(directory)
        if claim_of_run(evidence) is not None or evidence.experiment in {e.name for e in catalog()}:
            result, source = check_evidence(evidence), "re-check"
        elif saved is not None:
            result, source = RunResult.from_json(saved), RESULT
            result.artifacts = _artifacts_here(directory, result.artifacts)
        else:
            raise NetbedError(f"{directory}: its experiment {evidence.experiment!r} is not installed and {RESULT} "
                              "is missing or unreadable, so there is no verdict")
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, OSError) and exc.filename:
            what = f"{exc.filename}: {exc.strerror}"
        else:
            what = f"{type(exc).__name__}: {exc}"
        raise NetbedError(f"{directory} cannot be read, its saved files are damaged ({what})") from None
    if saved is not None and saved.get("duration") is not None:
        result.duration = saved["duration"]
    return result, source


def _saved(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / RESULT).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _artifacts_here(directory: Path, saved: dict[str, Any]) -> dict[str, Any]:
    """Saved artifact paths moved to where the folder is now (it may have been copied elsewhere)."""
    pcaps = {point: str(directory / Path(path).name) for point, path in (saved.get("pcaps") or {}).items()}
    return {"dir": str(directory), "pcaps": pcaps}

