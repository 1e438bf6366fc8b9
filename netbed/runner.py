"""Runs experiments end to end and writes one folder per run.

network → programs → capture happen live; trace → expectations happen on the saved folder, through
the very same `verdict.check_dir` that `netbed check DIR` uses offline; the report stage then writes
the folder's ladder files.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from netbed import __version__, runfolder, runstate, topologies
from netbed.capture import capture_all
from netbed.capture.cluster_states import ClusterStateTracer
from netbed.capture.fidelity import FidelityMonitor
from netbed.capture.states import LOG as STATES_LOG
from netbed.capture.states import SocketSampler, StateTracer, keep_namespaces
from netbed.errors import NetbedError
from netbed.experiment import Evidence, Experiment, Lab, capture_points, get
from netbed.network import Testbed
from netbed.network.cluster import ClusterSpec, ClusterTestbed
from netbed.network.custom import CustomTopology, end_hosts, folder_label
from netbed.preflight import require_emulation
from netbed.report.folder import write_ladder_files
from netbed.spec import Topology
from netbed.trace.kernel_tcp import write_kernel_tcp
from netbed.verdict import RunResult, broken_run, check_dir, save


def run_series(pairs: list[tuple[Experiment, str]], out: Path | None = None, *, switch: str = "bridge",
               starting: Callable[[int, str, str], None] | None = None,
               custom: CustomTopology | None = None, jobs: int = 1,
               cluster: ClusterSpec | None = None) -> Iterator[RunResult]:
    """Run each (experiment, topology) pair in turn, yielding each verdict as soon as it is known.

    `out` is the run folder of a single run, or the parent of the series' folders (default runs/).
    A series shares one run registration and one kernel state tracer, and bad input is reported
    before anything starts. `starting(n, experiment, topology)` is told as each run begins. With
    `custom`, every run is on that user's Mininet topology. `jobs` > 1 runs that many at once
    (`_run_parallel`).
    """
    if pairs:  # bad input and a missing root are one line before any run folder is made
        if custom is None:  # a custom topology was loaded and checked already
            topologies.build(pairs[0][1])
        require_emulation("tcpdump")
    with series_session(pairs, custom, traced_here=cluster is None):
        if jobs > 1 and len(pairs) > 1 and cluster is None:
            yield from _run_parallel(pairs, out, switch, jobs, starting, custom)
            return
        for n, (exp, topo) in enumerate(pairs, 1):
            if out is not None and len(pairs) == 1:
                run_out = out
            else:
                run_out = new_run_dir(out or Path("runs"), exp.name, topo)
            if starting is not None:
                starting(n, exp.name, topo)
            yield run_experiment(exp, topo, run_out, switch=switch, **({"custom": custom} if custom else {}),
                                 **({"cluster": cluster} if cluster else {}))


_PARALLEL: list[tuple[Experiment, str, Path, str, CustomTopology | None]] = []  # what forked workers run


def _run_one(i: int) -> RunResult:
    exp, topo, run_out, switch, custom = _PARALLEL[i]
    return run_experiment(exp, topo, run_out, switch=switch, **({"custom": custom} if custom else {}))


def _run_parallel(pairs: list[tuple[Experiment, str]], out: Path | None, switch: str, jobs: int,
                  starting: Callable[[int, str, str], None] | None,
                  custom: CustomTopology | None = None) -> Iterator[RunResult]:
    """`jobs` runs at once, each in a forked worker process with namespaces of its own (every node and
    switch of a netbed network is its own namespace, so runs never share a name). The series' one
    tracer serves them all: each run keeps the lines of its own namespaces. Verdicts come back in the
    order of `pairs`."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    _PARALLEL[:] = [(exp, topo, new_run_dir(out or Path("runs"), exp.name, topo), switch, custom)
                    for exp, topo in pairs]
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(_run_one, i) for i in range(len(pairs))]
            for n, ((exp, topo), future) in enumerate(zip(pairs, futures), 1):
                if starting is not None:
                    starting(n, exp.name, topo)
                yield future.result()
    finally:
        _PARALLEL.clear()


@contextmanager
def series_session(pairs: list[tuple[Experiment, str]], custom: CustomTopology | None = None,
                   traced_here: bool = True) -> Iterator[None]:
    """What several runs share (a single run sets up its own in `run_experiment`); a cluster series
    (`traced_here` False) traces kernel states on its servers, run by run, not here."""
    if len(pairs) <= 1:
        yield
        return
    if custom is None:  # a custom topology was loaded and checked already
        topologies.build(pairs[0][1])  # bad input is reported before anything starts
    require_emulation("tcpdump")
    with runstate.owned(sys.argv):
        if not traced_here:
            yield
            return
        with shared_state_tracer():
            yield


def new_run_dir(base: Path, experiment: str, topology: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    topology = folder_label(topology)  # a Mininet topology's arguments: tree,depth=2 -> tree-depth-2
    for n in range(1000):
        path = base / f"{stamp}-{experiment}-{topology}" if n == 0 else base / f"{stamp}-{experiment}-{topology}-{n}"
        try:
            return runfolder.start(path, exist_ok=False)
        except FileExistsError:
            continue
    raise NetbedError(f"cannot make a run folder under {base}")


def run_experiment(exp: Experiment, topology: str, out: Path, switch: str = "bridge",
                   custom: CustomTopology | None = None, cluster: ClusterSpec | None = None) -> RunResult:
    """Run `exp` live on `topology` (or on a user's Mininet topology), save its evidence in `out`, and
    return the checked result. A folder that cannot be written is one line, the folder marked incomplete."""
    if custom is None:
        if topology not in exp.topologies:
            raise NetbedError(f"experiment {exp.name} runs on {', '.join(exp.topologies)}, not {topology}")
        network: Topology | CustomTopology = topologies.build(topology)
    else:
        require_any_topology(exp)
        network = custom
    require_emulation("tcpdump")
    runfolder.start(out)
    try:
        result = _run_and_check(exp, topology, network, out, switch, cluster)
    except OSError as exc:  # the disk filled up, the folder vanished: the machine's problem, said in one line
        raise runfolder.write_failed(out, exc) from None
    runfolder.finish(out)
    return result


def _run_and_check(exp: Experiment, topology: str, network: Topology | CustomTopology, out: Path,
                   switch: str, cluster: ClusterSpec | None = None) -> RunResult:
    began = time.monotonic()
    try:
        with runstate.owned(sys.argv):
            tb = _run_live(exp, network, out, switch, cluster)
    except NetbedError as exc:  # the run itself broke down (a program hung, a state never came): a FAIL
        result = broken_run(exp.name, topology, out, str(exc))
        result.duration = round(time.monotonic() - began, 3)
        save(out, result)
        return result
    result = check_dir(out)
    result.duration = round(time.monotonic() - began, 3)
    result.build_seconds = round(tb.timings.build, 3)
    write_result(out, result)
    return result


def require_any_topology(exp: Experiment) -> None:
    """A user's topology suits the experiments that run on every topology of netbed's own (IPv4 ones)."""
    if set(topologies.TOPOLOGIES) <= set(exp.topologies) and not getattr(exp.module, "IPV6", False):
        return
    from netbed.experiment import catalog

    fit = [e.name for e in catalog() if set(topologies.TOPOLOGIES) <= set(e.topologies)
           and not getattr(e.module, "IPV6", False)]
    why = ("it needs the IPv6 addresses netbed gives its own topologies" if getattr(exp.module, "IPV6", False)
           else f"it is made for {', '.join(exp.topologies)} only")
    raise NetbedError(f"experiment {exp.name} does not run on a custom topology ({why}); these do: {', '.join(fit)}")


def _run_live(exp: Experiment, topo: Topology | CustomTopology, out: Path, switch: str,
              cluster: ClusterSpec | None = None) -> Testbed:
    """network → programs → capture (and kernel states): everything that needs the kernel."""
    with lab_session(topo, out, experiment=exp.name, switch=switch, ipv6=getattr(exp.module, "IPV6", False),
                     cluster=cluster) as lab:
        exp.run(lab)
    return lab.tb


@contextmanager
def lab_session(topo: Topology | CustomTopology, out: Path, *, experiment: str = "custom", switch: str = "bridge",
                ipv6: bool = False, client_host: str | None = None, server_host: str | None = None,
                cluster: ClusterSpec | None = None) -> Iterator[Lab]:
    """A live lab on `topo`: kernel state tracing, the testbed, captures on the client-server path.

    Inside the block, start programs with the Lab; on leaving it, servers that serve until told
    are stopped, the captures flushed and closed, and everything `check` needs is saved in `out`
    (load it with `Evidence.load(out)`). The first host is the client, the last the server (a
    custom topology may name them), unless `client_host` / `server_host` name others.
    """
    out.mkdir(parents=True, exist_ok=True)
    if cluster is not None:
        out = out.resolve()  # the servers' programs and tcpdumps write there: not relative to their cwd
    shared = _SHARED_TRACER if cluster is None else None  # --cluster: a tracer on each server, per run
    # bpftrace attaches while the network is built (NETBED_STATES=ss: the sampling fallback instead)
    tracer = None if cluster is not None else shared or StateTracer(
        out, enabled=os.environ.get("NETBED_STATES") != "ss").start()
    try:
        custom = topo if isinstance(topo, CustomTopology) else None
        apart = planned_ends(topo, client_host, server_host)  # --cluster: on different servers
        if custom and cluster is not None:  # a user's Mininet topology over the servers
            testbed = ClusterTestbed.of_custom(custom, cluster, ipv6, apart=apart)
        elif custom:
            testbed = custom.testbed(ipv6)
        elif cluster is not None:  # Mininet Cluster Edition over the servers (--cluster)
            testbed = ClusterTestbed(topo, switch=switch, ipv6=ipv6, cluster=cluster, apart=apart)
        else:
            testbed = Testbed(topo, switch=switch, ipv6=ipv6)
        with testbed as tb:
            try:
                topo = tb.topology
                client, server = custom.ends(topo) if custom else (topo.hosts[0].name, topo.hosts[-1].name)
                client, server = client_host or client, server_host or server
                lab = Lab(tb, out, client, server)
                facts = lab.facts
                facts["client_host"], facts["server_host"] = client, server
                facts["tcp_sysctls"] = {key: lab.read_sysctl(client, key) for key in TCP_SYSCTLS}
                port_range = facts["tcp_sysctls"]["net.ipv4.ip_local_port_range"]
                facts["ip_local_port_range"] = [int(v) for v in port_range.split()]
                facts["netns"] = {str(tb.netns_inode(n.name)): n.name for n in topo.nodes}
                if cluster is not None:  # the tracer on the servers of the two ends, now that they are placed
                    facts["cluster"] = cluster_facts(tb, client, server)
                    tracer = ClusterStateTracer(out, tb, [client, server]).start()
                    tracer.wait_ready()  # if not: no states (the ss sampler needs namespaces on this machine)
                elif shared is None and not tracer.wait_ready():
                    tracer = SocketSampler(out, tb.namespace_fds([client, server])).start()
                mark = shared.mark() if shared is not None else 0
                caps = capture_points(tb, client, server, out)
                monitor = FidelityMonitor()
                with capture_all(tb, caps):
                    with monitor:
                        try:
                            yield lab
                        finally:
                            for prog in lab.programs.values():
                                if prog.daemon:
                                    prog.stop()
                    reports = {name: prog.report() for name, prog in lab.programs.items()}
                facts["fidelity"] = monitor.facts()
                facts["sockets_after"] = {h: tb.run(h, ["ss", "-tanH"]).stdout.splitlines()
                                          for h in (client, server)}
                namespaces = {int(ino) for ino in facts["netns"]}
                if shared is not None:
                    shared.copy_since(mark, out / STATES_LOG, namespaces)
                elif isinstance(tracer, ClusterStateTracer):
                    tracer.stop(facts["netns"])
                else:
                    tracer.stop()
                    if isinstance(tracer, StateTracer):
                        keep_namespaces(out / STATES_LOG, namespaces)
                facts["states"] = tracer.facts()
                if cluster is not None:
                    tb.check_servers()  # a server lost mid-run voids the run, even if nothing raised
                write_kernel_tcp(out, facts["netns"], facts["states"]["clock_offset"])
                Evidence(out, experiment, topo.to_json(), [c.describe() for c in caps], reports, facts).save()
            except Exception:
                if cluster is not None:
                    tb.check_servers()  # a server that died mid-run is the reason, named, whatever broke
                raise
    finally:
        if shared is None and tracer is not None:
            tracer.stop()


_SHARED_TRACER: StateTracer | None = None


def shared_tracer_pid() -> int | None:
    """The pid of the series' bpftrace, if one is running (it is meant to outlive single runs)."""
    proc = _SHARED_TRACER.proc if _SHARED_TRACER is not None else None
    return proc.pid if proc is not None else None


@contextmanager
def shared_state_tracer() -> Iterator[None]:
    """One bpftrace for every live lab in the block (a whole `run --all`, a test session)."""
    global _SHARED_TRACER
    if _SHARED_TRACER is not None:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="netbed-states-") as tmp:
        tracer = StateTracer(Path(tmp)).start()
        _SHARED_TRACER = tracer if tracer.wait_ready() else None
        try:
            yield
        finally:
            _SHARED_TRACER = None
            tracer.stop()


def write_result(directory: Path, result: RunResult) -> None:
    """result.json, the ladder files and manifest.json: what a finished run leaves beside its evidence."""
    evidence = Evidence.load(directory)
    save(directory, result)
    write_ladder_files(evidence)
    # matplotlib loads only once a run has finished: `netbed run` without root, or with bad input, says
    # its one line without matplotlib's start-up (and its warnings where HOME is not writable) first
    from netbed.report.figures import write_figures

    write_figures(evidence)
    manifest = {
        "netbed_version": __version__,
        "git_commit": _git_commit(),
        "command": sys.argv,
        "kernel": platform.release(),
        "tools": tool_versions(),
        "tcp_sysctls": evidence.facts.get("tcp_sysctls", {}),  # as the client host saw them
        "states_source": (evidence.facts.get("states") or {}).get("source"),
        "topology": evidence.topology,
    }
    if "cluster" in evidence.facts:  # which server ran which node
        manifest["cluster"] = evidence.facts["cluster"]
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


TCP_SYSCTLS = ("net.ipv4.ip_local_port_range", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_timestamps",
               "net.ipv4.tcp_sack", "net.ipv4.tcp_window_scaling", "net.ipv4.tcp_syn_retries",
               "net.ipv4.tcp_congestion_control", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.ipv4.tcp_ecn",
               "net.ipv4.tcp_tw_reuse")


@lru_cache(maxsize=1)
def tool_versions() -> dict:
    """Versions of everything that takes part in a run (read once per process)."""
    def first_line(argv: list[str]) -> str | None:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        text = (out.stdout or out.stderr).strip()
        return text.splitlines()[0] if text else None

    try:
        from mininet.net import VERSION as mininet_version
    except ImportError:
        mininet_version = None
    return {"python": platform.python_version(), "mininet": mininet_version,
            "tcpdump": first_line(["tcpdump", "--version"]), "bpftrace": first_line(["bpftrace", "--version"]),
            "iproute2": first_line(["ip", "-V"]), "curl": first_line(["curl", "--version"])}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def cluster_of(args) -> ClusterSpec | None:
    """The cluster `--cluster SERVERS --placement P` asks for, or None for one machine."""
    if not getattr(args, "cluster", None):
        return None
    from netbed.cluster_lab import cluster_spec

    return cluster_spec(args.cluster, args.placement)


def planned_ends(topo: Topology | CustomTopology, client: str | None,
                 server: str | None) -> tuple[str, str] | None:
    """The client and server hosts a run will use, known before the build (so --cluster can place them
    on different servers): the named ones, else the first and the last host (a custom topology's end
    hosts: its hosts that are not routers, in Mininet's order)."""
    if isinstance(topo, CustomTopology):
        hosts = end_hosts(topo.topo)
        client, server = client or topo.client, server or topo.server
    else:
        hosts = [h.name for h in topo.hosts]
    if len(hosts) < 2 and not (client and server):
        return None
    return client or hosts[0], server or hosts[-1]


def cluster_facts(tb: ClusterTestbed, client: str, server: str) -> dict:
    """Where the run went: each node's server, the hostname each server and end host reports, the MTU."""
    hostnames = {s: tb.connections.run(s, "hostname").stdout.strip() for s in tb.cluster.servers}
    return {"servers": tb.cluster.servers, "placement": tb.cluster.placement, "tunnel_mtu": tb.mtu,
            "nodes": dict(sorted(tb.placement.items())), "server_hostnames": hostnames,
            "uts_hostname": {n: tb.run(n, ["hostname"]).stdout.strip() for n in (client, server)}}


def plan(name: str | None, topology: str | None, all_: bool,
         custom: CustomTopology | None = None) -> list[tuple[Experiment, str]]:
    """The (experiment, topology) pairs a `netbed run` invocation asks for (on `custom`, if given)."""
    if custom is not None:
        if all_:
            from netbed.experiment import catalog

            return [(e, custom.label) for e in catalog() if set(topologies.TOPOLOGIES) <= set(e.topologies)
                    and not getattr(e.module, "IPV6", False)]
        if name is None:
            raise NetbedError("name an experiment (see `netbed list`) or use --all")
        require_any_topology(get(name))
        return [(get(name), custom.label)]
    if topology is not None:
        topologies.module(topology)  # validates the name
    if all_:
        from netbed.experiment import catalog

        pairs = [(e, t) for e in catalog() for t in e.topologies if topology in (None, t)]
        if not pairs:
            raise NetbedError(f"no experiment runs on topology {topology}")
        return pairs
    if name is None:
        raise NetbedError("name an experiment (see `netbed list`) or use --all")
    exp = get(name)
    topo = topology or exp.topologies[0]
    if topo not in exp.topologies:
        raise NetbedError(f"experiment {exp.name} runs on {', '.join(exp.topologies)}, not {topo}")
    return [(exp, topo)]
