#!/usr/bin/env python3
"""`netbed run --all --jobs N` against `--jobs 1`: wall time, and whether the verdicts are identical.

    sudo .venv/bin/python bench/jobs_bench.py [--topo lan] [--jobs 2] [--rounds 1]

Each round runs the catalog (on one topology, or every topology without --topo) once with --jobs 1
and once with --jobs N through the CLI, as a user would, and prints both wall times, their ratio, and
whether every run's verdict and assertion outcomes were the same both ways. On a 2-core machine
the gain comes from runs waiting (timers, delayed ACKs, bpftrace attaching) rather than computing.
Figures depend on the machine's load: say what it was (printed: the load average before and after).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_catalog(jobs: int, topo: str | None, out: Path) -> tuple[float, list]:
    argv = [sys.executable, "-m", "netbed.cli", "run", "--all", "--json", "--jobs", str(jobs), "--out", str(out)]
    argv += ["--topo", topo] if topo else []
    began = time.monotonic()
    res = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    seconds = time.monotonic() - began
    data = json.loads(res.stdout)
    verdicts = [(r["experiment"], r["topology"], r["passed"], [(a["name"], a["passed"]) for a in r["assertions"]])
                for r in data["results"]]
    return seconds, verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topo", default="lan")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    same_all = True
    with tempfile.TemporaryDirectory(prefix="netbed-jobs-bench-") as tmp:
        for n in range(args.rounds):
            t1, v1 = run_catalog(1, args.topo, Path(tmp) / f"r{n}-j1")
            tn, vn = run_catalog(args.jobs, args.topo, Path(tmp) / f"r{n}-j{args.jobs}")
            same = v1 == vn
            same_all &= same
            differ = [(a[:2], sorted(set(a[3]) ^ set(b[3]))) for a, b in zip(v1, vn) if a != b]
            print(f"round {n + 1}: {len(v1)} runs; --jobs 1 {t1:.1f} s ({sum(v[2] for v in v1)} PASS), "
                  f"--jobs {args.jobs} {tn:.1f} s ({sum(v[2] for v in vn)} PASS); ×{t1 / tn:.2f} faster; "
                  f"verdicts identical: {same}" + (f"; differing: {differ}" if differ else ""))
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0 if same_all else 1


if __name__ == "__main__":
    raise SystemExit(main())
