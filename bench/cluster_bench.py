#!/usr/bin/env python3
"""Build cost on Mininet Cluster Edition: 1 machine vs 2 and 3 emulated servers, same topology.

    sudo .venv/bin/python bench/cluster_bench.py [--hosts 500] [--servers 2 3] [--placement roundrobin]

For each case it brings up the emulated servers (`netbed cluster up N`), builds `lan` with --hosts
hosts over them (hosts spread round-robin, so most host links cross a VXLAN tunnel), and prints:
build seconds, ping-ends (first host to last), a cross-server TCP handshake (curl to a listening
server on another server: connect time as curl measures it), teardown seconds, and the ssh commands
per host the build opened ("ssh/host": node shells, the servers' root shells, anything run apart) and
the commands it sent over those open shells ("trips/host": each a round trip), counted by netbed's node
classes. "1 machine" is netbed's
classic Mininet build (node by node through shells, the build Cluster Edition extends), no ssh.
The emulated servers share this machine's 2 cores: the figures measure ssh and tunnel overhead, not
the gain of more CPUs. Say what the machine's load was.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from netbed import cluster_lab, runstate, topologies  # noqa: E402
from netbed.network import Testbed  # noqa: E402
from netbed.network.cluster import ClusterTestbed  # noqa: E402

HTTP_PORT = 8080


def measure(tb: Testbed) -> dict:
    topo = tb.topology
    first, last = topo.hosts[0], topo.hosts[-1]
    began = time.monotonic()
    ends = tb.ping(first.name, last.ip, count=1, wait=2)
    ping = time.monotonic() - began
    server = tb.popen(last.name, ["python3", "-m", "http.server", str(HTTP_PORT), "--bind", last.ip])
    tb.wait_listening(last.name, HTTP_PORT, proc=server)
    out = tb.run(first.name, ["curl", "-sS", "-o", "/dev/null", "-w", "%{time_connect}",
                              f"http://{last.ip}:{HTTP_PORT}/"], check=False)
    if out.returncode != 0:  # said, not hidden: the figure is then missing
        print(f"  connect {first.name} -> {last.name} failed: {out.stderr.strip()}", flush=True)
        server.terminate()
        return {"ping_ok": ends, "ping_s": ping, "connect_s": float("nan")}
    server.terminate()
    return {"ping_ok": ends, "ping_s": ping, "connect_s": float(out.stdout or "nan")}


def one_case(servers: int, hosts: int, placement: str) -> dict:
    topo = topologies.build("lan", hosts=str(hosts))
    row: dict = {"servers": servers}
    with runstate.owned(sys.argv):
        if servers == 0:
            tb = Testbed(topo, classic=True)
        else:
            found = cluster_lab.up(servers)
            spec = cluster_lab.cluster_spec(cluster_lab.server_list(found), placement)
            tb = ClusterTestbed(topo, cluster=spec)
        try:
            with tb:
                row["build_s"] = tb.timings.build
                if servers:  # what the build sent, before the measurements add their own
                    row["ssh_per_host"] = tb.ssh_counter[0] / hosts
                    row["trips_per_host"] = tb.ssh_trips[0] / hosts
                row.update(measure(tb))
                if servers:
                    where = {tb.placement[h.name] for h in (topo.hosts[0], topo.hosts[-1])}
                    row["ends_on_servers"] = len(where)
            row["teardown_s"] = tb.timings.stop
        finally:
            if servers:
                cluster_lab.down()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--servers", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--placement", default="roundrobin")
    args = parser.parse_args()
    if cluster_lab.servers():
        sys.exit("netbed cluster down first: the bench brings up its own emulated servers")
    print(f"lan, {args.hosts} hosts, placement {args.placement}")
    print(f"{'where':<14}{'build s':>9}{'ping-ends':>11}{'connect ms':>12}{'teardown s':>12}{'ssh/host':>10}"
          f"{'trips/host':>12}")
    for n in [0, *args.servers]:
        row = one_case(n, args.hosts, args.placement)
        where = "1 machine" if n == 0 else f"{n} servers"
        ping = f"{row['ping_s']:.2f}s" if row["ping_ok"] else "FAIL"
        ssh = f"{row['ssh_per_host']:.2f}" if "ssh_per_host" in row else "-"
        trips = f"{row['trips_per_host']:.1f}" if "trips_per_host" in row else "-"
        print(f"{where:<14}{row['build_s']:>9.2f}{ping:>11}{row['connect_s'] * 1000:>12.2f}"
              f"{row['teardown_s']:>12.2f}{ssh:>10}{trips:>12}", flush=True)


if __name__ == "__main__":
    main()
