#!/usr/bin/env python3
"""Time per claim file, next to the catalog experiment it was made from, in one run.

    sudo .venv/bin/python bench/claims_bench.py [--rounds N]

The claim files are the skeletons of `netbed list --claims EXP` (netbed's own programs, run as
`nobody` from a folder of their own), graded as a folder (`netbed run DIR`: one process, one kernel
state tracer for the series); the catalog experiments run as `netbed run --all --topo lan`. Both print
each run's own duration (network built, programs run, captures checked, files written); the figures
are the median per experiment over the rounds, and the ratio says what a claim file costs over the
catalog experiment it restates (running someone else's commands: setpriv, the build, watching them).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
NETBED = [sys.executable, "-m", "netbed.cli"]
NOBODY = 65534


def skeleton_folder(base: Path) -> list[str]:
    from netbed.claims.skeleton import EXPECT, skeleton

    base.mkdir()
    for name in EXPECT:
        text = skeleton(name)
        for path, size in re.findall(r"^# file: (\S+), (\d+) bytes$", text, flags=re.M):
            (base / path).parent.mkdir(parents=True, exist_ok=True)
            (base / path).write_text("x" * int(size))
        (base / f"{name}.toml").write_text(text)
    for path in [base, *base.rglob("*")]:
        shutil.chown(path, NOBODY, NOBODY)
    return list(EXPECT)


def durations(argv: list[str]) -> dict[str, float]:
    """Each run's duration, by experiment (a claim file's run: by the file's name, its experiment's)."""
    out = subprocess.run([*NETBED, *argv, "--json"], capture_output=True, text=True, cwd=REPO)
    results = json.loads(out.stdout)["results"]
    return {Path(r["claim_file"]).stem if r.get("claim_file") else r["experiment"]: r["duration"] for r in results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="netbed-claims-bench-"))
    base.chmod(0o755)
    try:
        names = skeleton_folder(base / "claims")
        claims: dict[str, list[float]] = {n: [] for n in names}
        catalog: dict[str, list[float]] = {n: [] for n in names}
        for n in range(args.rounds):
            for name, seconds in durations(["run", str(base / "claims"), "--out", str(base / f"c{n}")]).items():
                claims[name].append(seconds)
            for name, seconds in durations(["run", "--all", "--topo", "lan", "--out", str(base / f"e{n}")]).items():
                if name in catalog:
                    catalog[name].append(seconds)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"{'experiment':<18} {'claim file':>10} {'catalog':>8} {'ratio':>6}   (median of {args.rounds} rounds, s)")
    for name in names:
        c, e = statistics.median(claims[name]), statistics.median(catalog[name])
        print(f"{name:<18} {c:>10.2f} {e:>8.2f} {c / e:>6.2f}")
    all_c = statistics.median([s for v in claims.values() for s in v])
    all_e = statistics.median([s for v in catalog.values() for s in v])
    print(f"{'all':<18} {all_c:>10.2f} {all_e:>8.2f} {all_c / all_e:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
