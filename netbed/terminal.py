"""What the terminal netbed writes to can show: a live line, colour, or neither.

Why one place decides: a stream being a TTY is not enough. `vagrant ssh -c`, Emacs shells and some CI
runners give a TTY with TERM=dumb, which cannot move the cursor (a live progress line turns into a
stream of repeated lines) and shows escape codes as garbage; NO_COLOR (https://no-color.org) asks for
no colour whatever the terminal can do. rich applies some of this itself, but only where netbed lets
it guess; here the CLI's table, its progress line and the trace command's progress bar all ask the
same question and tell rich the answer, so they agree with each other and with the tests.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

DUMB_TERMS = ("dumb", "unknown")  # TERM values that promise no cursor movement and no colour (as rich reads them)


@dataclass(frozen=True)
class Capability:
    live: bool  # a terminal that can redraw a line: progress bars, rich tables
    colour: bool  # and may be coloured

    def rich_options(self) -> dict[str, Any]:
        """Keyword arguments for rich.console.Console that make it do exactly this, not its own guess."""
        return {"force_terminal": self.live, "force_interactive": self.live,
                "color_system": "standard" if self.colour else None}


def is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream is no terminal
        return False


def capability(stream: TextIO, environ: Mapping[str, str] | None = None) -> Capability:
    """A TTY whose TERM is not dumb is live; it is coloured unless NO_COLOR is set (to anything but "")."""
    env = os.environ if environ is None else environ
    live = is_tty(stream) and env.get("TERM", "").strip().lower() not in DUMB_TERMS
    return Capability(live=live, colour=live and env.get("NO_COLOR", "") == "")
