"""The report stage of an interactive lab: every TCP connection of the session, classified, on one page.

A lab has no experiment and no "main" connection: people start whatever they like from the CLI.
So every capture of the lab folder is read, each connection is taken once — as seen at its
client's own interface when that was captured, since that is where its segments were sent from —
and drawn as a ladder with both sockets' kernel states, found by 4-tuple in the namespace of the
host that owns each address. Like the run folders, this reads only the saved folder.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from netbed import __version__
from netbed.errors import NetbedError
from netbed.report.ladder import build_ladder, render_text
from netbed.report.svg import render_svg
from netbed.trace import kernel_states, read_trace
from netbed.trace.model import Connection

LAB_JSON = "lab.json"
CONNECTIONS_JSON = "connections.json"
LADDERS = "ladders"
PAGE = "lab.html"
SIDES = ("client", "server")


def analyse(directory: Path) -> list[dict[str, Any]]:
    """Every TCP connection captured in a lab folder, once each, with its ladder and kernel states."""
    lab = json.loads((directory / LAB_JSON).read_text())
    owners = {i["address"].split("/")[0]: (n["name"], i["name"]) for n in lab["topology"]["nodes"]
              for i in n["interfaces"]}
    netns = {node: int(ino) for ino, node in lab["facts"].get("netns", {}).items()}
    states_facts = lab["facts"].get("states") or {}
    events = []
    if states_facts.get("file"):
        events = kernel_states.parse_log((directory / states_facts["file"]).read_text(),
                                         states_facts["clock_offset"])
    found: dict[tuple, dict[str, Any]] = {}
    for cap in lab["captures"]:
        for conn in read_trace(directory / cap["file"]).connections:
            key = (str(conn.client), str(conn.server), conn.isn["client"], round(conn.start))
            entry = found.setdefault(key, {"conn": conn, "cap": cap, "seen_at": []})
            entry["seen_at"].append(cap["point"])
            if owners.get(conn.client.ip, (None, None))[1] == cap["interface"]:
                entry["conn"], entry["cap"] = conn, cap  # the client's own view
    sockets_after = lab["facts"].get("sockets_after", {})
    result = []
    for n, entry in enumerate(sorted(found.values(), key=lambda e: e["conn"].start), 1):
        conn: Connection = entry["conn"]
        hosts = {side: owners.get(getattr(conn, side).ip, (None, None))[0] for side in SIDES}
        states = {side: _states(conn, side, hosts[side], netns, events, sockets_after) for side in SIDES}
        captured_at = f"{entry['cap']['node']} ({entry['cap']['interface']})"
        others = [p for p in entry["seen_at"] if p != entry["cap"]["point"]]
        ladder = build_ladder(conn, states, client_host=hosts["client"], server_host=hosts["server"],
                              captured_at=captured_at, also_captured=others)
        result.append({"n": n, "client_host": hosts["client"], "server_host": hosts["server"],
                       "captured_at": captured_at, "also_seen_at": others, "connection": conn.to_json(),
                       "states": states, "states_source": states_facts.get("source"),
                       "ladder_text": render_text(ladder), "ladder_svg": render_svg(ladder)})
    return result


def _states(conn: Connection, side: str, host: str | None, netns: dict[str, int], events: list,
            sockets_after: dict[str, list[str]]) -> list[dict]:
    if host is None or host not in netns:
        return []
    local, remote = (conn.client, conn.server) if side == "client" else (conn.server, conn.client)
    history = kernel_states.socket_history(events, netns[host], local, remote)
    in_time_wait = kernel_states.listed_in_time_wait(sockets_after.get(host, []), local, remote)
    peer_fins = [s.time for s in conn.segments if s.fin and conn.side(s) != side]
    return kernel_states.timeline(history, in_time_wait, peer_fins[-1] if peer_fins else None)


def write_lab_report(directory: Path) -> list[dict[str, Any]]:
    """connections.json, one ladder per connection (text and SVG) and lab.html, in the lab folder."""
    conns = analyse(directory)
    (directory / LADDERS).mkdir(exist_ok=True)
    for c in conns:
        stem = directory / LADDERS / _stem(c)
        stem.with_suffix(".txt").write_text(c["ladder_text"] + "\n")
        stem.with_suffix(".svg").write_text(c["ladder_svg"])
    slim = [{k: v for k, v in c.items() if k not in ("ladder_text", "ladder_svg")} for c in conns]
    (directory / CONNECTIONS_JSON).write_text(json.dumps(slim, indent=2) + "\n")
    (directory / PAGE).write_text(render_page(directory, conns))
    return conns


def _stem(c: dict[str, Any]) -> str:
    return f"{c['n']:03d}-{c['client_host'] or 'x'}-{c['server_host'] or 'x'}"


def summary_line(c: dict[str, Any]) -> str:
    """One line per connection for the terminal: who, to whom, handshake and close."""
    conn = c["connection"]
    close = conn["close"]
    by = f" by the {close['initiator']}" if close.get("initiator") else ""
    return (f"{c['n']:3d}. {c['client_host'] or '?'} {conn['client']} → {c['server_host'] or '?'} {conn['server']}: "
            f"handshake {conn['handshake']}, close {close['kind']}{by}, bytes {conn['bytes']['client']}/"
            f"{conn['bytes']['server']}")


def render_page(directory: Path, conns: list[dict[str, Any]]) -> str:
    """The lab's page: a table of the session's connections, then each one's ladder and kernel states."""
    lab = json.loads((directory / LAB_JSON).read_text())
    shown = []
    for c in conns:
        rows = sorted((float(s["time"]), side, s) for side in SIDES for s in c["states"].get(side) or [])
        t0 = min([rows[0][0], float(c["connection"]["start"])]) if rows else 0.0
        shown.append({**c, "svg": Markup(c["ladder_svg"]), "rows": [(t - t0, side, s) for t, side, s in rows]})
    return _template().render(
        css=Markup(_css()), topology=lab["topology"]["name"], conns=shown, captures=lab["captures"],
        states_source=(lab["facts"].get("states") or {}).get("source"), sides=SIDES, version=__version__,
        lab_json=LAB_JSON) + "\n"


@lru_cache(maxsize=1)
def _template():
    return Environment(loader=PackageLoader("netbed.report", "templates"), autoescape=True).get_template("lab.html")


@lru_cache(maxsize=1)
def _css() -> str:
    return resources.files("netbed.report").joinpath("templates/report.css").read_text(encoding="utf-8")


def require_lab(directory: Path) -> None:
    if not (directory / LAB_JSON).is_file():
        raise NetbedError(f"{directory} is not a netbed lab folder (no {LAB_JSON})")
