"""The report stage of an interactive lab: every TCP connection of the session, classified, on one page.

A lab has no experiment and no "main" connection: people start whatever they like from the CLI.
So every capture of the lab folder is read, each connection is taken once — as seen at its
client's own interface when that was captured, since that is where its segments were sent from —
and drawn as a ladder with both sockets' kernel states, found by 4-tuple in the namespace of the
host that owns each address. Like the run folders, this reads only the saved folder.
"""
from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from netbed import __version__
from netbed.errors import NetbedError
from netbed.report.html import CSS, relative_link
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
    lab = json.loads((directory / LAB_JSON).read_text())
    title = f"netbed lab on {lab['topology']['name']}"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{escape(title)}</title><style>{CSS}</style></head><body>", f"<h1>{escape(title)}</h1>",
             f'<p class="rp-sub">{len(conns)} TCP connection{"s" if len(conns) != 1 else ""} in the session; '
             f"{len(lab['captures'])} interfaces captured from the first packet on</p>"]
    if conns:
        parts.append('<table class="rp-verdicts"><thead><tr><th>#</th><th>client</th><th>server</th>'
                     "<th>handshake</th><th>close</th><th>bytes c→s / s→c</th></tr></thead><tbody>")
        for c in conns:
            conn, close = c["connection"], c["connection"]["close"]
            parts.append(f'<tr><th><a href="#c{c["n"]}">{c["n"]}</a></th>'
                         f"<td>{escape(str(c['client_host']))} <code>{escape(conn['client'])}</code></td>"
                         f"<td>{escape(str(c['server_host']))} <code>{escape(conn['server'])}</code></td>"
                         f"<td>{escape(conn['handshake'])}</td><td>{escape(close['kind'])}"
                         f"{' (' + escape(close['initiator']) + ')' if close.get('initiator') else ''}</td>"
                         f"<td>{conn['bytes']['client']} / {conn['bytes']['server']}</td></tr>")
        parts.append("</tbody></table>")
    else:
        parts.append('<p class="rp-warn">No TCP connection was captured in this session.</p>')
    for c in conns:
        parts.append(_article(c))
    parts.append(_captures(lab, directory))
    parts.append(f"<footer>made by netbed {escape(__version__)} from {escape(LAB_JSON)} and the captures next to "
                 "this page</footer></body></html>")
    return "\n".join(parts) + "\n"


def _article(c: dict[str, Any]) -> str:
    conn = c["connection"]
    head = (f'<article class="rp-run" id="c{c["n"]}"><h3>{c["n"]}. {escape(str(c["client_host"]))} → '
            f'{escape(str(c["server_host"]))} <span class="rp-dur">{escape(conn["client"])} → '
            f'{escape(conn["server"])}</span></h3>')
    facts = (f'<p class="rp-conn">handshake <b>{escape(conn["handshake"])}</b>, close <b>'
             f'{escape(conn["close"]["kind"])}</b>'
             f'{" by the " + escape(conn["close"]["initiator"]) if conn["close"].get("initiator") else ""}; '
             f'half-close bytes {conn["half_close_bytes"]}; segments {conn["segments"]}; captured at '
             f'{escape(c["captured_at"])}</p>')
    ladder = f'<details class="rp-ladder" open><summary>ladder diagram</summary>{c["ladder_svg"]}</details>'
    return head + facts + f'<div class="rp-grid"><div>{ladder}</div><div>{_states_table(c)}</div></div></article>'


def _states_table(c: dict[str, Any]) -> str:
    events = sorted((float(s["time"]), side, s) for side in SIDES for s in c["states"].get(side) or [])
    if not events:
        why = "not recorded" if not c.get("states_source") else f"none found (source: {c['states_source']})"
        return f'<h4>kernel TCP states</h4><p class="rp-note">{escape(why)}</p>'
    t0 = min([events[0][0], float(c["connection"]["start"])])
    rows = "".join(f'<tr><td class="rp-t">{t - t0:.3f}</td>'
                   + "".join(f"<td>{escape(s['state'])}{'*' if s.get('via') else ''}</td>" if side == col
                             else "<td></td>" for col in SIDES) + "</tr>" for t, side, s in events)
    return ('<h4>kernel TCP states</h4><table class="rp-states"><thead><tr><th>time (s)</th>'
            f"<th>client ({escape(str(c['client_host']))})</th><th>server ({escape(str(c['server_host']))})</th>"
            f'</tr></thead><tbody>{rows}</tbody></table><p class="rp-note">source: '
            f"{escape(str(c.get('states_source')))}</p>")


def _captures(lab: dict[str, Any], directory: Path) -> str:
    items = "".join(f'<li>{escape(cap["node"])} {escape(cap["interface"])}: <a href="{escape(cap["file"])}">'
                    f"<code>{escape(cap['file'])}</code></a></li>" for cap in lab["captures"])
    return (f'<h2>captures</h2><ul class="rp-pcaps">{items}</ul><p class="rp-note">lab folder: '
            f"<code>{escape(relative_link(directory, directory))}</code></p>")


def require_lab(directory: Path) -> None:
    if not (directory / LAB_JSON).is_file():
        raise NetbedError(f"{directory} is not a netbed lab folder (no {LAB_JSON})")
