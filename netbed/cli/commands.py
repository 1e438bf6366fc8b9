"""The `netbed` subcommands: one function each, a thin call into the stages that do the work.

Each `cmd_*` takes the parsed arguments and returns the exit code (0 pass, 1 a verdict failed,
2 bad input — a NetbedError, printed as one line by `main`). Imports stay inside the functions,
so `netbed --help` and tab completion do not load the trace parser or Mininet.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from netbed.cli.parser import build_parser
from netbed.errors import NetbedError, exit_code_of

if TYPE_CHECKING:
    from netbed.verdict import RunResult


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    completing = "_ARGCOMPLETE" in os.environ
    # A command line that names its subcommand first gets only that grammar: `netbed trace` then
    # starts without importing Mininet and the lab (~0.25 s of its run on a 1M-packet capture).
    parser = build_parser(words[0] if words and words[0] in COMMANDS and not completing else None)
    if completing:  # the shell asks for completions at a TAB: answer, then exit
        import argcomplete

        argcomplete.autocomplete(parser, always_complete_options=False)  # options once "-" is typed
    args = parser.parse_args(argv)
    return exit_code_of(_checked_command, args)


def _checked_command(args: argparse.Namespace) -> int:
    from netbed import pace

    pace.check_setting()  # a bad NETBED_SLOWDOWN is one line before anything is built, not an error mid-run
    return COMMANDS[args.command](args)


def cmd_clean(args: argparse.Namespace) -> int:
    from netbed import runstate
    from netbed.network import cluster
    from netbed.preflight import require_root

    require_root("netbed clean")
    done = runstate.reclaim()
    for run_id, servers in cluster.reclaim_dead_remote():
        print(f"reclaimed cluster run {run_id} on {', '.join(servers)}: its marked processes and tunnels")
    if not done:
        print("nothing to clean: no dead netbed run left anything behind")
    for record, killed in done:
        print(f"reclaimed run {record.id} (pid {record.pid}, {' '.join(record.command)[:60]}): "
              f"{killed} processes stopped, their namespaces gone with them")
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    from netbed import cluster_lab

    if args.action == "up":
        print(cluster_lab.server_list(cluster_lab.up(args.count)))
    elif args.action == "down":
        removed = cluster_lab.down()
        print(f"stopped {', '.join(removed)}" if removed else "no emulated cluster was up")
    else:
        found = cluster_lab.status()
        for server, alive in found:
            print(f"{server.name} {server.address} {'up' if alive else 'DEAD'}")
        if not found:
            print("no emulated cluster is up (netbed cluster up N)")
        return 0 if all(alive for _, alive in found) else 1
    return 0


def cmd_topo(args: argparse.Namespace) -> int:
    from netbed import custom_topo, topo_cli, topologies

    chosen = custom_topo.wanted(args.name, args.topo, args.custom)
    if chosen is not None:
        return custom_topo.run_topology(args, chosen)
    if args.name is None:
        raise NetbedError(f"name a topology: one of {', '.join(topologies.TOPOLOGIES)}, or --topo/--custom")
    topologies.module(args.name)
    return topo_cli.run_topology(args.name, args)


def cmd_list(args: argparse.Namespace) -> int:
    from netbed.experiment import catalog

    if args.claims is not None:
        from netbed.claims.skeleton import skeleton

        print(skeleton(args.claims), end="")
        return 0
    exps = catalog()
    if args.json:
        print(json.dumps({"experiments": [e.to_json() for e in exps]}, ensure_ascii=False, indent=2))
        return 0
    for e in exps:
        print(f"{e.name:<20} {', '.join(e.topologies)}")
        print(f"{'':<20} {e.gloss}")
        print(f"{'':<20} lecture: 「{e.claim}」")
        if e.netbed:
            print(f"{'':<20} netbed (not the lecture): {e.netbed}")
        if e.forcing:
            print(f"{'':<20} forced: {e.forcing}")
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from netbed.trace import command

    return command.run(args.pcap, args.json)


def cmd_run(args: argparse.Namespace) -> int:
    from netbed import custom_topo, runner
    from netbed.claims import grade
    from netbed.cli.progress import progress_for
    from netbed.preflight import require_emulation
    from netbed.report.text import print_table, result_text
    from netbed.runfolder import check_base

    if grade.is_claim_target(args.name):
        if args.custom or args.client or args.server:
            raise NetbedError("a claim file names its own topology and hosts (topology, [server] host, [client] "
                              "host): --custom, --client and --server are for catalog experiments")
        check_base(args.out or Path("runs"), "--out" if args.out else "run folder")
        if args.html is not None:
            check_writable(args.html)  # before the runs, not after
        if args.junit is not None:
            check_writable(args.junit, "--junit", "the JUnit file", "grades.xml")
        return grade.cmd_run_claims(args)
    if args.junit is not None:
        raise NetbedError("--junit is for claim files: netbed run FILE.toml|DIR --junit FILE")

    custom = custom_topo.from_run_args(args)
    pairs = runner.plan(args.name, None if custom else args.topo, args.all, custom)
    require_emulation("tcpdump")  # before anything touches the disk
    check_base(args.out or Path("runs"), "--out" if args.out else "run folder")
    if args.html is not None:
        check_writable(args.html)  # before minutes of runs, not after
    results: list[RunResult] = []
    try:
        with progress_for(quiet=args.json, total=len(pairs), stream=sys.stderr) as progress:
            for result in runner.run_series(pairs, args.out, switch=args.switch, starting=progress.start,
                                            custom=custom, jobs=args.jobs, cluster=runner.cluster_of(args)):
                progress.done(result)
                results.append(result)
    finally:  # an interrupted --all still leaves a page of the runs that finished, marked incomplete
        if args.html is not None and results:
            write_report(results, args.html, planned=len(pairs))
    passed = all(r.passed for r in results)
    if args.json:
        summaries = [r.summary() for r in results]
        print(json.dumps(summaries[0] if len(summaries) == 1 and not args.all else
                         {"passed": passed, "results": summaries}, indent=2, ensure_ascii=False))
        return 0 if passed else 1
    if len(results) > 1 or args.all:
        print_table(results)
    else:
        print(result_text(results[0]))
    if args.html is not None:
        print(f"report: {args.html}")
    return 0 if passed else 1


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


def completion_script(shell: str) -> str:
    """argcomplete's hook for `shell`: at each TAB the shell asks `netbed`, which answers from its parser."""
    import argcomplete

    return argcomplete.shellcode(["netbed"], shell=shell)


def check_writable(path: Path, option: str = "--html", what: str = "the page's file",
                   example: str = "report.html") -> None:
    """Fail now, in one line, if the report page (or JUnit file) could not be written at `path` later."""
    if path.is_dir():
        raise NetbedError(f"{option} {path} is a folder: name {what}, e.g. {path / example}")
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


def cmd_lab(args: argparse.Namespace) -> int:
    from netbed import lab

    return lab.main(args)


COMMANDS = {"clean": cmd_clean, "topo": cmd_topo, "lab": cmd_lab, "list": cmd_list, "trace": cmd_trace, "run": cmd_run,
            "check": cmd_check, "show": cmd_show, "report": cmd_report, "completion": cmd_completion,
            "cluster": cmd_cluster}
