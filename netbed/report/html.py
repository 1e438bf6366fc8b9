"""The report stage for people: one self-contained HTML page over many runs.

A teacher projects it, a student mails it, a reviewer opens it years later from an archive: so the
page carries everything inside itself (inline CSS, the ladder SVGs inline, no script, no font or
image from anywhere) and points only at files next to it — the run folders' pcaps, by paths
relative to the page, so the page and ``runs/`` can be moved together.

The page is made from the result dicts that ``netbed run`` returns (``runner.check_dir`` plus the
run's duration) and from each run folder's ``ladder.svg``; ``results_from_dirs`` rebuilds those dicts
from saved folders, so ``netbed report DIR… --html FILE`` makes the same page offline.
"""
from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from netbed import __version__
from netbed.errors import NetbedError
from netbed.experiment import EVIDENCE, Experiment, catalog
from netbed.report.folder import LADDER_SVG, SIDES
from netbed.topologies import TOPOLOGIES

SVG_NS = "http://www.w3.org/2000/svg"
_EXPECTED_OBSERVED = re.compile(r"^expected (?P<expected>.*), observed (?P<observed>.*)$", re.DOTALL)
_UNSAFE_ELEMENTS = {"script", "foreignObject", "iframe", "object", "embed"}

# The ladder SVGs carry their own <style>; inline in HTML it applies to the whole page, so the page's
# own class names are prefixed (rp-) and can never meet the SVG's (.title, .time, .label, .state …).
CSS = """
:root { --pass: #1e7b34; --pass-bg: #e3f4e6; --fail: #b3261e; --fail-bg: #fde8e6; --ink: #1d232b;
        --muted: #5d6773; --rule: #d9dee4; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 64px; color: var(--ink); background: #fff;
       font: 15px/1.5 "DejaVu Sans", "Segoe UI", Helvetica, Arial, "WenQuanYi Micro Hei", "Noto Sans CJK SC",
             "PingFang SC", "Microsoft YaHei", sans-serif; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 0 0 6px; }
h3 { font-size: 17px; margin: 0; display: flex; align-items: center; gap: 10px; }
h4 { font-size: 14px; margin: 14px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
a { color: #1f5fa8; }
code, pre, .rp-mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
pre { margin: 4px 0 0; padding: 8px 10px; background: #fff; border: 1px solid var(--rule); border-radius: 4px;
      overflow-x: auto; }
.rp-sub { color: var(--muted); margin: 0 0 20px; }
.rp-total { font-weight: bold; padding: 2px 10px; border-radius: 12px; }
.rp-total.rp-ok { background: var(--pass-bg); color: var(--pass); }
.rp-total.rp-bad { background: var(--fail-bg); color: var(--fail); }
.rp-warn { background: #fff4d6; border: 1px solid #e0b84c; padding: 8px 12px; border-radius: 6px; }
table.rp-verdicts { border-collapse: collapse; margin: 8px 0 32px; font-size: 15px; }
.rp-verdicts th, .rp-verdicts td { border: 1px solid var(--rule); padding: 7px 14px; text-align: left; }
.rp-verdicts thead th { background: var(--panel); font-size: 14px; }
.rp-verdicts tbody th { font-weight: normal; }
.rp-verdicts tbody th a { font-weight: bold; text-decoration: none; }
.rp-verdicts td { text-align: center; min-width: 120px; }
.rp-verdicts td.rp-none { color: #aab2bb; }
td.rp-verdict a { display: block; font-weight: bold; text-decoration: none; }
td.rp-verdict small { font-weight: normal; color: var(--muted); margin-left: 4px; }
td.rp-pass { background: var(--pass-bg); }
td.rp-pass a { color: var(--pass); }
td.rp-fail { background: var(--fail-bg); }
td.rp-fail a { color: var(--fail); }
.rp-badge { display: inline-block; font-size: 13px; font-weight: bold; padding: 1px 9px; border-radius: 10px;
            color: #fff; }
.rp-badge.rp-pass { background: var(--pass); }
.rp-badge.rp-fail { background: var(--fail); }
.rp-dur { font-weight: normal; color: var(--muted); font-size: 14px; }
section.rp-exp { border-top: 3px solid var(--ink); padding-top: 14px; margin-top: 36px; }
.rp-claim { font-size: 18px; margin: 6px 0 2px; padding: 8px 14px; border-left: 4px solid #c9a227;
            background: #fffaf0; }
.rp-gloss { color: var(--muted); margin: 0 0 12px 18px; font-style: italic; }
.rp-netbed, .rp-forcing { margin: 0 0 8px 18px; }
article.rp-run { border: 1px solid var(--rule); border-radius: 8px; padding: 14px 18px; margin: 14px 0;
                 background: var(--panel); }
article.rp-run.rp-failed { border-color: var(--fail); box-shadow: inset 4px 0 0 var(--fail); }
ul.rp-asserts { list-style: none; padding: 0; margin: 0; }
ul.rp-asserts li { padding: 3px 8px; margin: 2px 0; border-radius: 4px; }
ul.rp-asserts li.rp-bad { background: var(--fail-bg); border: 1px solid #f1b5ae; padding: 6px 10px; }
.rp-mark { display: inline-block; width: 1.3em; font-weight: bold; }
.rp-good .rp-mark { color: var(--pass); }
.rp-bad .rp-mark { color: var(--fail); }
.rp-detail { color: var(--muted); }
table.rp-diff { border-collapse: collapse; margin: 4px 0 0 1.3em; }
.rp-diff th { text-align: right; padding: 1px 10px 1px 0; color: var(--muted); font-weight: normal; }
.rp-diff td { padding: 1px 8px; font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px;
              background: #fff; border: 1px solid var(--rule); }
.rp-diff tr.rp-observed td { color: var(--fail); font-weight: bold; }
.rp-grid { display: grid; grid-template-columns: minmax(0, 760px) minmax(280px, 1fr); gap: 24px;
           align-items: start; }
details.rp-ladder summary { cursor: pointer; color: var(--muted); margin: 4px 0; }
details.rp-ladder svg { display: block; max-width: 100%; height: auto; border: 1px solid var(--rule);
                        border-radius: 4px; background: #fff; }
table.rp-states { border-collapse: collapse; font-size: 13px; background: #fff; }
.rp-states th, .rp-states td { border: 1px solid var(--rule); padding: 3px 10px; }
.rp-states th { background: var(--panel); }
.rp-states td.rp-t { text-align: right; color: var(--muted); }
.rp-note { color: var(--muted); font-size: 13px; }
ul.rp-pcaps { margin: 0; padding-left: 18px; }
.rp-conn { font-size: 14px; }
footer { margin-top: 48px; color: var(--muted); font-size: 13px; }
"""


def run_dirs(paths: Iterable[Path]) -> list[Path]:
    """The run folders named by `paths`: a run folder itself, or a folder of run folders (``runs/``)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / EVIDENCE).is_file():
            found.append(path)
        elif path.is_dir():
            inside = sorted(p for p in path.iterdir() if (p / EVIDENCE).is_file())
            if not inside:
                raise NetbedError(f"{path} is neither a netbed run folder nor a folder of run folders "
                                  f"(no {EVIDENCE} in it or below it)")
            found += inside
        else:
            raise NetbedError(f"no such folder: {path}")
    return found


def result_of_dir(directory: Path) -> dict[str, Any]:
    """The result dict of a saved run, as ``netbed run`` returned it when it ran.

    Re-checked from the saved captures when the experiment is installed (``netbed check`` gives the
    same verdict), else the verdict saved in result.json; the duration always comes from result.json
    because only the live run could measure it.
    """
    from netbed.runner import RESULT, check_dir  # the runner imports the report stage

    directory = Path(directory)
    saved: dict[str, Any] = {}
    try:
        saved = json.loads((directory / RESULT).read_text())
    except (OSError, ValueError):
        pass
    try:
        evidence_experiment = json.loads((directory / EVIDENCE).read_text())["experiment"]
        installed = {e.name for e in catalog()}
        if evidence_experiment in installed:
            result = check_dir(directory)
        elif saved:
            result = dict(saved)
            result["artifacts"] = _artifacts_here(directory, saved.get("artifacts", {}))
        else:
            raise NetbedError(f"{directory}: its experiment {evidence_experiment!r} is not installed and "
                              f"{RESULT} is missing or unreadable, so there is no verdict to report")
    except (OSError, ValueError, KeyError) as exc:
        raise NetbedError(f"{directory} cannot be reported, its saved files are damaged "
                          f"({type(exc).__name__}: {exc})") from None
    if "duration" in saved:
        result["duration"] = saved["duration"]
    return result


def _artifacts_here(directory: Path, saved: dict[str, Any]) -> dict[str, Any]:
    """Saved artifact paths moved to where the folder is now (it may have been copied elsewhere)."""
    pcaps = {point: str(directory / Path(path).name) for point, path in (saved.get("pcaps") or {}).items()}
    return {"dir": str(directory), "pcaps": pcaps}


def results_from_dirs(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Result dicts of every run folder named by `paths` (see `run_dirs`)."""
    return [result_of_dir(d) for d in run_dirs(paths)]


def write_page(results: list[dict[str, Any]], html_file: Path, planned: int | None = None) -> Path:
    """Write the report page of `results` to `html_file`; links are relative to where it lands."""
    html_file = Path(html_file)
    html_file.parent.mkdir(parents=True, exist_ok=True)
    html_file.write_text(render_page(results, html_file.parent, planned=planned), encoding="utf-8")
    return html_file


def render_page(results: list[dict[str, Any]], base: Path, planned: int | None = None,
                generated: datetime | None = None) -> str:
    """The whole page as text. `base` is the folder the page will live in (pcap links are relative to it);
    `planned` is how many runs were asked for, so a page of an interrupted ``--all`` says it is partial."""
    experiments = {e.name: e for e in catalog()}
    runs = _with_anchors(results)
    n_pass = sum(bool(r["passed"]) for r in results)
    stamp = (generated or datetime.now()).strftime("%Y-%m-%d %H:%M")
    total_class = "rp-ok" if results and n_pass == len(results) else "rp-bad"
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>netbed report</title>",
        f"<style>{CSS}</style></head><body>",
        "<header><h1>netbed report</h1>",
        f'<p class="rp-sub"><span class="rp-total {total_class}">{n_pass}/{len(results)} passed</span> '
        f"&nbsp;generated {escape(stamp)} by netbed {escape(__version__)}</p>",
    ]
    if planned is not None and planned > len(results):
        head.append(f'<p class="rp-warn">Incomplete: {len(results)} of the {planned} planned runs finished '
                    "before netbed stopped.</p>")
    head.append("</header>")
    body = ['<p class="rp-note">Each verdict links to its run below: the assertions, the ladder diagram, the '
            "kernel's TCP states and the captures.</p>", _verdict_table(runs, experiments)]
    for name, exp_runs in _by_experiment(runs, experiments):
        body.append(_experiment_section(name, experiments.get(name), exp_runs, base))
    foot = ["<footer>Each run folder also holds evidence.json, result.json, ladder.txt and manifest.json; "
            "<code>netbed show DIR</code> prints a run again, <code>netbed check DIR</code> re-checks it "
            "offline.</footer>", "</body></html>", ""]
    return "\n".join(head + body + foot)


def _with_anchors(results: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(anchor id, result) pairs; ids are unique even when one pair of experiment and topology ran twice."""
    seen: dict[str, int] = {}
    out = []
    for r in results:
        base = "run-" + re.sub(r"[^A-Za-z0-9_-]+", "_", f"{r['experiment']}-{r['topology']}")
        seen[base] = seen.get(base, 0) + 1
        out.append((base if seen[base] == 1 else f"{base}-{seen[base]}", r))
    return out


def _topology_order(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    present = {r["topology"] for _, r in runs}
    return [t for t in TOPOLOGIES if t in present] + sorted(present - set(TOPOLOGIES))


def _by_experiment(runs: list[tuple[str, dict[str, Any]]], experiments: dict[str, Experiment]
                   ) -> list[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """Runs grouped by experiment in the lecture's order (catalog order), unknown experiments last."""
    order = {name: i for i, name in enumerate(experiments)}
    topo_order = {t: i for i, t in enumerate(_topology_order(runs))}
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for anchor, r in runs:
        groups.setdefault(r["experiment"], []).append((anchor, r))
    for group in groups.values():
        group.sort(key=lambda item: topo_order[item[1]["topology"]])
    return sorted(groups.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))


def _verdict_table(runs: list[tuple[str, dict[str, Any]]], experiments: dict[str, Experiment]) -> str:
    topos = _topology_order(runs)
    rows = ['<table class="rp-verdicts"><thead><tr><th>experiment</th>'
            + "".join(f"<th>{escape(t)}</th>" for t in topos) + "</tr></thead><tbody>"]
    for name, exp_runs in _by_experiment(runs, experiments):
        cells = []
        for topo in topos:
            here = [(a, r) for a, r in exp_runs if r["topology"] == topo]
            if not here:
                cells.append('<td class="rp-none" title="not run on this topology">—</td>')
                continue
            kind = "rp-pass" if all(r["passed"] for _, r in here) else "rp-fail"
            links = "".join(f'<a href="#{escape(a)}">{_verdict(r)} {_duration(r, "small")}</a>' for a, r in here)
            cells.append(f'<td class="rp-verdict {kind}">{links}</td>')
        rows.append(f'<tr><th scope="row"><a href="#exp-{escape(_slug(name))}">{escape(name)}</a></th>'
                    + "".join(cells) + "</tr>")
    rows.append("</tbody></table>")
    return "\n".join(rows)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name)


def _verdict(result: dict[str, Any]) -> str:
    return "PASS" if result["passed"] else "FAIL"


def _duration(result: dict[str, Any], tag: str) -> str:
    if result.get("duration") is None:
        return ""
    return f'<{tag} class="rp-dur">{float(result["duration"]):.1f} s</{tag}>'


def _experiment_section(name: str, exp: Experiment | None, runs: list[tuple[str, dict[str, Any]]],
                        base: Path) -> str:
    parts = [f'<section class="rp-exp" id="exp-{escape(_slug(name))}">', f"<h2>{escape(name)}</h2>"]
    if exp is not None:
        parts.append(f'<p class="rp-claim" lang="zh">「{escape(exp.claim)}」</p>')
        if exp.netbed:
            parts.append(f'<p class="rp-netbed"><b>netbed, not the lecture:</b> {escape(exp.netbed)}</p>')
        parts.append(f'<p class="rp-gloss">{escape(exp.gloss)}</p>')
        if exp.forcing:
            parts.append(f'<p class="rp-forcing"><b>Forced:</b> {escape(exp.forcing)}</p>')
    else:
        parts.append('<p class="rp-gloss">(this experiment is not installed here: its lecture claim is unknown; '
                     "the verdict is the one saved in result.json)</p>")
    for i, (anchor, r) in enumerate(runs):
        # the same exchange on another topology usually draws the same ladder: show the first and any
        # failed one, fold the rest (still in the page, one click away)
        parts.append(_run_article(anchor, r, base, ladder_open=(i == 0 or not r["passed"])))
    parts.append("</section>")
    return "\n".join(parts)


def _run_article(anchor: str, r: dict[str, Any], base: Path, ladder_open: bool) -> str:
    verdict = _verdict(r)
    kind = "rp-pass" if r["passed"] else "rp-fail"
    failed = "" if r["passed"] else " rp-failed"
    parts = [f'<article class="rp-run{failed}" id="{escape(anchor)}">',
             f'<h3><span class="rp-badge {kind}">{verdict}</span> {escape(r["experiment"])} on '
             f'{escape(r["topology"])} {_duration(r, "span")}</h3>',
             "<h4>assertions</h4>", _assertions(r.get("assertions") or [])]
    parts.append('<div class="rp-grid"><div>')
    parts.append(_ladder(r, ladder_open))
    parts.append("</div><div>")
    parts.append(_connection(r.get("main_connection")))
    parts.append(_states(r))
    parts.append(_pcaps(r, base))
    parts.append("</div></div></article>")
    return "\n".join(parts)


def _assertions(assertions: list[dict[str, Any]]) -> str:
    if not assertions:
        return '<p class="rp-note">no assertions recorded</p>'
    items = []
    for a in assertions:
        ok = bool(a.get("passed"))
        name = escape(str(a.get("name", "")))
        detail = str(a.get("detail", ""))
        if ok:
            items.append(f'<li class="rp-good"><span class="rp-mark">✓</span>{name}'
                         f'{_short_detail(detail)}</li>')
        else:
            items.append(f'<li class="rp-bad"><span class="rp-mark">✗</span><strong>{name}</strong>'
                         f"{_failure_detail(detail)}</li>")
    return '<ul class="rp-asserts">' + "".join(items) + "</ul>"


def _short_detail(detail: str) -> str:
    if not detail:
        return ""
    if "\n" in detail:
        return f"<pre>{escape(detail)}</pre>"
    return f': <span class="rp-detail rp-mono">{escape(detail)}</span>'


def _failure_detail(detail: str) -> str:
    """A failed assertion's detail with expected and observed one above the other, as packetdrill shows them."""
    m = _EXPECTED_OBSERVED.match(detail)
    if m and "\n" not in detail:
        return ('<table class="rp-diff">'
                f'<tr><th>expected</th><td>{escape(m["expected"])}</td></tr>'
                f'<tr class="rp-observed"><th>observed</th><td>{escape(m["observed"])}</td></tr></table>')
    if "\n" in detail:  # expect.ladder's side-by-side table of segments
        return f"<pre>{escape(detail)}</pre>"
    return _short_detail(detail)


def inline_svg(path: Path) -> str | None:
    """The SVG file as markup fit to sit inside the page, or None if it is missing or not SVG.

    A run folder may come from anyone, so what could run or fetch something (scripts, event
    handlers, foreign objects, links out of the picture) is dropped before it goes in.
    """
    try:
        root = ET.fromstring(Path(path).read_bytes())
    except (OSError, ET.ParseError):
        return None
    if root.tag != f"{{{SVG_NS}}}svg":
        return None
    for parent in root.iter():
        for child in list(parent):
            if not isinstance(child.tag, str) or child.tag.split("}")[-1] in _UNSAFE_ELEMENTS:
                parent.remove(child)
        for key in list(parent.attrib):
            local = key.split("}")[-1].lower()
            value = parent.attrib[key].strip().lower()
            if local.startswith("on") or (local == "href" and not value.startswith("#")):
                del parent.attrib[key]
    ET.register_namespace("", SVG_NS)
    return ET.tostring(root, encoding="unicode")


def _ladder(r: dict[str, Any], open_: bool) -> str:
    svg = inline_svg(Path(r["artifacts"]["dir"]) / LADDER_SVG)
    if svg is None:
        return f'<p class="rp-note">no ladder diagram ({LADDER_SVG} is missing or unreadable in the run folder)</p>'
    return (f'<details class="rp-ladder"{" open" if open_ else ""}><summary>ladder diagram of the main '
            f"connection</summary>{svg}</details>")


def _connection(conn: dict[str, Any] | None) -> str:
    if not conn:
        return ""
    close = conn.get("close") or {}
    by = f" by the {close['initiator']}" if close.get("initiator") else ""
    sent = conn.get("bytes") or {}
    return ("<h4>main connection</h4>"
            f'<p class="rp-conn"><code>{escape(str(conn.get("client")))}</code> → '
            f'<code>{escape(str(conn.get("server")))}</code><br>handshake <b>{escape(str(conn.get("handshake")))}</b>'
            f", close <b>{escape(str(close.get('kind')))}</b>{escape(by)}<br>"
            f"bytes: client {escape(str(sent.get('client', 0)))}, server {escape(str(sent.get('server', 0)))}</p>")


def _states(r: dict[str, Any]) -> str:
    """The kernel's TCP states of both sockets on one time axis, zero where the ladder's time starts."""
    states = r.get("states") or {}
    events = [(float(s["time"]), side, s) for side in SIDES for s in states.get(side) or []]
    parts = ["<h4>kernel TCP states</h4>"]
    if not events:
        source = r.get("states_source")
        why = "not recorded in this run" if not source else f"none found (source: {escape(str(source))})"
        parts.append(f'<p class="rp-note">{why}</p>')
        return "\n".join(parts)
    starts = [t for t, _, _ in events]
    conn = r.get("main_connection") or {}
    if conn.get("start") is not None:
        starts.append(float(conn["start"]))
    t0 = min(starts)
    events.sort(key=lambda e: e[0])
    rows = ['<table class="rp-states"><thead><tr><th>time (s)</th><th>client</th><th>server</th></tr></thead>'
            "<tbody>"]
    for t, side, s in events:
        name = escape(str(s.get("state"))) + ("*" if s.get("via") else "")
        cells = [f"<td>{name}</td>" if side == col else "<td></td>" for col in SIDES]
        rows.append(f'<tr><td class="rp-t">{t - t0:.3f}</td>{"".join(cells)}</tr>')
    rows.append("</tbody></table>")
    parts.append("".join(rows))
    note = f"source: {escape(str(r.get('states_source') or 'unknown'))}"
    if any(s.get("via") for _, _, s in events):
        note += "; * seen in the socket table (ss) after the run, not traced as it happened"
    parts.append(f'<p class="rp-note">{note}</p>')
    return "\n".join(parts)


def _pcaps(r: dict[str, Any], base: Path) -> str:
    pcaps = (r.get("artifacts") or {}).get("pcaps") or {}
    parts = ["<h4>captures</h4>"]
    if not pcaps:
        parts.append('<p class="rp-note">no captures</p>')
        return "\n".join(parts)
    items = []
    for point, path in pcaps.items():
        rel = relative_link(Path(path), base)
        items.append(f'<li>{escape(point)}: <a href="{escape(quote(rel))}"><code>{escape(rel)}</code></a></li>')
    parts.append('<ul class="rp-pcaps">' + "".join(items) + "</ul>")
    parts.append('<p class="rp-note">open in Wireshark: <code>wireshark '
                 f"{escape(relative_link(Path(next(iter(pcaps.values()))), base))}</code></p>")
    rundir = (r.get("artifacts") or {}).get("dir")
    if rundir:
        parts.append(f'<p class="rp-note">run folder: <code>{escape(relative_link(Path(rundir), base))}</code></p>')
    return "\n".join(parts)


def relative_link(path: Path, base: Path) -> str:
    """`path` as seen from the page's folder `base`, with forward slashes (what a browser and a shell take)."""
    rel = os.path.relpath(Path(path).resolve(), Path(base).resolve())
    return Path(rel).as_posix()
