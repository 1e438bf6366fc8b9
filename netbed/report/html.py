"""The report stage for people: one self-contained HTML page over many runs.

A teacher projects it, a student mails it, a reviewer opens it years later from an archive: so the
page carries everything inside itself (inline CSS, the ladder SVGs inline, no script, no font or
image from anywhere) and points only at files next to it — the run folders' pcaps, by paths
relative to the page, so the page and ``runs/`` can be moved together.

The page is made from the verdicts (`verdict.RunResult`) that ``netbed run`` returns, or that
``report.folder.results_from_dirs`` re-checks from saved folders (``netbed report DIR… --html FILE``),
and from each run folder's ``ladder.svg``. The markup is a Jinja2 template with autoescaping on
(templates/report.html), so nothing from a run folder reaches the page unescaped; the style is
templates/report.css, inlined. A failed assertion is drawn from its expected and observed values.
"""
from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from netbed import __version__
from netbed.expect import Assertion
from netbed.experiment import Experiment, catalog
from netbed.report.text import fidelity_lines
from netbed.topologies import TOPOLOGIES
from netbed.verdict import CWND_SVG, EXPERIMENT_SVG, LADDER_SVG, SIDES, TSEQ_SVG, RunResult

SVG_NS = "http://www.w3.org/2000/svg"
_UNSAFE_ELEMENTS = {"script", "foreignObject", "iframe", "object", "embed"}
FIGURES = ((EXPERIMENT_SVG, "the experiment's figure"),
           (TSEQ_SVG, "time-sequence graph of the main connection (from the sender's capture)"),
           (CWND_SVG, "congestion window, ssthresh and srtt of the sending socket (the kernel's tcp_probe)"))
NOTHING = "(nothing)"  # a ladder row one side lacks, as expect.ladder's text says it


@dataclass
class Run:
    """One run as the page shows it: its verdict and what was worked out for the page."""

    anchor: str
    result: RunResult
    svg: Markup | None = None
    ladder_open: bool = True
    states: list[tuple[float, str, dict[str, Any]]] | None = None
    any_via: bool = False
    pcaps: list[tuple[str, str]] | None = None
    folder: str | None = None
    figures: list[tuple[str, Markup]] = field(default_factory=list)  # (caption, defused SVG)


@dataclass
class Group:
    """An experiment's runs (one per topology), under its lecture claim."""

    name: str
    slug: str
    experiment: Experiment | None
    runs: list[Run]
    cells: list[list[Run]]  # per topology column of the verdict table: the runs there (usually one)


def write_page(results: list[RunResult], html_file: Path, planned: int | None = None) -> Path:
    """Write the report page of `results` to `html_file`; links are relative to where it lands."""
    html_file = Path(html_file)
    html_file.parent.mkdir(parents=True, exist_ok=True)
    html_file.write_text(render_page(results, html_file.parent, planned=planned), encoding="utf-8")
    return html_file


def render_page(results: list[RunResult], base: Path, planned: int | None = None,
                generated: datetime | None = None) -> str:
    """The whole page as text. `base` is the folder the page will live in (pcap links are relative to it);
    `planned` is how many runs were asked for, so a page of an interrupted ``--all`` says it is partial."""
    experiments = {e.name: e for e in catalog()}
    runs = [Run(anchor, r) for anchor, r in _with_anchors(results)]
    topos = _topology_order(results)
    groups = []
    for name, exp_runs in _by_experiment(runs, experiments, topos):
        for i, run in enumerate(exp_runs):
            _prepare(run, base, ladder_open=(i == 0 or not run.result.passed))
        cells = [[run for run in exp_runs if run.result.topology == topo] for topo in topos]
        groups.append(Group(name, _slug(name), experiments.get(name), exp_runs, cells))
    stamp = (generated or datetime.now()).strftime("%Y-%m-%d %H:%M")
    return _template().render(
        css=Markup(_css()), runs=results, n_pass=sum(bool(r.passed) for r in results), stamp=stamp,
        version=__version__, planned=planned, topologies=topos, groups=groups, sides=SIDES,
        ladder_svg=LADDER_SVG) + "\n"


@lru_cache(maxsize=1)
def _template():
    env = Environment(loader=PackageLoader("netbed.report", "templates"), autoescape=True)
    env.tests["multiline"] = lambda text: "\n" in str(text)
    env.globals.update(verdict=lambda r: "PASS" if r.passed else "FAIL", value_text=value_text,
                       expected_text=expected_text, ladder_rows=ladder_rows,
                       fidelity_text=lambda r: " ".join(line.strip() for line in fidelity_lines(r)))
    return env.get_template("report.html")


@lru_cache(maxsize=1)
def _css() -> str:
    return resources.files("netbed.report").joinpath("templates/report.css").read_text(encoding="utf-8")


def value_text(value: Any) -> str:
    """A value in a table cell: text as it is (the cell delimits it), anything else as Python writes it."""
    return value if isinstance(value, str) else repr(value)


def expected_text(a: Assertion) -> str:
    if a.kind == "within" and isinstance(a.expected, list) and len(a.expected) == 2:
        return f"in [{a.expected[0]}, {a.expected[1]}]"
    return value_text(a.expected)


def ladder_rows(a: Assertion) -> list[dict[str, Any]]:
    """Expected and observed segments side by side, row by row, the rows that differ marked."""
    expected, observed = list(a.expected or []), list(a.observed or [])
    return [{"expected": expected[i] if i < len(expected) else NOTHING,
             "observed": observed[i] if i < len(observed) else NOTHING,
             "differs": i in a.differing} for i in range(max(len(expected), len(observed)))]


def _prepare(run: Run, base: Path, ladder_open: bool) -> None:
    """What the page needs of a run beyond its verdict: the ladder, the states on one axis, pcap links."""
    r = run.result
    svg = inline_svg(Path(r.artifacts["dir"]) / LADDER_SVG)
    run.svg = Markup(svg) if svg is not None else None  # defused by inline_svg
    for name, caption in FIGURES:
        figure = inline_svg(Path(r.artifacts["dir"]) / name)
        if figure is not None:
            run.figures.append((caption, Markup(figure)))  # defused by inline_svg
    run.ladder_open = ladder_open
    run.states, run.any_via = _state_rows(r)
    pcaps = r.artifacts.get("pcaps") or {}
    run.pcaps = [(point, relative_link(Path(path), base)) for point, path in pcaps.items()]
    run.folder = relative_link(Path(r.artifacts["dir"]), base) if r.artifacts.get("dir") else None


def _state_rows(r: RunResult) -> tuple[list[tuple[float, str, dict[str, Any]]], bool]:
    """The kernel's TCP states of both sockets on one time axis, zero where the ladder's time starts."""
    events = [(float(s["time"]), side, s) for side in SIDES for s in r.states.get(side) or []]
    if not events:
        return [], False
    starts = [t for t, _, _ in events]
    if (r.main_connection or {}).get("start") is not None:
        starts.append(float(r.main_connection["start"]))
    t0 = min(starts)
    events.sort(key=lambda e: e[0])
    return [(t - t0, side, s) for t, side, s in events], any(s.get("via") for _, _, s in events)


def _with_anchors(results: list[RunResult]) -> list[tuple[str, RunResult]]:
    """(anchor id, result) pairs; ids are unique even when one pair of experiment and topology ran twice."""
    seen: dict[str, int] = {}
    out = []
    for r in results:
        base = "run-" + _slug(f"{r.experiment}-{r.topology}")
        seen[base] = seen.get(base, 0) + 1
        out.append((base if seen[base] == 1 else f"{base}-{seen[base]}", r))
    return out


def _topology_order(results: list[RunResult]) -> list[str]:
    present = {r.topology for r in results}
    return [t for t in TOPOLOGIES if t in present] + sorted(present - set(TOPOLOGIES))


def _by_experiment(runs: list[Run], experiments: dict[str, Experiment], topos: list[str]
                   ) -> list[tuple[str, list[Run]]]:
    """Runs grouped by experiment in the lecture's order (catalog order), unknown experiments last."""
    order = {name: i for i, name in enumerate(experiments)}
    topo_order = {t: i for i, t in enumerate(topos)}
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.result.experiment, []).append(run)
    for group in groups.values():
        group.sort(key=lambda run: topo_order[run.result.topology])
    return sorted(groups.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name)


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


def relative_link(path: Path, base: Path) -> str:
    """`path` as seen from the page's folder `base`, with forward slashes (what a browser and a shell take)."""
    rel = os.path.relpath(Path(path).resolve(), Path(base).resolve())
    return Path(rel).as_posix()
