#!/usr/bin/env python3
"""The whole catalog on Linux bridges and on Open vSwitch: the same verdicts, assertion by assertion.

    sudo .venv/bin/python bench/compare_switches.py [--out DIR] [--jobs N] [--topo T] [--switches A B]
    .venv/bin/python bench/compare_switches.py --compare DIR_A DIR_B

netbed promises that a lecture claim holds whatever switch joins the hosts. This runs `netbed run --all`
once per switch (into DIR/1-bridge and DIR/2-ovs), then reads each run's result.json and compares,
per experiment and topology: the verdict, the list of assertions, each assertion's verdict, and its
observed value wherever that value is the lecture's and not the run's. An assertion whose expected
value is the same in both runs (a state name, a segment count, an errno) must have observed the same
value; one whose expected value came from the run itself (an ephemeral port, a sequence-number ladder)
or that checks a range (an RTO of about 1 s) is compared by verdict, and both values are shown.

It prints one row per experiment and topology and, below, every difference; it exits 1 on any
difference, 0 when there is none, 2 on bad input (one line: a missing folder, `ovs` on a kernel
without the openvswitch module). `--compare` compares two folders of run folders made earlier.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
NETBED = [sys.executable, "-m", "netbed.cli"]

from netbed.errors import NetbedError  # noqa: E402 (after the repository is on the path)

PROG = "compare-switches"
RESULT = "result.json"
SHOWN = 60  # characters of a value shown in a difference line
LOST_MARK = "*"


class Refused(Exception):
    """Bad input: one line, exit 2."""


@dataclass(frozen=True)
class Difference:
    experiment: str
    topology: str
    what: str  # "verdict", "assertions", "assertion", "observed", "missing"
    detail: str


def load_results(folder: Path) -> dict[tuple[str, str], dict]:
    """result.json of every run folder under `folder` (or `folder` itself), by (experiment, topology);
    of several runs of the same pair, the last by folder name (netbed's names start with the time)."""
    if not folder.is_dir():
        raise Refused(f"{folder}: no such folder of run folders")
    files = sorted(folder.glob(f"*/{RESULT}")) or sorted(folder.glob(RESULT))
    if not files:
        raise Refused(f"{folder}: no run folder with a {RESULT} in it")
    results = {}
    for path in files:
        try:
            data = json.loads(path.read_text())
            results[(str(data["experiment"]), str(data["topology"]))] = data
        except (OSError, ValueError, KeyError) as exc:
            raise Refused(f"{path}: not a netbed result ({type(exc).__name__}: {exc})") from None
    return results


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHOWN else text[:SHOWN - 1] + "…"


def compare_assertions(exp: str, topo: str, a: list[dict], b: list[dict], labels: tuple[str, str]) -> list[Difference]:
    """Assertion by assertion, in order; see the module's docstring for which observed values must match."""
    out = []
    names_a, names_b = [x["name"] for x in a], [x["name"] for x in b]
    if names_a != names_b:
        only_a = [n for n in names_a if n not in names_b]
        only_b = [n for n in names_b if n not in names_a]
        out.append(Difference(exp, topo, "assertions", f"only on {labels[0]}: {only_a or '-'}; only on {labels[1]}: "
                                                      f"{only_b or '-'}" if only_a or only_b else "in another order"))
    by_name_b = {x["name"]: x for x in b}
    for x in a:
        y = by_name_b.get(x["name"])
        if y is None:
            continue
        if bool(x["passed"]) != bool(y["passed"]):
            out.append(Difference(exp, topo, "assertion", f"{x['name']}: {labels[0]} "
                                  f"{'PASS' if x['passed'] else 'FAIL'} ({x.get('detail', '')[:SHOWN]}), {labels[1]} "
                                  f"{'PASS' if y['passed'] else 'FAIL'} ({y.get('detail', '')[:SHOWN]})"))
            continue
        if comparable(x, y) and x.get("observed") != y.get("observed"):
            out.append(Difference(exp, topo, "observed", f"{x['name']}: {labels[0]} observed "
                                  f"{_short(x.get('observed'))}, {labels[1]} observed {_short(y.get('observed'))}"))
    return out


def comparable(x: dict, y: dict) -> bool:
    """Must the observed values match? Where the expectation is one fixed value, the same in both runs."""
    return x.get("kind") == y.get("kind") == "equal" and x.get("expected") == y.get("expected")


def compare(a: dict[tuple[str, str], dict], b: dict[tuple[str, str], dict],
            labels: tuple[str, str]) -> tuple[list[list[str]], list[Difference]]:
    """The table's rows (experiment, topology, verdicts, assertions compared, differences) and the differences."""
    rows, diffs = [], []
    for key in sorted(a.keys() | b.keys()):
        exp, topo = key
        ra, rb = a.get(key), b.get(key)
        if ra is None or rb is None:
            where = labels[0] if ra is None else labels[1]
            diffs.append(Difference(exp, topo, "missing", f"no run on {where}"))
            rows.append([exp, topo, _verdict(ra), _verdict(rb), "-", "missing"])
            continue
        found = []
        if bool(ra["passed"]) != bool(rb["passed"]):
            found.append(Difference(exp, topo, "verdict", f"{labels[0]} {_verdict(ra)}, {labels[1]} {_verdict(rb)}"))
        found += compare_assertions(exp, topo, ra.get("assertions") or [], rb.get("assertions") or [], labels)
        diffs += found
        rows.append([exp, topo, _verdict(ra), _verdict(rb), str(len(ra.get("assertions") or [])),
                     str(len(found)) if found else "same"])
    return rows, diffs


def _verdict(result: dict | None) -> str:
    """PASS or FAIL, marked * where the run's fidelity was lost: a difference there may be the machine's."""
    if result is None:
        return "-"
    lost = (result.get("fidelity") or {}).get("kept") is False
    return ("PASS" if result["passed"] else "FAIL") + (LOST_MARK if lost else "")


def print_report(rows: list[list[str]], diffs: list[Difference], labels: tuple[str, str]) -> None:
    head = ["experiment", "topology", labels[0], labels[1], "assertions", "differences"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    same = sum(r[-1] == "same" for r in rows)
    print(f"\n{same}/{len(rows)} runs the same on {labels[0]} and {labels[1]}, assertion by assertion"
          f"; {len(diffs)} differences")
    if any(LOST_MARK in cell for row in rows for cell in row[2:4]):
        print(f"{LOST_MARK} the run's fidelity was lost (the machine did not keep up): its timing assertions were "
              "refused, a difference there may be the machine's, not the switch's")
    for d in diffs:
        print(f"  {d.experiment} on {d.topology}: {d.what}: {d.detail}")


def run_catalog(switch: str, out: Path, jobs: int, topo: str | None) -> None:
    """`netbed run --all` on one switch, as a user runs it; its own exit 1 (a failed run) is compared later."""
    argv = [*NETBED, "run", "--all", "--switch", switch, "--out", str(out), "--jobs", str(jobs)]
    if topo:
        argv += ["--topo", topo]
    print(f"{PROG}: netbed {' '.join(argv[3:])}", file=sys.stderr, flush=True)
    proc = subprocess.run(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode not in (0, 1):
        raise Refused(f"netbed run --all --switch {switch} failed: {proc.stderr.strip().splitlines()[-1:] or '?'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--compare", nargs=2, type=Path, metavar=("DIR_A", "DIR_B"),
                   help="compare two folders of run folders made earlier (runs nothing)")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "compare-switches",
                   help="where the runs go: OUT/1-SWITCH and OUT/2-SWITCH (default runs/compare-switches)")
    p.add_argument("--switches", nargs=2, default=["bridge", "ovs"], metavar=("A", "B"),
                   help="the two switches (default: bridge ovs; bridge bridge compares two runs of the same)")
    p.add_argument("--jobs", type=int, default=1, help="netbed run --jobs")
    p.add_argument("--topo", help="only this topology (netbed run --topo)")
    args = p.parse_args(argv)
    try:
        if args.compare:
            folders = tuple(args.compare)
            labels = (folders[0].name, folders[1].name)
            if labels[0] == labels[1]:
                labels = (str(folders[0]), str(folders[1]))
        else:
            from netbed.network.testbed import SWITCHES
            from netbed.preflight import require_open_vswitch, require_root

            for switch in args.switches:
                if switch not in SWITCHES:
                    raise Refused(f"unknown switch {switch!r}: choose from {', '.join(SWITCHES)}")
            if "ovs" in args.switches:
                require_open_vswitch()
            require_root("running the catalog")
            labels = tuple(f"{i}-{s}" for i, s in enumerate(args.switches, 1))
            folders = tuple(args.out / label for label in labels)
            for folder in folders:
                if folder.exists():
                    raise Refused(f"{folder} exists: choose another --out (runs are never mixed)")
            for switch, folder in zip(args.switches, folders):
                run_catalog(switch, folder, args.jobs, args.topo)
        rows, diffs = compare(load_results(folders[0]), load_results(folders[1]), labels)
    except (Refused, NetbedError) as exc:  # NetbedError: netbed's own one line (no openvswitch module, not root)
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    print_report(rows, diffs, labels)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
