"""The `netbed` command line."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from netbed import custom_topo, lab, topo_cli, topologies
from netbed.errors import NetbedError, exit_code_of
from netbed.network import SWITCHES

if TYPE_CHECKING:
    from netbed.verdict import RunResult

EXAMPLES = """\
examples:
  netbed list                          the experiments and the lecture claim each demonstrates
  netbed run handshake --topo wan      one experiment: verdict, ladder diagram, run folder
  netbed run --all                     every experiment on every topology it supports
  netbed run --all --html report.html  … and one HTML page with every verdict, ladder and pcap link
  netbed topo lan --hosts 4 --test pingall
  netbed trace runs/…/client.pcap      connections in any pcap, classified
  netbed check runs/…                  re-check a saved run offline
  netbed report runs/ --html report.html   the HTML page again, from saved run folders
  source <(netbed completion bash)     tab completion in this shell
"""

# Each subcommand's examples, shown under its --help: what to type first, then the common variations.
COMMAND_EXAMPLES = {
    "topo": """\
examples:
  netbed topo lan --hosts 4 --test pingall     one switch, 4 hosts, every host pings every host
  netbed topo multi-lan --lans 3 --test pingall
  netbed topo wan --routers 3 --test ping-ends first host to last, across 3 routers
  netbed topo lan --cli                        Mininet's CLI before tearing down
  netbed topo --topo tree,depth=2,fanout=3     a Mininet built-in, as `mn --topo` takes it
  netbed topo --custom mytopo.py --topo mytopo,3 --cli   your own Mininet Topo, as `mn --custom` reads it
""",
    "run": """\
examples:
  netbed run handshake                          on the experiment's first topology
  netbed run close-client --topo multi-lan --out /tmp/cc
  netbed run --all                              every experiment on every topology, a verdict table
  netbed run --all --topo lan --html report.html
  netbed run --all --json > results.json        nothing but JSON on stdout, no progress
  netbed run handshake --topo linear,3          on a Mininet built-in topology
  netbed run close-client --custom mytopo.py --topo mytopo --client h1 --server h3
""",
    "lab": """\
examples:
  netbed lab lan --hosts 3                      Mininet's CLI; every host interface captured from the start
  netbed lab --custom mytopo.py --topo mytopo   the same on your own Mininet Topo
  netbed lab lan --script session.cli           replay CLI commands without a person (CI)
  on exit: every TCP connection of the session, classified, with ladder and kernel states (lab.html)
""",
    "list": """\
examples:
  netbed list
  netbed list --json
""",
    "trace": """\
examples:
  netbed trace runs/…-handshake-lan/client.pcap
  netbed trace capture.pcapng --json            any pcap or pcapng, not only netbed's
""",
    "check": """\
examples:
  netbed check runs/…-close-client-wan          same verdict as the live run, no network needed
  netbed check runs/…-close-client-wan --json
""",
    "show": """\
examples:
  netbed show runs/…-close-client-wan           verdict, ladder diagram, kernel TCP states
  netbed show runs/…-close-client-wan --json
""",
    "report": """\
examples:
  netbed report runs/ --html report.html        every run folder under runs/, one page
  netbed report runs/A runs/B                   the verdict table of two saved runs
  netbed report runs/ --json
""",
    "clean": """\
examples:
  sudo netbed clean      stop what runs killed with SIGKILL left (their processes; their namespaces go too)
                         a live run, another user's Mininet and anything netbed did not start are untouched
""",
    "completion": """\
examples:
  source <(netbed completion bash)                          this shell only
  netbed completion bash > /etc/bash_completion.d/netbed    every new bash
  netbed completion zsh > "${fpath[1]}/_netbed"             zsh (then: compinit)
""",
}
SHELLS = ("bash", "zsh")


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="netbed", description="A network-emulation testbed for the "
                                     "network-programming lecture.", epilog=EXAMPLES, formatter_class=raw)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".",
                              epilog=COMMAND_EXAMPLES[name], formatter_class=raw)

    p = command("topo", "build a topology, test reachability, tear down (like mn)")
    p.add_argument("name", nargs="?", help=f"one of {', '.join(topologies.TOPOLOGIES)} (or --topo, --custom)")
    topo_cli.add_arguments(p)
    custom_topo.add_topo_arguments(p)

    p = command("run", "run experiments, check them, write run folders")
    p.add_argument("name", nargs="?", help="experiment name (see netbed list)")
    p.add_argument("--all", action="store_true", help="every experiment on every topology it supports")
    p.add_argument("--topo", help="topology (default: the experiment's first); also a Mininet one: single,3, "
                   "tree,depth=2 or a --custom file's")
    custom_topo.add_run_arguments(p)
    p.add_argument("--out", type=Path, help="run folder (default: a new folder under runs/)")
    p.add_argument("--switch", default="bridge", help="bridge (default) or ovs")
    p.add_argument("--json", action="store_true", help="print the result as JSON (and nothing else)")
    p.add_argument("--html", type=Path, metavar="FILE",
                   help="also write one self-contained HTML page: verdicts, claims, ladders, states, pcap links")

    p = command("list", "the experiments, their topologies and lecture claims")
    p.add_argument("--json", action="store_true")

    p = command("trace", "connections in a pcap, classified (handshake, close kind, bytes)")
    p.add_argument("pcap", type=Path)
    p.add_argument("--json", action="store_true")

    p = command("check", "re-run a saved run's assertions offline")
    p.add_argument("dir", type=Path)
    p.add_argument("--json", action="store_true")

    p = command("show", "a saved run: verdict, ladder diagram, kernel TCP states")
    p.add_argument("dir", type=Path)
    p.add_argument("--json", action="store_true", help="print verdict, ladder rows and states as JSON")

    p = command("report", "saved run folders: their verdict table, or the HTML page of them")
    p.add_argument("dirs", type=Path, nargs="+", metavar="DIR", help="a run folder, or a folder of them (runs/)")
    p.add_argument("--html", type=Path, metavar="FILE", help="write the HTML page `netbed run --html` writes")
    p.add_argument("--json", action="store_true", help="print the verdicts as `netbed run --all --json` does")

    p = command("lab", "an interactive lab: Mininet's CLI, every host captured, each TCP connection classified")
    p.add_argument("name", nargs="?", help=f"one of {', '.join(topologies.TOPOLOGIES)} (or --topo, --custom)")
    lab.add_arguments(p)

    command("clean", "remove what dead runs left behind (and only that)")

    p = command("completion", "print a shell completion script")
    p.add_argument("shell", choices=SHELLS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_code_of(COMMANDS[args.command], args)


def cmd_clean(args: argparse.Namespace) -> int:
    from netbed import runstate
    from netbed.preflight import require_root

    require_root("netbed clean")
    done = runstate.reclaim()
    if not done:
        print("nothing to clean: no dead netbed run left anything behind")
    for record, killed in done:
        print(f"reclaimed run {record.id} (pid {record.pid}, {' '.join(record.command)[:60]}): "
              f"{killed} processes stopped, their namespaces gone with them")
    return 0


def cmd_topo(args: argparse.Namespace) -> int:
    chosen = custom_topo.wanted(args.name, args.topo, args.custom)
    if chosen is not None:
        return custom_topo.run_topology(args, chosen)
    if args.name is None:
        raise NetbedError(f"name a topology: one of {', '.join(topologies.TOPOLOGIES)}, or --topo/--custom")
    topologies.module(args.name)
    return topo_cli.run_topology(args.name, args)


def cmd_list(args: argparse.Namespace) -> int:
    from netbed.experiment import catalog

    exps = catalog()
    if args.json:
        print(json.dumps({"experiments": [e.to_json() for e in exps]}, ensure_ascii=False, indent=2))
        return 0
    for e in exps:
        print(f"{e.name:<20} {', '.join(e.topologies)}")
        print(f"{'':<20} {e.gloss}")
        print(f"{'':<20} 「{e.claim}」")
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from netbed.trace import format_table, read_trace

    if not args.pcap.exists():
        raise NetbedError(f"no such file: {args.pcap}")
    if args.pcap.is_dir():
        raise NetbedError(f"{args.pcap} is a folder, not a pcap file")
    trace = _read(read_trace, args.pcap)
    for warning in trace.warnings:
        print(f"netbed: warning: {warning}", file=sys.stderr)
    if args.json:
        sys.stdout.write(trace.to_json_text())  # json's indent= would take the slow pure-Python encoder
    else:
        print(format_table(trace))
    return 0


def _read(reader, path: Path):
    from netbed.trace.pcap import PcapError

    try:
        return reader(path)
    except PcapError as exc:
        raise NetbedError(str(exc)) from None
    except OSError as exc:
        raise NetbedError(f"cannot read {path}: {exc.strerror}") from None


def cmd_run(args: argparse.Namespace) -> int:
    from netbed import runner
    from netbed.preflight import require_emulation
    from netbed.report.text import print_table, result_text
    from netbed.runfolder import check_base

    custom = custom_topo.from_run_args(args)
    pairs = runner.plan(args.name, None if custom else args.topo, args.all, custom)
    require_emulation("tcpdump")  # before anything touches the disk
    check_base(args.out or Path("runs"), "--out" if args.out else "run folder")
    if args.html is not None:
        check_writable(args.html)  # before minutes of runs, not after
    results = []
    try:
        with contextlib.ExitStack() as stack:
            if len(pairs) > 1:  # one registration and one kernel state tracer for the whole series
                from netbed import runstate

                if custom is None:
                    topologies.build(pairs[0][1])  # bad input is reported before anything starts
                stack.enter_context(runstate.owned(sys.argv))
                stack.enter_context(runner.shared_state_tracer())
            progress = stack.enter_context(progress_for(quiet=args.json, total=len(pairs), stream=sys.stderr))
            for n, (exp, topo) in enumerate(pairs, 1):
                if args.out and len(pairs) == 1:
                    out = args.out
                else:
                    out = runner.new_run_dir(args.out or Path("runs"), exp.name, topo)
                progress.start(n, exp.name, topo)
                result = runner.run_experiment(exp, topo, out, switch=args.switch,
                                               **({"custom": custom} if custom else {}))
                progress.done(result)
                results.append(result)
    finally:  # an interrupted --all still leaves a page of the runs that finished, marked incomplete
        if args.html is not None and results:
            write_report(results, args.html, planned=len(pairs))
    passed = all(r.passed for r in results)
    if args.json:
        slim = [r.summary() for r in results]
        print(json.dumps(slim[0] if len(slim) == 1 and not args.all else {"passed": passed, "results": slim},
                         indent=2, ensure_ascii=False))
        return 0 if passed else 1
    if len(results) > 1 or args.all:
        print_table(results)
    else:
        print(result_text(results[0]))
    if args.html is not None:
        print(f"report: {args.html}")
    return 0 if passed else 1


def check_writable(path: Path) -> None:
    """Fail now, in one line, if the report page could not be written at `path` later."""
    if path.is_dir():
        raise NetbedError(f"--html {path} is a folder: name the page's file, e.g. {path / 'report.html'}")
    existing = path.resolve().parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise NetbedError(f"cannot write {path}: {existing} is not a writable folder")


def write_report(results: list[RunResult], path: Path, planned: int | None = None) -> None:
    from netbed.report.html import write_page

    try:
        write_page(results, path, planned=planned)
    except OSError as exc:
        raise NetbedError(f"cannot write {path}: {exc.strerror}") from None


def cmd_check(args: argparse.Namespace) -> int:
    from netbed.report.text import result_text
    from netbed.runfolder import require_complete
    from netbed.verdict import check_dir

    require_complete(args.dir)
    result = check_dir(args.dir)
    if args.json:
        summary = result.summary()
        del summary["duration"]  # a re-check measures no run
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print(result_text(result))
    return 0 if result.passed else 1


def cmd_show(args: argparse.Namespace) -> int:
    from netbed.report.folder import show_dir
    from netbed.report.text import show_text
    from netbed.runfolder import require_complete

    require_complete(args.dir)
    shown = show_dir(args.dir)
    if args.json:
        print(json.dumps(shown.to_json(), indent=2, ensure_ascii=False))
    else:
        print(show_text(shown))
    return 0 if shown.result.passed else 1


def cmd_report(args: argparse.Namespace) -> int:
    from netbed.report.folder import results_from_dirs
    from netbed.report.text import print_table

    if args.html is not None:
        check_writable(args.html)
    results = results_from_dirs(args.dirs)
    if args.html is not None:
        write_report(results, args.html)
    passed = all(r.passed for r in results)
    if args.json:
        print(json.dumps({"passed": passed, "results": [r.summary() for r in results]}, indent=2,
                         ensure_ascii=False))
    else:
        print_table(results)
        if args.html is not None:
            print(f"report: {args.html}")
    return 0 if passed else 1


def cmd_completion(args: argparse.Namespace) -> int:
    print(completion_script(args.shell), end="")
    return 0


# --- progress while runs take time -------------------------------------------------------------

class Progress:
    """Says nothing: for `--json` (stdout stays pure JSON, stderr quiet) and a single run in a log."""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, n: int, experiment: str, topology: str) -> None:
        pass

    def done(self, result: RunResult) -> None:
        pass

    def close(self) -> None:
        pass


class PlainProgress(Progress):
    """A line when each run starts and one when it ends: for CI logs and pipes, where a live line is noise."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream, self.total, self.n = stream, total, 0

    def start(self, n: int, experiment: str, topology: str) -> None:
        self.n = n
        print(f"[{n}/{self.total}] running {experiment} on {topology} …", file=self.stream, flush=True)

    def done(self, result: RunResult) -> None:
        verdict = "PASS" if result.passed else "FAIL"
        print(f"[{self.n}/{self.total}] {verdict} {result.experiment} on {result.topology} "
              f"({result.duration or 0:.1f} s)", file=self.stream, flush=True)


class _RunningLine:
    """The live line's content, rendered afresh at each refresh so the elapsed seconds tick."""

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self) -> None:
        self.label = ""
        self.began = time.monotonic()

    def __rich__(self) -> Any:
        from rich.text import Text

        if not self.label:
            return Text("")
        elapsed = time.monotonic() - self.began
        frame = self.FRAMES[int(elapsed * 10) % len(self.FRAMES)]
        return Text.assemble((frame + " ", "cyan"), self.label, (f"  {elapsed:5.1f} s", "bold"))


class LiveProgress(Progress):
    """At a terminal: one line that names the run going on and counts its seconds, and a kept
    PASS/FAIL line per finished run when there are several (rich, on stderr)."""

    def __init__(self, stream: TextIO, total: int) -> None:
        from rich.console import Console
        from rich.live import Live

        self.total, self.n = total, 0
        self.console = Console(file=stream, highlight=False)
        self.line = _RunningLine()
        self.live = Live(self.line, console=self.console, refresh_per_second=10, transient=True,
                         redirect_stdout=False)
        self.live.start()

    def start(self, n: int, experiment: str, topology: str) -> None:
        self.n = n
        count = f"[{n}/{self.total}] " if self.total > 1 else ""
        self.line.label = f"{count}{experiment} on {topology}"
        self.line.began = time.monotonic()
        self.live.refresh()

    def done(self, result: RunResult) -> None:
        from rich.text import Text

        from netbed.report.text import failed_names

        self.line.label = ""
        if self.total > 1:
            verdict = ("PASS", "bold green") if result.passed else ("FAIL", "bold red")
            failed = failed_names(result)
            line = Text.assemble(
                (f"[{self.n}/{self.total}] ", "dim"), verdict, f" {result.experiment} on {result.topology} ",
                (f"{result.duration or 0:.1f} s", "dim"),
                (f"  ✗ {'; '.join(failed)}" if failed else "", "red"))
            line.no_wrap, line.overflow = True, "ellipsis"  # one line per run; the table has the rest
            self.console.print(line)

    def close(self) -> None:
        self.live.stop()


def progress_for(quiet: bool, total: int, stream: TextIO) -> Progress:
    """The progress display that fits where stderr goes: nothing, plain lines, or a live line."""
    from netbed.report.text import is_tty

    if quiet:
        return Progress()
    if is_tty(stream):
        return LiveProgress(stream, total)
    if total > 1:
        return PlainProgress(stream, total)
    return Progress()


# --- shell completion ---------------------------------------------------------------------------

def _completion_words() -> dict[str, Any]:
    """What completes where, read from the parser itself so a new option completes without more code."""
    from netbed.experiment import catalog

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help or "" for a in sub._choices_actions}
    commands: dict[str, dict[str, Any]] = {}
    for name, p in sub.choices.items():
        options: dict[str, dict[str, Any]] = {}
        positional: list[dict[str, Any]] = []
        for action in p._actions:
            kind = _value_kind(name, action)
            if action.option_strings:
                for opt in action.option_strings:
                    options[opt] = {"kind": kind, "help": action.help or "", "takes_value": action.nargs != 0}
            else:
                positional.append({"kind": kind, "name": action.dest, "many": action.nargs in ("+", "*")})
        commands[name] = {"help": helps.get(name, ""), "options": options, "positional": positional}
    return {"commands": commands, "experiments": [e.name for e in catalog()],
            "topologies": list(topologies.TOPOLOGIES)}


# Positionals whose values come from the catalog; every other value is known from argparse itself.
_POSITIONAL_WORDS = {("topo", "name"): "topologies", ("lab", "name"): "topologies", ("run", "name"): "experiments"}


def _value_kind(command: str, action: argparse.Action) -> str | tuple[str, ...]:
    """"experiments", "topologies", "dirs", "files", "" (free text) or a tuple of fixed choices."""
    if action.choices:
        return tuple(str(c) for c in action.choices)
    if action.dest == "switch":
        return tuple(SWITCHES)
    if action.dest == "topo":
        return "topologies"
    if (command, action.dest) in _POSITIONAL_WORDS:
        return _POSITIONAL_WORDS[command, action.dest]
    if action.type is Path:
        return "dirs" if action.dest in ("dir", "dirs") else "files"
    return ""


def completion_script(shell: str) -> str:
    """A completion script for `shell`, listing subcommands, options, experiments and topologies."""
    words = _completion_words()
    return _bash_script(words) if shell == "bash" else _zsh_script(words)


def _bash_words(kind: str | tuple[str, ...]) -> str:
    """The bash code that fills COMPREPLY for one kind of value."""
    if isinstance(kind, tuple):
        return f'COMPREPLY=($(compgen -W "{" ".join(kind)}" -- "$cur"))'
    return {"experiments": 'COMPREPLY=($(compgen -W "$experiments" -- "$cur"))',
            "topologies": 'COMPREPLY=($(compgen -W "$topologies" -- "$cur"))',
            "dirs": 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur"))',
            "files": 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur"))'}.get(kind, "")


def _bash_script(words: dict[str, Any]) -> str:
    commands = words["commands"]
    value_cases: dict[str, str] = {}
    for spec in commands.values():
        for opt, o in spec["options"].items():
            if o["takes_value"]:
                value_cases.setdefault(opt, _bash_words(o["kind"]) or ":")
    lines = [
        "# bash completion for netbed, made by `netbed completion bash`.",
        "# Use it now: source <(netbed completion bash)",
        "# Keep it:    netbed completion bash > /etc/bash_completion.d/netbed",
        "_netbed() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        f'    local commands="{" ".join(commands)}"',
        f'    local experiments="{" ".join(words["experiments"])}"',
        f'    local topologies="{" ".join(words["topologies"])}"',
        '    local cmd="" i',
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        case "${COMP_WORDS[i]}" in -*) ;; *) cmd="${COMP_WORDS[i]}"; break ;; esac',
        "    done",
        '    if [ -z "$cmd" ]; then',
        '        COMPREPLY=($(compgen -W "$commands -h --help" -- "$cur"))',
        "        return",
        "    fi",
        '    case "$prev" in',
    ]
    for opt, code in sorted(value_cases.items()):
        lines.append(f"        {opt}) {code}; return ;;")
    lines += ["    esac", '    case "$cmd" in']
    for name, spec in commands.items():
        opts = " ".join(spec["options"])
        fill = next((_bash_words(p["kind"]) for p in spec["positional"] if _bash_words(p["kind"])), "")
        lines.append(f"        {name})")
        lines.append(f'            if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "{opts}" -- "$cur"))')
        lines.append(f"            else {fill or 'COMPREPLY=()'}; fi ;;")
    lines += ["    esac", "}", "complete -F _netbed netbed", ""]
    return "\n".join(lines)


def _zsh_text(text: str) -> str:
    """Help text made safe inside a single-quoted _arguments spec (no quotes, brackets or colons)."""
    for bad, good in (("'", ""), ("[", "("), ("]", ")"), (":", " -"), ("\\", "/")):
        text = text.replace(bad, good)
    return text


def _zsh_action(kind: str | tuple[str, ...], words: dict[str, Any]) -> str:
    if isinstance(kind, tuple):
        return f"({' '.join(kind)})"
    if kind in ("experiments", "topologies"):
        return f"({' '.join(words[kind])})"
    return {"dirs": "_files -/", "files": "_files"}.get(kind, " ")


def _zsh_script(words: dict[str, Any]) -> str:
    commands = words["commands"]
    described = [_zsh_quote(name + ":" + _zsh_text(spec["help"])) for name, spec in commands.items()]
    lines = [
        "#compdef netbed",
        "# zsh completion for netbed, made by `netbed completion zsh`.",
        '# Keep it: netbed completion zsh > "${fpath[1]}/_netbed", then run compinit.',
        "_netbed() {",
        '    local curcontext="$curcontext" state line',
        f"    local -a commands=({' '.join(described)})",
        "    _arguments -C '(- *)'{-h,--help}'[show help]' '1: :->command' '*:: :->args'",
        "    case $state in",
        "        command) _describe -t commands 'netbed command' commands ;;",
        "        args)",
        "            case $line[1] in",
    ]
    for name, spec in commands.items():
        specs = []
        for opt, o in spec["options"].items():
            help_text = _zsh_text(o["help"] or opt.lstrip("-"))
            if o["takes_value"]:
                specs.append(f"'{opt}[{help_text}]:{opt.lstrip('-')}:{_zsh_action(o['kind'], words)}'")
            else:
                specs.append(f"'{opt}[{help_text}]'")
        for i, p in enumerate(spec["positional"], 1):
            position = "*" if p["many"] else str(i)
            specs.append(f"'{position}:{p['name']}:{_zsh_action(p['kind'], words)}'")
        lines.append(f"                {name}) _arguments {' '.join(specs)} ;;")
    lines += ["            esac ;;", "    esac", "}", '_netbed "$@"', ""]
    return "\n".join(lines)


def _zsh_quote(text: str) -> str:
    """A word single-quoted for zsh."""
    return "'" + text.replace("'", "'\\''") + "'"


COMMANDS = {"clean": cmd_clean, "topo": cmd_topo, "lab": lab.main, "list": cmd_list, "trace": cmd_trace, "run": cmd_run,
            "check": cmd_check, "show": cmd_show, "report": cmd_report, "completion": cmd_completion}


if __name__ == "__main__":
    sys.exit(main())
