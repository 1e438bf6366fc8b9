"""The `netbed` command line."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from netbed import topo_cli, topologies
from netbed.errors import NetbedError

EXAMPLES = """\
examples:
  netbed list                          the experiments and the lecture claim each demonstrates
  netbed run handshake --topo wan      one experiment: verdict, ladder diagram, run folder
  netbed run --all                     every experiment on every topology it supports
  netbed topo lan --hosts 4 --test pingall
  netbed trace runs/…/client.pcap      connections in any pcap, classified
  netbed check runs/…                  re-check a saved run offline
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netbed", description="A network-emulation testbed for the "
                                     "network-programming lecture.", epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("topo", help="build a topology, test reachability, tear down (like mn)",
                       epilog="example: netbed topo multi-lan --lans 3 --test pingall",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help=f"one of {', '.join(topologies.TOPOLOGIES)}")
    topo_cli.add_arguments(p)

    p = sub.add_parser("run", help="run experiments, check them, write run folders",
                       epilog="examples: netbed run close-client --topo multi-lan; netbed run --all --json")
    p.add_argument("name", nargs="?", help="experiment name (see netbed list)")
    p.add_argument("--all", action="store_true", help="every experiment on every topology it supports")
    p.add_argument("--topo", help="topology (default: the experiment's first)")
    p.add_argument("--out", type=Path, help="run folder (default: a new folder under runs/)")
    p.add_argument("--switch", default="bridge", help="bridge (default) or ovs")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("list", help="the experiments, their topologies and lecture claims")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("trace", help="connections in a pcap, classified (handshake, close kind, bytes)",
                       epilog="example: netbed trace capture.pcap --json")
    p.add_argument("pcap", type=Path)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("check", help="re-run a saved run's assertions offline")
    p.add_argument("dir", type=Path)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("show", help="a saved run: verdict, ladder diagram, kernel TCP states",
                       epilog="example: netbed show runs/…-close-client-wan")
    p.add_argument("dir", type=Path)
    p.add_argument("--json", action="store_true", help="print verdict, ladder rows and states as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except NetbedError as exc:
        print(f"netbed: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("netbed: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `netbed … | head`: the reader left; nothing more to say
        sys.stderr.close()
        return 0


def cmd_topo(args: argparse.Namespace) -> int:
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
        print(json.dumps(trace.to_json(), indent=2))
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

    pairs = runner.plan(args.name, args.topo, args.all)
    results = []
    for exp, topo in pairs:
        if args.out and len(pairs) == 1:
            out = args.out
        else:
            out = runner.new_run_dir(args.out or Path("runs"), exp.name, topo)
        if not args.json and len(pairs) > 1:
            print(f"running {exp.name} on {topo} …", file=sys.stderr, flush=True)
        result = runner.run_experiment(exp, topo, out, switch=args.switch)
        results.append(result)
        if not args.json and len(pairs) == 1:
            print_result(result)
    passed = all(r["passed"] for r in results)
    if args.json:
        keys = ("experiment", "topology", "passed", "assertions", "artifacts", "duration")
        slim = [{k: r[k] for k in keys} for r in results]
        print(json.dumps(slim[0] if len(slim) == 1 and not args.all else {"passed": passed, "results": slim},
                         indent=2, ensure_ascii=False))
    elif len(results) > 1 or args.all:
        print_table(results)
    return 0 if passed else 1


def cmd_check(args: argparse.Namespace) -> int:
    from netbed import runner

    result = runner.check_dir(args.dir)
    if args.json:
        keys = ("experiment", "topology", "passed", "assertions", "artifacts")
        print(json.dumps({k: result[k] for k in keys}, indent=2, ensure_ascii=False))
    else:
        print_result(result)
    return 0 if result["passed"] else 1


def cmd_show(args: argparse.Namespace) -> int:
    from netbed.report.folder import format_show, show_dir

    shown = show_dir(args.dir)
    if args.json:
        print(json.dumps({k: v for k, v in shown.items() if k != "ladder_text"}, indent=2, ensure_ascii=False))
    else:
        print(format_show(shown))
    return 0 if shown["passed"] else 1


def print_result(result: dict) -> None:
    verdict = "PASS" if result["passed"] else "FAIL"
    print(f"{verdict}  {result['experiment']} on {result['topology']}")
    for a in result["assertions"]:
        mark = "✓" if a["passed"] else "✗"
        detail = a["detail"]
        if "\n" in detail:
            print(f"  {mark} {a['name']}\n" + "\n".join("      " + line for line in detail.splitlines()))
        else:
            print(f"  {mark} {a['name']}: {detail}")
    ladder = Path(result["artifacts"]["ladder"])
    if ladder.exists():
        print()
        print(ladder.read_text().rstrip())
    print(f"\nartifacts: {result['artifacts']['dir']}")


def print_table(results: list[dict]) -> None:
    width = max(len(r["experiment"]) for r in results)
    print(f"\n{'experiment':<{width}}  {'topology':<10} verdict  {'time':>6}  failed assertions")
    for r in results:
        failed = [a["name"] for a in r["assertions"] if not a["passed"]]
        print(f"{r['experiment']:<{width}}  {r['topology']:<10} {'PASS' if r['passed'] else 'FAIL':<7}  "
              f"{r.get('duration', 0):5.1f}s  {'; '.join(failed)}")
    n_pass = sum(r["passed"] for r in results)
    print(f"\n{n_pass}/{len(results)} passed; run folders under {Path(results[0]['artifacts']['dir']).parent}")


COMMANDS = {"topo": cmd_topo, "list": cmd_list, "trace": cmd_trace, "run": cmd_run, "check": cmd_check,
            "show": cmd_show}


if __name__ == "__main__":
    sys.exit(main())
