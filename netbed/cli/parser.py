"""The `netbed` command line's grammar: subcommands, options, examples, and what each completes to.

Tab completion is argcomplete's: `netbed completion bash` prints its hook, and at each TAB the shell
asks `netbed` itself, which answers from this very parser (experiments and topologies included),
so a new option completes without more code.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

from netbed import topologies

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
    "cluster": """\
examples:
  sudo netbed cluster up 3          3 emulated servers; prints 10.251.0.2,10.251.0.3,10.251.0.4
  sudo netbed topo lan --hosts 8 --cluster 10.251.0.2,10.251.0.3 --test pingall
  sudo netbed cluster status
  sudo netbed cluster down          nothing of them is left
""",
    "completion": """\
examples:
  source <(netbed completion bash)                          this shell only
  netbed completion bash > /etc/bash_completion.d/netbed    every new bash
  netbed completion zsh > "${fpath[1]}/_netbed"             zsh (then: compinit)
""",
}
SHELLS = ("bash", "zsh")


def _experiments(**_: Any) -> list[str]:
    from netbed.experiment import catalog

    return [e.name for e in catalog()]


def _topologies(**_: Any) -> list[str]:
    return list(topologies.TOPOLOGIES)


def _switches(**_: Any) -> list[str]:
    from netbed.network import SWITCHES

    return list(SWITCHES)


MAX_JOBS = 64


def _jobs(text: str) -> int:
    """--jobs N: a whole number of parallel runs, 1..MAX_JOBS."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"--jobs must be a whole number from 1 to {MAX_JOBS}, not {text!r}")
    return int(text)


def _complete(action: argparse.Action, completer: Any) -> argparse.Action:
    action.completer = completer  # type: ignore[attr-defined]  # read by argcomplete
    return action


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistyped command line is one line on stderr and exit 2, like every netbed error.

    argparse prints the usage of the whole program before its error, often the top level's
    (`usage: netbed [-h] COMMAND ...`) for a subcommand's mistake; the line here names the
    subcommand and where its options are listed.
    """

    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:  # told by the subcommand that did not take them, not by the top level
            owner = getattr(self, "commands", {}).get(getattr(parsed, "command", None), self)
            owner.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole grammar, or with ``only`` just that subcommand's (same options, same messages).

    Why ``only``: the topology and lab options are defined by modules that import Mininet, ~0.25 s
    of start-up that ``netbed trace`` (a pcap analyser, timed against tshark) has no use for.
    """
    raw = argparse.RawDescriptionHelpFormatter
    parser = OneLineParser(prog="netbed", description="A network-emulation testbed for the "
                                     "network-programming lecture.", epilog=EXAMPLES, formatter_class=raw)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    parser.commands = {}

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        if only is not None and name != only:  # built for nothing: a parser nobody adds to the grammar
            return OneLineParser(prog=f"netbed {name}")
        parser.commands[name] = sub.add_parser(name, help=summary, epilog=COMMAND_EXAMPLES[name],
                                               description=summary[0].upper() + summary[1:] + ".",
                                               formatter_class=raw)
        return parser.commands[name]

    def wanted(name: str) -> bool:
        return only is None or only == name

    if wanted("topo"):
        from netbed import custom_topo, topo_cli

        p = command("topo", "build a topology, test reachability, tear down (like mn)")
        _complete(p.add_argument("name", nargs="?", help=f"one of {', '.join(topologies.TOPOLOGIES)} (or --topo, "
                                 "--custom)"), _topologies)
        topo_cli.add_arguments(p)
        custom_topo.add_topo_arguments(p)

    if wanted("run"):
        from netbed import custom_topo, topo_cli

        p = command("run", "run experiments, check them, write run folders")
        _complete(p.add_argument("name", nargs="?", help="experiment name (see netbed list), or a claim file (.toml) "
                                 "or a folder of them (docs/grading.md)"), _experiments)
        p.add_argument("--all", action="store_true", help="every experiment on every topology it supports")
        _complete(p.add_argument("--topo", help="topology (default: the experiment's first); also a Mininet one: "
                                 "single,3, tree,depth=2 or a --custom file's"), _topologies)
        custom_topo.add_run_arguments(p)
        p.add_argument("--out", type=Path, help="run folder (default: a new folder under runs/)")
        _complete(p.add_argument("--switch", default="bridge", help="bridge (default) or ovs"), _switches)
        p.add_argument("--json", action="store_true", help="print the result as JSON (and nothing else)")
        p.add_argument("--jobs", type=_jobs, default=1, metavar="N", help="run N experiments at once (with --all)")
        p.add_argument("--html", type=Path, metavar="FILE",
                       help="also write one self-contained HTML page: verdicts, claims, ladders, states, pcap links")
        p.add_argument("--junit", type=Path, metavar="FILE",
                       help="claim files: also write JUnit XML (one test case each)")
        topo_cli.add_cluster_arguments(p)

    p = command("list", "the experiments, their topologies and lecture claims")
    p.add_argument("--json", action="store_true")
    _complete(p.add_argument("--claims", metavar="EXP", help="print a claim-file skeleton of experiment EXP"),
              _experiments)

    p = command("trace", "connections in a pcap, classified (handshake, close kind, bytes)")
    p.add_argument("pcap", help="a pcap or pcapng file, also gzip-compressed; - reads standard input")
    p.add_argument("--json", action="store_true", help="one JSON document, connections streamed as they end")

    p = command("check", "re-run a saved run's assertions offline")
    _complete(p.add_argument("dir", type=Path), _directories())
    p.add_argument("--json", action="store_true")

    p = command("show", "a saved run: verdict, ladder diagram, kernel TCP states")
    _complete(p.add_argument("dir", type=Path), _directories())
    p.add_argument("--json", action="store_true", help="print verdict, ladder rows and states as JSON")

    p = command("report", "saved run folders: their verdict table, or the HTML page of them")
    _complete(p.add_argument("dirs", type=Path, nargs="+", metavar="DIR",
                             help="a run folder, or a folder of run folders (runs/)"), _directories())
    p.add_argument("--html", type=Path, metavar="FILE", help="write the HTML page `netbed run --html` writes")
    p.add_argument("--json", action="store_true", help="print the verdicts as `netbed run --all --json` does")

    if wanted("lab"):
        from netbed import lab

        p = command("lab", "an interactive lab: Mininet's CLI, every host captured, each TCP connection classified")
        _complete(p.add_argument("name", nargs="?", help=f"one of {', '.join(topologies.TOPOLOGIES)} (or --topo, "
                                 "--custom)"), _topologies)
        lab.add_arguments(p)

    command("clean", "remove what dead runs left behind (and only that)")

    p = command("cluster", "emulated servers on this machine, for --cluster (each its own namespaces and sshd)")
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument("count", nargs="?", type=int, default=2, help="servers to start (up; default 2)")

    p = command("completion", "print a shell completion script")
    p.add_argument("shell", choices=SHELLS)
    return parser


def _directories() -> Any:
    from argcomplete.completers import DirectoriesCompleter

    return DirectoriesCompleter()
