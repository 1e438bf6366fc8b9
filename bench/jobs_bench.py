#!/usr/bin/env python3
"""`netbed run --all --jobs N` against `--jobs 1`: wall time, and whether every assertion of every run agrees.

    sudo nice -n 10 .venv/bin/python bench/jobs_bench.py [--topo lan] [--jobs 2] [--rounds 20]
                                                        [--until 13:35] [--log FILE] [--keep DIR]

Each round runs the catalog (every experiment on every topology it supports, or on one --topo)
once with --jobs 1 and once with --jobs N through the CLI, as a user would; the rounds alternate
which goes first, so that a machine getting busier or quieter does not favour one side. Every
run of an experiment on a topology is compared with its first run (whichever --jobs it had):

- the *list* of assertion names must be the same (it depends on the experiment, never on what a
  run observed: a guard that failed records the assertions after it as "not checked");
- each assertion's outcome must be the same.

A difference is printed at once (round, --jobs, experiment, topology, the assertions), with the
run's fidelity record (a run whose machine did not keep up refuses its timing assertions), and with
--keep both runs' folders of that round are copied there for diagnosis. --until HH:MM (UTC) starts
no round after that time. --log appends one JSON line per catalog run (round, jobs, seconds,
every run's assertions and fidelity). Exit status 1 if anything differed.

Figures depend on the machine's load: the load average is printed with each round. On a 2-core
machine the gain of --jobs comes from runs waiting (timers, delayed ACKs, the tracer attaching),
not computing.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

Key = tuple[str, str]  # (experiment, topology)
Outcome = tuple[tuple[str, bool], ...]  # (assertion name, passed), in the order the run made them


def run_catalog(jobs: int, topo: str | None, out: Path) -> tuple[float, dict[Key, dict]]:
    """One `netbed run --all` through the CLI: its wall time and, per run, its assertions and fidelity."""
    argv = [sys.executable, "-m", "netbed.cli", "run", "--all", "--json", "--jobs", str(jobs), "--out", str(out)]
    argv += ["--topo", topo] if topo else []
    began = time.monotonic()
    res = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    seconds = time.monotonic() - began
    try:
        data = json.loads(res.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"netbed run --all --jobs {jobs} printed no JSON (exit {res.returncode}): "
                         f"{res.stderr.strip()[-500:]}") from None
    runs = {}
    for r in data["results"]:
        folder = Path(r.get("artifacts", {}).get("dir", ""))
        fidelity = {}
        if (folder / "result.json").is_file():
            fidelity = json.loads((folder / "result.json").read_text()).get("fidelity") or {}
        runs[(r["experiment"], r["topology"])] = {
            "passed": r["passed"], "assertions": [(a["name"], a["passed"]) for a in r["assertions"]],
            "details": {a["name"]: a["detail"] for a in r["assertions"]}, "dir": str(folder),
            "fidelity": {"kept": fidelity.get("kept"), "reasons": fidelity.get("reasons")}}
    return seconds, runs


def differences(first: dict, run: dict) -> list[str]:
    """How a run's assertions differ from the first run of the same experiment and topology."""
    a, b = first["assertions"], run["assertions"]
    if [n for n, _ in a] == [n for n, _ in b]:
        return [f"{'✓' if p else '✗'} {n}: {run['details'].get(n, '')[:300]}" for (n, p), (_, q) in zip(b, a) if p != q]
    names_a, names_b = {n for n, _ in a}, {n for n, _ in b}
    return ([f"list differs: only in the first run: {n}" for n, _ in a if n not in names_b]
            + [f"list differs: only in this run: {n}" for n, _ in b if n not in names_a]
            + (["list differs: same names, other order"] if names_a == names_b else []))


def past(until: str | None) -> bool:
    if not until:
        return False
    hour, minute = (int(x) for x in until.split(":"))
    now = datetime.datetime.now(datetime.timezone.utc)
    return (now.hour, now.minute) >= (hour, minute)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topo", default=None, help="one topology (default: every topology, the whole catalog)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--until", metavar="HH:MM", help="start no round after this time (UTC)")
    parser.add_argument("--log", type=Path, help="append one JSON line per catalog run")
    parser.add_argument("--keep", type=Path, help="copy the folders of runs that differ here")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; catalog: "
          f"{args.topo or 'every topology'}; --jobs 1 vs --jobs {args.jobs}", flush=True)
    first: dict[Key, dict] = {}
    seconds: dict[int, list[float]] = {1: [], args.jobs: []}
    compared = runs_done = differing = 0
    rounds_done = 0
    for n in range(args.rounds):
        if past(args.until):
            print(f"--until {args.until} UTC reached: stopping before round {n + 1}", flush=True)
            break
        order = [1, args.jobs] if n % 2 == 0 else [args.jobs, 1]
        with tempfile.TemporaryDirectory(prefix="netbed-jobs-bench-") as tmp:
            results = {}
            for jobs in order:
                load = os.getloadavg()[0]
                took, runs = run_catalog(jobs, args.topo, Path(tmp) / f"j{jobs}")
                results[jobs] = runs
                seconds[jobs].append(took)
                if args.log:
                    with args.log.open("a") as log:
                        log.write(json.dumps({"round": n + 1, "jobs": jobs, "seconds": round(took, 1), "load": load,
                                              "runs": {f"{e}@{t}": r for (e, t), r in runs.items()}},
                                             ensure_ascii=False) + "\n")
            line = []
            for jobs in order:
                runs = results[jobs]
                line.append(f"--jobs {jobs} {seconds[jobs][-1]:.1f} s ({sum(r['passed'] for r in runs.values())}/"
                            f"{len(runs)} PASS)")
                for key, run in runs.items():
                    runs_done += 1
                    ref = first.setdefault(key, run)
                    compared += len(run["assertions"])
                    found = differences(ref, run) if run is not ref else []
                    if found:
                        differing += 1
                        print(f"  DIFFERS round {n + 1} --jobs {jobs}: {key[0]} on {key[1]} "
                              f"(fidelity {run['fidelity']})", flush=True)
                        for text in found:
                            print(f"    {text}", flush=True)
                        if args.keep:
                            for j, other in results.items():
                                if key in other and Path(other[key]["dir"]).is_dir():
                                    dest = args.keep / f"round{n + 1}-jobs{j}-{key[0]}-{key[1]}"
                                    shutil.copytree(other[key]["dir"], dest, dirs_exist_ok=True)
            rounds_done += 1
            print(f"round {n + 1}: {'; '.join(line)}; load average {os.getloadavg()[0]:.1f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    for jobs, took in seconds.items():
        if took:
            print(f"--jobs {jobs}: {len(took)} catalogs, {statistics.mean(took):.1f} s mean "
                  f"(min {min(took):.1f}, max {max(took):.1f})")
    if seconds[1] and seconds[args.jobs]:
        print(f"--jobs {args.jobs} is ×{statistics.mean(seconds[1]) / statistics.mean(seconds[args.jobs]):.2f} as fast")
    print(f"{rounds_done} rounds, {runs_done} runs, {compared} assertions compared with each run's first: "
          f"{differing} runs differed")
    return 1 if differing else 0


if __name__ == "__main__":
    raise SystemExit(main())
