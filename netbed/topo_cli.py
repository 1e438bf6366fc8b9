"""`netbed topo NAME` and `python topologies/NAME.py`: build, test reachability, tear down — like `mn`."""
from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from netbed import runstate, topologies
from netbed.errors import NetbedError, exit_code_of
from netbed.network import SWITCHES, Testbed, shaping
from netbed.preflight import require_emulation
from netbed.spec import Topology

TESTS = ("pingall", "ping-ends", "none")
# Every host to every host is N*(N-1) pings: 16,256 for 128 hosts, 16.8 million for 4,096.
MAX_PINGALL_HOSTS = 128


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hosts", help="hosts (per LAN for multi-lan and wan)")
    parser.add_argument("--lans", help="LANs (multi-lan)")
    parser.add_argument("--routers", help="routers in the chain (wan)")
    parser.add_argument("--subnet", help="the LAN's subnet (lan), e.g. 10.0.0.0/24")
    parser.add_argument("--test", choices=TESTS,
                        help=f"pingall: every host to every host (the default up to {MAX_PINGALL_HOSTS} hosts); "
                             "ping-ends: first host to last (the default beyond); none")
    parser.add_argument("--switch", choices=SWITCHES, default="bridge",
                        help="bridge: Linux bridge (default); ovs: Open vSwitch bridge, where installed")
    parser.add_argument("--cli", action="store_true", help="open Mininet's CLI before tearing down")
    parser.add_argument("--delay", metavar="MS", help="delay on every host's link, each way (needs sch_netem)")
    parser.add_argument("--jitter", metavar="MS", help="delay variation (needs sch_netem and --delay)")
    parser.add_argument("--loss", metavar="PCT", help="packet loss on every host's link, each way (netem or iptables)")
    parser.add_argument("--bw", metavar="MBIT", help="rate limit (Mbit/s) on every link, each way (HTB)")
    parser.add_argument("--queue", metavar="PACKETS", help="queue behind each rate limit, in packets (needs --bw)")
    add_cluster_arguments(parser)


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    from netbed.network.cluster import PLACEMENTS

    parser.add_argument("--cluster", metavar="SERVERS",
                        help="spread the nodes over these servers with Mininet Cluster Edition "
                             "(comma-separated; `netbed cluster up N` prints a list of emulated ones)")
    parser.add_argument("--placement", choices=PLACEMENTS, default="block",
                        help="how --cluster places nodes (Cluster Edition's placers; block: SwitchBinPlacer)")


def make_testbed(topo: Topology, args: argparse.Namespace, **kwargs) -> Testbed:
    """The Testbed the arguments ask for: one machine, or Cluster Edition over --cluster's servers."""
    if getattr(args, "cluster", None):
        from netbed.cluster_lab import cluster_spec
        from netbed.network.cluster import ClusterTestbed

        return ClusterTestbed(topo, cluster=cluster_spec(args.cluster, args.placement), **kwargs)
    return Testbed(topo, **kwargs)


def topology_from_args(name: str, args: argparse.Namespace) -> Topology:
    return topologies.build(name, hosts=args.hosts, lans=args.lans, routers=args.routers,
                            subnet=args.subnet)


def choose_test(topo: Topology, test: str | None) -> str:
    """The reachability test to run, checked before anything is built."""
    hosts = len(topo.hosts)
    if test is None:
        return "pingall" if hosts <= MAX_PINGALL_HOSTS else "ping-ends"
    if test == "pingall" and hosts > MAX_PINGALL_HOSTS:
        raise NetbedError(f"--test pingall over {hosts} hosts is {hosts * (hosts - 1):,} pings (at most "
                          f"{MAX_PINGALL_HOSTS} hosts): use --test ping-ends")
    return test


def reachability(tb: Testbed, test: str) -> tuple[bool, str]:
    """Like Mininet's pingAll: one echo per pair, every loss counted (no second try)."""
    hosts = tb.topology.hosts
    if test == "none":
        return True, "no test"
    if test == "ping-ends":
        pairs = [(hosts[0].name, hosts[-1].ip)]
    else:
        pairs = [(a.name, b.ip) for a in hosts for b in hosts if a is not b]
    failures = tb.ping_pairs(pairs)
    ok = len(pairs) - len(failures)
    text = f"{100 * len(failures) // len(pairs)}% dropped ({ok}/{len(pairs)} received)"
    if failures:
        text += "; no answer: " + ", ".join(f"{src}->{dst}" for src, dst in failures[:10])
    return not failures, text


def run_topology(name: str, args: argparse.Namespace) -> int:
    topo = topology_from_args(name, args)
    args.test = choose_test(topo, args.test)
    require_emulation()
    shape = shaping.parse_shape(args.delay, args.jitter, args.loss, args.bw, args.queue)
    out = sys.stdout
    tb = make_testbed(topo, args, switch=args.switch)
    with runstate.owned(sys.argv), tb:
        shaping.apply(tb, shape)
        n_sw = len(topo.switches)
        print(f"{name}: {counted(len(topo.hosts), 'host')}, {counted(len(topo.routers), 'router')}, "
              f"{counted(n_sw, 'switch')} built in {tb.timings.build:.2f} s", file=out)
        if getattr(tb, "placement", None):
            print(placement_text(tb), file=out)
        passed, test_time = test_then_cli(tb, args, out)
    return teardown_line(tb, passed, test_time, out)


def test_then_cli(tb, args: argparse.Namespace, out: TextIO) -> tuple[bool, float]:
    """The reachability test of a built network, said in one line, then Mininet's CLI if asked for."""
    began = time.monotonic()
    passed, text = reachability(tb, args.test)
    test_time = time.monotonic() - began
    print(f"test {args.test}: {'PASS' if passed else 'FAIL'} ({text}) in {test_time:.2f} s", file=out)
    if args.cli:
        tb.cli()
    return passed, test_time


def teardown_line(tb, passed: bool, test_time: float, out: TextIO) -> int:
    """Once the network is gone: its teardown time and the total, and the exit code of the test."""
    print(f"teardown in {tb.timings.stop:.2f} s; total {tb.timings.build + test_time + tb.timings.stop:.2f} s",
          file=out)
    return 0 if passed else 1


def placement_text(tb) -> str:
    """Which server holds which nodes, as `mn --cluster` prints it (`h1:server …`), grouped per server."""
    per: dict[str, list[str]] = {}
    for node, server in tb.placement.items():
        per.setdefault(server, []).append(node)
    return "\n".join(f"  {server}: {len(nodes)} nodes ({' '.join(nodes[:8])}{' …' if len(nodes) > 8 else ''})"
                     for server, nodes in per.items()) + f"\n  tunnel MTU {tb.mtu}"


def script_main(name: str, argv: list[str] | None = None) -> int:
    """Entry point of `python topologies/NAME.py`."""
    parser = argparse.ArgumentParser(prog=f"topologies/{topologies.TOPOLOGIES[name]}.py",
                                     description=topologies.module(name).__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return exit_code_of(run_topology, name, args)


def counted(n: int, noun: str) -> str:
    """'1 switch', '2 switches', '0 routers': the summary line reads as English."""
    plural = noun + ("es" if noun.endswith("ch") else "s")
    return f"{n} {noun if n == 1 else plural}"
