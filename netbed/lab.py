"""`netbed lab TOPO` (or `--custom FILE --topo NAME`): an interactive lab for people's own programs.

The network is built, every interface of every host and router is captured (tcpdump says
"listening" on each before the prompt appears, so the session's first packet is in the files), the
kernel's TCP state changes are traced, and Mininet's own CLI opens. When the CLI ends, every TCP
connection of the session is classified, drawn as a ladder with both sides' kernel states, and put
in the lab folder and on one HTML page. `--script FILE` feeds the CLI from a file instead of a
person — Mininet's `CLI(net, script=FILE)`, what `mn --pre FILE` and `source FILE` use — so a lab
session can be replayed in CI.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path

from netbed import custom_topo, runfolder, runstate, topologies
from netbed.capture import Capture, capture_all
from netbed.capture.cluster_states import ClusterStateTracer
from netbed.capture.states import SocketSampler, StateTracer
from netbed.errors import NetbedError
from netbed.network import Testbed
from netbed.network.cluster import ClusterSpec, ClusterTestbed
from netbed.network.custom import CustomTopology, custom_topology
from netbed.preflight import require_emulation
from netbed.report.lab_page import LAB_JSON, PAGE, summary_line, write_lab_report
from netbed.spec import Topology
from netbed.topo_cli import add_cluster_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hosts", help="hosts (per LAN for multi-lan and wan)")
    parser.add_argument("--lans", help="LANs (multi-lan)")
    parser.add_argument("--routers", help="routers in the chain (wan)")
    parser.add_argument("--subnet", help="the LAN's subnet (lan), e.g. 10.0.0.0/24")
    custom_topo.add_topo_arguments(parser)
    parser.add_argument("--script", type=Path, metavar="FILE",
                        help="run these CLI commands instead of a prompt (as mn --pre / source do), then end")
    parser.add_argument("--out", type=Path, help="lab folder (default: a new folder under runs/)")
    add_cluster_arguments(parser)


def main(args: argparse.Namespace) -> int:
    """Check everything, build, capture, open the CLI; afterwards classify and write the page."""
    chosen = custom_topo.wanted(args.name, args.topo, args.custom)
    network: Topology | CustomTopology
    if chosen is not None:
        for flag in ("hosts", "lans", "routers", "subnet"):
            if getattr(args, flag) is not None:
                raise NetbedError(f"--{flag} is for netbed's own topologies; give a Mininet topology its "
                                  f"arguments in --topo")
        network = custom_topology(chosen, custom_topo.custom_files(args.custom))
        label = network.name
    else:
        if args.name is None:
            raise NetbedError(f"name a topology: one of {', '.join(topologies.TOPOLOGIES)}, or --topo/--custom")
        network = topologies.build(args.name, hosts=args.hosts, lans=args.lans, routers=args.routers,
                                   subnet=args.subnet)
        label = args.name
    script = _script(args.script)
    cluster = None
    if args.cluster:
        from netbed.cluster_lab import cluster_spec

        cluster = cluster_spec(args.cluster, args.placement)
    require_emulation("tcpdump")
    base = args.out or Path("runs")
    runfolder.check_base(base, "--out" if args.out else "run folder")
    out = args.out or _new_lab_dir(base, label)
    runfolder.start(out)
    try:
        with runstate.owned(sys.argv):
            session(network, out, script, cluster)
        conns = write_lab_report(out)
    except OSError as exc:
        raise runfolder.write_failed(out, exc, "lab folder") from None
    runfolder.finish(out)
    print(f"\n{len(conns)} TCP connection{'s' if len(conns) != 1 else ''} in this session:")
    for c in conns:
        print(summary_line(c))
    print(f"lab folder: {out}\npage: {out / PAGE}")
    return 0


def _script(path: Path | None) -> str | None:
    if path is None:
        return None
    if not path.is_file():
        raise NetbedError(f"--script {path}: no such file")
    if not os.access(path, os.R_OK):
        raise NetbedError(f"--script {path}: not readable")
    return str(path)


def _new_lab_dir(base: Path, label: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        path = base / (f"{stamp}-lab-{label}" + (f"-{n}" if n else ""))
        if not path.exists():
            return path
    raise NetbedError(f"cannot make a lab folder under {base}")


def session(network: Topology | CustomTopology, out: Path, script: str | None,
            cluster: ClusterSpec | None = None) -> None:
    """Build, capture every interface, run the CLI, then save what the analysis needs (lab.json).

    With `cluster`, the network is spread over those servers (Mininet Cluster Edition), and each
    capture is written by the tcpdump on the node's server."""
    # attaches during the build; --cluster: on every server that holds a node, once they are placed
    tracer = None if cluster else StateTracer(out, enabled=os.environ.get("NETBED_STATES") != "ss").start()
    sampler = None
    custom = network if isinstance(network, CustomTopology) else None
    try:
        if cluster is not None:
            out = out.resolve()  # the servers' tcpdumps write there, whatever their working folder
            testbed = (ClusterTestbed.of_custom(custom, cluster) if custom else
                       ClusterTestbed(network, cluster=cluster))
        else:
            testbed = custom.testbed() if custom else Testbed(network)
        with testbed as tb:
            topo = tb.topology
            nodes = [n.name for n in topo.nodes]
            facts: dict = {"netns": {str(tb.netns_inode(n)): n for n in nodes}}
            if cluster is not None:  # which server held which node
                facts["cluster"] = {"servers": cluster.servers, "placement": cluster.placement,
                                    "nodes": dict(sorted(tb.placement.items()))}
            if cluster is not None:
                tracer = ClusterStateTracer(out, tb, nodes).start()
                tracer.wait_ready()  # if not: no states (the ss sampler needs namespaces on this machine)
            elif not tracer.wait_ready():
                sampler = SocketSampler(out, tb.namespace_fds(nodes)).start()
            caps = [Capture(_point(n.name, i.name), n.name, i.name, out / f"{_point(n.name, i.name)}.pcap")
                    for n in topo.nodes for i in n.interfaces]
            with capture_all(tb, caps):
                print(f"*** netbed lab: capturing {len(caps)} interfaces into {out}; "
                      + ("running " + script if script else "type exit (or Ctrl-D) to end and classify"),
                      flush=True)
                tb.cli(script)  # Mininet's CLI at its `info` level; script=None: a prompt for a person
            if cluster is not None:
                tb.check_servers()  # a server that died during the session: said, named, before any analysis
            facts["sockets_after"] = {n: tb.run(n, ["ss", "-tanH"], check=False).stdout.splitlines() for n in nodes}
            source = sampler or tracer
            if isinstance(source, ClusterStateTracer):
                source.stop(facts["netns"])
            else:
                source.stop()
            facts["states"] = source.facts()
            lab = {"topology": topo.to_json(), "captures": [c.describe() for c in caps], "facts": facts,
                   "script": script, "command": sys.argv}
            (out / LAB_JSON).write_text(json.dumps(lab, indent=2) + "\n")
    finally:
        if tracer is not None:
            tracer.stop()
        if sampler is not None:
            sampler.stop()


def _point(node: str, interface: str) -> str:
    """A capture's name: the interface's own name when it carries the node's (h1-eth0), else node-interface."""
    return interface if interface.startswith(node + "-") else f"{node}-{interface}"
