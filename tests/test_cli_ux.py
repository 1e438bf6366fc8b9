"""How the CLI treats a person and a program: progress while runs take time, quiet JSON, help with
examples, shell completion. Runs are stood in for by hand-made run folders (no network, no root:
the series' shared setup is stood in for too), except the one live check at the end."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import netbed
from test_report_show import write_run

from netbed import cli, runner, verdict
from netbed.cli.commands import completion_script
from netbed.cli.progress import LIVE, PLAIN, QUIET, RunProgress, progress_for
from netbed.experiment import catalog
from netbed.report.text import print_table

SUBCOMMANDS = list(cli.COMMANDS)


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr is when a person watches."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def colour_terminal(monkeypatch):
    """The terminal these tests mean: a colour xterm, whatever TERM and NO_COLOR the suite runs under
    (`vagrant ssh -c` sets TERM=dumb; a user may set NO_COLOR)."""
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture
def fake_runs(monkeypatch):
    """`runner.run_experiment` stood in for by a hand-made run folder; handshake passes, the rest fail.

    The series' shared setup (run registration, kernel state tracer) needs root: stood in for too.
    """
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(runner, "series_session", lambda pairs, custom=None, **_: contextlib.nullcontext())

    def run_experiment(exp, topology, out, switch="bridge"):
        calls.append((exp.name, topology))
        write_run(out)
        result = verdict.check_dir(out)
        result.experiment, result.topology, result.duration = exp.name, topology, 1.25
        result.passed = exp.name == "handshake"
        if exp.name != "handshake":
            result.assertions[0] = dataclasses.replace(result.assertions[0], passed=False, kind="equal",
                                                       detail="expected 1, observed 2", expected=1, observed=2)
        runner.write_result(out, result)  # ladder.txt and ladder.svg, as the real runner leaves them
        return result

    monkeypatch.setattr(runner, "run_experiment", run_experiment)
    return calls


def wan_experiments() -> list[str]:
    return [e.name for e in catalog() if "wan" in e.topologies]


def test_run_all_json_prints_only_json_and_no_progress(fake_runs, tmp_path, capsys):
    assert cli.main(["run", "--all", "--topo", "wan", "--json", "--out", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert [r["experiment"] for r in data["results"]] == wan_experiments()
    assert captured.err == ""


def test_run_all_in_a_log_prints_a_plain_line_per_run_and_the_verdict_table(fake_runs, tmp_path, capsys):
    assert cli.main(["run", "--all", "--topo", "wan", "--out", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    n = len(wan_experiments())
    assert captured.err.splitlines()[:2] == [f"[1/{n}] running browser-server on wan …",
                                             f"[1/{n}] FAIL browser-server on wan (1.2 s)"]
    i = wan_experiments().index("handshake") + 1
    assert f"[{i}/{n}] PASS handshake on wan (1.2 s)" in captured.err.splitlines()
    assert "\x1b[" not in captured.out + captured.err  # no terminal, no colour codes
    assert "experiment          topology   verdict    time  failed assertions" in captured.out
    assert "handshake           wan        PASS       1.2s  " in captured.out
    assert f"1/{n} passed; run folders under {tmp_path}" in captured.out


def test_a_single_run_in_a_log_prints_no_progress(fake_runs, tmp_path, capsys):
    assert cli.main(["run", "handshake", "--out", str(tmp_path / "run")]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.startswith("PASS  handshake on lan\n")


def test_progress_fits_where_stderr_goes(colour_terminal):
    assert progress_for(quiet=True, total=5, stream=Terminal()).mode == QUIET
    assert progress_for(quiet=False, total=5, stream=io.StringIO()).mode == PLAIN
    assert progress_for(quiet=False, total=1, stream=io.StringIO()).mode == QUIET
    assert progress_for(quiet=False, total=1, stream=Terminal()).mode == LIVE


def test_live_progress_at_a_terminal_counts_seconds_then_keeps_the_verdict_line(tmp_path, colour_terminal):
    screen = Terminal()
    result = verdict.check_dir(write_run(tmp_path / "run"))
    result.duration = 0.5
    with RunProgress(screen, total=2, mode=LIVE) as progress:
        progress.start(1, "handshake", "lan")
        time.sleep(0.35)  # the live line refreshes ten times a second
        progress.done(result)
    text = screen.getvalue()
    assert "[1/2] handshake on lan" in text and " s" in text  # the live line, with its elapsed seconds
    assert "\x1b[" in text  # coloured: it is a terminal
    kept = [line for line in text.replace("\r", "\n").splitlines() if "PASS" in line]
    assert kept and "handshake on lan" in kept[-1] and "0.5 s" in kept[-1]


def test_verdict_table_at_a_terminal_is_coloured_and_keeps_the_summary_line(tmp_path, colour_terminal):
    screen = Terminal()
    result = verdict.check_dir(write_run(tmp_path / "run"))
    print_table([result], out=screen)
    text = screen.getvalue()
    assert "\x1b[" in text and "failed assertions" in text and "handshake" in text
    assert f"1/1 passed; run folders under {tmp_path}" in text


def test_run_html_writes_the_page_of_the_runs_that_finished_when_interrupted(fake_runs, tmp_path, monkeypatch):
    finished = runner.run_experiment

    def run_then_interrupt(exp, topology, out, switch="bridge"):
        if len(fake_runs) == 2:
            raise KeyboardInterrupt
        return finished(exp, topology, out, switch)

    monkeypatch.setattr(runner, "run_experiment", run_then_interrupt)
    page = tmp_path / "report.html"
    assert cli.main(["run", "--all", "--topo", "wan", "--out", str(tmp_path), "--html", str(page)]) == 130
    text = page.read_text()
    assert f"Incomplete: 2 of the {len(wan_experiments())} planned runs finished" in text
    # two ladders, and the figures (time-sequence, cwnd) of the runs that carried data
    assert text.count('class="rp-ladder"') == 2 and text.count("<svg") == 2 + text.count('class="rp-figure"')


def test_run_html_into_a_folder_is_refused_before_anything_runs(fake_runs, tmp_path, capsys):
    assert cli.main(["run", "handshake", "--html", str(tmp_path)]) == 2
    assert fake_runs == []
    assert "is a folder: name the page's file" in capsys.readouterr().err


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_help_shows_examples(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    examples = out[out.index("examples:"):]
    assert f"netbed {command}" in examples or (command == "completion" and "netbed completion" in examples)


def test_top_level_help_lists_every_subcommand_and_examples(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in SUBCOMMANDS) and "examples:" in out and "--html" in out


def test_bash_completion_is_valid_bash_and_hooks_netbed(tmp_path):
    script = completion_script("bash")
    path = tmp_path / "netbed.bash"
    path.write_text(script)
    res = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "complete " in script and " netbed" in script


def complete(script: Path, *words: str) -> list[str]:
    """What bash offers after `words` (the last one is being typed): the real hook, the real `netbed`."""
    line = " ".join(words)
    setup = (f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; "
             f"COMP_LINE={line!r}; COMP_POINT={len(line)}; COMP_TYPE=9")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    res = subprocess.run(["bash", "-c", f"source {script}; {setup}; _python_argcomplete netbed; "
                          "printf '%s\\n' \"${COMPREPLY[@]}\""], capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 0, res.stderr
    return sorted(w.strip() for w in res.stdout.splitlines() if w.strip())


def test_bash_completion_completes_commands_experiments_topologies_and_options(tmp_path):
    script = tmp_path / "netbed.bash"
    script.write_text(completion_script("bash"))
    assert complete(script, "netbed", "re") == ["report"]
    assert complete(script, "netbed", "run", "close-c") == ["close-client"]
    assert complete(script, "netbed", "run", "--topo", "m") == ["multi-lan"]
    assert complete(script, "netbed", "topo", "w") == ["wan"]
    assert complete(script, "netbed", "topo", "lan", "--test", "ping") == ["ping-ends", "pingall"]
    assert complete(script, "netbed", "run", "--h") == ["--help", "--html"]
    assert complete(script, "netbed", "completion", "") == ["bash", "zsh"]
    assert set(complete(script, "netbed", "run", "")) >= {e.name for e in catalog()}


def test_zsh_completion_hooks_netbed_and_is_valid_zsh(tmp_path):
    script = completion_script("zsh")
    assert script.startswith("#compdef netbed\n") and "_python_argcomplete" in script
    zsh = shutil.which("zsh")
    if zsh is None:
        pytest.skip("zsh is not installed: the script's text was checked, not its syntax")
    path = tmp_path / "_netbed"
    path.write_text(script)
    res = subprocess.run([zsh, "-n", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_completion_of_an_unknown_shell_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["completion", "fish"])
    assert exc.value.code == 2 and "invalid choice: 'fish'" in capsys.readouterr().err


@pytest.mark.netbed
def test_live_run_writes_a_report_page_with_its_ladder(tmp_path):
    page = tmp_path / "site" / "report.html"
    res = netbed("run", "handshake", "--topo", "lan", "--out", str(tmp_path / "run"), "--html", str(page))
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.rstrip().endswith(f"report: {page}")
    text = page.read_text()
    assert text.count('class="rp-ladder"') == 1 and 'class="rp-verdict rp-pass"' in text
    assert text.count("<svg") == 1 + text.count('class="rp-figure"')
    assert 'href="../run/client.pcap"' in text
