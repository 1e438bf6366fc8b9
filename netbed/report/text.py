"""The report stage at a terminal: what `netbed run`, `check`, `show` and `report` print.

Plain text where output goes to a log, a pipe or a dumb terminal, rich's table at a terminal (coloured
unless NO_COLOR says not; netbed.terminal decides). An assertion's own
lines come from `Assertion.lines`, the one rendering that pytest failures use too.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from netbed.report.folder import Shown
from netbed.report.ladder import render_text
from netbed.terminal import capability
from netbed.verdict import SIDES, RunResult

PASS, FAIL = "PASS", "FAIL"


def verdict_word(passed: bool) -> str:
    return PASS if passed else FAIL


def result_text(result: RunResult) -> str:
    """One run: verdict, each assertion, the ladder diagram, and where its files are."""
    lines = [f"{verdict_word(result.passed)}  {result.experiment} on {result.topology}"]
    lines += fidelity_lines(result)
    for a in result.assertions:
        lines += a.lines("  ")
    ladder = Path(result.artifacts.get("ladder") or Path(result.artifacts["dir"]) / "ladder.txt")
    if ladder.exists():
        lines += ["", ladder.read_text().rstrip()]
    lines.append(f"\nartifacts: {result.artifacts['dir']}")
    return "\n".join(lines)


def show_text(shown: Shown) -> str:
    """The text of ``netbed show``: verdict and assertions as ``netbed run`` prints them, ladder, states."""
    r = shown.result
    origin = "re-checked from the saved captures" if shown.verdict_from == "re-check" else \
        "as saved in result.json (the experiment is not installed here)"
    lines = [f"{verdict_word(r.passed)}  {r.experiment} on {r.topology}  ({origin})"]
    lines += fidelity_lines(r)
    for a in r.assertions:
        lines += a.lines("  ")
    ladder = render_text(shown.ladder) if shown.ladder is not None else "(no TCP connection in the capture)"
    lines += ["", ladder, ""]
    lines.append(f"kernel TCP states (source: {shown.states_source or 'not recorded'}):")
    for side in SIDES:
        names = " → ".join(s["state"] + ("*" if s.get("via") else "") for s in shown.states[side])
        lines.append(f"  {side}: {names or 'none recorded'}")
    lines.append(f"\nrun folder: {r.artifacts['dir']}")
    return "\n".join(lines)


def fidelity_lines(result: RunResult) -> list[str]:
    """Next to the verdict: whether the machine kept up during the run, and if not why."""
    f = result.fidelity
    if not f:
        return []
    rec = f.get("record") or {}
    slip = rec.get("timer_slip_ms") or {}
    idle = rec.get("cpu_idle_share")
    measured = (f"CPU idle {idle:.1%}" if idle is not None else "CPU idle ?") + \
        f", timer slip p99 {slip.get('p99')} ms (max {slip.get('max')}), " \
        f"tracer lost {rec.get('tracer_lost_events')}, capture dropped {rec.get('capture_dropped')}" + \
        (f", waits stretched ×{rec['slowdown']:g} for a slow machine" if (rec.get("slowdown") or 1) != 1 else "")
    if f.get("kept"):
        return [f"  fidelity: kept ({measured})"]
    return [f"  FIDELITY LOST: {'; '.join(f.get('reasons') or [])} ({measured}); timing-dependent assertions refused"]


def failed_names(result: RunResult) -> list[str]:
    return [a.name for a in result.failed]


def print_table(results: list[RunResult], out: TextIO | None = None) -> None:
    """The verdict table: rich's at a terminal (coloured where it may be), plain aligned columns for logs,
    pipes and dumb terminals."""
    out = out or sys.stdout
    term = capability(out)
    if term.live:
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, pad_edge=False, header_style="bold")
        for name, justify in (("experiment", "left"), ("topology", "left"), ("verdict", "left"),
                              ("time", "right"), ("failed assertions", "left")):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for r in results:
            verdict = "[bold green]PASS[/]" if r.passed else "[bold red]FAIL[/]"
            table.add_row(r.experiment, r.topology, verdict, f"{r.duration or 0:.1f}s",
                          "[red]" + "; ".join(failed_names(r)).replace("[", r"\[") + "[/]")
        console = Console(file=out, highlight=False, **term.rich_options())
        console.print()
        console.print(table)
    else:
        width = max(len(r.experiment) for r in results)
        print(f"\n{'experiment':<{width}}  {'topology':<10} verdict  {'time':>6}  failed assertions", file=out)
        for r in results:
            print(f"{r.experiment:<{width}}  {r.topology:<10} {verdict_word(r.passed):<7}  "
                  f"{r.duration or 0:5.1f}s  {'; '.join(failed_names(r))}", file=out)
    n_pass = sum(r.passed for r in results)
    print(f"\n{n_pass}/{len(results)} passed; run folders under {Path(results[0].artifacts['dir']).parent}",
          file=out)

