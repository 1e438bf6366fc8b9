"""The report stage on a run folder: the ladder files `netbed run` writes, and what `netbed show` prints.

Everything here reads the saved folder only (pcaps, evidence.json, result.json), so a run can be
looked at again on any machine, long after the network that made it is gone.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from netbed.claims.experiment import claim_of_run
from netbed.errors import NetbedError
from netbed.experiment import Evidence, get
from netbed.report.ladder import Ladder, build_ladder, render_text
from netbed.report.svg import render_svg

LADDER_TEXT = "ladder.txt"
LADDER_SVG = "ladder.svg"
SIDES = ("client", "server")


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


def show_dir(directory: Path) -> dict[str, Any]:
    """Verdict, ladder and states of a saved run, for ``netbed show DIR``.

    The verdict is re-checked from the saved captures when the experiment still exists (so it reflects
    the current assertions); otherwise it is the one saved in result.json, and ``verdict_from`` says so.
    """
    directory = Path(directory)
    try:
        return _show(directory)
    except (OSError, ValueError, KeyError) as exc:  # a damaged folder: say what, not a traceback
        if isinstance(exc, OSError) and exc.filename:
            what = f"{exc.filename}: {exc.strerror}"
        else:
            what = f"{type(exc).__name__}: {exc}"
        raise NetbedError(f"{directory} cannot be shown, its saved files are damaged ({what})") from None


def _show(directory: Path) -> dict[str, Any]:
    evidence = Evidence.load(directory)
    try:
        if claim_of_run(evidence) is None:  # a claim file's run carries its claim: it always re-checks
            get(evidence.experiment)
    except NetbedError:
        result = _saved_result(directory)
        verdict_from = "result.json"
    else:
        from netbed.runner import check_dir  # the runner imports this module to write the files

        result = check_dir(directory)
        verdict_from = "re-check"
    ladder = ladder_of_run(evidence)
    return {
        "experiment": result["experiment"],
        "topology": result["topology"],
        "passed": result["passed"],
        "verdict_from": verdict_from,
        "assertions": result["assertions"],
        "artifacts": result.get("artifacts", {"dir": str(directory)}),
        "states": {side: evidence.states(side) for side in SIDES},
        "states_source": (evidence.facts.get("states") or {}).get("source"),
        "ladder": ladder.to_json() if ladder is not None else None,
        "ladder_text": render_text(ladder) if ladder is not None else "(no TCP connection in the capture)",
    }


def _saved_result(directory: Path) -> dict[str, Any]:
    path = directory / "result.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise NetbedError(f"{directory}: its experiment is not installed and {path.name} is missing or "
                          "unreadable, so there is no verdict to show") from None


def format_show(shown: dict[str, Any]) -> str:
    """The text of ``netbed show``: verdict and assertions as ``netbed run`` prints them, ladder, states."""
    verdict = "PASS" if shown["passed"] else "FAIL"
    origin = "re-checked from the saved captures" if shown["verdict_from"] == "re-check" else \
        "as saved in result.json (the experiment is not installed here)"
    lines = [f"{verdict}  {shown['experiment']} on {shown['topology']}  ({origin})"]
    for a in shown["assertions"]:
        mark = "✓" if a["passed"] else "✗"
        if "\n" in a["detail"]:
            lines.append(f"  {mark} {a['name']}")
            lines += ["      " + line for line in a["detail"].splitlines()]
        else:
            lines.append(f"  {mark} {a['name']}: {a['detail']}")
    lines += ["", shown["ladder_text"], ""]
    source = shown["states_source"] or "not recorded"
    lines.append(f"kernel TCP states (source: {source}):")
    for side in SIDES:
        states = shown["states"][side]
        names = " → ".join(s["state"] + ("*" if s.get("via") else "") for s in states) or "none recorded"
        lines.append(f"  {side}: {names}")
    lines.append(f"\nrun folder: {shown['artifacts']['dir']}")
    return "\n".join(lines)
