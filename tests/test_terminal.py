"""Colour and live lines follow what the terminal really is: a TTY, its TERM, NO_COLOR.

Each test sets the terminal it tests (TERM, NO_COLOR) instead of inheriting the suite's: under
`vagrant ssh -c` TERM is dumb, and a colour test that trusted the environment failed there. The
last tests go the user's way: `netbed report` on a real pseudo-terminal, under each TERM.
"""
from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import time

import pytest
from conftest import NETBED, REPO
from test_cli_ux import Terminal
from test_report_show import write_run

from netbed import runner, verdict
from netbed.cli.progress import LIVE, PLAIN, QUIET, RunProgress, progress_for
from netbed.report.text import print_table
from netbed.terminal import Capability, capability

SGR = re.compile(r"\x1b\[[0-9;]*m")  # Select Graphic Rendition: colours and bold, nothing else
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|9[0-7])(?:;[0-9;]*)?m")  # a foreground colour among them


@pytest.mark.parametrize("tty, env, expected", [
    (True, {"TERM": "xterm-256color"}, Capability(live=True, colour=True)),
    (True, {"TERM": "linux"}, Capability(live=True, colour=True)),
    (True, {}, Capability(live=True, colour=True)),  # no TERM at all: rich too calls that a terminal
    (True, {"TERM": "dumb"}, Capability(live=False, colour=False)),
    (True, {"TERM": "unknown"}, Capability(live=False, colour=False)),
    (True, {"TERM": "xterm", "NO_COLOR": "1"}, Capability(live=True, colour=False)),
    (True, {"TERM": "xterm", "NO_COLOR": ""}, Capability(live=True, colour=True)),  # no-color.org: empty is unset
    (False, {"TERM": "xterm-256color"}, Capability(live=False, colour=False)),  # a pipe or a log
])
def test_capability_is_tty_and_term_and_no_color(tty, env, expected):
    assert capability(Terminal() if tty else io.StringIO(), env) == expected


def _table(tmp_path) -> str:
    screen = Terminal()
    print_table([verdict.check_dir(write_run(tmp_path / "run"))], out=screen)
    return screen.getvalue()


def test_a_dumb_terminal_gets_the_plain_table_and_plain_progress_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.delenv("NO_COLOR", raising=False)
    text = _table(tmp_path)
    assert "\x1b" not in text
    assert re.search(r"^handshake\s+lan\s+PASS\s+", text, re.M), text  # the log's aligned columns
    assert progress_for(quiet=False, total=5, stream=Terminal()).mode == PLAIN
    assert progress_for(quiet=False, total=1, stream=Terminal()).mode == QUIET


def test_no_color_keeps_the_terminal_table_and_live_line_without_colour(tmp_path, monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("NO_COLOR", "1")
    text = _table(tmp_path)
    assert not SGR.search(text), repr(text)
    assert "failed assertions" in text and "PASS" in text
    screen = Terminal()
    result = verdict.check_dir(write_run(tmp_path / "run2"))
    result.duration = 0.5
    assert progress_for(quiet=False, total=2, stream=screen).mode == LIVE
    with RunProgress(screen, total=2, mode=LIVE) as progress:
        progress.start(1, "handshake", "lan")
        time.sleep(0.25)
        progress.done(result)
    live = screen.getvalue()
    assert "\x1b[?25l" in live  # still a live line: the cursor is hidden while it redraws
    assert not COLOUR.search(live) and "PASS" in live, repr(live)


def test_sabotage_the_colour_pattern_sees_rich_colour(tmp_path, monkeypatch):
    # the patterns above are not blind: the same table on a colour terminal matches both
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    text = _table(tmp_path)
    assert SGR.search(text) and COLOUR.search(text), repr(text)


def _on_a_pty(argv: list[str], env: dict[str, str]) -> str:
    """Run argv with stdin, stdout and stderr on a new pseudo-terminal; everything it wrote there."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=REPO, env=env,
                                start_new_session=True)
    finally:
        os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=60)
    finally:
        os.close(master)
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    out = write_run(tmp_path_factory.mktemp("terminal") / "handshake-lan")
    result = verdict.check_dir(out)
    result.experiment, result.topology, result.duration = "handshake", "lan", 1.0
    runner.write_result(out, result)
    return out


@pytest.mark.parametrize("term, no_color, coloured, live", [
    ("xterm-256color", None, True, True),
    ("dumb", None, False, False),
    ("xterm-256color", "1", False, True),
])
def test_netbed_report_on_a_real_pty_follows_term_and_no_color(saved_run, term, no_color, coloured, live):
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "TERM": term}
    if no_color is not None:
        env["NO_COLOR"] = no_color
    screen = _on_a_pty([*NETBED, "report", str(saved_run)], env)
    assert "handshake" in screen and "1/1 passed" in screen, screen
    assert bool(COLOUR.search(screen)) is coloured, repr(screen)
    assert bool(SGR.search(screen)) is coloured, repr(screen)  # NO_COLOR: not even bold
    # the plain table (logs, dumb terminals) pads the topology column to 10; rich's fits it to its content
    assert ("topology   verdict" in screen) is not live, repr(screen)
