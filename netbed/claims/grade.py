"""Run claim files — one, or every one under a folder (one folder per student) — and grade them.

Each claim file is read and refused up front (all of them, before any build or network), then in
turn: its build runs in its folder as the folder's owner, the network is built, the programs run,
the run folder is checked by the very `check_dir` that `netbed check` uses offline. The outcome is a
verdict table (one row per claim file, with the first failed assertion as the reason) and, with
`--junit`, a JUnit XML file for CI and grade books.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from netbed import runfolder, runner, runstate, topologies, verdict
from netbed.claims import file as claimfile
from netbed.claims.experiment import CLAIM_FACT, ClaimExperiment, main_connection
from netbed.claims.file import Claim
from netbed.claims.programs import OUTPUT_TAIL, Owner
from netbed.errors import NetbedError
from netbed.experiment import Evidence, catalog
from netbed.network.cluster import ClusterSpec
from netbed.network.custom import custom_topology
from netbed.preflight import require_emulation
from netbed.report import grades, junit, text
from netbed.verdict import RunResult

BUILD_TIMEOUT = 300.0  # seconds a build (gcc, make) may take
SUFFIX = ".toml"


def is_claim_target(name: str | None) -> bool:
    """Does `netbed run NAME` name a claim file or a folder of them (rather than a catalog experiment)?

    A name with a slash or a .toml suffix is a path; a bare name is an experiment of the catalog
    unless none has that name and a folder does.
    """
    if name is None:
        return False
    if name.endswith(SUFFIX) or "/" in name:
        return True
    return Path(name).is_dir() and name not in {e.name for e in catalog()}


def claim_files(target: Path) -> list[Path]:
    """The claim file itself, or every *.toml under the folder (hidden folders skipped), sorted."""
    if target.is_file():
        return [target]
    if not target.exists():
        raise NetbedError(f"no such claim file or folder: {target}")
    found = sorted(p for p in target.rglob("*" + SUFFIX)
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(target).parts))
    if not found:
        raise NetbedError(f"{target}: no claim files (*.toml) under this folder")
    return found


def load_all(target: Path) -> list[Claim]:
    """Every claim file, validated — the first bad one refuses the whole run, before anything starts."""
    return [claimfile.load(path) for path in claim_files(target)]


def build(claim: Claim) -> dict | None:
    """Run the claim's `build` command in its folder, as the folder's owner, before any network exists.

    It gets a process group of its own, so a build that hangs (or is interrupted) is stopped whole —
    make's children too.
    """
    if claim.build is None:
        return None
    argv = Owner.of(claim.folder).wrap(claim.build_argv(), claim.folder)
    began = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, errors="replace", start_new_session=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:  # interrupted: leave nothing behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return {"exit": None if timed_out else proc.returncode, "timed_out": timed_out,
            "seconds": round(time.monotonic() - began, 3), "stdout": out[-OUTPUT_TAIL:], "stderr": err[-OUTPUT_TAIL:]}


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold the claim file's folder for one build and run: two netbed runs of the same folder at once
    would otherwise build ./server while the other runs it ("Permission denied", a half-written binary)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def run_claim(claim: Claim, out: Path, switch: str = "bridge", cluster: ClusterSpec | None = None) -> RunResult:
    """Build, run and check one claim file; its run folder is `out`. Returns the checked result."""
    began = time.monotonic()
    runfolder.start(out)  # marked incomplete until its last file is written
    try:
        with folder_lock(claim.folder):
            result = _build_run_check(claim, out, switch, cluster)
        result.duration = round(time.monotonic() - began, 3)
        verdict.save(out, result)
    except OSError as exc:  # the disk filled up, the folder vanished: one line, the folder left marked
        raise runfolder.write_failed(out, exc) from None
    runfolder.finish(out)
    return result


def _build_run_check(claim: Claim, out: Path, switch: str, cluster: ClusterSpec | None = None) -> RunResult:
    """The build, then (if it made the programs) the network, the programs and the check."""
    built = build(claim)
    missing = {}
    if built is None or built["exit"] == 0:
        for section, spec in (("server", claim.server), ("client", claim.client)):
            why = claimfile.missing_program(spec.argv({}), claim.folder)
            if why:
                missing[section] = why
    exp = ClaimExperiment.of(claim, built, missing)
    if (built is not None and built["exit"] != 0) or missing:  # nothing to run: no network is built
        shown = {"name": claim.topology, "custom": claim.custom} if claim.custom else \
            topologies.build(claim.topology).to_json()
        Evidence(out, claim.label, shown, [], {}, {CLAIM_FACT: exp.saved()}).save()
        return verdict.check_dir(out)
    # a user's Mininet topology (custom = "topo.py", topo = "NAME") is built by Mininet, as `mn --custom` does
    topo = custom_topology(claim.topo, [claim.folder / claim.custom]) if claim.custom else \
        topologies.build(claim.topology)
    require_emulation("tcpdump")
    try:
        with runstate.owned(sys.argv):
            with runner.lab_session(topo, out, experiment=claim.label, switch=switch, ipv6=claim.ipv6,
                                    client_host=claim.client.host, server_host=claim.server.host,
                                    cluster=cluster) as lab:
                exp.run(lab)
    except NetbedError as exc:  # the run itself broke down: a FAIL that says why
        return verdict.broken_run(claim.label, claim.topology, out, str(exc))
    _name_the_client_connection(out, exp)
    result = verdict.check_dir(out)
    runner.write_result(out, result)  # the ladder files and manifest.json (result.json again, with its time, after)
    return result


def _name_the_client_connection(out: Path, exp: ClaimExperiment) -> None:
    """Record which captured connection is the client's (its SYN to the server's address and port),
    so the ladder files and kernel states of the run folder are drawn for it, as for a catalog run."""
    evidence = Evidence.load(out)
    conn = main_connection(evidence, exp.spec)
    if conn is not None and "client" in evidence.programs:
        evidence.programs["client"]["local"] = [conn.client.ip, conn.client.port]
        evidence.programs["client"]["peer"] = [conn.server.ip, conn.server.port]
        evidence.save()


@contextmanager
def series(count: int, traced_here: bool = True) -> Iterator[None]:
    """One registration and one kernel state tracer for a whole folder of claim files."""
    with ExitStack() as stack:
        if count > 1:
            require_emulation("tcpdump")
            stack.enter_context(runstate.owned(sys.argv))
            if traced_here:  # --cluster: each run traces on its servers
                stack.enter_context(runner.shared_state_tracer())
        yield


def run_folder_for(base: Path | None, claim: Claim, single: bool) -> Path:
    if base is not None and single:
        return base
    return runner.new_run_dir(base or Path("runs"), _slug(claim.label), claim.topology)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)[:60] or "claim"


# -- what is printed ---------------------------------------------------------------------------------

def label(claim: Claim, root: Path | None) -> str:
    """The claim file as the table names it: relative to the folder that was run (student/file.toml)."""
    if root is not None:
        try:
            return str(claim.path.relative_to(root.resolve()))
        except ValueError:
            pass
    return claimfile.shown(claim.path)


def result_text(claim: Claim, result: RunResult) -> str:
    """One claim file's verdict, as `netbed run EXPERIMENT` prints a catalog run's, and its time."""
    head, rest = text.result_text(result).split("\n", 1)
    return f"{head}  ({claimfile.shown(claim.path)})\n{rest}  ({result.duration or 0:.1f} s)"


def run_target(target: Path, *, out: Path | None = None, switch: str = "bridge",
               progress=None, cluster: ClusterSpec | None = None) -> list[tuple[Claim, RunResult]]:
    """Run a claim file or every claim file under a folder; return each claim with its result, in order."""
    claims = load_all(target)  # every file refused or accepted before anything is built
    require_emulation("tcpdump")  # and root, before any build runs
    graded = []
    with series(len(claims), traced_here=cluster is None):
        for n, claim in enumerate(claims, 1):
            if progress is not None:
                progress(f"[{n}/{len(claims)}] {claimfile.shown(claim.path)} …")
            result = run_claim(claim, run_folder_for(out, claim, single=len(claims) == 1), switch=switch,
                               cluster=cluster)
            graded.append((claim, result))
            if progress is not None:
                progress(f"[{n}/{len(claims)}] {text.verdict_word(result.passed)} {claimfile.shown(claim.path)} "
                         f"({result.duration or 0:.1f} s)")
    return graded


def cmd_run_claims(args) -> int:
    """`netbed run FILE.toml|DIR [--out DIR] [--json] [--html FILE] [--junit FILE]` (the CLI has checked that
    the --html and --junit files can be written)."""
    if args.all or args.topo:
        raise NetbedError("--all and --topo are for catalog experiments; a claim file names its own topology")
    target = Path(args.name)
    many = target.is_dir()
    graded = run_target(target, out=args.out, switch=args.switch,
                        progress=None if args.json or not many else _say, cluster=runner.cluster_of(args))
    root = target if many else target.parent
    results = [result for _, result in graded]
    if args.junit is not None:
        cases = [(junit.classname(claim.folder, root), f"{claim.name} ({claim.path.name})", str(claim.path), result)
                 for claim, result in graded]
        junit.write_junit(cases, args.junit)
    if args.html is not None:
        from netbed.report.html import write_page

        write_page(results, args.html)
    passed = all(r.passed for r in results)
    if args.json:
        slim = [{**result.summary(), "claim_file": str(claim.path)} for claim, result in graded]
        print(json.dumps(slim[0] if not many else {"passed": passed, "results": slim}, indent=2, ensure_ascii=False))
    elif many:
        print(grades.table([(label(claim, root), result) for claim, result in graded]))
    else:
        print(result_text(*graded[0]))
    for word, path in (("junit", args.junit), ("report", args.html)):
        if path is not None and not args.json:
            print(f"{word}: {path}")
    return 0 if passed else 1


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
