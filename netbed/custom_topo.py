"""`--custom FILE --topo NAME[,ARGS]` on the command line: Mininet's habit, on `netbed topo`, `run` and `lab`.

`mn --custom FILE --topo NAME,arg,key=value` reads `topos` from FILE and builds NAME with those
arguments; `mn --topo tree,depth=2` builds a Mininet built-in. netbed takes the same words: with
`--custom`, `--topo` names one of the file's topologies (or a built-in); without it, `--topo` is
one of netbed's own topologies (`lan`, `multi-lan`, `wan`) or one of Mininet's built-ins.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from netbed import runstate, topologies
from netbed.errors import NetbedError
from netbed.network import shaping
from netbed.network.custom import BUILTIN_TOPOS, CustomTopology, custom_topology, end_hosts, is_mininet_name
from netbed.preflight import require_emulation
from netbed.spec import Node, Topology
from netbed.topo_cli import choose_test, counted, teardown_line, test_then_cli

CUSTOM_HELP = "read `topos = {name: Topo class or function}` from this .py file, as `mn --custom` does"


def add_custom_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--custom", metavar="FILE", help=CUSTOM_HELP + " (several: comma-separated)")


def add_topo_arguments(parser: argparse.ArgumentParser) -> None:
    """`netbed topo` / `netbed lab`: --custom and a Mininet-style --topo beside the positional name."""
    add_custom_argument(parser)
    parser.add_argument("--topo", metavar="NAME[,ARGS]",
                        help=f"a Mininet topology as `mn --topo` takes it: {', '.join(BUILTIN_TOPOS)} or one "
                             "from --custom, e.g. tree,depth=2,fanout=2")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """`netbed run`: --custom, and the hosts a run on a user's topology goes between."""
    add_custom_argument(parser)
    parser.add_argument("--client", metavar="HOST", help="client host on a --custom/Mininet topology (default: "
                        "the first host)")
    parser.add_argument("--server", metavar="HOST", help="server host (default: the last host)")


def custom_files(value: str | None) -> list[Path]:
    """--custom's files: one file (even with commas in its name), else a comma-separated list, like mn."""
    if not value:
        return []
    if Path(value).is_file():
        return [Path(value)]
    return [Path(v) for v in value.split(",") if v]


def wanted(name: str | None, topo: str | None, custom: str | None) -> str | None:
    """The Mininet-style topology argument the user chose, or None for one of netbed's own topologies."""
    if custom and name and not topo:
        raise NetbedError(f"with --custom, name the topology with --topo (e.g. --topo {name}), as mn does")
    if name and topo:
        raise NetbedError(f"name one topology: {name} or --topo {topo}")
    chosen = topo or name
    if chosen is None:
        if custom:
            raise NetbedError("--custom needs --topo NAME: which of the file's topologies to build")
        return None
    if custom or is_mininet_name(chosen):
        return chosen
    if chosen in topologies.TOPOLOGIES:
        return None
    raise NetbedError(f"unknown topology {chosen.split(',')[0]!r}: choose one of "
                      f"{', '.join(topologies.TOPOLOGIES)} (netbed's), "
                      f"{', '.join(BUILTIN_TOPOS)} (Mininet's, with ,ARGS), or --custom FILE --topo NAME")


def from_run_args(args: argparse.Namespace) -> CustomTopology | None:
    """`netbed run EXP --topo ... [--custom FILE] [--client H] [--server H]`: the user's topology, checked."""
    chosen = wanted(None, args.topo, args.custom)
    if chosen is None:
        if args.client or args.server:
            raise NetbedError("--client and --server choose hosts on a --custom or Mininet topology (--topo "
                              "single,3, --custom FILE --topo NAME); netbed's own topologies use their first and "
                              "last host")
        return None
    return custom_topology(chosen, custom_files(args.custom), args.client, args.server, need_ends=True)


def run_topology(args: argparse.Namespace, chosen: str) -> int:
    """`netbed topo --custom FILE --topo NAME`: build with Mininet, test reachability, CLI, tear down."""
    for flag in ("hosts", "lans", "routers", "subnet"):
        if getattr(args, flag, None) is not None:
            raise NetbedError(f"--{flag} is for netbed's own topologies; give a Mininet topology its arguments "
                              f"in --topo, as mn does (--topo {chosen.split(',')[0]},ARG,KEY=VALUE)")
    if getattr(args, "switch", "bridge") != "bridge":
        raise NetbedError("custom topologies are built with Linux bridges (--switch bridge)")
    custom = custom_topology(chosen, custom_files(args.custom))
    hosts = tuple(Node(name, "host", ()) for name in end_hosts(custom.topo))
    args.test = choose_test(Topology(chosen, (), hosts), args.test)  # before the build, as for netbed's own
    require_emulation()
    shape = shaping.parse_shape(args.delay, args.jitter, args.loss)
    out = sys.stdout
    with runstate.owned(sys.argv), custom.testbed() as tb:
        shaping.apply(tb, shape)
        topo = tb.topology
        stp = " (spanning tree on: the switches form a loop)" if tb.stp else ""
        print(f"{chosen}: {counted(len(topo.hosts), 'host')}, {counted(len(topo.routers), 'router')}, "
              f"{counted(len(tb.net.switches), 'switch')} built by Mininet in {tb.timings.build:.2f} s{stp}", file=out)
        passed, test_time = test_then_cli(tb, args, out)
    return teardown_line(tb, passed, test_time, out)
