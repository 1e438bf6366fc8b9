"""The report stage on a run folder: the ladder files `netbed run` writes, and what `netbed show` shows.

Everything here reads the saved folder only (pcaps, evidence.json, result.json), so a run can be
looked at again on any machine, long after the network that made it is gone.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netbed.errors import NetbedError
from netbed.experiment import EVIDENCE, Evidence
from netbed.report.ladder import Ladder, build_ladder, render_text
from netbed.report.svg import render_svg
from netbed.runfolder import INCOMPLETE, require_complete
from netbed.verdict import LADDER_SVG, LADDER_TEXT, SIDES, RunResult, result_of_dir


def describe_point(capture: dict) -> str:
    """A capture point as people say it: "client side (h1-eth0)", "router r1 (r1-eth0)"."""
    point, interface = capture["point"], capture.get("interface")
    name = f"{point} side" if point in SIDES else f"router {capture.get('node', point)}"
    return f"{name} ({interface})" if interface else name


def ladder_of_run(evidence: Evidence, point: str = "client") -> Ladder | None:
    """The ladder of the experiment's main connection as seen at one capture point (default: client side).

    The diagram comes from one point only; the other points are named under it, because their
    segments are the same ones seen elsewhere on the path (useful for TTLs and MACs, not new arrows).
    Without a main connection (no program called "client"), the first connection captured is drawn.
    """
    if point not in evidence.points():  # nothing was captured (a claim file whose build failed)
        return None
    main = evidence.connection(point) if "client" in evidence.programs else None
    conn = main
    if conn is None:
        conns = evidence.trace(point).connections
        conn = conns[0] if conns else None
    if conn is None:
        return None
    states = {side: evidence.states(side) for side in SIDES} if main is not None else {}
    here = next(c for c in evidence.captures if c["point"] == point)
    others = [describe_point(c) for c in evidence.captures if c["point"] != point]
    return build_ladder(conn, states, client_host=evidence.facts.get("client_host"),
                        server_host=evidence.facts.get("server_host"), captured_at=describe_point(here),
                        also_captured=others)


def ladder_files(evidence: Evidence) -> dict[str, str]:
    """File name -> content of the ladder files of a run folder (text and SVG of the same rows)."""
    ladder = ladder_of_run(evidence)
    if ladder is None:
        text = "(no TCP connection in the client-side capture)"
        return {LADDER_TEXT: text + "\n", LADDER_SVG: render_svg(None, message=text)}
    return {LADDER_TEXT: render_text(ladder) + "\n", LADDER_SVG: render_svg(ladder)}


def write_ladder_files(evidence: Evidence) -> None:
    """Write ladder.txt and ladder.svg (the same rows) into the run folder of `evidence`."""
    for name, content in ladder_files(evidence).items():
        (evidence.directory / name).write_text(content)


def run_dirs(paths: Iterable[Path]) -> list[Path]:
    """The run folders named by `paths`: a run folder itself, or a folder of run folders (``runs/``).

    Inside a folder of run folders, those whose run never finished writing them (INCOMPLETE) are left out.
    A run named twice (`runs/ runs/A`, or through a symlink) is listed once, where it was first named."""
    found: list[Path] = []
    for path in map(Path, paths):
        if _is_run(path):
            require_complete(path)
            found.append(path)
        elif path.is_dir():
            inside = sorted(p for p in path.iterdir() if _is_run(p) and not (p / INCOMPLETE).exists())
            if not inside:
                raise NetbedError(f"{path} is neither a netbed run folder nor a folder of run folders "
                                  f"(no {EVIDENCE} in it or below it)")
            found += inside
        else:
            raise NetbedError(f"no such folder: {path}")
    seen: set[Path] = set()
    return [p for p in found if not (p.resolve() in seen or seen.add(p.resolve()))]


def _is_run(path: Path) -> bool:
    try:
        return (path / EVIDENCE).is_file()
    except PermissionError:  # a folder this user may not look into is no run folder of theirs
        return False


def results_from_dirs(paths: Iterable[Path]) -> list[RunResult]:
    """The verdict of every run folder named by `paths` (see `run_dirs` and `verdict.result_of_dir`)."""
    return [result_of_dir(d)[0] for d in run_dirs(paths)]


@dataclass
class Shown:
    """A saved run as ``netbed show`` presents it: its verdict, the ladder and both sides' kernel states."""

    result: RunResult
    verdict_from: str  # "re-check" or "result.json"
    ladder: Ladder | None
    states: dict[str, list[dict[str, Any]]]
    states_source: str | None

    def to_json(self) -> dict[str, Any]:
        r = self.result
        return {"experiment": r.experiment, "topology": r.topology, "passed": r.passed,
                "verdict_from": self.verdict_from, "assertions": [a.to_json() for a in r.assertions],
                "artifacts": r.artifacts, "states": self.states, "states_source": self.states_source,
                "ladder": self.ladder.to_json() if self.ladder is not None else None}


def show_dir(directory: Path) -> Shown:
    """Verdict, ladder and states of a saved run, for ``netbed show DIR``.

    The verdict is re-checked from the saved captures when the experiment still exists (so it reflects
    the current assertions); otherwise it is the one saved in result.json, and ``verdict_from`` says so.
    """
    directory = Path(directory)
    result, verdict_from = result_of_dir(directory)
    evidence = Evidence.load(directory)
    try:
        ladder = ladder_of_run(evidence)
    except (OSError, ValueError, KeyError) as exc:  # a damaged capture: say what, not a traceback
        what = f"{exc.filename}: {exc.strerror}" if isinstance(exc, OSError) and exc.filename else \
            f"{type(exc).__name__}: {exc}"
        raise NetbedError(f"{directory} cannot be shown, its saved files are damaged ({what})") from None
    return Shown(result, verdict_from, ladder, {side: evidence.states(side) for side in SIDES},
                 (evidence.facts.get("states") or {}).get("source"))
