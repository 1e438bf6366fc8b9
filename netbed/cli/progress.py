"""Progress while runs take time, on stderr, fitted to where stderr goes.

At a terminal that can redraw a line (netbed.terminal: a TTY, TERM not dumb; coloured unless NO_COLOR):
rich.progress's live line names the run going on and counts its seconds, and a kept
PASS/FAIL line per finished run when there are several. In a log, a pipe or a dumb terminal: a plain line when each
run starts and one when it ends (a live line would be noise there), and nothing for a single run.
With --json: nothing at all, so stdout is pure JSON and stderr stays quiet.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.progress import Progress, ProgressColumn, SpinnerColumn, Task, TaskID, TextColumn
from rich.text import Text

from netbed.report.text import failed_names, verdict_word
from netbed.terminal import Capability, capability

if TYPE_CHECKING:
    from netbed.verdict import RunResult

QUIET, PLAIN, LIVE = "quiet", "plain", "live"


class Seconds(ProgressColumn):
    """The run's elapsed seconds, ticking (rich's own TimeElapsedColumn shows H:MM:SS)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.elapsed or 0:5.1f} s", style="bold")


class RunProgress:
    """Told when each run of a series starts and ends; shows it the way `mode` says."""

    def __init__(self, stream: TextIO, total: int, mode: str, term: Capability | None = None) -> None:
        self.stream, self.total, self.mode = stream, total, mode
        self.n = 0
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        if mode == LIVE:
            self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), Seconds(),
                                console=Console(file=stream, highlight=False,
                                                **(term or capability(stream)).rich_options()), transient=True)

    def __enter__(self) -> RunProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def start(self, n: int, experiment: str, topology: str) -> None:
        self.n = n
        if self.mode == PLAIN:
            print(f"[{n}/{self.total}] running {experiment} on {topology} …", file=self.stream, flush=True)
        elif self.bar is not None:
            count = f"[{n}/{self.total}] " if self.total > 1 else ""
            self.task = self.bar.add_task(f"{count}{experiment} on {topology}", total=None)

    def done(self, result: RunResult) -> None:
        verdict = verdict_word(result.passed)
        if self.mode == PLAIN:
            print(f"[{self.n}/{self.total}] {verdict} {result.experiment} on {result.topology} "
                  f"({result.duration or 0:.1f} s)", file=self.stream, flush=True)
        elif self.bar is not None:
            if self.task is not None:
                self.bar.remove_task(self.task)
                self.task = None
            if self.total > 1:
                failed = failed_names(result)
                line = Text.assemble(
                    (f"[{self.n}/{self.total}] ", "dim"), (verdict, "bold green" if result.passed else "bold red"),
                    f" {result.experiment} on {result.topology} ", (f"{result.duration or 0:.1f} s", "dim"),
                    (f"  ✗ {'; '.join(failed)}" if failed else "", "red"))
                line.no_wrap, line.overflow = True, "ellipsis"  # one line per run; the table has the rest
                self.bar.console.print(line)


def progress_for(quiet: bool, total: int, stream: TextIO) -> RunProgress:
    """The progress display that fits where stderr goes: nothing, plain lines, or a live line."""
    term = capability(stream)
    if quiet:
        mode = QUIET
    elif term.live:
        mode = LIVE
    else:
        mode = PLAIN if total > 1 else QUIET
    return RunProgress(stream, total, mode, term)
